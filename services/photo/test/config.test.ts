// The photo service's config schema over its own config.yml, through the shared loader.
import { expect } from "chai";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig, redactConfig } from "../../../internal/config/load-config.js";
import { photoConfigSchema } from "../config.js";

const configFile = fileURLToPath(new URL("../config.yml", import.meta.url));

describe("photo config", () => {
  it("loads config.yml with the documented ports and photo defaults", () => {
    const config = loadConfig(photoConfigSchema, { file: configFile, env: {} });
    expect(config.grpc.port).to.equal(50053);
    expect(config.admin.port).to.equal(9093);
    expect(config.postgres).to.deep.equal({ url: "postgres://127.0.0.1:5432/usermesh_photo", poolMax: 10 });
    expect(config.upload).to.deep.equal({
      maxBytes: 10 * 1024 * 1024,
      maxPixels: 40_000_000,
      tempDir: join(tmpdir(), "usermesh-photo-uploads"),
    });
    expect(config.storage).to.deep.equal({ backend: "local", local: { dir: "./.data/photos" }, mega: {} });
    expect(config.events).to.deep.equal({
      exchange: "usermesh.user",
      queue: "photo.user-events",
      deadLetterExchange: "photo.user-events.dlx",
      deadLetterQueue: "photo.user-events.dlq",
      prefetch: 10,
    });
    expect(config.cache).to.deep.equal({ listTtlSeconds: 60 });
    expect(config.pagination).to.deep.equal({ defaultPageSize: 20, maxPageSize: 100 });
    expect(config.janitor).to.deep.equal({ intervalSeconds: 30, batchSize: 10, minBackoffSeconds: 30, maxBackoffSeconds: 3600 });
  });

  it("fills every section from defaults when the file leaves them out", () => {
    const config = loadConfig(photoConfigSchema, { env: { USERMESH_GRPC__PORT: "0", USERMESH_ADMIN__PORT: "0" } });
    expect(config.postgres.url).to.equal("postgres://127.0.0.1:5432/usermesh_photo");
    expect(config.storage.backend).to.equal("local");
    expect(config.upload.maxBytes).to.equal(10 * 1024 * 1024);
    expect(config.events.prefetch).to.equal(10);
  });

  it("requires MEGA credentials only for the mega backend, naming the missing keys", () => {
    expect(() => loadConfig(photoConfigSchema, { file: configFile, env: { USERMESH_STORAGE__BACKEND: "mega" } }))
      .to.throw(ConfigError)
      .with.property("message")
      .that.contains("storage.mega.email")
      .and.contains("storage.mega.password");

    const config = loadConfig(photoConfigSchema, {
      file: configFile,
      env: {
        USERMESH_STORAGE__BACKEND: "mega",
        USERMESH_STORAGE__MEGA__EMAIL: "photos@example.com",
        USERMESH_STORAGE__MEGA__PASSWORD: "123456",
        USERMESH_STORAGE__MEGA__GATEWAY: "http://127.0.0.1:8090/",
      },
    });
    expect(config.storage.mega).to.deep.equal({
      email: "photos@example.com",
      password: "123456",
      gateway: "http://127.0.0.1:8090/",
    });
    expect(JSON.stringify(redactConfig(config))).to.not.contain("123456");
  });

  it("refuses a default page size above the maximum, and a prefetch of 0, naming the keys", () => {
    expect(() =>
      loadConfig(photoConfigSchema, { file: configFile, env: { USERMESH_PAGINATION__DEFAULT_PAGE_SIZE: "500" } }),
    )
      .to.throw(ConfigError)
      .with.property("message")
      .that.contains("pagination.defaultPageSize");
    expect(() => loadConfig(photoConfigSchema, { file: configFile, env: { USERMESH_EVENTS__PREFETCH: "0" } }))
      .to.throw(ConfigError)
      .with.property("message")
      .that.contains("events.prefetch");
  });
});
