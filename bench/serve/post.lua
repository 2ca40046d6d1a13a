-- wrk script of the serving benchmark (bench/serve.sh): POST /predict with
-- JSON bodies read from the file named by WRK_BODIES (one body a line), taken
-- in turn, each thread starting at a different line. done() writes the run's
-- numbers as one JSON object to the file named by WRK_RESULT.
--
--   WRK_BODIES=single.jsonl WRK_RESULT=out.json wrk -t2 -c64 -d10s --latency -s post.lua http://127.0.0.1:PORT

local bodies = {}
do
  local path = os.getenv("WRK_BODIES")
  if not path or path == "" then
    error("post.lua: WRK_BODIES is not set")
  end
  for line in io.lines(path) do
    if line:match("%S") then
      bodies[#bodies + 1] = line
    end
  end
  if #bodies == 0 then
    error("post.lua: no bodies in " .. path)
  end
end

local requests = {}
local next_index = 0
local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/predict", headers, body)
  end
  next_index = (thread_id or 0) * 7 % #requests
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local path = os.getenv("WRK_RESULT")
  if not path or path == "" then
    return
  end
  local e = summary.errors
  local f = assert(io.open(path, "w"))
  f:write(string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},"bodies":%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, #bodies))
  f:close()
end
