-- A connection enters a presence channel (SPEC §11). All keys carry the channel's hash tag {ch:<channel>}.
-- KEYS[1] zset "<connectionId>:<userId>" -> expiry ms; KEYS[2] hash userId -> connection count;
-- KEYS[3] hash userId -> info JSON; KEYS[4] zset userId -> leave due ms (users whose last connection left)
-- ARGV[1] member; ARGV[2] userId; ARGV[3] TTL ms; ARGV[4] info JSON or ''; ARGV[5] the join frame;
-- ARGV[6] live pub/sub channel; ARGV[7] '1' SPUBLISH (Cluster) else PUBLISH; ARGV[8] key lifetime ms.
-- Returns {1 when this is the user's join (the frame was published), the entry's expiry}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[3])
local joined = 0
if redis.call('ZADD', KEYS[1], expiry, ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], ARGV[4]) else redis.call('HDEL', KEYS[3], ARGV[2]) end
    -- Back within the leave delay: the stay goes on, no join (and no leave).
    if redis.call('ZREM', KEYS[4], ARGV[2]) == 0 then
      joined = 1
      redis.call(ARGV[7] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[6], '!' .. ARGV[5])
    end
  end
end
for index = 1, 4 do redis.call('PEXPIRE', KEYS[index], ARGV[8]) end
return {joined, expiry}
