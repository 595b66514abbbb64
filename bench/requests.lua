-- wrk script for bench/bench.py: cycle through the requests listed in a file.
--
--   wrk -s bench/requests.lua http://127.0.0.1:PORT -- requests.tsv
--
-- One request per line, tab-separated: method, path, X-Processing-Key, X-Processing-Signature,
-- body (the last three may be empty). Each wrk thread takes every n-th line from its own
-- offset, so that no two threads send the same line: once-only requests (a link's first
-- click, an invoices/create, a signed callback) stay unique until a thread has sent all of
-- its lines ("replays" counts the requests sent again after that; for the GET routes,
-- cycling through the pages is the point). A line with a key is sent as JSON, signed.
-- done() prints one line, "BENCH {json}", that bench.py reads.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local path = args[1]
  local total = tonumber(args[2]) or 1
  local index = thread_index or 0
  prepared = {}
  local number = 0
  for line in io.lines(path) do
    if number % total == index % total then
      local f = split(line)
      local headers = {}
      if f[3] ~= nil and f[3] ~= "" then
        headers["X-Processing-Key"] = f[3]
        headers["X-Processing-Signature"] = f[4]
        headers["Content-Type"] = "application/json"
      end
      local body = nil
      if f[5] ~= nil and f[5] ~= "" then body = f[5] end
      table.insert(prepared, wrk.format(f[1], f[2], headers, body))
    end
    number = number + 1
  end
  if #prepared == 0 then
    error("no requests for thread " .. index .. " in " .. path)
  end
  distinct = #prepared
  position = 0
  sent = 0
end

function request()
  position = position + 1
  if position > distinct then
    position = 1
  end
  sent = sent + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local replayed = 0
  local distinct_total = 0
  for _, thread in ipairs(threads) do
    local count = thread:get("distinct") or 0
    local issued = thread:get("sent") or 0
    if issued > count then
      replayed = replayed + issued - count
    end
    distinct_total = distinct_total + count
  end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d,"replays":%d,"distinct":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, replayed, distinct_total))
end
