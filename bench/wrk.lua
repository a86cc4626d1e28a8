-- wrk script for latch's benchmark: rotates through the session cookies listed (one per line)
-- in the file named by $COOKIES, if set, and prints a one-line JSON summary at the end.
local cookies = {}
local next_cookie = 0

function init(args)
  local path = os.getenv("COOKIES")
  if path and path ~= "" then
    for line in io.lines(path) do
      cookies[#cookies + 1] = line
    end
  end
  -- Threads start at different points of the list.
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  if #cookies > 0 then
    next_cookie = math.random(#cookies)
  end
end

function request()
  if #cookies == 0 then
    return wrk.format()
  end
  next_cookie = next_cookie % #cookies + 1
  return wrk.format(nil, nil, { ["Cookie"] = "session=" .. cookies[next_cookie] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"errors":%d,"non_2xx_3xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
