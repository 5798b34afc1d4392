-- audience inside Debian's nginx + lua-nginx-module: calls do not block the worker, the
-- account quota is shared by all workers through a lua_shared_dict, and calls from
-- phases that cannot wait fail with a clear error.
local mockserver = require "support.mockserver"
local nginx = require "support.nginx"
local core = require "audience.core"

local function app_conf(mock, extra)
  local settings = {
    api_key = "test-key", base_url = mock.url,
    rate_limit = extra and extra.rate_limit or nil,
  }
  return {
    workers = extra and extra.workers or 1,
    http = ([[
  lua_shared_dict quota 1m;
  lua_shared_dict results 1m;
  init_by_lua_block { require("openresty.app").configure(%s) }
]]):format(require("support.lua_literal")(settings)),
    server = [[
    location = /ping { content_by_lua_block { require("openresty.app").ping() } }
    location = /call { content_by_lua_block { require("openresty.app").call() } }
    location = /walk { content_by_lua_block { require("openresty.app").walk() } }
    location = /timer { content_by_lua_block { require("openresty.app").from_timer() } }
    location = /result/timer { content_by_lua_block { require("openresty.app").result("timer") } }
    location = /result/log { content_by_lua_block { require("openresty.app").result("log") } }
    location = /log-phase {
      content_by_lua_block { ngx.say("ok") }
      log_by_lua_block { require("openresty.app").call_in_log_phase() }
    }
]],
  }
end

local function get(url, timeout)
  return mockserver.request("GET", url, { timeout = timeout or 10 })
end

describe("OpenResty", function()
  local mock

  setup(function() mock = mockserver.start("systeme") end)
  teardown(function() if mock then mock:stop() end end)

  describe("one worker", function()
    local app
    setup(function() app = nginx.start(app_conf(mock)) end)
    teardown(function() if app then app:stop() end end)
    before_each(function() mock:reset() end)

    it("answers /ping in under 100 ms while a handler waits 1 s on the API", function()
      mock:fault{ match = "/api/tags", method = "GET", times = 1, action = { delay = 1 } }
      local slow = assert(io.popen(("curl -s -m 10 %s/call"):format(app.url)))
      local socket = require "socket"
      socket.sleep(0.15)  -- the slow call is now waiting on the mock
      local worst = 0
      for _ = 1, 20 do
        local t0 = core.monotonic()
        local res = get(app.url .. "/ping", 2)
        local took = core.monotonic() - t0
        assert.equal(200, res.status)
        worst = math.max(worst, took)
      end
      local slow_answer = slow:read("a")
      slow:close()
      assert.is_true(worst < 0.1, ("slowest /ping took %.0f ms"):format(worst * 1000))
      assert.matches("^ok", slow_answer)
      -- The slow call really was in flight while /ping answered.
      assert.equal(1, mock:stats().requests)
    end)

    it("pages with each() inside a handler", function()
      mock:seed("contacts", 35)
      local res = get(app.url .. "/walk")
      assert.equal(200, res.status)
      assert.equal("35\n", res.body)
    end)

    it("works from a timer", function()
      local res = get(app.url .. "/timer")
      assert.equal("scheduled\n", res.body)
      local answer
      for _ = 1, 50 do
        answer = get(app.url .. "/result/timer").body
        if answer ~= "none\n" then break end
        require("socket").sleep(0.05)
      end
      assert.equal("ok 0\n", answer)
    end)

    it("refuses to call from log_by_lua, pointing at ngx.timer.at", function()
      get(app.url .. "/log-phase")
      local answer
      for _ = 1, 50 do
        answer = get(app.url .. "/result/log").body
        if answer ~= "none\n" then break end
        require("socket").sleep(0.05)
      end
      assert.matches("log phase", answer)
      assert.matches("ngx.timer.at", answer, 1, true)
    end)

    it("retries inside nginx too", function()
      mock:fault{ match = "/api/tags", method = "GET", times = 1, action = { status = 503 } }
      local res = get(app.url .. "/call")
      assert.equal(200, res.status)
      assert.equal(2, mock:stats().requests)
    end)
  end)

  -- Every worker starts blind at the same instant (curl --parallel-immediate opens all
  -- 200 connections at once), so the probe, the roll-over hold and the lock around
  -- the shared state are all that keep the account within its quota.
  local function burst(url, n)
    local list = os.tmpname()
    local f = assert(io.open(list, "w"))
    for _ = 1, n do f:write(('url = "%s/call"\noutput = "/dev/null"\n'):format(url)) end
    f:close()
    local p = assert(io.popen(("curl -s --no-progress-meter -Z --parallel-immediate --parallel-max %d -m 60 "
      .. "-w '%%{http_code}\\n' -K %q"):format(n, list)))
    local codes = {}
    for line in p:lines() do codes[line] = (codes[line] or 0) + 1 end
    p:close()
    os.remove(list)
    return codes
  end

  for _, variant in ipairs({
    { name = "with a client budget", rate_limit = { store = "ngx:quota", limit = 50, per = 2, account = "acme" } },
    -- As examples/openresty configures it: only the server's headers to go by.
    { name = "without a client budget", rate_limit = { store = "ngx:quota", account = "acme" } },
  }) do
    describe("four workers sharing a quota, " .. variant.name, function()
      local app
      setup(function()
        mock:reset{ accounts = { acme = { keys = { "test-key" }, limit = 50, per = 2 } } }
        app = nginx.start(app_conf(mock, { workers = 4, rate_limit = variant.rate_limit }))
      end)
      teardown(function() if app then app:stop() end end)

      it("200 simultaneous requests, one API call each, quota 50 per 2 s: all succeed, no 429", function()
        mock:reset{ accounts = { acme = { keys = { "test-key" }, limit = 50, per = 2 } } }
        local codes = burst(app.url, 200)
        assert.same({ ["200"] = 200 }, codes)
        local stats = mock:stats()
        assert.equal(0, stats.rate_limited)
        assert.equal(200, stats.requests)
      end)
    end)
  end
end)

