-- POST /api/cars: each request creates one car (durable: 201 means committed).
local brands = {"Ford", "Opel", "Fiat", "Tesla", "Volvo"}
local n = 0
-- Creating needs a user: bench/run.sh logs one in and passes its token.
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("LIVEBASE_BENCH_TOKEN")}
request = function()
  n = n + 1
  local body = string.format('{"brand": "%s", "model": %d, "color": "Blue"}', brands[n % 5 + 1], 1990 + n % 30)
  return wrk.format("POST", "/api/cars", headers, body)
end
