-- Appends a client's `send` to the inbound stream once per (session, id) (SPEC §5).
-- KEYS[1] inbound stream; KEYS[2] dedupe key (same hash slot as KEYS[1])
-- ARGV[1] dedupe TTL seconds; ARGV[2] approximate stream cap; ARGV[3..] field/value pairs
-- Returns the new entry id, or false when this (session, id) was already appended.
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return false end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
