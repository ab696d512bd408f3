import { expect } from "chai";
import type * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { startMesh, type Mesh } from "../support/mesh.js";
import { callUnary, loadStockPackage, stockClient } from "../support/stock-grpc.js";
import { createApi } from "./api-client.js";

// Following one request by its x-request-id: every process it touched logged it, and the Logs
// service finds all of them.

interface Line { service: string; msg: string; traceId: string }

describe("e2e: one request's logs across the mesh, found by trace id", function () {
  this.timeout(120_000);
  let mesh: Mesh;
  let logs: grpc.Client;

  before(async () => {
    mesh = await startMesh({ withLogs: true });
    logs = stockClient(loadStockPackage(["usermesh/logs/v1/logs.proto"]), "usermesh.logs.v1.LogService", `127.0.0.1:${mesh.logs!.grpcPort}`);
  });

  after(async () => {
    logs?.close();
    const codes = await mesh?.stop();
    expect(codes).to.deep.equal({ gateway: 0, photo: 0, user: 0, session: 0, logs: 0 });
  });

  it("returns the gateway's, the user service's and the session service's lines for one x-request-id", async () => {
    const traceId = randomUUID().replaceAll("-", "");
    const api = createApi(mesh.baseUrl);
    const res = await api("POST", "/auth/register", {
      json: { email: `trace-${randomUUID()}@example.com`, password: "correct horse battery", name: "Trace" },
      headers: { "x-request-id": traceId },
    });
    expect(res.status).to.equal(201);
    expect(res.headers.get("x-request-id")).to.equal(traceId);

    const until = Date.now() + 15_000;
    let services = new Set<string>();
    while (Date.now() < until) {
      const found = await callUnary<{ lines: Line[] }>(logs, "search", { traceId, limit: 100 });
      services = new Set(found.lines.map((l) => l.service));
      if (["gateway", "user", "session"].every((s) => services.has(s))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...services]).to.include.members(["gateway", "user", "session"]);
  });
});
