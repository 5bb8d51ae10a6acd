-- Marks a session live for a while, unless it has been ended: the check and
-- the write in one step, so a refresh racing a logout cannot bring the
-- ended session back to life after the logout's tombstone.
-- KEYS[1] = session key; ARGV[1] = value (the user id); ARGV[2] = seconds;
-- ARGV[3] = the tombstone value. Returns 1 if set, 0 if the session ended.
if redis.call('GET', KEYS[1]) == ARGV[3] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
