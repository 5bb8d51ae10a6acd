-- GCRA rate limit for every key in KEYS at once, atomically: each key allows
-- ARGV[2] requests per ARGV[1] milliseconds, as a burst or spread out. The
-- ARGV[3] requests (default 1) pass only if every key allows all of them,
-- and then count against every key. Redis's clock is used, so all instances
-- agree on the time.
-- Each key holds its "theoretical arrival time" and expires when that time
-- has passed, when it would be equivalent to no key at all.
-- Returns {allowed (0/1), remaining, retry_after_ms, reset_ms} for the key
-- with the least room.
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3] or '1')
local interval = period / limit
local tolerance = interval * (limit - 1)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local arrivals = {}
local retry_after = 0
for i, key in ipairs(KEYS) do
    local tat = tonumber(redis.call('GET', key)) or now
    if tat < now then
        tat = now
    end
    arrivals[i] = tat
    local wait = tat + (cost - 1) * interval - tolerance - now
    if wait > retry_after then
        retry_after = wait
    end
end

if retry_after > 0 then
    local reset = 0
    for _, tat in ipairs(arrivals) do
        reset = math.max(reset, tat - now)
    end
    return {0, 0, math.ceil(retry_after), math.ceil(reset)}
end

local remaining = limit
local reset = 0
for i, key in ipairs(KEYS) do
    local tat = arrivals[i] + cost * interval
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.max(1, math.ceil(tat - now)))
    remaining = math.min(remaining, math.floor((now + tolerance - tat) / interval) + 1)
    reset = math.max(reset, tat - now)
end
return {1, remaining, 0, math.ceil(reset)}
