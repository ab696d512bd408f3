// SessionStore on Redis: one hash per session keyed by its token hash, expiring with the session, and a
// per-user index kept bounded. Every multi-key change is one Lua script, so nothing is half-written.
import { ReplyError, type Redis } from "ioredis";
import { ConnectError, internal, unavailable } from "../../internal/errors/errors.js";
import type { SessionRecord, SessionStore } from "./sessions.js";

export interface RedisSessionStoreOptions {
  /** Prepended to every key, e.g. "usermesh:" (tests use a unique one per run). */
  readonly keyPrefix: string;
}

/*
 * Key layout (P = keyPrefix):
 *   P session:<sha256(token) hex>   hash {sid, uid, created, seen, expires, ip, ua}; PEXPIREAT expires
 *   P user:<userId>:sessions        sorted set, member sessionId, score its expiry (ms)
 *   P user:<userId>:tokens          hash sessionId -> token hash, same members as the sorted set
 * Both index keys expire with the user's latest session. Every write first prunes members whose expiry
 * has passed by the Redis clock (the clock that expires the session keys), and an insert then evicts
 * down to maxPerUser, so the index never holds more than maxPerUser members.
 *
 * The scripts derive some keys from stored values, so this layout needs a single Redis (or one
 * primary), not Redis Cluster.
 */

// Mirrors the key functions in createRedisSessionStore; scripts receive P (or P..'session:') in ARGV.
const luaLibrary = `
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function user_keys(prefix, uid)
  return prefix .. 'user:' .. uid .. ':sessions', prefix .. 'user:' .. uid .. ':tokens'
end
local function remove_members(zkey, hkey, ids)
  for i = 1, #ids, 500 do
    local last = math.min(i + 499, #ids)
    redis.call('ZREM', zkey, unpack(ids, i, last))
    redis.call('HDEL', hkey, unpack(ids, i, last))
  end
end
-- Ends the listed sessions of one user; returns how many session keys still existed.
local function end_sessions(zkey, hkey, ids, session_prefix)
  local ended = 0
  for _, id in ipairs(ids) do
    local token_hash = redis.call('HGET', hkey, id)
    if token_hash then ended = ended + redis.call('DEL', session_prefix .. token_hash) end
  end
  remove_members(zkey, hkey, ids)
  return ended
end
local function prune(zkey, hkey, session_prefix)
  local gone = redis.call('ZRANGEBYSCORE', zkey, '-inf', string.format('%d', server_now()))
  end_sessions(zkey, hkey, gone, session_prefix)
end
-- The index lives exactly as long as the user's latest session.
local function settle(zkey, hkey)
  local last = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('DEL', zkey, hkey)
  else
    redis.call('PEXPIREAT', zkey, last[2])
    redis.call('PEXPIREAT', hkey, last[2])
  end
end
`;

// KEYS: session, user sessions, user tokens.
// ARGV: sid, uid, created, seen, expires, ip, ua, token hash, max per user, session key prefix.
const insertScript = `${luaLibrary}
prune(KEYS[2], KEYS[3], ARGV[10])
redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'uid', ARGV[2], 'created', ARGV[3], 'seen', ARGV[4],
  'expires', ARGV[5], 'ip', ARGV[6], 'ua', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[8])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[9])
local evicted = 0
if excess > 0 then
  -- Nearest expiry first; the new session may tie on score, so it is skipped explicitly.
  local victims = {}
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess)) do
    if id ~= ARGV[1] and #victims < excess then victims[#victims + 1] = id end
  end
  evicted = end_sessions(KEYS[2], KEYS[3], victims, ARGV[10])
end
settle(KEYS[2], KEYS[3])
return evicted
`;

// KEYS: session. ARGV: seen, requested expiry, key prefix. Returns the resulting expiry, or nil.
const touchScript = `${luaLibrary}
local f = redis.call('HMGET', KEYS[1], 'uid', 'sid', 'expires')
if not f[1] then return false end
local zkey, hkey = user_keys(ARGV[3], f[1])
prune(zkey, hkey, ARGV[3] .. 'session:')
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local expires = f[3]
if tonumber(ARGV[2]) > tonumber(expires) then expires = ARGV[2] end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'expires', expires)
redis.call('PEXPIREAT', KEYS[1], expires)
redis.call('ZADD', zkey, 'XX', expires, f[2])
settle(zkey, hkey)
return expires
`;

// KEYS: session. ARGV: key prefix. Returns 1 when the session existed.
const deleteByTokenScript = `${luaLibrary}
local f = redis.call('HMGET', KEYS[1], 'uid', 'sid')
if not f[1] then return 0 end
redis.call('DEL', KEYS[1])
local zkey, hkey = user_keys(ARGV[1], f[1])
remove_members(zkey, hkey, { f[2] })
prune(zkey, hkey, ARGV[1] .. 'session:')
settle(zkey, hkey)
return 1
`;

// KEYS: user sessions, user tokens. ARGV: session id, session key prefix. Returns 1 when it was live.
const deleteByIdScript = `${luaLibrary}
prune(KEYS[1], KEYS[2], ARGV[2])
local ended = end_sessions(KEYS[1], KEYS[2], { ARGV[1] }, ARGV[2])
settle(KEYS[1], KEYS[2])
return ended
`;

// KEYS: user sessions, user tokens. ARGV: session id to keep ('' for none), session key prefix.
const deleteByUserScript = `${luaLibrary}
prune(KEYS[1], KEYS[2], ARGV[2])
local ids = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[1] then ids[#ids + 1] = id end
end
local ended = end_sessions(KEYS[1], KEYS[2], ids, ARGV[2])
settle(KEYS[1], KEYS[2])
return ended
`;

