-- 95% GET / 5% PUT (a new e-mail) on random users, as an admin.
local users = tonumber(os.getenv("USERS") or "10000")
local token = "Bearer " .. os.getenv("TOKEN")
local get_headers = { ["Authorization"] = token }
local put_headers = { ["Authorization"] = token, ["Content-Type"] = "application/json" }
local counter = 0
math.randomseed(os.time())
request = function()
    local id = math.random(1, users)
    if math.random(1, 100) <= 5 then
        counter = counter + 1
        local body = '{"email":"user' .. id .. '-' .. counter .. '-' .. math.random(1, 1000000000) .. '@example.com"}'
        return wrk.format("PUT", "/api/v1/users/" .. id, put_headers, body)
    end
    return wrk.format("GET", "/api/v1/users/" .. id, get_headers)
end
