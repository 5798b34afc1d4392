-- Runs shell commands as background processes whose output goes to files, so a spec
-- can start several at once, kill one, and wait for the rest (always bounded).
local M = {}

local Group = {}
Group.__index = Group

function M.group()
  local p = assert(io.popen("mktemp -d /tmp/audience-procs.XXXXXX"))
  local dir = p:read("l")
  p:close()
  return setmetatable({ dir = dir, procs = {} }, Group)
end

--- Starts `command` in the background; its first output line is its pid.
function Group:start(command)
  local i = #self.procs + 1
  local out = ("%s/%d.out"):format(self.dir, i)
  os.execute(("sh -c 'echo $$; exec %s' > %s 2>&1 &"):format(command:gsub("'", "'\\''"), out))
  self.procs[i] = { out = out }
  return i
end

function Group:output(i)
  local f = io.open(self.procs[i].out)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

function Group:pid(i)
  for _ = 1, 100 do
    local pid = self:output(i):match("^(%d+)")
    if pid then return pid end
    os.execute("sleep 0.02")
  end
  error("process " .. i .. " never started")
end

function Group:kill(i, signal)
  os.execute(("kill -%s %s 2>/dev/null"):format(signal or "KILL", self:pid(i)))
  self.procs[i].killed = true
end

-- A finished process stays a zombie until something reaps it (here, whatever init the
-- machine has, sometimes a second later), and kill -0 still succeeds on a zombie: read
-- its state instead.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("a") or ""
  f:close()
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

--- Waits (at most `limit` seconds) until every process has exited. Returns true when
--- they all did.
function Group:wait(limit)
  local clock = require("audience.core").monotonic
  local deadline = clock() + limit
  while clock() < deadline do
    local running = false
    for i in ipairs(self.procs) do
      if alive(self:pid(i)) then running = true end
    end
    if not running then return true end
    os.execute("sleep 0.05")
  end
  for i in ipairs(self.procs) do self:kill(i) end
  return false
end

function Group:cleanup()
  for i, p in ipairs(self.procs) do
    if not p.killed then os.execute(("kill -KILL %s 2>/dev/null"):format(self:pid(i))) end
  end
  os.execute(("rm -rf %q"):format(self.dir))
end

return M
