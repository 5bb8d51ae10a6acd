-- Takes a lock if it is free and, in the same step, hands out a fencing
-- token larger than every earlier one for this lock. The token is Redis's
-- clock in microseconds (or the last token + 1), so it keeps growing even if
-- Redis loses the counter. The SQL write checks it, which stops a holder
-- that was paused past its lease from overwriting newer data.
-- The last token expires ARGV[3] ms after its last use, so it does not
-- outlive its user forever; a token handed out after it expired is the clock
-- again, still larger than every earlier one unless Redis's clock went back
-- by more than that (and then the SQL check refuses the write: a 409, never
-- lost data).
-- KEYS[1] = lock, KEYS[2] = last token;
-- ARGV[1] = owner, ARGV[2] = lease ms, ARGV[3] = last token's lifetime ms
-- Returns the token, or minus the milliseconds the lock is still held.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local time = redis.call('TIME')
    local candidate = tonumber(time[1]) * 1000000 + tonumber(time[2])
    local last = tonumber(redis.call('GET', KEYS[2]) or '0')
    local fence = math.max(candidate, last + 1)
    redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[3])
    return fence
end
local held_for = redis.call('PTTL', KEYS[1])
if held_for < 1 then
    held_for = 1
end
return -held_for
