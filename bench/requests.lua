-- wrk script: replay the requests of a workload file, and report figures as one JSON line.
--
--   wrk -t2 -c16 -d5s -s bench/requests.lua http://127.0.0.1:8080 -- FILE MODE THREADS
--
-- FILE has one request a line: METHOD <tab> PATH <tab> CONTENT-TYPE <tab> BODY <tab> AUTH
-- (AUTH 1 sends the dev bearer token). MODE "cycle" replays the list round and round,
-- each thread from its own offset; MODE "once" sends each request exactly once (threads
-- split the list), then stops: each revoke-all then meets a freshly seeded application.
-- In "once" mode a thread that is done drops a file in the directory given as the 4th
-- argument (run.py then ends wrk with SIGINT), and the figures are timed from the first
-- request to the last answer, not over wrk's whole -d.

local counter = 0
local threads = {}

local function now_us()
  local pipe = io.popen("date +%s%N")
  local ns = pipe:read("*a")
  pipe:close()
  return math.floor(tonumber(ns) / 1000)
end

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, threads = args[1], tonumber(args[3])
  mode = args[2]
  markers = args[4]
  local all = {}
  for line in io.lines(file) do
    local method, path, ctype, body, auth = line:match("^([^\t]+)\t([^\t]+)\t([^\t]*)\t([^\t]*)\t(%d)$")
    if method then
      local headers = {}
      if auth == "1" then headers["Authorization"] = "Bearer dev-token" end
      if ctype ~= "" then headers["Content-Type"] = ctype end
      if body == "" then body = nil end
      table.insert(all, wrk.format(method, path, headers, body))
    end
  end
  reqs = {}
  if mode == "once" then
    for i = id + 1, #all, threads do table.insert(reqs, all[i]) end
    index = 0
  else
    reqs = all
    index = math.floor(#all * id / threads)
  end
  answered = 0
end

function request()
  if not started then started = now_us() end
  index = index + 1
  if index > #reqs then
    -- "once": a connection asking after the list ran out repeats the last request (its
    -- answer is counted, but the thread stops as soon as every listed one was answered)
    index = (mode == "once") and #reqs or 1
  end
  return reqs[index]
end

function response(status, headers, body)
  answered = answered + 1
  if mode == "once" and answered == #reqs then
    finished = now_us()
    local f = io.open(markers .. "/" .. id, "w")
    f:write("done")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local duration = summary.duration
  local first, last = nil, nil
  for _, t in ipairs(threads) do
    local s, f = t:get("started"), t:get("finished")
    if s and (not first or s < first) then first = s end
    if f and (not last or f > last) then last = f end
  end
  if mode == "once" and first and last then duration = last - first end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, duration, summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