describe("OpenResty reload", function()
  local mock, app

  setup(function()
    mock = mockserver.start("systeme")
    app = nginx.start(app_conf(mock))
  end)
  teardown(function()
    if app then app:stop() end
    if mock then mock:stop() end
  end)

  it("nginx -s reload with 200 calls in flight: every call is answered", function()
    mock:fault{ match = "/api/tags", method = "GET", times = 200, action = { delay = 2 } }
    local list = os.tmpname()
    local f = assert(io.open(list, "w"))
    for _ = 1, 200 do f:write(('url = "%s/call"\noutput = "/dev/null"\n'):format(app.url)) end
    f:close()
    local p = assert(io.popen(("curl -s --no-progress-meter -Z --parallel-max 200 -m 60 -w '%%{http_code}\\n' -K %q")
      :format(list)))
    -- Reload once every call has reached the API and waits on it.
    local in_flight = 0
    for _ = 1, 100 do
      in_flight = mock:stats().requests
      if in_flight >= 200 then break end
      require("socket").sleep(0.05)
    end
    app:reload()
    local codes = {}
    for line in p:lines() do codes[line] = (codes[line] or 0) + 1 end
    p:close()
    os.remove(list)
    assert.equal(200, in_flight)
    assert.same({ ["200"] = 200 }, codes)
    -- The new workers answer too.
    assert.equal(200, get(app.url .. "/call").status)
  end)
end)

describe("examples/openresty", function()
  local mock, dir, pid_file

  local sh = nginx.sh

  setup(function()
    nginx.build_core()
    mock = mockserver.start("systeme")
    local _, out = sh("mktemp -d /tmp/audience-example.XXXXXX")
    dir = out:gsub("%s+$", "")
    sh(("cp %s/examples/openresty/* %q/ && mkdir -p %q/logs"):format(nginx.root, dir, dir))
  end)

  teardown(function()
    if pid_file then
      sh(("kill -QUIT $(cat %q 2>/dev/null) 2>/dev/null; sleep 0.3; kill -KILL $(cat %q 2>/dev/null) 2>/dev/null")
        :format(pid_file, pid_file))
    end
    local crashed = {}
    if dir then
      local f = io.open(dir .. "/logs/error.log")
      if f then
        crashed = nginx.crashes(f:read("a"))
        f:close()
      end
      sh(("rm -rf %q"):format(dir))
    end
    if mock then mock:stop() end
    assert(#crashed == 0, "nginx worker crashed:\n" .. table.concat(crashed, "\n"))
  end)

  it("passes nginx -t as shipped", function()
    local ok, out = sh(("nginx -t -p %q/ -c nginx.conf"):format(dir))
    assert.is_true(ok, out)
    assert.matches("syntax is ok", out)
  end)

  it("signs up a contact and tags it, through the Systeme.io mock", function()
    local port = mockserver.free_port()
    local f = assert(io.open(dir .. "/nginx.conf"))
    local conf = f:read("a")
    f:close()
    local _, uid = sh("id -u")
    local root = nginx.root
    conf = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
      :gsub("http {", ('http {\n    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";\n'
        .. '    lua_package_cpath "%s/build/luajit/?.so;;";'):format(root, root, root), 1)
    if tonumber(uid) == 0 then conf = "user root;\n" .. conf end
    f = assert(io.open(dir .. "/run.conf", "w"))
    f:write(conf)
    f:close()
    pid_file = dir .. "/logs/nginx.pid"
    local ok, out = sh(("SYSTEME_API_KEY=test-key SYSTEME_BASE_URL=%q nginx -p %q/ -c run.conf")
      :format(mock.url, dir))
    assert.is_true(ok, out)
    local url = "http://127.0.0.1:" .. port .. "/signup"
    local first
    for _ = 1, 50 do
      first = mockserver.request("POST", url, { body = "email=ada%40example.com&first_name=Ada",
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      if first and first.status ~= nil then break end
      require("socket").sleep(0.05)
    end
    assert.equal(201, first.status, first.body)
    local again = mockserver.request("POST", url, { body = "email=ada%40example.com&first_name=Ada+L",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    assert.equal(200, again.status, again.body)
    local bad = mockserver.request("POST", url, { body = "email=nope",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    assert.equal(400, bad.status)
    local contacts = mock:data("contacts")
    assert.equal(1, #contacts)
    assert.equal("ada@example.com", contacts[1].email)
    assert.equal("signup", contacts[1].tags[1].name)
  end)
end)
