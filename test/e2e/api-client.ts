// An HTTP client for the e2e suite that checks every response it sees against gateway/openapi.yaml.
import { fileURLToPath } from "node:url";
import { createOpenApiValidator } from "../support/openapi-validator.js";

const validator = createOpenApiValidator(fileURLToPath(new URL("../../gateway/openapi.yaml", import.meta.url)));

export interface ApiResponse<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON for JSON bodies, the raw bytes otherwise. */
  readonly json: T;
  readonly bytes: Buffer;
}

export interface RequestOptions {
  readonly token?: string;
  readonly cookie?: string;
  readonly json?: unknown;
  readonly body?: Buffer | FormData | string;
  readonly headers?: Record<string, string>;
  /** For requests the contract cannot describe (an unknown route, a wrong method): skip validation. */
  readonly undocumented?: boolean;
}

/** Every response is validated against the OpenAPI document; a mismatch fails the test. */
export function createApi(baseUrl: string) {
  return async function call<T = Record<string, unknown>>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.cookie) headers.cookie = options.cookie;
    let body = options.body as NonNullable<Parameters<typeof fetch>[1]>["body"];
    if (options.json !== undefined) {
      headers["content-type"] ??= "application/json";
      body = JSON.stringify(options.json);
    }
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body, redirect: "manual" });
    const bytes = Buffer.from(await res.arrayBuffer());
    const contentType = res.headers.get("content-type");
    const isJson = /json/.test(contentType ?? "");
    const json = (isJson && bytes.length ? JSON.parse(bytes.toString()) : {}) as T;
    if (!options.undocumented) validator.validateResponse(method, path, res.status, contentType, isJson ? json : bytes);
    return { status: res.status, headers: res.headers, json, bytes };
  };
}

export type Api = ReturnType<typeof createApi>;
