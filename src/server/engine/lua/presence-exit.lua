-- A connection leaves a presence channel. KEYS as presence-enter.lua minus info: KEYS[1] entries, KEYS[2] counts,
-- KEYS[3] leaving. ARGV[1] member; ARGV[2] userId; ARGV[3] leave delay ms.
-- Returns the leave's due time (ms) when this was the user's last connection, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
local due = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], due, ARGV[2])
return due
