-- The provider clients inside nginx, on the ngx transport (cosockets and the core's
-- HTTP/1.1 codec): the basic flows of the three providers, retries, quota waits,
-- errors and secret scrubbing, each snippet run in an nginx worker through
-- support.ngx_run and, where the answer is deterministic, also in plain Lua on the
-- curl transport, the two results compared.
local mockserver = require "support.mockserver"
local ngx_run = require "support.ngx_run"

local SYS_KEY = "sk-SECRET-systeme-ngx-0123456789"
local CM_TOKEN, CM_SECRET = "sk-SECRET-cm-token-ngx", "sk-SECRET-cm-shared-ngx"
local SF_KEY = "sk-SECRET-sf-ngx-0123456789"

-- Runs code with ARGS in this process, as the snippet would run in nginx.
local function run_here(code, args)
  local literal = require "support.lua_literal"
  local chunk = assert(load("local ARGS = " .. literal(args) .. "\n" .. code, "=snippet"))
  return chunk()
end

-- Plain values only, as they cross from nginx (see openresty/runner.lua).
local function plain(v, seen)
  seen = seen or {}
  local t = type(v)
  if t == "table" then
    if seen[v] then return "<cycle>" end
    seen[v] = true
    local out = {}
    for k, x in pairs(v) do if type(x) ~= "function" then out[plain(k, seen)] = plain(x, seen) end end
    seen[v] = nil
    return out
  end
  if t == "userdata" or t == "function" or t == "thread" then return "<" .. t .. ">" end
  return v
end

local function find_secret(v, secrets, where)
  where = where or "value"
  if type(v) == "string" then
    for _, s in ipairs(secrets) do
      if v:find(s, 1, true) then return where .. " contains " .. s end
    end
  elseif type(v) == "table" then
    for k, x in pairs(v) do
      local hit = find_secret(k, secrets, where .. " (key)") or find_secret(x, secrets, where .. "." .. tostring(k))
      if hit then return hit end
    end
  end
  return nil
end

