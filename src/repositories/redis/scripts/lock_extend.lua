-- Extends a lock's lease only while the caller still owns it.
-- KEYS[1] = lock; ARGV[1] = owner; ARGV[2] = lease ms. Returns 1 if extended.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
