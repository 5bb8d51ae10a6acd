-- GET every user once, in order (warms the cache); then keeps cycling.
local users = tonumber(os.getenv("USERS") or "10000")
local headers = { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") }
local next_id = 0
request = function()
    next_id = next_id % users + 1
    return wrk.format("GET", "/api/v1/users/" .. next_id, headers)
end
