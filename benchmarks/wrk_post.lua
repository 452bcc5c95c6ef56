-- wrk script: POST the bodies in $BENCH_BODIES (one a line, cycled) to $BENCH_PATH with the
-- headers in $BENCH_HEADERS (a flat JSON object), collect the ids of every 200 answer
-- ({"ids": [...]}) and write a JSON summary to $BENCH_RESULT and the ids to $BENCH_IDS.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function parse_headers(text)
  local h = {}
  for k, v in string.gmatch(text, '"([^"]+)"%s*:%s*"([^"]*)"') do h[k] = v end
  return h
end

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if #line > 0 then table.insert(bodies, line) end
  end
  path = os.getenv("BENCH_PATH")
  headers = parse_headers(os.getenv("BENCH_HEADERS"))
  n = tid  -- threads start at different bodies
  ok = 0
  bad = 0
  ids = {}
end

function request()
  n = n + 1
  return wrk.format("POST", path, headers, bodies[(n % #bodies) + 1])
end

function response(status, hdrs, body)
  if status == 200 then
    ok = ok + 1
    -- ids are 24 hex digits; the key "ids" is not all hex, so it never matches.
    for id in string.gmatch(body, '"(%x+)"') do ids[#ids + 1] = id end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  local f = io.open(os.getenv("BENCH_IDS"), "w")
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
    local tids = t:get("ids")
    for _, id in ipairs(tids) do f:write(id, "\n") end
  end
  f:close()
  local e = summary.errors
  local errors = total_bad + e.connect + e.read + e.write + e.timeout
  local r = io.open(os.getenv("BENCH_RESULT"), "w")
  r:write(string.format(
    '{"requests": %d, "ok": %d, "errors": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f}',
    summary.requests, total_ok, errors, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  r:close()
end
