-- wrk: any GET (e.g. /health/live), counting statuses like the other scripts.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup
function init(args) statuses = {} end
function response(status) common.count(status) end
done = common.done
