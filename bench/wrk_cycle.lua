-- wrk script of bench/webhooks.py: cycle through pre-signed, distinct webhook requests.
-- args[1]: a file of requests, one per line: path TAB X-Twilio-Signature TAB form body.
-- Run with one thread (-t1), so the requests go out in the file's order.
local reqs = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local path, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = sig,
    }, body)
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
