-- POST /api/cars: each request creates one car (durable: 201 means committed).
local brands = {"Ford", "Opel", "Fiat", "Tesla", "Volvo"}
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"brand": "%s", "model": %d, "color": "Blue"}', brands[n % 5 + 1], 1990 + n % 30)
  return wrk.format("POST", "/api/cars", {["Content-Type"] = "application/json"}, body)
end
