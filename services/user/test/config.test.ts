// The user service's config schema over its own config.yml, through the shared loader.
import { expect } from "chai";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../../../internal/config/load-config.js";
import { userConfigSchema } from "../config.js";

const configFile = fileURLToPath(new URL("../config.yml", import.meta.url));

describe("user config", () => {
  it("loads config.yml with the documented ports and account defaults", () => {
    const config = loadConfig(userConfigSchema, { file: configFile, env: {} });
    expect(config.grpc.port).to.equal(50051);
    expect(config.admin.port).to.equal(9091);
    expect(config.postgres).to.deep.equal({ url: "postgres://127.0.0.1:5432/usermesh_user", poolMax: 10 });
    expect(config.session).to.deep.equal({ address: "127.0.0.1:50052" });
    expect(config.events).to.deep.equal({ exchange: "usermesh.user" });
    expect(config.hashing).to.deep.equal({ bcryptCost: 12, maxConcurrentHashes: 2, niceness: 10 });
    expect(config.cache).to.deep.equal({ profileTtlSeconds: 300 });
    expect(config.loginThrottle).to.deep.equal({ maxFailuresPerAccount: 5, maxFailuresPerIp: 20, windowSeconds: 900 });
  });

  it("fills every section from defaults when the file leaves them out", () => {
    const config = loadConfig(userConfigSchema, { env: { USERMESH_GRPC__PORT: "0", USERMESH_ADMIN__PORT: "0" } });
    expect(config.postgres.url).to.equal("postgres://127.0.0.1:5432/usermesh_user");
    expect(config.session.address).to.equal("127.0.0.1:50052");
    expect(config.hashing.bcryptCost).to.equal(12);
    expect(config.loginThrottle.windowSeconds).to.equal(900);
  });

  it("lets the environment lower the bcrypt cost and point at another session service", () => {
    const config = loadConfig(userConfigSchema, {
      file: configFile,
      env: { USERMESH_HASHING__BCRYPT_COST: "4", USERMESH_SESSION__ADDRESS: "session:50052" },
    });
    expect(config.hashing.bcryptCost).to.equal(4);
    expect(config.session.address).to.equal("session:50052");
  });

  it("refuses a bcrypt cost outside 4..15, naming the key", () => {
    for (const cost of ["3", "16"]) {
      expect(() => loadConfig(userConfigSchema, { file: configFile, env: { USERMESH_HASHING__BCRYPT_COST: cost } }))
        .to.throw(ConfigError)
        .with.property("message")
        .that.contains("hashing.bcryptCost");
    }
  });

  it("takes a hashing niceness of 0..19 and refuses others, naming the key", () => {
    const nice = loadConfig(userConfigSchema, { file: configFile, env: { USERMESH_HASHING__NICENESS: "19" } });
    expect(nice.hashing.niceness).to.equal(19);
    for (const niceness of ["-1", "20"]) {
      expect(() => loadConfig(userConfigSchema, { file: configFile, env: { USERMESH_HASHING__NICENESS: niceness } }))
        .to.throw(ConfigError)
        .with.property("message")
        .that.contains("hashing.niceness");
    }
  });
});
