-- Moves delayed jobs whose time has come from the delay set into the stream,
-- in one step, so a job is never in both places or in neither.
-- KEYS[1] = delay set, KEYS[2] = stream; ARGV[1] = now (ms), ARGV[2] = most to move
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
    redis.call('XADD', KEYS[2], '*', 'job', job)
    redis.call('ZREM', KEYS[1], job)
end
return #due
