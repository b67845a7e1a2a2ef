-- Appends a message to a channel's history and publishes it live, atomically (SPEC §5).
-- KEYS[1] meta hash {epoch, seq}; KEYS[2] history stream; KEYS[3] idempotency key (unused when ARGV[6] is '0')
-- ARGV[1] data (JSON text); ARGV[2] history size; ARGV[3] history TTL seconds; ARGV[4] epoch to use if the
-- channel has none; ARGV[5] pub/sub channel; ARGV[6] idempotency TTL seconds, '0' for none; ARGV[7] '1' to
-- publish with SPUBLISH (Cluster: sharded pub/sub; ARGV[5] carries the keys' hash tag, so it maps to this
-- script's slot, as Redis requires of a shard channel used in a script), '0' for PUBLISH; ARGV[8] the publishing
-- user as JSON text ('' for a backend publish, SPEC §9 `from`): stored as the entry's field `f`, and put in the
-- live payload's first line after the offset (`<offset> <from JSON>\n<data>`; without it `<offset>\n<data>`)
if ARGV[6] ~= '0' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {prior, 1} end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if ARGV[8] == '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'd', ARGV[1])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'd', ARGV[1], 'f', ARGV[8])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local offset = epoch .. ':' .. seq
local header = offset
if ARGV[8] ~= '' then header = offset .. ' ' .. ARGV[8] end
redis.call(ARGV[7] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[5], header .. '\n' .. ARGV[1])
if ARGV[6] ~= '0' then redis.call('SET', KEYS[3], offset, 'EX', ARGV[6]) end
return {offset, 0}
