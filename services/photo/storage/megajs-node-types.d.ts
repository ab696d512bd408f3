// megajs 1.3.10 ships types, but its ESM entry (types/es.d.ts) imports Node's streams, events and
// agents from Deno CDN URLs that TypeScript cannot resolve under Node, so everything megajs inherits
// from them (upload and download streams, EventEmitter methods) is an error type. These ambient
// modules point those URLs at Node's own declarations.
declare module "https://cdn.deno.land/std/versions/0.125.0/raw/node/global.ts" {}
declare module "https://cdn.deno.land/std/versions/0.125.0/raw/node/_stream.d.ts" {
  export { Readable, Transform, Writable } from "node:stream";
}
declare module "https://cdn.deno.land/std/versions/0.125.0/raw/node/_events.d.ts" {
  export { EventEmitter } from "node:events";
}
declare module "https://cdn.deno.land/std/versions/0.125.0/raw/node/http.ts" {
  export { Agent } from "node:http";
}
declare module "https://cdn.deno.land/std/versions/0.125.0/raw/node/https.ts" {
  export { Agent } from "node:https";
}
