-- A user's unexpired connections: a flat list connectionId, JSON, ... oldest expiry first.
-- KEYS[1] zset connectionId -> expiry; KEYS[2] hash connectionId -> JSON.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
if #ids == 0 then return out end
local values = redis.call('HMGET', KEYS[2], unpack(ids))
for index = 1, #ids do
  if values[index] then
    out[#out + 1] = ids[index]
    out[#out + 1] = values[index]
  end
end
return out
