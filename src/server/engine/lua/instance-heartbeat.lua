-- An instance is alive for ARGV[2] ms more (SPEC §12 crash disconnects; docs/redis.md "Presence").
-- KEYS[1] zset instanceId -> heartbeat expiry (ms, Redis clock); ARGV[1] instanceId.
-- Returns 1 when the instance was not there (its first heartbeat, or it was claimed as lost meanwhile), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
