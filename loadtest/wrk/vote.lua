-- wrk: cast ballots, each request with the next verified session of this thread.
--   wrk -t2 -c100 -d5s -s loadtest/wrk/vote.lua URL/e/demo/ballot -- SESSIONS_FILE [NTHREADS [BODY]]
-- BODY is the ballot's JSON (default: the demo election's two single choices).
-- A session is used once; when a thread runs out it wraps and the repeats answer 409
-- (the one-ballot rule), which the status line shows. Prepare more sessions than
-- rate x duration.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

local next_request
function init(args)
  next_request = common.rotate(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  wrk.body = args[3] or '{"choices":{"president":"ben-carter","treasurer":"eli-novak"}}'
end

function request()
  return next_request()
end

function response(status)
  common.count(status)
end

done = common.done
