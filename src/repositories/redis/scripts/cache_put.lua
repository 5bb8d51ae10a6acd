-- Writes a cache entry unless the key already holds a newer one, in one step
-- so no reader can slip between the comparison and the write.
-- Entries are "<version>:<digest>:<body>" (see CachedEntry in cache.rs: for
-- a user, the body holds both views, the digest both ETags); "<version>:"
-- alone is a tombstone left by an invalidation. A reader that loaded an old row before an update committed
-- carries a lower version than the tombstone and so cannot write it back.
-- KEYS[1] = key; ARGV[1] = version; ARGV[2] = entry; ARGV[3] = TTL in ms
local current = redis.call('GET', KEYS[1])
if current then
    local separator = string.find(current, ':', 1, true)
    local stored = separator and tonumber(string.sub(current, 1, separator - 1))
    if stored and stored > tonumber(ARGV[1]) then
        return 0
    end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
