-- wrk: read the ballot page (JSON) as verified voters, rotating sessions.
--   wrk -t2 -c100 -d5s -s loadtest/wrk/ballot_page.lua URL/e/demo/ballot -- SESSIONS_FILE [NTHREADS]
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

local next_request
function init(args)
  next_request = common.rotate(args)
  wrk.headers["Accept"] = args[3] or "application/json"
end

function request()
  return next_request()
end

function response(status)
  common.count(status)
end

done = common.done
