-- A channel's position and the retained messages after `since` (SPEC §5 resume).
-- KEYS[1] meta hash {epoch, seq}; KEYS[2] history stream
-- ARGV[1] epoch to use if the channel has none; ARGV[2] history TTL seconds; ARGV[3] since epoch ('' for none);
-- ARGV[4] since seq; ARGV[5] (optional) at most this many messages, 0 or absent for all;
-- ARGV[6] (optional) '1': without since, the latest ARGV[5] messages rather than none (GET /v1/history)
-- Returns {epoch, seq, recovered (1/0), entries}; recovered 0 when `since` is from another epoch, older than the
-- retained history or ahead of its head. That rule is historyHolds in src/server/channels/recovery.ts (the memory
-- engine calls it); it is repeated here because Redis must decide next to the data: keep the two in step.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local limit = tonumber(ARGV[5] or '0') or 0
if ARGV[3] == '' then
  if ARGV[6] ~= '1' or limit < 1 then return {epoch, seq, 1, {}} end
  local latest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  local ordered = {}
  for i = #latest, 1, -1 do ordered[#ordered + 1] = latest[i] end
  return {epoch, seq, 1, ordered}
end
if ARGV[3] ~= epoch then return {epoch, seq, 0, {}} end
local since = tonumber(ARGV[4])
if since == seq then return {epoch, seq, 1, {}} end
-- Ahead of the head: not an offset of this history (SPEC §5), so the client restarts from the head
-- rather than skip the next message as already seen.
if since > seq then return {epoch, seq, 0, {}} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local firstSeq = seq + 1
if first[1] then firstSeq = tonumber(string.match(first[1][1], '^(%d+)')) end
if since + 1 < firstSeq then return {epoch, seq, 0, {}} end
if limit > 0 then return {epoch, seq, 1, redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+', 'COUNT', limit)} end
return {epoch, seq, 1, redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+')}
