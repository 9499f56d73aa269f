-- wrk: sign in as the dev directory's students, each request the next student of this
-- thread (student00001 / vote-00001, ... as seeded by the dev stack).
--   wrk -t2 -c50 -d5s --latency -s loadtest/wrk/login.lua URL/auth/login -- STUDENTS [NTHREADS]
-- Threads take disjoint students, so no two threads sign in the same one at once.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

local students, nthreads

-- Every request this thread sends, built once: formatting one per request in Lua costs
-- the load generator CPU that the machine's other processes (nginx, Turnout, slapd) need.
local requests, next_request

local function build()
  requests = {}
  local student = id
  while student < students do
    local k = student + 1
    local body = string.format('{"username":"student%05d","password":"vote-%05d"}', k, k)
    table.insert(requests, wrk.format(nil, nil, nil, body))
    student = student + nthreads
  end
  next_request = 0
end

function init(args)
  statuses = {}
  students = tonumber(args[1] or "2000")
  nthreads = tonumber(args[2] or "2")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  build()
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status)
  common.count(status)
end

done = common.done
