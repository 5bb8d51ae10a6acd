-- GET /api/v1/users/{random id in 1..USERS} with the bearer token.
local users = tonumber(os.getenv("USERS") or "10000")
local headers = { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") }
math.randomseed(os.time())
request = function()
    return wrk.format("GET", "/api/v1/users/" .. math.random(1, users), headers)
end
