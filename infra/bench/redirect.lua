-- wrk script of `just bench redirect`: spreads GETs over the codes listed in the file given after
-- `--` (one per line), sends a browser-like User-Agent and Referer (so the click builder does its
-- usual work), and prints one machine-readable line with throughput and p50/p99 latency.
local codes = {}
local index = 0

init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then codes[#codes + 1] = "/" .. line end
  end
  math.randomseed(os.time())
  index = math.random(#codes)
  wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
  wrk.headers["Referer"] = "https://bench.example/page"
end

request = function()
  index = index % #codes + 1
  return wrk.format("GET", codes[index])
end

done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f socket_errors=%d status_errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
