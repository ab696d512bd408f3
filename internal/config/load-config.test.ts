import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { z } from "zod";
import { grpcServerSchema, logSchema, redisSchema, shutdownSchema } from "./common-schema.js";
import { ConfigError, envNameFor, loadConfig, redactConfig } from "./load-config.js";

const schema = z.strictObject({
  grpc: grpcServerSchema,
  log: logSchema,
  redis: redisSchema,
  shutdown: shutdownSchema,
  session: z.strictObject({ ttlSeconds: z.int().positive().default(3600), password: z.string().optional() }),
  tags: z.array(z.string()).default([]),
});

describe("loadConfig", () => {
  let dir: string;
  const file = (name: string, yaml: string): string => {
    const path = join(dir, name);
    writeFileSync(path, yaml);
    return path;
  };
  const errorOf = (load: () => unknown): ConfigError => {
    try {
      load();
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      return error as ConfigError;
    }
    expect.fail("expected a ConfigError");
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "usermesh-config-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads values from the yaml file and fills the rest from schema defaults", () => {
    const config = loadConfig(schema, { file: file("a.yml", "grpc:\n  port: 50051\nlog:\n  level: debug\n"), env: {} });
    expect(config.grpc).to.deep.equal({ host: "0.0.0.0", port: 50051 });
    expect(config.log.level).to.equal("debug");
    expect(config.log.exchange).to.equal("logs");
    expect(config.redis.url).to.equal("redis://127.0.0.1:6379");
    expect(config.shutdown.graceMs).to.equal(10000);
    expect(config.session.ttlSeconds).to.equal(3600);
  });

  it("lets an env var override a nested key set in the yaml", () => {
    const config = loadConfig(schema, {
      file: file("b.yml", "grpc:\n  host: 127.0.0.1\n  port: 50051\n"),
      env: { USERMESH_GRPC__PORT: "6000" },
    });
    expect(config.grpc).to.deep.equal({ host: "127.0.0.1", port: 6000 });
  });

  it("lets an env var set a key whose section is absent from the yaml", () => {
    const config = loadConfig(schema, {
      file: file("c.yml", "grpc:\n  port: 50051\n"),
      env: { USERMESH_SESSION__TTL_SECONDS: "60", USERMESH_REDIS__URL: "redis://cache:6379" },
    });
    expect(config.session.ttlSeconds).to.equal(60);
    expect(config.redis).to.deep.equal({ url: "redis://cache:6379", keyPrefix: "usermesh:" });
  });

  it("works without a file, from defaults and env alone", () => {
    const config = loadConfig(schema, { env: { USERMESH_GRPC__PORT: "0" } });
    expect(config.grpc.port).to.equal(0);
  });

  it("honours a custom env prefix", () => {
    const config = loadConfig(schema, { env: { APP_GRPC__PORT: "7", USERMESH_GRPC__PORT: "8" }, envPrefix: "APP_" });
    expect(config.grpc.port).to.equal(7);
  });

  it("coerces numbers, booleans and lists from env, keeping digit-only text for string keys", () => {
    const config = loadConfig(schema, {
      env: {
        USERMESH_GRPC__PORT: "5000",
        USERMESH_LOG__TO_BROKER: "false",
        USERMESH_TAGS: "[a, b]",
        USERMESH_SESSION__PASSWORD: "123456",
        USERMESH_REDIS__KEY_PREFIX: "{",
      },
    });
    expect(config.grpc.port).to.equal(5000);
    expect(config.log.toBroker).to.equal(false);
    expect(config.tags).to.deep.equal(["a", "b"]);
    expect(config.session.password).to.equal("123456");
    expect(config.redis.keyPrefix).to.equal("{");
  });

  it("names the key and the env var of a bad env value", () => {
    const error = errorOf(() => loadConfig(schema, { env: { USERMESH_GRPC__PORT: "fast" } }));
    expect(error.message).to.equal(
      'config key "grpc.port": Invalid input: expected number, received string (set by USERMESH_GRPC__PORT)',
    );
  });

  it("names a missing required key, and where it can be set", () => {
    const path = file("d.yml", "log:\n  level: info\n");
    const error = errorOf(() => loadConfig(schema, { file: path, env: {} }));
    expect(error.message).to.equal(
      `config key "grpc.port": Invalid input: expected number, received undefined (set it in ${path} or with USERMESH_GRPC__PORT)`,
    );
  });

  it("lists every bad key, one per line, unknown yaml keys included", () => {
    const path = file("e.yml", "grpc:\n  port: 70000\n  prot: 1\nlog:\n  level: loud\n  amqpUrl: http://x\nextra: 1\n");
    const lines = errorOf(() => loadConfig(schema, { file: path, env: {} })).message.split("\n");
    expect(lines).to.have.length(5);
    expect(lines.some((l) => l.startsWith('config key "grpc.port":'))).to.equal(true);
    expect(lines).to.include('config key "grpc.prot": unknown key, not in the schema');
    expect(lines).to.include('config key "extra": unknown key, not in the schema');
    expect(lines.some((l) => l.startsWith('config key "log.level":'))).to.equal(true);
    expect(lines).to.include('config key "log.amqpUrl": must be a URL starting with amqp:// or amqps://');
  });

  it("names the file when it is missing or not a mapping", () => {
    const missing = join(dir, "nope.yml");
    expect(errorOf(() => loadConfig(schema, { file: missing, env: {} })).message).to.equal(
      `config file "${missing}" not found`,
    );
    expect(errorOf(() => loadConfig(schema, { file: file("f.yml", "- a\n"), env: {} })).message).to.contain(
      "must hold a mapping",
    );
    expect(errorOf(() => loadConfig(schema, { file: file("g.yml", "grpc: [\n"), env: {} })).message).to.contain(
      "is not valid YAML",
    );
  });

  it("returns a deep-frozen object", () => {
    const config = loadConfig(schema, { env: { USERMESH_GRPC__PORT: "1", USERMESH_TAGS: "[a]" } });
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.grpc)).to.equal(true);
    expect(Object.isFrozen(config.tags)).to.equal(true);
    expect(() => {
      (config.grpc as { port: number }).port = 2;
    }).to.throw(TypeError);
  });
});

