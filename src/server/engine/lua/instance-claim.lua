-- Claims at most ARGV[1] instances whose heartbeat lapsed (a crash): removed here, so each is returned
-- to exactly one caller cluster-wide, which then writes their connections' disconnect events.
-- KEYS[1] zset instanceId -> heartbeat expiry (ms, Redis clock).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(lapsed) do redis.call('ZREM', KEYS[1], id) end
return lapsed
