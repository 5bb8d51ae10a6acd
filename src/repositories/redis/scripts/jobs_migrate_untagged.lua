-- Moves the job queue of a release before hash tags (keys without a tag)
-- to the tagged keys, in one step, so no job is lost or doubled: entries of
-- the old stream (waiting or in flight: in flight ones are handed out again,
-- and their done markers stop a second send) go to the new stream in order,
-- the retry set and the dead list keep their jobs, scores and order, the
-- totals are added. Only ever run on a single Redis (no release before the
-- tags ran on a cluster), where one script may touch any keys.
-- KEYS[1..4] = old stream, delayed, dead, counters;
-- KEYS[5..8] = new stream, delayed, dead, counters.
-- Returns the number of jobs moved, or -1 when there was no old queue.
if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) == 0 then
    return -1
end
local moved = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    redis.call('XADD', KEYS[5], '*', unpack(entry[2]))
    moved = moved + 1
end
local delayed = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #delayed, 2 do
    redis.call('ZADD', KEYS[6], delayed[i + 1], delayed[i])
    moved = moved + 1
end
for _, entry in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    redis.call('RPUSH', KEYS[7], entry)
    moved = moved + 1
end
local counters = redis.call('HGETALL', KEYS[4])
for i = 1, #counters, 2 do
    redis.call('HINCRBY', KEYS[8], counters[i], counters[i + 1])
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return moved