describe("envNameFor", () => {
  it("joins UPPER_SNAKE keys with a double underscore after the prefix", () => {
    expect(envNameFor(["grpc", "port"])).to.equal("USERMESH_GRPC__PORT");
    expect(envNameFor(["session", "ttlSeconds"])).to.equal("USERMESH_SESSION__TTL_SECONDS");
    expect(envNameFor(["redis", "url"])).to.equal("USERMESH_REDIS__URL");
    expect(envNameFor(["HTTPPort"], "X_")).to.equal("X_HTTP_PORT");
  });
});

describe("redactConfig", () => {
  it("hides values under secret-looking keys and passwords inside URLs", () => {
    const config = {
      log: { amqpUrl: "amqp://guest:guest@127.0.0.1:5672" },
      postgres: { url: "postgres://app:p@ss@db:5432/usermesh?sslmode=require&password=x" },
      redis: { url: "redis://127.0.0.1:6379" },
      mega: { password: "hunter2", apiKey: "k", client_secret: "s", credentials: { user: "u" } },
      session: { tokenBytes: 32, refreshToken: undefined },
      peers: ["http://user:pw@a:1/", "http://b:2/"],
    };
    expect(redactConfig(config)).to.deep.equal({
      log: { amqpUrl: "amqp://guest:[redacted]@127.0.0.1:5672" },
      postgres: { url: "postgres://app:[redacted]@db:5432/usermesh?sslmode=require&password=[redacted]" },
      redis: { url: "redis://127.0.0.1:6379" },
      mega: { password: "[redacted]", apiKey: "[redacted]", client_secret: "[redacted]", credentials: "[redacted]" },
      session: { tokenBytes: "[redacted]", refreshToken: undefined },
      peers: ["http://user:[redacted]@a:1/", "http://b:2/"],
    });
    expect(config.mega.password).to.equal("hunter2");
  });
});
