-- A login storm: user2 logging in over and over (argon2 every time).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"user2","password":"benchmark-password"}'