// KEYS: user sessions, user tokens. ARGV: session key prefix. Returns each live session's HGETALL.
const listScript = `${luaLibrary}
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%d', server_now()), '+inf')) do
  local token_hash = redis.call('HGET', KEYS[2], id)
  if token_hash then
    local fields = redis.call('HGETALL', ARGV[1] .. token_hash)
    if #fields > 0 then out[#out + 1] = fields end
  end
end
return out
`;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/**
 * A SessionStore on Redis (see the key layout above). The client must not set ioredis' own keyPrefix
 * option: the scripts build some keys themselves and would miss it. Every method throws UNAVAILABLE when
 * Redis cannot be reached or is not ready (loading, read-only replica, out of memory) and INTERNAL for
 * any other error reply.
 */
export function createRedisSessionStore(redis: Redis, options: RedisSessionStoreOptions): SessionStore {
  if (redis.options.keyPrefix) {
    throw new Error("createRedisSessionStore needs a Redis client without keyPrefix; pass options.keyPrefix");
  }
  const prefix = options.keyPrefix;
  const sessionPrefix = `${prefix}session:`;
  const sessionKey = (tokenHash: string) => `${sessionPrefix}${tokenHash}`;
  const userSessionsKey = (userId: string) => `${prefix}user:${userId}:sessions`;
  const userTokensKey = (userId: string) => `${prefix}user:${userId}:tokens`;

  const insert = defineScript(redis, "usermeshSessionInsert", 3, insertScript);
  const touch = defineScript(redis, "usermeshSessionTouch", 1, touchScript);
  const deleteByToken = defineScript(redis, "usermeshSessionDeleteByToken", 1, deleteByTokenScript);
  const deleteById = defineScript(redis, "usermeshSessionDeleteById", 2, deleteByIdScript);
  const deleteByUser = defineScript(redis, "usermeshSessionDeleteByUser", 2, deleteByUserScript);
  const list = defineScript(redis, "usermeshSessionList", 2, listScript);

  return {
    async insert(tokenHash, s, limits) {
      await send(() =>
        insert(
          sessionKey(tokenHash),
          userSessionsKey(s.userId),
          userTokensKey(s.userId),
          s.sessionId,
          s.userId,
          s.createdAtMs,
          s.lastSeenAtMs,
          s.expiresAtMs,
          s.ip,
          s.userAgent,
          tokenHash,
          limits.maxPerUser,
          sessionPrefix,
        ),
      );
    },

    async findByTokenHash(tokenHash) {
      const fields = await send(() => redis.hgetall(sessionKey(tokenHash)));
      return toRecord(fields);
    },

    async touch(tokenHash, update) {
      const expires = await send(() =>
        touch(sessionKey(tokenHash), update.lastSeenAtMs, update.expiresAtMs, prefix),
      );
      return expires === null ? undefined : Number(expires);
    },

    async deleteByTokenHash(tokenHash) {
      return (await send(() => deleteByToken(sessionKey(tokenHash), prefix))) === 1;
    },

    async deleteById(userId, sessionId) {
      const ended = await send(() =>
        deleteById(userSessionsKey(userId), userTokensKey(userId), sessionId, sessionPrefix),
      );
      return ended === 1;
    },

    async listByUser(userId) {
      const replies = await send(() => list(userSessionsKey(userId), userTokensKey(userId), sessionPrefix));
      return (replies as string[][]).flatMap((flat) => toRecord(pairsOf(flat)) ?? []);
    },

    async deleteByUser(userId, { exceptSessionId }) {
      const ended = await send(() =>
        deleteByUser(userSessionsKey(userId), userTokensKey(userId), exceptSessionId ?? "", sessionPrefix),
      );
      return Number(ended);
    },
  };
}

// Errors Redis answers while it cannot serve for now: the call may succeed on retry.
const notReadyReplies: ReadonlySet<string> = new Set([
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "READONLY",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "NOREPLICAS",
  "OOM",
]);
const ReplyErrorClass = ReplyError as abstract new (message: string) => Error;

/**
 * The one place Redis failures become the mesh's errors. A reply error carries Redis' error code as its
 * first word ("LOADING ..."): not-ready codes are UNAVAILABLE, the rest (a bad command or script) INTERNAL.
 * Every other rejection from the client (closed connection, retries exhausted, command timeout, socket
 * errors) means Redis is unreachable: UNAVAILABLE. The cause stays on the error for the log.
 */
export function redisStoreError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof ReplyErrorClass) {
    const replyCode = error.message.split(" ", 1)[0];
    return notReadyReplies.has(replyCode) ? unavailable("session store unavailable", error) : internal(error);
  }
  return unavailable("session store unavailable", error);
}

async function send<T>(command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (error) {
    throw redisStoreError(error);
  }
}

function defineScript(redis: Redis, name: string, numberOfKeys: number, lua: string): ScriptCall {
  redis.defineCommand(name, { numberOfKeys, lua });
  // defineCommand adds the method at run time (EVALSHA, falling back to EVAL); ioredis cannot type it.
  const command = (redis as unknown as Record<string, ScriptCall>)[name];
  if (!command) throw new Error(`ioredis did not define ${name}`);
  return (...args) => command.apply(redis, args);
}

function pairsOf(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
}

function toRecord(fields: Record<string, string>): SessionRecord | undefined {
  const { sid, uid, created, seen, expires, ip, ua } = fields;
  if (!sid || !uid || !created || !expires) return undefined;
  return {
    sessionId: sid,
    userId: uid,
    createdAtMs: Number(created),
    lastSeenAtMs: Number(seen ?? created),
    expiresAtMs: Number(expires),
    ip: ip ?? "",
    userAgent: ua ?? "",
  };
}
