-- GET /api/cars/{id} over the ids in $LIVEBASE_BENCH_IDS (one per line), round robin.
local ids = {}
for line in io.lines(os.getenv("LIVEBASE_BENCH_IDS")) do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/api/cars/" .. ids[i])
end
