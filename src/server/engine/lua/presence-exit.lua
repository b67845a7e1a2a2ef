-- A connection leaves a presence channel. KEYS as presence-enter.lua minus info: KEYS[1] entries, KEYS[2] counts,
-- KEYS[3] leaving. ARGV[1] member; ARGV[2] userId; ARGV[3] leave delay ms.
-- Returns the leave's due time (ms) when this was the user's last connection and the due index must be told
-- (ZADD LT), else 0. The index holds the channel at or before its earliest pending time (every enter, refresh,
-- exit and sweep writes it so), so a leave due no earlier than another pending leave or entry expiry of the
-- channel needs no write: a burst of leaves costs one index write, not one each (docs/redis.md "Presence").
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
local due = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], due, ARGV[2])
local leaving = redis.call('ZRANGE', KEYS[3], 0, 1, 'WITHSCORES')
for index = 1, #leaving, 2 do
  if leaving[index] ~= ARGV[2] and tonumber(leaving[index + 1]) <= due then return 0 end
end
local entry = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if entry[2] and tonumber(entry[2]) <= due then return 0 end
return due
