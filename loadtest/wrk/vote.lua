-- wrk: cast ballots, each request with the next verified session of this thread.
--   wrk -t2 -c100 -d5s -s loadtest/wrk/vote.lua URL/e/demo/ballot -- SESSIONS_FILE [NTHREADS]
-- A session is used once; when a thread runs out it wraps and the repeats answer 409
-- (the one-ballot rule), which the status line shows. Prepare more sessions than
-- rate x duration.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

local cookies, next_i
function init(args)
  statuses = {}
  cookies = common.load(args[1], id, tonumber(args[2] or "2"))
  next_i = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  wrk.body = '{"choices":{"president":"ben-carter","treasurer":"eli-novak"}}'
end

function request()
  next_i = next_i % #cookies + 1
  wrk.headers["Cookie"] = cookies[next_i]
  return wrk.format()
end

function response(status)
  common.count(status)
end

done = common.done
