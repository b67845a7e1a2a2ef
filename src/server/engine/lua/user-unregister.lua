-- A connection closed: out of its user's registry. KEYS[1] zset connectionId -> expiry; KEYS[2] hash of details.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
-- Optional KEYS[3]: the instance's hash of held connections (user-register.lua).
if KEYS[3] then redis.call('HDEL', KEYS[3], ARGV[1]) end
return 1
