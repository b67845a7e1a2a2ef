-- Pushes the expiry of a user's live connections (this instance's) ARGV[1] ms ahead; never adds one.
-- KEYS[1] zset connectionId -> expiry; KEYS[2] hash connectionId -> JSON; ARGV[2..] connectionIds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for index = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[index]) end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[1]))
return 1
