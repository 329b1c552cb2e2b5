// The Lua scripts of the Redis backend (redis-backend.ts). Every multi-step write is one script on
// one key, so it runs whole (no other command between its steps) and, in a Cluster, on the one
// node that owns the key's slot. RedisBackend defines each as a command on its connections, and
// sends it as EVAL in the pipeline of a write that must WAIT for a replica (redis-write.ts).
import { END_FIELD } from './backend.ts';

// Redis's clock in ms (TIME is allowed before writes since Redis 5's effect replication, the only
// mode from 7): the one clock every process's writes to a key agree on (backend.ts END_FIELD).
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
// KEYS[1] = hash; ARGV[1] = ttl ms; ARGV[2] = lifetime ms or ''; ARGV[3..] = field, value, ...
const CREATE = `redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] ~= '' then
  ${NOW_MS}
  redis.call('HSET', KEYS[1], '${END_FIELD}', now + tonumber(ARGV[2]))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;
// KEYS[1] = hash; ARGV[1] = field to increment or ''; ARGV[2] = channel or ''; ARGV[3] = message;
// ARGV[4..] = field, value, ... Never creates the hash: a refresh racing a logout must not
// resurrect the session. The message is published in the same step (KvBackend.hashTake).
// A key holding another type (not ours: see NOT_A_HASH) is no session either. The increment comes
// first: a script is not rolled back, and one whose HINCRBY fails (a field that is not a number)
// must not have written and announced the rest.
const UPDATE = `if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return false end
local n = 0
if ARGV[1] ~= '' then n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n`;
// KEYS[1] = hash; ARGV = field, value, ttl ms. Only moves forward; never creates; never past END_FIELD.
const TOUCH = `if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if cur == nil or cur < tonumber(ARGV[2]) then
  local ttl = tonumber(ARGV[3])
  local e = tonumber(redis.call('HGET', KEYS[1], '${END_FIELD}'))
  if e ~= nil then
    ${NOW_MS}
    if e - now < ttl then ttl = e - now end
    if ttl <= 0 then
      redis.call('DEL', KEYS[1])
      return 0
    end
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1`;
// KEYS[1] = hash; ARGV[1] = channel or ''; ARGV[2] = message; ARGV[3..] = fields to return.
// Read-and-delete in one step, and the message published in it, whether the hash existed or not.
// A value of another type under the key is deleted too (NOT_A_HASH), and reads as no hash.
const TAKE = `local hash = redis.call('TYPE', KEYS[1]).ok == 'hash'
local v = hash and redis.call('HMGET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
if not hash then return false end
return v`;
// KEYS[1] = set; ARGV = member, ttl ms. TTL only grows (it must outlive every member's session).
const SET_ADD = `redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SCARD', KEYS[1])`;
// KEYS[1] = lock; ARGV[1] = token. Compare-and-delete.
const DEL_IF_EQ = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// KEYS[1] = counter; ARGV[1] = ttl ms, set when INCRBY creates it (a counter never lives on);
// ARGV[2] = how much to add (a positive integer: n == by only for the counter it created).
const INCREMENT = `local by = tonumber(ARGV[2])
local n = redis.call('INCRBY', KEYS[1], by)
if n == by then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

// KEYS[1] = CLOCK_KEY, never written: it only routes the call. TIME in ms (a Lua number holds it
// exactly; the reply truncates it to an integer). No write, so a full Redis still answers it.
const TIME = `${NOW_MS}
return now`;
/**
 * Routes every TIME to one server: a plain TIME goes to any Cluster node, each with its own clock.
 * Through a key, it is always the master of that key's slot (after a failover, its replica).
 */
export const CLOCK_KEY = 'gp:clock';

export const LUA: Record<string, string> = {
  gpCreate: CREATE, gpUpdate: UPDATE, gpTouch: TOUCH, gpTake: TAKE, gpSetAdd: SET_ADD, gpDelIfEq: DEL_IF_EQ,
  gpIncrement: INCREMENT, gpTime: TIME,
};

/** A connection with each of LUA defined on it as a command (RedisBackend #scripted does so). */
export type Scripted = Record<string, (key: string, ...args: string[]) => Promise<unknown>>;
