-- Adds a connection to its user's registry unless the user has ARGV[2] unexpired ones (SPEC §11), atomically.
-- KEYS[1] zset connectionId -> expiry (ms, Redis clock); KEYS[2] hash connectionId -> JSON {sessionId, connectedAt, instanceId}
-- ARGV[1] connectionId; ARGV[2] limit; ARGV[3] TTL ms; ARGV[4] the JSON. Returns 1 added, 0 refused.
-- Optional KEYS[3] (not on a Cluster, where it is on another slot): the instance's own hash of the
-- connections it holds, which gets ARGV[5] ({userId, sessionId}) in the same call.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(expired))
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
if KEYS[3] then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[3]))
return 1
