-- A presence channel's users (at most ARGV[1], with counts and info) and its totals: O(users listed).
-- KEYS[1] entries zset; KEYS[2] counts hash; KEYS[3] info hash. Returns {totalUsers, totalConnections,
-- flat userId, count, info-or-'' ...}. Entries of a crashed instance count until swept (at their expiry).
local limit = tonumber(ARGV[1])
local totalUsers = redis.call('HLEN', KEYS[2])
local totalConnections = redis.call('ZCARD', KEYS[1])
local out = {totalUsers, totalConnections}
local flat
if totalUsers <= limit then
  flat = redis.call('HGETALL', KEYS[2])
else
  flat = {}
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', limit)
    cursor = page[1]
    for _, value in ipairs(page[2]) do
      if #flat < 2 * limit then flat[#flat + 1] = value end
    end
  until cursor == '0' or #flat >= 2 * limit
end
for index = 1, #flat, 2 do
  local info = redis.call('HGET', KEYS[3], flat[index])
  out[#out + 1] = flat[index]
  out[#out + 1] = tonumber(flat[index + 1])
  out[#out + 1] = info or ''
end
return out
