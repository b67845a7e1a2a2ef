-- Keeps one instance's entries of a channel alive. KEYS as presence-enter.lua.
-- ARGV[1] TTL ms; ARGV[2] key lifetime ms; ARGV[3] live channel; ARGV[4] '1' SPUBLISH; then triples
-- member, userId, join frame. An entry that expired meanwhile (a stalled instance) is entered again,
-- with a join if its user had left. Returns the new expiry.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
for index = 5, #ARGV, 3 do
  local member, user = ARGV[index], ARGV[index + 1]
  if redis.call('ZADD', KEYS[1], expiry, member) == 1 then
    if redis.call('HINCRBY', KEYS[2], user, 1) == 1 and redis.call('ZREM', KEYS[4], user) == 0 then
      redis.call(ARGV[4] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[3], '!' .. ARGV[index + 2])
    end
  end
end
for index = 1, 4 do redis.call('PEXPIRE', KEYS[index], ARGV[2]) end
return expiry
