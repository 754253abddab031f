-- wrk script of `just bench writes`: POST /api/v1/links with a unique URL per request (run id,
-- thread, counter), the bench's API key, and one machine-readable line at the end with
-- throughput, p50/p99 latency and the responses by status (201, 429, other).
-- Arguments after `--`: <api key> <run id>.
local threads = {}
counter = 0
created, throttled, other = 0, 0, 0  -- globals: done() reads them with thread:get

setup = function(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

init = function(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  prefix = "https://bench.example/writes/" .. args[2] .. "/" .. tid .. "/"
end

request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/v1/links", nil, '{"url":"' .. prefix .. counter .. '"}')
end

response = function(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 429 then
    throttled = throttled + 1
  else
    other = other + 1
  end
end

done = function(summary, latency, requests)
  local c, t, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    t = t + thread:get("throttled")
    o = o + thread:get("other")
  end
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f socket_errors=%d created=%d throttled=%d other=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    c, t, o))
end
