// The yardstick the deploy checks use: the USERMESH_* names read off each process's zod schema.
import { expect } from "chai";
import { meshProcess, processConfig, unknownEnvNames } from "./mesh-config.js";

describe("deploy checks: config keys read off the schemas", () => {
  it("finds the variables the README documents, nested ones included", async () => {
    const session = await processConfig(meshProcess("session"));
    const user = await processConfig(meshProcess("user"));
    const photo = await processConfig(meshProcess("photo"));
    const gateway = await processConfig(meshProcess("gateway"));

    expect(session.envKeys.get("USERMESH_GRPC__PORT")).to.equal("grpc.port");
    expect(session.envKeys.get("USERMESH_SESSION__TTL_SECONDS")).to.equal("session.ttlSeconds");
    expect(session.envKeys.get("USERMESH_LOG__AMQP_URL")).to.equal("log.amqpUrl");
    expect(user.envKeys.get("USERMESH_HASHING__BCRYPT_COST")).to.equal("hashing.bcryptCost");
    expect(photo.envKeys.get("USERMESH_STORAGE__LOCAL__DIR")).to.equal("storage.local.dir");
    expect(gateway.envKeys.get("USERMESH_RATE_LIMIT__AUTH_PER_IP__POINTS")).to.equal("rateLimit.authPerIp.points");
  });

  it("reports a variable no key reads, and a key of another process", async () => {
    const session = await processConfig(meshProcess("session"));

    expect(unknownEnvNames(session, ["USERMESH_REDIS__URL", "USERMESH_REDIS_URL", "USERMESH_POSTGRES__URL", "PATH"])).to.deep.equal([
      "USERMESH_REDIS_URL",
      "USERMESH_POSTGRES__URL",
    ]);
  });
});
