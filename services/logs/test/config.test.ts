// The logs service's config schema over its own config.yml, through the shared loader.
import { expect } from "chai";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../../../internal/config/load-config.js";
import { logsConfigSchema, writePolicyFrom } from "../config.js";

const configFile = fileURLToPath(new URL("../config.yml", import.meta.url));

describe("logs config", () => {
  it("loads config.yml with the documented ports, queue, storage and fsync defaults", () => {
    const config = loadConfig(logsConfigSchema, { file: configFile, env: {} });
    expect(config.grpc.port).to.equal(50054);
    expect(config.admin.port).to.equal(9094);
    expect(config.ingest).to.deep.equal({ exchange: "logs", queue: "logs.ingest", bindingKey: "#", prefetch: 500, flushIntervalMs: 200, flushMaxLines: 500 });
    expect(config.storage).to.deep.equal({ dir: "./.data/logs", maxFileBytes: 64 * 1024 * 1024, retentionDays: 14, fsync: "batch", sweepIntervalSeconds: 3600 });
    expect(config.tail).to.deep.equal({ bufferLines: 1000 });
    expect(writePolicyFrom(config)).to.deep.equal({ fsync: true, batch: { maxLines: 500, intervalMs: 200 } });
  });

  it("fills every section from defaults when the file leaves them out", () => {
    const config = loadConfig(logsConfigSchema, { env: { USERMESH_GRPC__PORT: "0", USERMESH_ADMIN__PORT: "0" } });
    expect(config.storage.dir).to.equal("./.data/logs");
    expect(config.ingest.queue).to.equal("logs.ingest");
    expect(config.amqp.url).to.equal("amqp://guest:guest@127.0.0.1:5672");
  });

  it("maps the fsync policy to syncing and batching", () => {
    const policyFor = (fsync: string) =>
      writePolicyFrom(loadConfig(logsConfigSchema, { file: configFile, env: { USERMESH_STORAGE__FSYNC: fsync } }));
    expect(policyFor("always")).to.deep.equal({ fsync: true, batch: { maxLines: 1, intervalMs: 0 } });
    expect(policyFor("never")).to.deep.equal({ fsync: false, batch: { maxLines: 500, intervalMs: 200 } });
  });

  it("refuses a batch larger than the prefetch and an unknown fsync policy, naming the keys", () => {
    expect(() => loadConfig(logsConfigSchema, { file: configFile, env: { USERMESH_INGEST__FLUSH_MAX_LINES: "501" } }))
      .to.throw(ConfigError)
      .with.property("message")
      .that.contains("ingest.flushMaxLines");
    expect(() => loadConfig(logsConfigSchema, { file: configFile, env: { USERMESH_STORAGE__FSYNC: "sometimes" } }))
      .to.throw(ConfigError)
      .with.property("message")
      .that.contains("USERMESH_STORAGE__FSYNC");
  });
});
