-- The Redis quota store inside nginx (lua/audience/redis_ngx.lua): the compare-and-swap
-- of src/redis_cas.c over ngx.socket.tcp cosockets. Several workers share a quota
-- through a password-protected Redis; a Redis that is down or stuck fails within the
-- deadline with "redis: ..." and never blocks the worker; no secret shows in any error.
local mockserver = require "support.mockserver"
local nginx = require "support.nginx"
local ngx_run = require "support.ngx_run"
local redis = require "support.redis"
local processes = require "support.processes"
local core = require "audience.core"

local PASSWORD = "S3cret-ngx-Pass"

local function get(url, timeout)
  return mockserver.request("GET", url, { timeout = timeout or 10 })
end

local function no_secret(text)
  assert.is_nil(tostring(text):find(PASSWORD, 1, true), "the password shows in: " .. tostring(text))
end

describe("the Redis quota store inside nginx", function()
  if not redis.available() then
    it("needs redis-server", function() pending("redis-server is not installed") end)
    return
  end

  local srv
  setup(function() srv = redis.start{ password = PASSWORD } end)
  teardown(function() if srv then srv:stop() end end)

  describe("one worker", function()
    local box
    setup(function() box = ngx_run.start() end)
    teardown(function()
      if box then
        local log = box:error_log()
        box:stop()
        no_secret(log)
      end
    end)

    it("is picked for transport \"ngx\" and keeps the state in Redis", function()
      local kind, wait, st = box:run([[
        local lim = require("audience.limiter").new("k:pick", { store = ARGS.url }, "ngx")
        local wait = assert(lim:acquire(nil, true))
        assert(lim:observe(50, 40, ngx.now() + 60) == nil)
        return tostring(lim), wait, lim:state()
      ]], { url = srv.url })
      assert.matches("cosocket", kind)
      assert.equal(0, wait)
      assert.equal(50, st.limit)
      assert.equal(40, st.remaining)
      local blob = srv:command("GET", "audience:rl:k:pick")
      assert.equal("ARL4", blob:sub(1, 4))
    end)

    it("keeps one authenticated connection per worker in the pool", function()
      local before = srv:command("INFO", "stats"):match("total_connections_received:(%d+)")
      box:run([[
        local lim = require("audience.limiter").new("k:pool", { store = ARGS.url }, "ngx")
        for _ = 1, 20 do assert(lim:acquire()) end
      ]], { url = srv.url })
      local after = srv:command("INFO", "stats"):match("total_connections_received:(%d+)")
      -- The spec's own INFO connection counts one.
      assert.is_true(tonumber(after) - tonumber(before) <= 2, before .. " -> " .. after)
    end)

    it("after a Redis restart, pooled connections that died are passed over", function()
      local code = [[
        local lims = {}
        for i = 1, 4 do lims[i] = require("audience.limiter").new("k:restart", { store = ARGS.url }, "ngx") end
        -- Four calls at once fill the pool with four connections.
        local threads = {}
        for i = 1, 4 do threads[i] = ngx.thread.spawn(function() return lims[i]:acquire() end) end
        local out = {}
        for i = 1, 4 do
          local _, wait, err = ngx.thread.wait(threads[i])
          out[i] = wait or err
        end
        return out
      ]]
      assert.same({ 0, 0, 0, 0 }, box:run(code, { url = srv.url }))
      srv:restart()
      local wait, err = box:run([[
        return require("audience.limiter").new("k:restart", { store = ARGS.url }, "ngx"):acquire()
      ]], { url = srv.url })
      assert.equal(0, wait, err)
      assert.same({ 0, 0, 0, 0 }, box:run(code, { url = srv.url }))
    end)

    it("selects the URL's database", function()
      box:run([[
        local lim = require("audience.limiter").new("k:db", { store = ARGS.url .. "/3" }, "ngx")
        assert(lim:acquire())
      ]], { url = srv.url })
      assert.is_nil(srv:command("GET", "audience:rl:k:db"))
      assert.equal(1, srv:command("EVAL", "redis.call('SELECT', 3) return redis.call('EXISTS', KEYS[1])",
        1, "audience:rl:k:db"))
    end)

    it("a Redis that is down: nil, \"redis: ...\" at once, and a quota_store error from the client", function()
      local port = redis.free_port()
      local url = ("redis://:%s@127.0.0.1:%d"):format(PASSWORD, port)
      local took, wait, err, call_err = box:run([[
        local t0 = ngx.now()
        local lim = require("audience.limiter").new("k:down", { store = ARGS.url }, "ngx")
        local wait, err = lim:acquire()
        ngx.update_time()
        local took = ngx.now() - t0
        local sys = require("audience").systeme{ api_key = "k", base_url = "http://127.0.0.1:1",
          transport = "ngx", rate_limit = { store = ARGS.url } }
        local page, call_err = sys.tags:list()
        assert(page == nil)
        return took, wait, err, { kind = call_err.kind, code = call_err.code, message = call_err.message }
      ]], { url = url })
      assert.is_nil(wait)
      assert.matches("^redis: connect 127%.0%.0%.1:" .. port .. ": ", err)
      assert.is_true(took < 0.5, ("took %.3f s"):format(took))
      assert.equal("network", call_err.kind)
      assert.equal("quota_store", call_err.code)
      no_secret(err)
      no_secret(call_err.message)
    end)

    it("a wrong password: the AUTH refusal, without the password", function()
      local url = ("redis://:%s-wrong@127.0.0.1:%d"):format(PASSWORD, srv.port)
      local wait, err = box:run([[
        local lim = require("audience.limiter").new("k:auth", { store = ARGS.url }, "ngx")
        return lim:acquire()
      ]], { url = url })
      assert.is_nil(wait)
      assert.matches("^redis: AUTH rejected", err)
      no_secret(err)
    end)

    it("rediss:// and a bad URL are refused without echoing it", function()
      local ok1, e1 = box:try([[
        require("audience.limiter").new("k", { store = "rediss://:" .. ARGS.pw .. "@127.0.0.1" }, "ngx")
      ]], { pw = PASSWORD })
      local ok2, e2 = box:try([[
        require("audience.limiter").new("k", { store = "redis://:" .. ARGS.pw .. "@127.0.0.1:99999" }, "ngx")
      ]], { pw = PASSWORD })
      assert.is_false(ok1)
      assert.matches("TLS to Redis is not supported", e1)
      assert.is_false(ok2)
      assert.matches("bad port", e2)
      no_secret(e1)
      no_secret(e2)
    end)
  end)

  describe("a Redis that drips its reply", function()
    local app, group, port
    setup(function()
      port = redis.free_port()
      group = processes.group()
      local root = nginx.root or "."
      group:start(("lua5.4 %s/spec/support/drip_server.lua %d 0.2"):format(root, port))
      for _ = 1, 100 do
        if group:output(1):find("ready", 1, true) then break end
        os.execute("sleep 0.02")
      end
      app = nginx.start{
        workers = 1,
        server = ([[
    location = /ping { content_by_lua_block { ngx.say("pong") } }
    location = /slow { content_by_lua_block {
      local lim = require("audience.limiter").new("k:drip",
        { store = "redis://:%s@127.0.0.1:%d" }, "ngx")
      local t0 = ngx.now()
      local wait, err = lim:acquire()
      ngx.update_time()
      ngx.say(string.format("%%.3f ", ngx.now() - t0), tostring(wait), " ", tostring(err))
    } }
]]):format(PASSWORD, port),
      }
    end)
    teardown(function()
      if app then
        local log = app:error_log()
        app:stop()
        no_secret(log)
      end
      if group then group:cleanup() end
    end)

    it("/ping on the same worker stays fast while a call waits on it; the call ends at its deadline", function()
      assert.truthy(group:output(1):find("ready", 1, true), "the drip server did not start")
      local slow = assert(io.popen(("curl -s -m 10 %s/slow"):format(app.url)))
      require("socket").sleep(0.2) -- the call is now reading the dripping reply
      local worst = 0
      for _ = 1, 20 do
        local t0 = core.monotonic()
        local res = get(app.url .. "/ping", 2)
        worst = math.max(worst, core.monotonic() - t0)
        assert.equal(200, res.status)
      end
      local answer = slow:read("a")
      slow:close()
      assert.is_true(worst < 0.1, ("slowest /ping took %.0f ms"):format(worst * 1000))
      local took, wait, err = answer:match("^(%S+) (%S+) (.-)\n$")
      assert.equal("nil", wait)
      assert.matches("^redis: command 127%.0%.0%.1:%d+: timed out after 1 s$", err)
      -- One deadline for the whole operation, however often a byte arrives.
      assert.is_true(tonumber(took) >= 0.9 and tonumber(took) < 1.5, "took " .. took .. " s")
      no_secret(answer)
    end)
  end)

  -- Every worker starts blind at the same instant; only the probe, the roll-over hold
  -- and the compare-and-swap keep the account within its quota.
  -- The codes, and the distinct bodies of the answers that were not 200 (they say why).
  local function burst(url, n)
    local dir = assert(io.popen("mktemp -d /tmp/audience-burst.XXXXXX")):read("l")
    local list = dir .. "/list"
    local f = assert(io.open(list, "w"))
    for i = 1, n do f:write(('url = "%s/call"\noutput = "%s/%d"\n'):format(url, dir, i)) end
    f:close()
    local p = assert(io.popen(("curl -s --no-progress-meter -Z --parallel-immediate --parallel-max %d -m 60 "
      .. "-w '%%{http_code}\\n' -K %q"):format(n, list)))
    local codes = {}
    for line in p:lines() do codes[line] = (codes[line] or 0) + 1 end
    p:close()
    local why = {}
    for i = 1, n do
      local r = io.open(("%s/%d"):format(dir, i))
      local body = r and r:read("a") or ""
      if r then r:close() end
      if not body:find("^ok") then why[body] = true end
    end
    os.execute(("rm -rf %q"):format(dir))
    local bodies = {}
    for b in pairs(why) do bodies[#bodies + 1] = b end
    return codes, table.concat(bodies, "; ")
  end

  for _, variant in ipairs({
    { name = "with a client budget", limit = 50, per = 2 },
    { name = "without a client budget" },
  }) do
    describe("four workers sharing a quota through Redis, " .. variant.name, function()
      local mock, app
      setup(function()
        mock = mockserver.start("systeme")
        mock:reset{ accounts = { acme = { keys = { "test-key" }, limit = 50, per = 2 } } }
        local settings = {
          api_key = "test-key", base_url = mock.url,
          rate_limit = { store = srv.url, account = "acme-" .. (variant.limit and "b" or "n"),
                         limit = variant.limit, per = variant.per },
        }
        app = nginx.start{
          workers = 4,
          http = ([[
  lua_shared_dict results 1m;
  init_by_lua_block { require("openresty.app").configure(%s) }
]]):format(require("support.lua_literal")(settings)),
          server = [[
    location = /call { content_by_lua_block { require("openresty.app").call() } }
]],
        }
      end)
      teardown(function()
        if app then
          local log = app:error_log()
          app:stop()
          no_secret(log)
        end
        if mock then mock:stop() end
      end)

      it("200 simultaneous requests, quota 50 per 2 s: all succeed, no 429", function()
        local codes, why = burst(app.url, 200)
        assert.same({ ["200"] = 200 }, codes, why)
        local stats = mock:stats()
        assert.equal(0, stats.rate_limited)
        assert.equal(200, stats.requests)
      end)
    end)
  end
end)
