-- A ticket stored and its user's hit counted in one round trip (issue 14): SET as
-- storeTicket, then exactly count-hit.lua. Only where both keys share a node: a
-- standalone or Sentinel Redis (a Cluster runs the two commands apart).
-- KEYS[1] ticket, KEYS[2] counter; ARGV[1] record, ARGV[2] storage TTL s, ARGV[3] window ms.
-- Returns { hits in this window, ms left in it }.
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local hits = redis.call('INCR', KEYS[2])
if hits == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return { hits, tonumber(ARGV[3]) }
end
local left = redis.call('PTTL', KEYS[2])
if left < 0 then
  -- A counter without expiry would refuse forever: start its window now.
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  left = tonumber(ARGV[3])
end
return { hits, left }
