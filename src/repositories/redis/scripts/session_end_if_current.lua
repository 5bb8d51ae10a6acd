-- Ends a session only if it is still the one this token belongs to, so a
-- logout with an old token can never end a newer login's session.
-- KEYS[1] = session key; ARGV[1] = the token's jti
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
