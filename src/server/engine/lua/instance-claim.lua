-- Claims at most ARGV[1] instances whose heartbeat lapsed (a crash): removed here, so each is returned
-- to exactly one caller cluster-wide, which then writes their connections' disconnect events.
-- KEYS[1] zset instanceId -> heartbeat expiry (ms, Redis clock); ARGV[2] the caller's own id (never claimed:
-- it is alive, only late with its heartbeat).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]) + 1)) do
  if id ~= ARGV[2] and #claimed < tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], id)
    claimed[#claimed + 1] = id
  end
end
return claimed
