-- Moves dead-lettered jobs back into the stream, oldest first, in one step
-- per job list so none is lost or doubled. Entries are {"job": ..., "error": ...};
-- the job goes back with its attempts reset.
-- KEYS[1] = dead list, KEYS[2] = stream; ARGV[1] = most to move
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
    local entry = redis.call('RPOP', KEYS[1])
    if not entry then
        break
    end
    local job = cjson.decode(entry)['job']
    job['attempt'] = 0
    redis.call('XADD', KEYS[2], '*', 'job', cjson.encode(job))
    moved = moved + 1
end
return moved
