-- One hit on a fixed-window counter (SPEC §13 per-user limits), shared by every instance.
-- KEYS[1] counter; ARGV[1] window ms. Returns { hits in this window, ms left in it }.
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return { hits, tonumber(ARGV[1]) }
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  -- A counter without expiry would refuse forever: start its window now.
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return { hits, left }
