-- Shared by the wrk scripts: each wrk thread takes its own slice of a sessions file
-- (one "uid<TAB>cookie" line per verified voter, as written by prepare-sessions) and
-- counts answers by status; done() prints the counts so a run can be checked.
local M = {}
local threads = {}
local counter = 0

function M.setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function M.load(path, id, nthreads)
  local cookies = {}
  local i = 0
  for line in io.lines(path) do
    local uid, cookie = line:match("^([^\t]+)\t(.+)$")
    if cookie then
      if i % nthreads == id then table.insert(cookies, cookie) end
      i = i + 1
    end
  end
  if #cookies == 0 then error("no sessions for thread " .. id .. " in " .. path) end
  return cookies
end

-- For init(args): this thread's slice of the sessions file (args[1], split over args[2]
-- threads, default 2). Returns the request function: each call carries the next session.
function M.rotate(args)
  statuses = {}
  local cookies = M.load(args[1], id, tonumber(args[2] or "2"))
  local i = 0
  return function()
    i = i % #cookies + 1
    wrk.headers["Cookie"] = cookies[i]
    return wrk.format()
  end
end

function M.count(status)
  local key = "s" .. status
  statuses[key] = (statuses[key] or 0) + 1
end

function M.done(summary)
  local totals = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do totals[k] = (totals[k] or 0) + v end
  end
  local keys = {}
  for k in pairs(totals) do table.insert(keys, k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do table.insert(parts, k:sub(2) .. "=" .. totals[k]) end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("rate_2xx: %.1f/s\n",
    ((totals.s200 or 0) + (totals.s201 or 0)) / (summary.duration / 1e6)))
end

return M
