-- Stores a ban (SPEC §3 POST /v1/disconnect with revokeSeconds) in one sorted set:
-- member "<kind>:<id>", score the end of the ban in milliseconds on this server's
-- clock, so every instance measures the ban against the same clock.
-- KEYS[1] the set; ARGV[1] the member; ARGV[2] the ban's length in seconds.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ends = now + tonumber(ARGV[2]) * 1000

-- Bans only get longer: a shorter one never cuts a ban already in force.
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) < ends then
  redis.call('ZADD', KEYS[1], string.format('%.0f', ends), ARGV[1])
end

-- Ended bans are dropped on every write, and the set expires with its last ban.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
