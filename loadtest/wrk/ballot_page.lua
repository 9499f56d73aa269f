-- wrk: read the ballot page (JSON) as verified voters, rotating sessions.
--   wrk -t2 -c100 -d5s -s loadtest/wrk/ballot_page.lua URL/e/demo/ballot -- SESSIONS_FILE [NTHREADS]
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

local cookies, next_i
function init(args)
  statuses = {}
  cookies = common.load(args[1], id, tonumber(args[2] or "2"))
  next_i = 0
  wrk.headers["Accept"] = args[3] or "application/json"
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
