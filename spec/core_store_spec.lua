-- The limiters over shared stores: core.limiter_file (processes of one machine, a state
-- file) and core.limiter_redis (machines, a Redis hash updated by a server-side script).
-- Both must behave exactly like core.limiter; on top of that they must survive other
-- processes, crashes, corruption and a dead or hung Redis without ever hanging.
local core = require "audience.core"
local redis = require "support.redis"
local socket = require "socket"

local LUAJIT = rawget(_G, "jit") ~= nil
-- Child processes run the plain build for this interpreter (never an ASan build: its
-- runtime would have to be preloaded into them).
local CHILD_LUA = LUAJIT and "luajit" or "lua5.4"
local CHILD_CPATH = os.getenv("AUDIENCE_CHILD_CPATH") or (LUAJIT and "build/luajit/?.so" or "build/lua5.4/?.so")

local function errmsg(ok, err)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local files = require "support.files"
local shell_quote, read_file, write_file = files.quote, files.read, files.write

local function file_size(path)
  return #(read_file(path) or "")
end

-- store_file.c's layout: a header of its own, then one record per account.
local HEADER, REC = 160, 160

local temp_files = {}
local function temp_path()
  local p = os.tmpname()
  temp_files[#temp_files + 1] = p
  return p
end

local n_accounts = 0
local function account()
  n_accounts = n_accounts + 1
  return "spec-store-" .. n_accounts .. "-" .. core.random_hex(4)
end

local function close_to(a, b)
  return a == b or (a ~= nil and b ~= nil and math.abs(a - b) <= 1e-9 * math.max(1, math.abs(a)))
end

local function garbage(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

-- ---------------------------------------------------------------- same arithmetic

-- A scripted sequence touching every rule (budget, tighter budget, server window and its
-- roll-over, lowest count within a window, unknown reset, penalties, a clock going back).
-- Returns every result and state along the way.
local STATE_KEYS = { "limit", "remaining", "reset_at", "blocked_until", "budget_limit", "budget_per", "tokens" }

local function run_sequence(lim)
  local out = {}
  local function check(...) -- store methods return nil, err on failure; the memory one never fails
    local a, err = ...
    if a == nil and err ~= nil then error(err, 2) end
    return ...
  end
  local function acq(now) out[#out + 1] = { "acquire", now, (check(lim:acquire(now))) } end
  local function st(now) out[#out + 1] = { "state", now, (check(lim:state(now))) } end
  check(lim:configure(10, 1, 100))
  for _ = 1, 12 do acq(100) end
  acq(100.1); acq(100.1); acq(100.35)
  st(101.1)
  check(lim:configure(100, 1, 101.1)) -- looser: ignored
  check(lim:configure(60, 60, 101.2)) -- tighter: taken, no fresh burst
  st(101.2)
  check(lim:observe(100, 0, 200, 101.3))
  acq(101.3); acq(150); st(150)
  acq(200.5); st(200.5) -- rolled over
  check(lim:observe(100, 50, 260, 201))
  check(lim:observe(100, 60, 260.5, 202)) -- same window, older response
  st(202)
  check(lim:observe(100, 90, 330, 203)) -- new window
  st(203)
  check(lim:observe(nil, 0, nil, 204))
  acq(204); st(204)
  check(lim:penalize(330, 204))
  check(lim:penalize(320, 204)) -- never shortened
  acq(300); st(300); acq(330); st(331)
  acq(329) -- the clock stepped back
  st(329)
  for i = 0, 40 do acq(331 + i * 0.25) end
  st(345)
  return out
end

local function assert_same_sequence(expected, got)
  assert.equal(#expected, #got)
  for i, e in ipairs(expected) do
    local g = got[i]
    local where = string.format("step %d (%s at %s)", i, e[1], tostring(e[2]))
    assert.equal(e[1], g[1], where)
    if e[1] == "acquire" then
      assert.is_true(close_to(e[3], g[3]), where .. ": wait " .. tostring(e[3]) .. " vs " .. tostring(g[3]))
    else
      for _, k in ipairs(STATE_KEYS) do
        assert.is_true(close_to(e[3][k], g[3][k]),
          where .. ": " .. k .. " " .. tostring(e[3][k]) .. " vs " .. tostring(g[3][k]))
      end
    end
  end
end

local memory_sequence
local function expected_sequence()
  if not memory_sequence then
    local lim = core.limiter(account())
    memory_sequence = run_sequence(lim)
    lim:close()
  end
  return memory_sequence
end

-- ---------------------------------------------------------------- child processes

local CHILD_SCRIPT = [[
package.cpath = arg[1] .. ";" .. package.cpath
local core = require "audience.core"
local kind, where, acct, mode, n = arg[2], arg[3], arg[4], arg[5], tonumber(arg[6])
io.stdout:setvbuf("line")
print("pid " .. io.open("/proc/self/stat"):read("*l"):match("^(%d+)"))
local lim = kind == "file" and assert(core.limiter_file(where, acct)) or core.limiter_redis(where, acct)
local function fail(msg) print("error " .. tostring(msg)) os.exit(2) end
local deadline = core.monotonic() + 8
if mode == "hammer" then -- exclusive-lock read-modify-writes back to back, until killed
  while core.monotonic() < deadline do
    local ok, err = lim:observe()
    if ok == nil and err then fail(err) end
  end
  print("done")
  return
end
local _, cerr = lim:configure(100, 2)
if cerr then fail(cerr) end
local got = 0
while got < n do
  local w, err = lim:acquire()
  if not w then fail(err) end
  if w == 0 then
    got = got + 1
    print(string.format("grant %.6f", core.now()))
  else
    core.sleep(math.min(w, 0.25))
  end
  if core.monotonic() > deadline then fail("timeout") end
end
lim:close()
print("done")
]]

local child_script_path
local function child_script()
  if not child_script_path then
    child_script_path = temp_path()
    write_file(child_script_path, CHILD_SCRIPT)
  end
  return child_script_path
end

local function spawn(kind, where, acct, mode, n)
  local cmd = string.format("exec env -u LD_PRELOAD %s %s %s %s %s %s %s %d 2>&1",
    CHILD_LUA, shell_quote(child_script()), shell_quote(CHILD_CPATH), kind, shell_quote(where),
    shell_quote(acct), mode, n or 0)
  local p = assert(io.popen(cmd, "r"))
  local first = p:read("*l") or ""
  local pid = tonumber(first:match("^pid (%d+)$"))
  if not pid then error("child did not start: " .. first .. (p:read("*a") or "")) end
  return { proc = p, pid = pid }
end

-- Reads a child to its end (children end by themselves within 8 s).
local function finish(child)
  local out = child.proc:read("*a") or ""
  child.proc:close()
  local grants, done, errors = {}, false, {}
  for line in out:gmatch("[^\n]+") do
    local t = line:match("^grant ([%d.]+)$")
    if t then grants[#grants + 1] = tonumber(t)
    elseif line == "done" then done = true
    else errors[#errors + 1] = line end
  end
  return { grants = grants, done = done, errors = errors, output = out }
end

-- Token-bucket bound: once sorted, grant k must come no earlier than t0 + (k - burst) /
-- rate. Each child prints its time after acquire() returned, so a printed time is never
-- before the real one and the check can only be looser than the truth, never flaky.
local function assert_bucket_bound(times, t0, burst, rate, slack)
  table.sort(times)
  for k, t in ipairs(times) do
    local allowed = burst + rate * (t - t0) + (slack or 1e-6)
    assert.is_true(k <= allowed, string.format("grant %d at t0+%.4f exceeds the budget (%.3f allowed)",
      k, t - t0, allowed))
  end
end

local function kill9(pid)
  os.execute("kill -9 " .. math.floor(pid) .. " 2>/dev/null")
end

teardown(function()
  for _, p in ipairs(temp_files) do os.remove(p) end
end)

-- ==================================================================== file store

describe("core.limiter_file", function()
  local path
  before_each(function()
    path = temp_path()
    os.remove(path) -- the store creates it
  end)

  it("behaves exactly like core.limiter", function()
    local lim = assert(core.limiter_file(path, account()))
    assert_same_sequence(expected_sequence(), run_sequence(lim))
    lim:close()
  end)

  it("shares one state per account between objects, and keeps it after they close", function()
    local name = account()
    local a = assert(core.limiter_file(path, name))
    local b = assert(core.limiter_file(path, name))
    a:configure(1, 10, 100)
    assert.equal(0, a:acquire(100))
    assert.is_true(close_to(10, b:acquire(100)))
    a:close(); b:close()
    local c = assert(core.limiter_file(path, name))
    local s = c:state(100)
    assert.equal(1, s.budget_limit)
    assert.is_true(close_to(0, s.tokens))
    c:close()
    local p = assert(io.popen("stat -c %A " .. shell_quote(path)))
    assert.equal("-rw-------", p:read("*l")) -- the state is nobody else's business
    p:close()
  end)

  it("keeps accounts in one file independent, long names included", function()
    local long = string.rep("x", 60)
    local lims = {
      assert(core.limiter_file(path, "a")),
      assert(core.limiter_file(path, "b")),
      assert(core.limiter_file(path, long .. "1")),
      assert(core.limiter_file(path, long .. "2")),
      assert(core.limiter_file(path, "")),
    }
    for i, lim in ipairs(lims) do lim:configure(i, 100, 100) end
    for i, lim in ipairs(lims) do
      for _ = 1, i do assert.equal(0, lim:acquire(100)) end
      assert.is_true(lim:acquire(100) > 0)
      assert.equal(i, lim:state(100).budget_limit)
    end
    assert.equal(HEADER + 5 * REC, file_size(path))
    for _, lim in ipairs(lims) do lim:close() end
  end)

  it("treats corrupted records as fresh state and repairs them", function()
    local name = account()
    local a = assert(core.limiter_file(path, name))
    a:configure(5, 100, 100)
    for _ = 1, 5 do assert.equal(0, a:acquire(100)) end
    assert.is_true(a:acquire(100) > 0)
    local all = read_file(path)
    local head, rec = all:sub(1, HEADER), all:sub(HEADER + 1, HEADER + REC)
    local cases = {
      head .. garbage(1000),                          -- random records
      head,                                           -- records gone
      "",                                             -- emptied: a new file
      head .. rec:sub(1, 60),                         -- torn: half a record
      head .. rec:sub(1, 100) .. garbage(60),         -- valid start, bad checksum
      head .. rec:sub(1, REC - 1) .. string.char((rec:byte(REC) + 1) % 256), -- one bit of checksum
    }
    for i, bytes in ipairs(cases) do
      write_file(path, bytes)
      -- A limiter that never configured sees fresh state ...
      local fresh = assert(core.limiter_file(path, name))
      local s = assert(fresh:state(100))
      assert.is_nil(s.budget_limit, "case " .. i)
      assert.is_nil(s.tokens, "case " .. i)
      fresh:close()
      -- ... one that did re-applies its budget, with a full bucket.
      assert.equal(0, a:acquire(100), "case " .. i)
      s = a:state(100)
      assert.equal(5, s.budget_limit)
      assert.is_true(close_to(4, s.tokens), "case " .. i)
      -- and the record it wrote is valid for everybody
      local again = assert(core.limiter_file(path, name))
      assert.equal(5, again:state(100).budget_limit)
      again:close()
      local body = math.max(#bytes - HEADER, 0)
      assert.is_true(file_size(path) <= HEADER + body - body % REC + REC, "case " .. i)
    end
    a:close()
  end)

  it("refuses, untouched, a file that is not its own, a symlink, a directory", function()
    local foreign = temp_path()
    local text = "my notes\n" .. string.rep("do not overwrite me\n", 20)
    write_file(foreign, text)
    local lim, err = core.limiter_file(foreign, "a")
    assert.is_nil(lim)
    assert.equal("file: " .. foreign .. ": exists and is not an audience quota file (left untouched)", err)
    assert.equal(text, read_file(foreign))
    -- A symbolic link is refused even when it points at a good quota file.
    local link = temp_path()
    os.remove(link)
    assert(os.execute("ln -s " .. shell_quote(path) .. " " .. shell_quote(link)))
    lim, err = core.limiter_file(link, "a")
    assert.is_nil(lim)
    assert.matches("^file: .*: is a symbolic link %(refused%)$", err)
    -- A link to a file that does not exist yet is not followed to create it.
    local target = temp_path()
    os.remove(target)
    os.remove(link)
    assert(os.execute("ln -s " .. shell_quote(target) .. " " .. shell_quote(link)))
    lim, err = core.limiter_file(link, "a")
    assert.is_nil(lim)
    assert.matches("symbolic link", err)
    assert.is_nil(read_file(target))
    lim, err = core.limiter_file("/tmp", "a")
    assert.is_nil(lim)
    assert.matches("^file: /tmp: ", err)
  end)

  it("refuses what it cannot open, and bad arguments", function()
    local lim, err = core.limiter_file("/nonexistent-dir/rl", "a")
    assert.is_nil(lim)
    assert.matches("^file: /nonexistent%-dir/rl: open: ", err)
    lim, err = core.limiter_file("/tmp", "a")
    assert.is_nil(lim)
    assert.matches("^file: /tmp: ", err)
    assert.matches("bad argument #1 .*path must be a string, got nil", errmsg(pcall(core.limiter_file, nil, "a")))
    assert.matches("bad argument #1 .*non%-empty", errmsg(pcall(core.limiter_file, "", "a")))
    assert.matches("bad argument #2 .*account must be a string, got no value", errmsg(pcall(core.limiter_file, path)))
    assert.matches("bad argument #3 .*opts must be a table", errmsg(pcall(core.limiter_file, path, "a", 5)))
    assert.matches("bad argument #3 .*unknown option 'timeout'",
      errmsg(pcall(core.limiter_file, path, "a", { timeout = 1 })))
    assert.matches("bad argument #3 .*opts.lock_timeout",
      errmsg(pcall(core.limiter_file, path, "a", { lock_timeout = -1 })))
    lim = assert(core.limiter_file(path, "a"))
    assert.matches("bad argument #2", errmsg(pcall(lim.configure, lim, 0, 1)))
    assert.matches("bad argument #3", errmsg(pcall(lim.configure, lim, 1, -1)))
    assert.matches("bad argument #2", errmsg(pcall(lim.observe, lim, "x")))
    assert.matches("bad argument #2", errmsg(pcall(lim.penalize, lim, nil)))
    assert.matches("bad argument #2", errmsg(pcall(lim.acquire, lim, 0 / 0)))
    assert.matches("bad argument #1", errmsg(pcall(lim.acquire, {})))
    assert.matches("^audience%.limiter%.file %(0x", tostring(lim))
    lim:close()
    lim:close()
    assert.matches("limiter is closed", errmsg(pcall(lim.acquire, lim)))
    assert.equal("audience.limiter.file (closed)", tostring(lim))
  end)

  it("gives up on a lock held too long, and carries on once its holder is killed", function()
    local lim = assert(core.limiter_file(path, account(), { lock_timeout = 0.3 }))
    assert.equal(0, lim:acquire())
    -- A shell that takes flock(1) on the file, says so with its pid, and becomes
    -- `sleep`, holding the lock (a bounded sleep: even a failed test ends).
    local holder = assert(io.popen(string.format(
      "exec 2>/dev/null; sh -c 'exec 9>>\"$1\" && flock -x 9 && echo \"locked $$\" && exec sleep 20' sh %s & wait $!",
      shell_quote(path))))
    local line = holder:read("*l") or ""
    local pid = tonumber(line:match("^locked (%d+)$"))
    finally(function()
      if pid then kill9(pid) end
      holder:close()
    end)
    assert(pid, "the flock holder did not start: " .. line)
    local t0 = core.monotonic()
    local w, err = lim:acquire()
    local elapsed = core.monotonic() - t0
    assert.is_nil(w)
    assert.matches("^file: .*still locked by another process after 0%.3 s", err)
    assert.is_true(elapsed >= 0.29 and elapsed < 1.5, "waited " .. elapsed)
    local _, serr = lim:state()
    assert.matches("still locked", serr)
    kill9(pid) -- SIGKILL while holding the lock: the kernel releases it
    assert.equal(0, lim:acquire())
    lim:close()
  end)

  it("counts every grant across 4 processes (budget 100 per 2 s, 4 x 50 units)", function()
    local acct = account()
    local t0 = core.now()
    local setup = assert(core.limiter_file(path, acct))
    setup:configure(100, 2)
    setup:close()
    local children = {}
    for i = 1, 4 do children[i] = spawn("file", path, acct, "acquire", 50) end
    local times = {}
    for _, c in ipairs(children) do
      local r = finish(c)
      assert.is_true(r.done, r.output)
      assert.same({}, r.errors)
      assert.equal(50, #r.grants)
      for _, t in ipairs(r.grants) do times[#times + 1] = t end
    end
    assert.equal(200, #times)
    -- No lost decrement: never more than the burst plus the refill so far ...
    assert_bucket_bound(times, t0, 100, 50)
    local early = 0
    for _, t in ipairs(times) do if t <= t0 + 0.5 then early = early + 1 end end
    assert.is_true(early <= 100 + 50 * 0.5, "grants in the first 0.5 s: " .. early)
    -- ... and the waits were honoured: the last 100 took the 2 s the budget asks for.
    assert.is_true(times[200] >= t0 + 2 - 1e-3, "finished after " .. (times[200] - t0))
    assert.is_true(times[200] < t0 + 6, "finished after " .. (times[200] - t0))
    local check = assert(core.limiter_file(path, acct))
    assert.equal(100, check:state().budget_limit)
    check:close()
  end)

  it("lets the others finish when one process is SIGKILLed mid-run", function()
    local acct = account()
    local t0 = core.now()
    local setup = assert(core.limiter_file(path, acct))
    setup:configure(100, 2)
    setup:close()
    local children = {}
    for i = 1, 4 do children[i] = spawn("file", path, acct, "acquire", 40) end
    -- Two processes doing nothing but locked read-modify-writes: a SIGKILL there is
    -- likely to land while the lock is held or the record half-written.
    local hammers = { spawn("file", path, acct, "hammer"), spawn("file", path, acct, "hammer") }
    socket.sleep(0.3)
    kill9(children[4].pid)
    kill9(hammers[1].pid)
    socket.sleep(0.3)
    kill9(hammers[2].pid)
    local times = {}
    for i, c in ipairs(children) do
      local r = finish(c)
      for _, t in ipairs(r.grants) do times[#times + 1] = t end
      if i < 4 then
        assert.is_true(r.done, r.output)
        assert.same({}, r.errors)
        assert.equal(40, #r.grants)
      end
    end
    for _, h in ipairs(hammers) do
      local r = finish(h)
      assert.same({}, r.errors)
    end
    assert_bucket_bound(times, t0, 100, 50)
    -- The file is still one valid record holding the budget.
    assert.equal(HEADER + REC, file_size(path))
    local check = assert(core.limiter_file(path, acct))
    local s = check:state()
    assert.equal(100, s.budget_limit)
    assert.equal(2, s.budget_per)
    check:close()
  end)
end)

-- ==================================================================== Redis store

describe("core.limiter_redis", function()
  local srv

  lazy_setup(function()
    assert(redis.available(), "redis-server is not installed (Debian: redis-server)")
    srv = redis.start()
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    redis.stop_all()
  end)

  local function new(acct, opts)
    return core.limiter_redis(srv.url, acct or account(), opts)
  end

  it("behaves exactly like core.limiter", function()
    local lim = new()
    assert_same_sequence(expected_sequence(), run_sequence(lim))
    lim:close()
  end)

  it("shares one state per account between objects, and keeps accounts apart", function()
    local name = account()
    local a, b, other = new(name), new(name), new()
    assert.is_nil(a:configure(1, 10, 100))
    assert.equal(0, a:acquire(100))
    assert.is_true(close_to(10, b:acquire(100)))
    assert.equal(0, other:acquire(100))
    a:close(); b:close(); other:close()
    local c = new(name)
    assert.equal(1, c:state(100).budget_limit)
    c:close()
    -- One value: the state blob, its format's magic first.
    local blob = srv:command("GET", "audience:rl:" .. name)
    assert.equal("ARL4", blob:sub(1, 4))
    assert.equal(116, #blob)
  end)

  it("sets a TTL that outlives known resets and penalties", function()
    local name = account()
    local key = "audience:rl:" .. name
    local lim = new(name, { ttl = 5 })
    assert.equal(-2, srv:command("TTL", key)) -- nothing stored before the first call
    assert.equal(0, lim:acquire())            -- stores the blind grant
    local ttl = srv:command("TTL", key)
    assert.is_true(ttl >= 4 and ttl <= 5, "ttl " .. tostring(ttl))
    lim:configure(10, 1)
    ttl = srv:command("TTL", key)
    assert.is_true(ttl >= 4 and ttl <= 5, "ttl " .. tostring(ttl))
    lim:penalize(core.now() + 100)
    ttl = srv:command("TTL", key)
    assert.is_true(ttl >= 99 and ttl <= 101, "ttl " .. tostring(ttl))
    lim:close()
  end)

  it("restores its budget when the key expires or is wiped", function()
    local name = account()
    local lim = new(name)
    lim:configure(3, 60, 100)
    for _ = 1, 3 do assert.equal(0, lim:acquire(100)) end
    assert.is_true(lim:acquire(100) > 0)
    assert.equal(1, srv:command("DEL", "audience:rl:" .. name))
    local other = new(name)
    assert.is_nil(other:state(100).budget_limit) -- fresh for a limiter with no budget
    assert.equal(0, lim:acquire(100))               -- ours comes back, bucket full
    assert.equal(3, other:state(100).budget_limit)
    -- Garbage somebody else wrote there reads as fresh state.
    srv:command("SET", "audience:rl:" .. name, "ARL4" .. string.rep("\255", 112))
    local s = other:state(100)
    assert.is_nil(s.budget_limit)
    assert.is_nil(s.remaining)
    assert.is_nil(s.reset_at)
    lim:close(); other:close()
  end)

  it("falls back to EVAL when the server lost the script", function()
    local lim = new()
    assert.equal(0, lim:acquire())
    assert.equal("OK", srv:command("SCRIPT", "FLUSH"))
    assert.equal(0, lim:acquire())
    assert.equal(0, lim:acquire())
    lim:close()
  end)

  it("reports server-side errors without losing the connection", function()
    local name = account()
    srv:command("HSET", "audience:rl:" .. name, "not", "a string")
    local lim = new(name)
    local w, err = lim:acquire()
    assert.is_nil(w)
    assert.matches("^redis: .*WRONGTYPE", err)
    srv:command("DEL", "audience:rl:" .. name)
    assert.equal(0, lim:acquire())
    lim:close()
  end)

  it("selects the database from the URL", function()
    local name = account()
    local lim = core.limiter_redis(srv.url .. "/3", name)
    lim:configure(5, 1)
    lim:close()
    assert.equal(0, srv:command("EXISTS", "audience:rl:" .. name))
    local conn = socket.tcp()
    conn:settimeout(1)
    assert(conn:connect("127.0.0.1", srv.port))
    conn:send("*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$6\r\nEXISTS\r\n$" .. #("audience:rl:" .. name)
      .. "\r\naudience:rl:" .. name .. "\r\n")
    assert.equal("+OK", conn:receive("*l"))
    assert.equal(":1", conn:receive("*l"))
    conn:close()
  end)

  it("counts every grant across 4 processes (budget 100 per 2 s, 4 x 50 units)", function()
    local acct = account()
    local t0 = core.now()
    local setup = new(acct)
    assert.is_nil(setup:configure(100, 2))
    setup:close()
    local children = {}
    for i = 1, 4 do children[i] = spawn("redis", srv.url, acct, "acquire", 50) end
    local times = {}
    for _, c in ipairs(children) do
      local r = finish(c)
      assert.is_true(r.done, r.output)
      assert.same({}, r.errors)
      for _, t in ipairs(r.grants) do times[#times + 1] = t end
    end
    assert.equal(200, #times)
    -- Clients read the clock before their script runs, so two racing calls can reach
    -- the server out of clock order; each such inversion refills for the gap between
    -- the two readings (microseconds here). One token of slack covers that.
    assert_bucket_bound(times, t0, 100, 50, 1)
    assert.is_true(times[200] >= t0 + 2 - 0.05, "finished after " .. (times[200] - t0))
  end)

  it("authenticates and never puts the password in a message", function()
    local password = "s3cr3t-p@ss/w:rd"
    local secured = redis.start({ password = password })
    local enc = password:gsub("[@/:]", function(c) return string.format("%%%02X", c:byte()) end)
    local base = "127.0.0.1:" .. secured.port
    local ok = core.limiter_redis("redis://:" .. enc .. "@" .. base, account())
    assert.equal(0, ok:acquire())
    ok:close()
    local acl = core.limiter_redis("redis://default:" .. enc .. "@" .. base, account())
    assert.equal(0, acl:acquire())
    acl:close()
    local wrong = core.limiter_redis("redis://:wrong-" .. enc .. "@" .. base, account())
    local w, err = wrong:acquire()
    assert.is_nil(w)
    assert.matches("^redis: AUTH rejected", err)
    assert.is_nil(err:find("wrong-", 1, true))
    assert.is_nil(err:find("s3cr3t", 1, true))
    assert.is_nil(tostring(wrong):find("s3cr3t", 1, true))
    wrong:close()
    local none = core.limiter_redis("redis://" .. base, account())
    w, err = none:acquire()
    assert.is_nil(w)
    assert.matches("^redis: .*NOAUTH", err)
    none:close()
    secured:stop()
  end)

  it("rejects bad URLs and options without echoing them", function()
    local secret = "hunter2-Z"
    for _, url in ipairs({
      "http://:" .. secret .. "@127.0.0.1",
      "redis://:" .. secret .. "@127.0.0.1:0",
      "redis://:" .. secret .. "@127.0.0.1:65536",
      "redis://:" .. secret .. "@",
      "redis://:" .. secret .. "@127.0.0.1/abc",
      "redis://:" .. secret .. "@127.0.0.1/0?x=1",
      "redis://" .. secret .. "@127.0.0.1",
      "redis://:%zz" .. secret .. "@127.0.0.1",
      "redis://[::1",
      "redis://127.0.0.1:6379\0",
    }) do
      local msg = errmsg(pcall(core.limiter_redis, url, "a"))
      assert.matches("bad argument #1", msg)
      assert.is_nil(msg:find(secret, 1, true), msg)
    end
    assert.matches("url must be a string", errmsg(pcall(core.limiter_redis, nil, "a")))
    assert.matches("bad argument #2 .*account must be a string", errmsg(pcall(core.limiter_redis, srv.url)))
    assert.matches("bad argument #3 .*opts must be a table", errmsg(pcall(core.limiter_redis, srv.url, "a", "x")))
    assert.matches("bad argument #3 .*opts.timeout", errmsg(pcall(core.limiter_redis, srv.url, "a", { timeout = 0 })))
    assert.matches("bad argument #3 .*opts.connect_timeout",
      errmsg(pcall(core.limiter_redis, srv.url, "a", { connect_timeout = "1" })))
    assert.matches("bad argument #3 .*opts.ttl", errmsg(pcall(core.limiter_redis, srv.url, "a", { ttl = 1.5 })))
    assert.matches("bad argument #3 .*unknown option 'tiemout'",
      errmsg(pcall(core.limiter_redis, srv.url, "a", { tiemout = 1 })))
    -- [IPv6] hosts and a bare host parse (nothing listens there: the call fails, fast).
    for _, url in ipairs({ "redis://[::1]:1", "redis://127.0.0.1:1/" }) do
      local lim = core.limiter_redis(url, "a", { connect_timeout = 0.5 })
      local w, err = lim:acquire()
      assert.is_nil(w)
      assert.matches("^redis: connect ", err)
      lim:close()
    end
    local lim = new()
    assert.matches("^audience%.limiter%.redis %(0x", tostring(lim))
    assert.matches("bad argument #2", errmsg(pcall(lim.configure, lim, 0, 1)))
    assert.matches("bad argument #2", errmsg(pcall(lim.penalize, lim)))
    lim:close()
    lim:close()
    assert.matches("limiter is closed", errmsg(pcall(lim.state, lim)))
    assert.equal("audience.limiter.redis (closed)", tostring(lim))
  end)

  it("returns nil, 'redis: ...' fast when Redis is down, and recovers after a restart", function()
    local name = account()
    local lim = new(name)
    assert.is_nil(lim:configure(2, 60))
    assert.equal(0, lim:acquire())
    srv:kill()
    local calls = {
      function() return lim:acquire() end,
      function() return lim:state() end,
      function() return lim:observe(10, 5, core.now() + 10) end,
      function() return lim:penalize(core.now() + 1) end,
      function() return lim:configure(1, 60) end,
    }
    for i, call in ipairs(calls) do
      local t0 = core.monotonic()
      local r, err = call()
      local elapsed = core.monotonic() - t0
      assert.is_nil(r, "call " .. i)
      assert.matches("^redis: ", err)
      assert.is_true(elapsed < 1.2, "call " .. i .. " took " .. elapsed)
    end
    srv:restart() -- same port, empty data
    assert.equal(0, lim:acquire())
    -- configure(1, 60) failed while Redis was down, yet it is applied now (with 2/60
    -- re-applied too, the tighter one wins).
    local s = lim:state()
    assert.equal(1, s.budget_limit)
    assert.is_true(lim:acquire() > 0)
    -- A restart between two calls: the first call on the dead connection reconnects
    -- and succeeds instead of reporting the stale socket.
    srv:restart()
    assert.equal(0, lim:acquire())
    lim:close()
  end)

  it("times out on a server that stops answering, then reconnects", function()
    local lim = new(nil, { timeout = 0.3 })
    assert.equal(0, lim:acquire())
    srv:pause()
    local t0 = core.monotonic()
    local w, err = lim:acquire()
    local elapsed = core.monotonic() - t0
    srv:resume()
    assert.is_nil(w)
    assert.matches("^redis: .*timed out after 0%.3 s", err)
    assert.is_true(elapsed >= 0.25 and elapsed < 1.5, "took " .. elapsed)
    assert.equal(0, lim:acquire())
    lim:close()
  end)

  it("keeps one deadline for a whole call, against a server dripping a byte per 0.2 s", function()
    -- A child accepts, reads the command and answers one byte every 0.2 s: a timeout
    -- per read() would let it hold the call for as long as it likes.
    local script = temp_path()
    write_file(script, [[
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.stdout:write(port, "\n"); io.stdout:flush()
local conn = server:accept()
conn:settimeout(0.05)
conn:receive(1)
local reply = "$100\r\n" .. string.rep("x", 100) .. "\r\n"
for i = 1, #reply do
  socket.sleep(0.2)
  if not conn:send(reply:sub(i, i)) then break end
end
]])
    local child = assert(io.popen("exec " .. CHILD_LUA .. " " .. shell_quote(script), "r"))
    local port = assert(tonumber(child:read("*l")))
    local lim = core.limiter_redis("redis://127.0.0.1:" .. port, account(), { timeout = 0.5 })
    local t0 = core.monotonic()
    local w, err = lim:acquire()
    local elapsed = core.monotonic() - t0
    lim:close()
    child:close()
    assert.is_nil(w)
    assert.matches("^redis: .*timed out after 0%.5 s", err)
    assert.is_true(elapsed >= 0.45 and elapsed < 1.0, "took " .. elapsed)
  end)

  it("refuses rediss:// clearly, without the URL", function()
    local msg = errmsg(pcall(core.limiter_redis, "rediss://:S3cretPass@127.0.0.1:6380", "a"))
    assert.matches("TLS to Redis is not supported by this build", msg)
    assert.is_nil(msg:find("S3cretPass", 1, true), msg)
  end)

  it("works the same under a decimal-comma locale (LC_NUMERIC=de_DE.UTF-8)", function()
    assert(os.setlocale("de_DE.UTF-8", "numeric") or os.setlocale("de_DE.utf8", "numeric"),
      "the de_DE.UTF-8 locale is missing (scripts/install-deps.sh generates it)")
    -- Lua 5.4 formats through the C library, so this shows the locale took; LuaJIT
    -- formats numbers itself, but the core's C code still sees the locale.
    if not LUAJIT then assert.equal("1,5", string.format("%.1f", 1.5)) end
    local ok, err = pcall(function()
      local lim = new()
      assert_same_sequence(expected_sequence(), run_sequence(lim))
      lim:configure(10, 1)
      lim:observe(100, 42, core.now() + 30.25)
      local s = lim:state()
      assert.equal(42, s.remaining)
      assert.is_true(math.abs(s.reset_at - (core.now() + 30.25)) < 1)
      lim:close()
    end)
    os.setlocale("C", "numeric")
    assert(ok, err)
  end)

  it("times out on a listener that never answers", function()
    local server = assert(socket.bind("127.0.0.1", 0)) -- listens, never accepts
    local _, port = server:getsockname()
    local lim = core.limiter_redis("redis://127.0.0.1:" .. port, account(), { timeout = 0.2, connect_timeout = 0.2 })
    local t0 = core.monotonic()
    local w, err = lim:acquire()
    local elapsed = core.monotonic() - t0
    assert.is_nil(w)
    assert.matches("^redis: ", err)
    assert.is_true(elapsed < 1, "took " .. elapsed)
    lim:close()
    server:close()
  end)
end)
