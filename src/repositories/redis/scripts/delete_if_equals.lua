-- Deletes a key only while it still holds the expected value, in one step:
-- a lock or lease is released only by its owner (never the next holder's,
-- as GET-then-DEL would).
-- KEYS[1] = key; ARGV[1] = expected value. Returns 1 if deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
