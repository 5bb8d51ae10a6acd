-- Mixed load at a steady pace: each connection sends one request every
-- PACE_MS milliseconds; 90% GET, 8% PUT, 2% login.
local users = tonumber(os.getenv("USERS") or "1000")
local pace = tonumber(os.getenv("PACE_MS") or "10")
local token = "Bearer " .. os.getenv("TOKEN")
local get_headers = { ["Authorization"] = token }
local put_headers = { ["Authorization"] = token, ["Content-Type"] = "application/json" }
local login_headers = { ["Content-Type"] = "application/json" }
local counter = 0
math.randomseed(os.time())
delay = function()
    return pace
end
request = function()
    local id = math.random(2, users)
    local dice = math.random(1, 100)
    counter = counter + 1
    if dice <= 2 then
        return wrk.format("POST", "/api/v1/auth/login", login_headers,
            '{"username":"user' .. id .. '","password":"benchmark-password"}')
    elseif dice <= 10 then
        return wrk.format("PUT", "/api/v1/users/" .. id, put_headers,
            '{"email":"user' .. id .. '-' .. counter .. '-' .. math.random(1, 1000000000) .. '@example.com"}')
    end
    return wrk.format("GET", "/api/v1/users/" .. id, get_headers)
end