describe("ngx transport", function()
  local box, sys_mock, cm_mock, sf_mock

  setup(function()
    sys_mock = mockserver.start("systeme")
    cm_mock = mockserver.start("creamailer")
    sf_mock = mockserver.start("subscribeflow")
    box = ngx_run.start()
  end)

  teardown(function()
    if box then box:stop() end
    for _, m in ipairs{ sys_mock, cm_mock, sf_mock } do m:stop() end
  end)

  local SYS_ACCOUNTS = { accounts = { default = { keys = { SYS_KEY }, limit = 100000, per = 60 } } }
  before_each(function()
    sys_mock:reset(SYS_ACCOUNTS)
    cm_mock:reset{ accounts = { default = { token = CM_TOKEN, secret = CM_SECRET, limit = 100000, per = 3600 } } }
    sf_mock:reset{ accounts = { default = { keys = { SF_KEY }, limit = 100000, per = 60 } } }
  end)

  local SYS = [[
    local audience = require "audience"
    local sys = audience.systeme{ api_key = ARGS.key, base_url = ARGS.url, timeout = ARGS.timeout or 5,
      retries = ARGS.retries, backoff = { base = 0.05, max = 0.2 }, max_body = ARGS.max_body,
      proxy = ARGS.proxy }
  ]]

  -- The snippet in nginx and here, against a freshly reset mock each time.
  local function both(mock, reset, code, args)
    mock:reset(reset)
    local here = plain({ run_here(code, args) })
    mock:reset(reset)
    local there = { box:run(code, args) }
    return here, there
  end

  it("checks the pool options like the others, and knows no thread_pool any more", function()
    local audience = require "audience"
    local function try(o)
      o.api_key = SYS_KEY
      local ok, err = pcall(audience.systeme, o)
      return ok or err
    end
    assert.is_true(try{ keepalive_pool = 10, keepalive_timeout = 5 })
    assert.matches("bad option 'keepalive_pool' %(positive integer expected", try{ keepalive_pool = 0 })
    assert.matches("bad option 'keepalive_timeout' %(positive number expected", try{ keepalive_timeout = "x" })
    assert.matches("unknown option 'thread_pool'", try{ thread_pool = "audience" })
  end)

  it("picks the ngx transport by itself inside nginx", function()
    local name = box:run(SYS .. [[ return sys._transport_name ]], { key = SYS_KEY, url = sys_mock.url })
    assert.equal("ngx", name)
  end)

  it("systeme: creates, reads, tags, lists and deletes a contact, as in plain Lua", function()
    local code = SYS .. [[
      local c = assert(sys.contacts:create{ email = "ada@example.com", locale = "en" })
      local got = assert(sys.contacts:get(c.id))
      local tag = assert(sys.tags:create{ name = "vip" })
      assert(sys.contacts:add_tag(c.id, tag.id))
      local page = assert(sys.contacts:list{ limit = 10 })
      local deleted = sys.contacts:delete(c.id)
      local _, gone = sys.contacts:get(c.id)
      return got.email, got.locale, #page.items, deleted, gone.kind, gone.status
    ]]
    local here, there = both(sys_mock, SYS_ACCOUNTS, code, { key = SYS_KEY, url = sys_mock.url })
    assert.same({ "ada@example.com", "en", 1, true, "not_found", 404 }, there)
    assert.same(here, there)
  end)

  it("systeme: pages with each()", function()
    sys_mock:seed("contacts", 35)
    local n = box:run(SYS .. [[
      local n = 0
      for _ in sys.contacts:each{ limit = 10 } do n = n + 1 end
      return n
    ]], { key = SYS_KEY, url = sys_mock.url })
    assert.equal(35, n)
  end)

  it("creamailer v1 and v2: signed list and subscriber calls, as in plain Lua", function()
    for _, version in ipairs{ 1, 2 } do
      local code = [[
        local cm = require("audience").creamailer{ access_token = ARGS.token, shared_secret = ARGS.secret,
          version = ARGS.version, base_url = ARGS.url, timeout = 5,
          rate_limit = { limit = 10000, per = 1, account = "ngx-cm-" .. ARGS.version } }
        local list = assert(cm.lists:create{ name = "Newsletter", language = "en" })
        local got = assert(cm.lists:get(list.id))
        local all = assert(cm.lists:list())
        return got.name, #all.items
      ]]
      local args = { token = CM_TOKEN, secret = CM_SECRET, version = version,
        url = version == 2 and (cm_mock.root .. "/v2/api") or cm_mock.url }
      local reset = { accounts = { default = { token = CM_TOKEN, secret = CM_SECRET, limit = 100000, per = 3600 } } }
      local here, there = both(cm_mock, reset, code, args)
      assert.same({ "Newsletter", 1 }, there)
      assert.same(here, there)
    end
  end)

  it("subscribeflow: creates, updates and deletes a subscriber, as in plain Lua", function()
    local code = [[
      local sf = require("audience").subscribeflow{ api_key = ARGS.key, base_url = ARGS.url, timeout = 5 }
      local s = assert(sf.subscribers:create{ email = "ada@example.com", metadata = { plan = "pro" } })
      local u = assert(sf.subscribers:update(s.id, { status = "unsubscribed" }))
      local deleted = sf.subscribers:delete(s.id)
      local _, err = sf.subscribers:get(s.id)
      return s.email, u.status, deleted, err.kind, err.code
    ]]
    local reset = { accounts = { default = { keys = { SF_KEY }, limit = 100000, per = 60 } } }
    local here, there = both(sf_mock, reset, code, { key = SF_KEY, url = sf_mock.url })
    assert.same({ "ada@example.com", "unsubscribed", true, "not_found", "not_found" }, there)
    assert.same(here, there)
  end)

  it("retries a 503, honouring Retry-After with ngx.sleep", function()
    sys_mock:fault{ match = "/api/tags", method = "GET", times = 1,
      action = { status = 503, headers = { ["Retry-After"] = "1" } } }
    local n, took = box:run(SYS .. [[
      local t0 = ngx.now()
      local page = assert(sys.tags:list())
      ngx.update_time()
      return #page.items, ngx.now() - t0
    ]], { key = SYS_KEY, url = sys_mock.url })
    assert.equal(0, n)
    assert.is_true(took >= 0.9, "waited " .. took)
    assert.equal(2, sys_mock:stats().requests)
  end)

  it("a POST reset after it was sent: network error, resent once on a fresh connection only", function()
    local code = SYS .. [[
      assert(sys.tags:list())   -- leaves a pooled connection behind
      local _, err = sys.tags:create{ name = "x" }
      return err.kind, err.message ~= nil
    ]]
    local function fault()
      sys_mock:fault{ match = "/api/tags", method = "POST", times = 2, action = { reset = true } }
    end
    fault()
    local there = { box:run(code, { key = SYS_KEY, url = sys_mock.url }) }
    local there_requests = sys_mock:stats().requests
    sys_mock:reset(SYS_ACCOUNTS)
    fault()
    local here = { run_here(code, { key = SYS_KEY, url = sys_mock.url }) }
    assert.same({ "network", true }, there)
    assert.same(here, there)
    -- The list, the POST on the pooled connection, its one resend: as libcurl does.
    assert.equal(3, there_requests)
    assert.equal(there_requests, sys_mock:stats().requests)
  end)

  it("maps failures to the same kinds as the curl transport", function()
    local code = SYS .. [[
      local out = {}
      local function kind(f) local _, e = f(); return e and (e.code or e.kind) or "ok" end
      out.validation = kind(function() return sys.contacts:create{ email = "not an email" } end)
      out.timeout = kind(function() return sys.tags:list() end)          -- the mock stalls 2 s
      out.truncated = kind(function() return sys.tags:list() end)
      out.huge = kind(function() return sys.tags:list() end)
      out.malformed = kind(function() return sys.tags:list() end)
      local dead = require("audience").systeme{ api_key = ARGS.key, base_url = ARGS.dead, retries = 0 }
      local _, e = dead.tags:list()
      out.refused = e.kind
      return out
    ]]
    local function faults()
      sys_mock:fault{ match = "/api/tags", method = "GET", times = 3, action = { delay = 2 } }
      sys_mock:fault{ match = "/api/tags", method = "GET", times = 3, action = { truncated = true } }
      sys_mock:fault{ match = "/api/tags", method = "GET", times = 1, action = { huge = 4096 } }
      sys_mock:fault{ match = "/api/tags", method = "GET", times = 1, action = { malformed = true } }
    end
    local args = { key = SYS_KEY, url = sys_mock.url, timeout = 0.5, retries = 2, max_body = 1024,
      dead = "http://127.0.0.1:" .. mockserver.free_port() }
    faults()
    local there = box:run(code, args, 60)
    sys_mock:reset(SYS_ACCOUNTS)
    faults()
    local here = run_here(code, args)
    assert.same({ validation = "validation", timeout = "timeout", truncated = "network",
      huge = "too_large", malformed = "decode", refused = "network" }, there)
    assert.same(here, there)
  end)

  it("never shows the credentials in errors, hooks or responses", function()
    sys_mock:fault{ match = "/api/tags", method = "GET", times = 1,
      action = { status = 401, body = { detail = "Invalid API Key " .. SYS_KEY } } }
    sys_mock:fault{ match = "/api/tags", method = "GET", times = 3, action = { status = 503,
      body = "<p>down for " .. SYS_KEY .. "</p>" } }
    local seen = box:run([[
      local seen = { requests = {}, responses = {} }
      local sys = require("audience").systeme{ api_key = ARGS.key, base_url = ARGS.url, timeout = 5,
        backoff = { base = 0.01, max = 0.02 },
        on_request = function(info) seen.requests[#seen.requests + 1] = info end,
        on_response = function(info) seen.responses[#seen.responses + 1] = info end }
      local _, e1 = sys.tags:list()
      local _, e2 = sys.tags:list()
      local _, e3 = sys:request("GET", "/contacts/" .. ARGS.key)
      seen.errors = { e1, e2, e3, tostring(e1), tostring(e2), tostring(e3) }
      seen.last = sys.last_response
      return seen
    ]], { key = SYS_KEY, url = sys_mock.url })
    assert.equal("auth", seen.errors[1].kind)
    assert.equal("server", seen.errors[2].kind)
    assert.is_true(#seen.requests >= 5)
    assert.equal("[REDACTED]", seen.requests[1].headers["X-API-Key"])
    local hit = find_secret(seen, { SYS_KEY })
    assert.is_nil(hit, hit)
  end)

  it("client:parallel runs on light threads with the same results as in plain Lua", function()
    local code = SYS .. [[
      local calls = {}
      for i = 1, 30 do
        calls[i] = function()
          if i % 10 == 0 then return sys:request("GET", "/contacts/999999") end
          return sys.tags:create{ name = "t" .. i }
        end
      end
      local out = {}
      for i, r in ipairs(sys:parallel(calls, { concurrency = 8 })) do
        out[i] = r.err and r.err.kind or r.value.name
      end
      return out
    ]]
    local here, there = both(sys_mock, SYS_ACCOUNTS, code, { key = SYS_KEY, url = sys_mock.url })
    assert.equal("t1", there[1][1])
    assert.equal("not_found", there[1][10])
    assert.equal(30, #there[1])
    assert.same(here, there)
  end)

  it("goes through an http proxy in absolute-form, its credentials kept out of errors", function()
    local PROXY_PASS = "sk-SECRET-proxy:pass@word"
    local proxy = require("support.proxy").start{ user = "proxy-user", password = PROXY_PASS }
    local ok, failure = pcall(function()
      local n = box:run(SYS .. [[ return #assert(sys.tags:list()).items ]],
        { key = SYS_KEY, url = sys_mock.url, proxy = proxy.url })
      assert.equal(0, n)
      assert.same({ ("GET %s/tags auth=ok"):format(sys_mock.url) }, proxy:log())
      -- Wrong credentials: the proxy's 407 comes back as an error without them.
      local wrong = proxy.url:gsub("proxy%-user", "someone-else")
      local err = box:run(SYS .. [[ local _, e = sys.tags:list(); return e, tostring(e) ]],
        { key = SYS_KEY, url = sys_mock.url, proxy = wrong, retries = 0 })
      assert.equal(407, err.status)
      -- A proxy that is not there: a network error naming its address only.
      local dead = "http://proxy-user:" .. PROXY_PASS:gsub("[:@]", function(c) return ("%%%02X"):format(c:byte()) end)
        .. "@127.0.0.1:" .. mockserver.free_port()
      local derr, dtext = box:run(SYS .. [[ local _, e = sys.tags:list(); return e, tostring(e) ]],
        { key = SYS_KEY, url = sys_mock.url, proxy = dead, retries = 0 })
      assert.equal("network", derr.kind)
      assert.matches("127.0.0.1:", dtext, 1, true)
      local hit = find_secret({ err, derr, dtext }, { PROXY_PASS, "sk-SECRET-proxy" })
      assert.is_nil(hit, hit)
    end)
    proxy:stop()
    assert(ok, failure)
  end)

  it("raises inside nginx for ca_file, pointing at lua_ssl_trusted_certificate", function()
    local ok, err = box:try(SYS:gsub("timeout = ARGS.timeout or 5,", "timeout = 5, ca_file = '/tmp/ca.pem',"),
      { key = SYS_KEY, url = sys_mock.url })
    assert.is_false(ok)
    assert.matches("lua_ssl_trusted_certificate", err)
  end)

  it("names the resolver directive when nginx has none to resolve a host name", function()
    local ok, err = box:try(SYS .. [[ return sys.tags:list() ]],
      { key = SYS_KEY, url = "http://api.example.invalid/api" })
    assert.is_false(ok)
    assert.matches("`resolver`", err)
  end)
end)
