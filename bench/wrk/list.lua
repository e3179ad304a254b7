-- A filtered, ordered list returning 20 rows.
request = function()
  return wrk.format("GET", "/api/cars?brand=Ford&model__gte=1990&ordering=-model&limit=20")
end
