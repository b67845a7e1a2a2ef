-- Sweeps a presence channel (any instance may; the script decides each leave once). KEYS as presence-enter.lua.
-- ARGV[1] at most this many entries / leaves per call; ARGV[2] live channel; ARGV[3] '1' SPUBLISH; ARGV[4] the
-- channel's name (JSON text, for the leave frames).
-- Entries past their expiry (their instance stopped refreshing: a crash) are removed; a user left without any
-- connection has waited its TTL already and leaves now. Users leaving past their due time with no connection
-- get the leave frame. Returns {left userIds, expired members, next due ms or 0 when nothing is pending}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[1], member)
  local user = string.sub(member, string.find(member, ':', 1, true) + 1)
  if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('ZADD', KEYS[4], 'LT', now, user)
  end
end
local left = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[4], user)
  if redis.call('HEXISTS', KEYS[2], user) == 0 then
    redis.call('HDEL', KEYS[3], user)
    left[#left + 1] = user
    redis.call(ARGV[3] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[2],
      '!{"type":"leave","channel":' .. ARGV[4] .. ',"userId":' .. cjson.encode(user) .. '}')
  end
end
local next = 0
local entry = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if entry[2] then next = tonumber(entry[2]) end
local leaving = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if leaving[2] and (next == 0 or tonumber(leaving[2]) < next) then next = tonumber(leaving[2]) end
return {left, expired, tostring(next)}
