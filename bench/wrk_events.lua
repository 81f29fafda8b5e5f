-- wrk script for bench/ingest.py: cycles through pre-signed POST /api/v1/events requests.
-- Each line of the file named by REQUESTS_FILE is "webhook-id<TAB>timestamp<TAB>signature<TAB>body".
-- Every wrk thread takes its own share of the lines, so no webhook-id is sent twice.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("REQUESTS_FILE")
  local count = tonumber(os.getenv("WRK_THREADS"))
  requests = {}
  local n = 0
  for line in io.lines(path) do
    if n % count == thread_id then
      local id, stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = stamp,
        ["webhook-signature"] = signature,
      }
      table.insert(requests, wrk.format("POST", "/api/v1/events", headers, body))
    end
    n = n + 1
  end
  index = 0
end

function request()
  index = index + 1
  if index > #requests then
    index = 1  -- wrapped: later requests repeat ids and are answered as duplicates (200)
  end
  return requests[index]
end
