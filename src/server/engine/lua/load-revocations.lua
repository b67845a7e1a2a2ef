-- Every ban still in force (see store-revocation.lua), as a flat list of
-- member, milliseconds left: the time left is measured here, on the clock that
-- stored the ban, so an instance with a skewed clock still gets the right length.
-- KEYS[1] the set.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf', 'WITHSCORES')
local result = {}
for i = 1, #entries, 2 do
  result[#result + 1] = entries[i]
  result[#result + 1] = tonumber(entries[i + 1]) - now
end
return result
