// The session service's config schema over its own config.yml, through the shared loader.
import { expect } from "chai";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../../../internal/config/load-config.js";
import { sessionConfigSchema, sessionSettingsFrom } from "../config.js";

const configFile = fileURLToPath(new URL("../config.yml", import.meta.url));

describe("session config", () => {
  it("loads config.yml with the documented ports and session defaults", () => {
    const config = loadConfig(sessionConfigSchema, { file: configFile, env: {} });
    expect(config.grpc.port).to.equal(50052);
    expect(config.admin.port).to.equal(9092);
    expect(config.redis.keyPrefix).to.equal("usermesh:");
    expect(config.session).to.deep.equal({
      ttlSeconds: 86400,
      slidingExpiry: true,
      absoluteMaxSeconds: 30 * 86400,
      maxSessionsPerUser: 100,
    });
  });

  it("fills the session section from defaults when the file leaves it out", () => {
    const config = loadConfig(sessionConfigSchema, { env: { USERMESH_GRPC__PORT: "0", USERMESH_ADMIN__PORT: "0" } });
    expect(sessionSettingsFrom(config.session)).to.deep.equal({
      ttlMs: 86_400_000,
      slidingExpiry: true,
      absoluteMaxMs: 30 * 86_400_000,
      maxSessionsPerUser: 100,
    });
  });

  it("lets the environment switch sliding expiry off", () => {
    const config = loadConfig(sessionConfigSchema, {
      file: configFile,
      env: { USERMESH_SESSION__SLIDING_EXPIRY: "false" },
    });
    expect(config.session.slidingExpiry).to.equal(false);
  });

  it("refuses an absolute maximum shorter than the TTL, naming the key", () => {
    expect(() =>
      loadConfig(sessionConfigSchema, {
        file: configFile,
        env: { USERMESH_SESSION__ABSOLUTE_MAX_SECONDS: "60" },
      }),
    )
      .to.throw(ConfigError)
      .with.property("message")
      .that.contains("session.absoluteMaxSeconds");
  });
});
