// Starts a real session process and a real user process wired to it, isolated by a fresh database
// name, Redis key prefix and exchange, for black-box tests of the user service.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { dropTestDatabase, testDatabaseUrl, uniqueDatabaseName } from "./pg.js";
import { startServiceProcess, type ServiceProcess } from "./service-process.js";

export interface UserMesh {
  readonly session: ServiceProcess;
  readonly user: ServiceProcess;
  readonly databaseName: string;
  readonly keyPrefix: string;
  readonly exchange: string;
  /** Stops both processes (SIGTERM), drops the database and the Redis keys; resolves with their exit codes. */
  stop(): Promise<(number | string)[]>;
}

export async function startUserMesh(userEnv: Record<string, string> = {}): Promise<UserMesh> {
  const keyPrefix = `test:user-mesh:${randomUUID()}:`;
  const exchange = `test.user.${randomUUID()}`;
  const databaseName = uniqueDatabaseName("user_mesh");
  const common = { USERMESH_REDIS__KEY_PREFIX: keyPrefix, USERMESH_LOG__TO_BROKER: "false" };
  const session = await startServiceProcess("services/session/main.ts", common);
  let user: ServiceProcess;
  try {
    user = await startServiceProcess("services/user/main.ts", {
      ...common,
      USERMESH_POSTGRES__URL: testDatabaseUrl(databaseName),
      USERMESH_SESSION__ADDRESS: `127.0.0.1:${session.grpcPort}`,
      USERMESH_EVENTS__EXCHANGE: exchange,
      USERMESH_HASHING__BCRYPT_COST: "4",
      ...userEnv,
    });
  } catch (error) {
    await session.stop();
    throw error;
  }
  return {
    session,
    user,
    databaseName,
    keyPrefix,
    exchange,
    async stop() {
      const codes = [await user.stop(), await session.stop()];
      await dropTestDatabase(databaseName);
      const redis = new Redis("redis://127.0.0.1:6379");
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      return codes;
    },
  };
}
