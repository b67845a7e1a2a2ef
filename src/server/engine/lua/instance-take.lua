-- The connections a claimed (crashed) instance still held, taken once: a flat list connectionId, JSON, ...
-- KEYS[1] hash connectionId -> JSON {userId, sessionId}.
local flat = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return flat
