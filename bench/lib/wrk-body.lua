-- wrk-body.lua: requests with a body read from a file, for the upload benchmarks
-- (POST /resources on the service, PUT of the same bytes to the object store) and the
-- signed object-store GETs. Environment:
--   WRK_METHOD     POST (default), PUT, GET
--   WRK_BODY_FILE  the body (optional: none for a GET); sent as Content-Type audio/mpeg
--   WRK_HEADERS    extra header lines "Name: value" separated by newlines (a SigV4
--                  signature from s3sign.py)
--   WRK_UNIQUE     K > 0: request n of thread t goes to path "<URL path>-<t>-<n mod K>",
--                  so no two requests in flight share a key (for stores that cannot
--                  overwrite one key concurrently; versitygw can: the suite uses 0). The
--                  path is then not the one a SigV4 signature was made for.
--   WRK_LIB        the directory of wrk-report.lua, whose done() prints the JSON summary
-- Both sides of a comparison run this same script (the same request() per request).
local body_file = os.getenv("WRK_BODY_FILE") or ""
local body = nil
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "audio/mpeg"
end
wrk.method = os.getenv("WRK_METHOD") or "POST"
for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
  local k, v = line:match("^([^:]+):%s*(.*)$")
  if k then wrk.headers[k] = v end
end
local unique = tonumber(os.getenv("WRK_UNIQUE") or "0") or 0

local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end

local n = 0
function request()
  n = n + 1
  local path = wrk.path
  if unique > 0 then path = string.format("%s-%d-%d", wrk.path, tid or 0, n % unique) end
  return wrk.format(wrk.method, path, wrk.headers, body)
end

dofile(os.getenv("WRK_LIB") .. "/wrk-report.lua")
