import { readFileSync } from "node:fs";
import { expect } from "chai";
import { parse } from "yaml";
import { openapiPath, startHarness, type Harness } from "./route-harness.js";

describe("docs routes", () => {
  let harness: Harness;
  before(async () => (harness = await startHarness()));
  after(() => harness.close());

  it("serves the OpenAPI document as JSON, identical to the YAML", async () => {
    const res = await harness.call("GET", "/openapi.json");
    expect(res.status).to.equal(200);
    expect(res.json()).to.deep.equal(parse(readFileSync(openapiPath, "utf8")));
    expect(res.json()).to.include({ openapi: "3.1.0" });
  });

  it("serves a local Swagger UI page pointed at /openapi.json, with no CDN", async () => {
    for (const path of ["/docs", "/docs/"]) {
      const page = await harness.call("GET", path, { validate: path === "/docs" });
      expect(page.status).to.equal(200);
      expect(page.headers.get("content-type")).to.match(/^text\/html/);
      expect(page.body.toString()).to.include("/docs/swagger-ui-bundle.js").and.not.match(/https?:\/\//);
    }
    const init = await harness.call("GET", "/docs/swagger-initializer.js", { validate: false });
    expect(init.body.toString()).to.include('url: "/openapi.json"');
    const bundle = await harness.call("GET", "/docs/swagger-ui-bundle.js", { validate: false });
    expect(bundle.status).to.equal(200);
    expect(bundle.headers.get("content-type")).to.match(/javascript/);
    const css = await harness.call("GET", "/docs/swagger-ui.css", { validate: false });
    expect(css.status).to.equal(200);
  });
});
