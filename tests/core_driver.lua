-- Run by tests/core_driver (not by busted) under valgrind: a walk through every part of
-- the C core, so that "All heap blocks were freed" after it speaks for all of them:
-- HTTP and HTTPS against the mock servers (headers, bodies, faults, timeouts, TLS
-- failures), query building, Retry-After and rate headers, the limiter registry,
-- digests, Creamailer signatures and webhook signatures, directly and through the
-- Lua layer. Needs LUA_PATH with lua/ and spec/ (scripts/valgrind-specs.sh sets it).
local core = require "audience.core"
local audience = require "audience"
local mockserver = require "support.mockserver"

local checks = 0
local function check(cond, what, ...)
  if not cond then error("core_driver: " .. what .. ": " .. table.concat({ tostring(select(1, ...)) }, " "), 2) end
  checks = checks + 1
end
local function eq(want, got, what)
  check(want == got, what, ("expected %s, got %s"):format(tostring(want), tostring(got)))
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  check(out:match("exit=(%d+)%s*$") == "0", "command failed", cmd, out)
  return out
end

-- ---------------------------------------------------------------- pure helpers

eq("a%20b~%2F%00", core.urlencode("a b~/\0"), "urlencode")
eq("a=1&a=x&b=true&c=%C3%A9&d=2.5", core.build_query{ d = 2.5, c = "é", b = true, a = { 1, "x" } }, "build_query")
eq("", core.build_query{}, "empty query")
check(not pcall(core.build_query, { a = { x = 1 } }), "build_query rejects a map")

eq(120, core.parse_retry_after("120", 0), "Retry-After seconds")
eq(1.5, core.parse_retry_after(" 1.5 ", 0), "Retry-After fraction")
eq(30, core.parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480), "Retry-After date")
eq(nil, core.parse_retry_after("-1", 0), "Retry-After negative")
eq(nil, core.parse_retry_after("soon", 0), "Retry-After garbage")
eq(1e9, core.parse_retry_after("99999999999999999999999", 0), "Retry-After bound")
eq(0.5, core.backoff(1, 1, 10, 0), "backoff")
eq(10, core.backoff(50, 1, 10, 0.999999999999) // 1 + 1, "backoff clamp")

local names = { limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining", reset = "x-ratelimit-refill" }
local l, r, reset = core.parse_rate_headers({ ["x-ratelimit-limit"] = "100", ["x-ratelimit-remaining"] = " 7 ",
  ["x-ratelimit-refill"] = "30" }, names, 1000)
eq(100, l, "rate limit"); eq(7, r, "rate remaining"); eq(1030, reset, "rate reset")
l = core.parse_rate_headers({ ["x-ratelimit-limit"] = "1e3" }, names, 1000)
eq(nil, l, "rate limit with an exponent")

local t = core.json_decoder{ null = false }('{"a":1.5,"b":{"c":2}}')
eq("integer", math.type(t.b.c), "json_decoder integer"); eq(1.5, t.a, "json_decoder float")
eq(32, #core.random_hex(16), "random_hex")

eq("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", core.sha256_hex("x"), "sha256")
-- Signatures against digests computed by openssl for the same input.
local url = "https://api.cmfile.net/v1/api/lists?page=0"
eq("9ae64da5dbecbe606cde3fda69666a8cde8542f7",
  core.sign_creamailer(1, "secret", url, "{}", 1700000000), "creamailer v1")
eq("d773605a165b2edfc4c2209794961f58de861dfdaddcd22436f610eb40f45815",
  core.sign_creamailer(2, "secret", url, nil, 1700000000), "creamailer v2")

for _, provider in ipairs{ "systeme", "subscribeflow" } do
  local styles = provider == "systeme" and { "hex" } or { "hex", "base64" }
  for _, style in ipairs(styles) do
    local sig = core.webhook_sign(provider, "{\"id\":1}", "whsec", style)
    eq(true, core.webhook_verify(provider, "{\"id\":1}", sig, "whsec"), "webhook ok " .. provider .. " " .. style)
    eq("mismatch", select(2, core.webhook_verify(provider, "{\"id\":2}", sig, "whsec")), "webhook mismatch")
  end
  eq("missing_signature", select(2, core.webhook_verify(provider, "{}", " ", "whsec")), "webhook missing")
  eq("malformed_signature", select(2, core.webhook_verify(provider, "{}", "sha256=zz", "whsec")), "webhook malformed")
end
local headers = audience.webhooks.sign("subscribeflow", "body", "whsec", "base64")
check(audience.webhooks.verify("subscribeflow", "body", headers, "whsec"), "audience.webhooks.verify")

-- ---------------------------------------------------------------- limiter registry

do
  local a, b = core.limiter("driver-account"), core.limiter("driver-account")
  a:configure(2, 10, 100)
  eq(0, a:acquire(100), "limiter first")
  eq(0, b:acquire(100), "limiter shared")
  check(a:acquire(100) > 0, "limiter empty")
  b:observe(50, 0, 200, 100)
  b:penalize(300, 100)
  eq(50, a:state(100).limit, "limiter state")
  a:close()
  b:close()
  local c = core.limiter("driver-account")
  eq(nil, c:state(100).budget_limit, "limiter freed with its last handle")
  -- c is left to the garbage collector, so lua_close's __gc path is walked too.
end

-- ---------------------------------------------------------------- HTTP

local m = mockserver.start("systeme")
do
  local h = core.http{ timeout = 5, user_agent = "core-driver" }
  local status, body, hdrs = h:perform("GET", m.url .. "/contacts?limit=10", { "X-API-Key: test-key" })
  eq(200, status, "GET status")
  check(body:find("items", 1, true), "GET body", body)
  check(hdrs["x-ratelimit-limit"] ~= nil, "rate-limit header lower-cased")
  status = h:perform("POST", m.url .. "/tags", { "X-API-Key: test-key", "Content-Type: application/json" },
    '{"name":"driver"}')
  eq(201, status, "POST status")
  status = h:perform("HEAD", m.url .. "/contacts", { "X-API-Key: test-key" })
  eq(405, status, "HEAD answered without a body")

  h:close()

  -- A fresh handle for each fault: on a kept-alive connection libcurl itself
  -- resends a request whose connection died before any answer, hiding the reset.
  local function faulty(action, timeout)
    m:fault{ match = "/api/tags", times = 1, action = action }
    local fresh = core.http{ timeout = 5 }
    local ok, kind = fresh:perform("GET", m.url .. "/tags", { "X-API-Key: test-key" }, nil, timeout)
    fresh:close()
    return ok, kind
  end
  local ok, kind = faulty{ reset = true }
  eq(nil, ok, "reset fails"); eq("network", kind, "reset kind")
  ok, kind = faulty{ truncated = true }
  eq(nil, ok, "truncated fails"); eq("network", kind, "truncated kind")
  ok, kind = faulty({ delay = 3 }, 0.3)
  eq(nil, ok, "stall fails"); eq("timeout", kind, "stall times out")

  local small = core.http{ max_body = 16 }
  ok, kind = small:perform("GET", m.url .. "/contacts?limit=10", { "X-API-Key: test-key" })
  eq(nil, ok, "max_body fails"); eq("too_large", kind, "max_body")
  -- Not closed: the __gc at lua_close must free it.

  local refused = core.http{ connect_timeout = 2 }
  ok, kind = refused:perform("GET", "http://127.0.0.1:" .. mockserver.free_port() .. "/")
  eq(nil, ok, "refused fails"); eq("network", kind, "refused connection")
  refused:close()
end

-- The whole pipeline: options, auth, paging, the limiter learning from headers,
-- a retried 503 with Retry-After, typed errors.
do
  local sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 5,
    backoff = { base = 0.01, max = 0.02 } }
  m:seed("contacts", 30)
  local n = 0
  for _ in sys.contacts:each{ limit = 10 } do n = n + 1 end
  eq(30, n, "paging")
  m:fault{ match = "/api/tags", times = 1, action = { status = 503, headers = { ["Retry-After"] = "0" } } }
  check(sys.tags:list(), "503 retried")
  local _, err = sys.contacts:get(999999)
  eq("not_found", err and err.kind, "typed error")
  check(sys:rate_limit().limit ~= nil, "quota learned from headers")
  sys:close()
end
m:stop()

-- ---------------------------------------------------------------- HTTPS

do
  local dir = sh("mktemp -d /tmp/audience-driver.XXXXXXXX"):match("^(%S+)")
  check(dir and dir:match("^/tmp/audience%-driver%."), "mktemp")
  sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost"
    .. " -addext 'subjectAltName = DNS:localhost, IP:127.0.0.1' -keyout %s -out %s")
    :format(quote(dir .. "/key.pem"), quote(dir .. "/cert.pem")))
  local tls = mockserver.start("systeme", nil, { ssl = { cert = dir .. "/cert.pem", key = dir .. "/key.pem" } })
  local function list(opts)
    local o = { api_key = "test-key", base_url = tls.ssl_url, timeout = 5, retries = 0 }
    for k, v in pairs(opts) do o[k] = v end
    local sys = audience.systeme(o)
    local page, err = sys.contacts:list{ limit = 10 }
    sys:close()
    return page, err
  end
  local _, err = list{}
  eq("tls", err and err.code, "untrusted certificate")
  check(list{ ca_file = dir .. "/cert.pem" }, "trusted with ca_file")
  check(list{ verify_tls = false }, "verify_tls = false")
  tls:stop()
  os.execute("rm -rf " .. quote(dir))
end

-- ---------------------------------------------------------------- Creamailer signing

do
  local cm_mock = mockserver.start("creamailer")
  cm_mock:reset{ accounts = { default = { token = "tok", secret = "sec", limit = 100000, per = 3600 } } }
  for _, version in ipairs{ 1, 2 } do
    local cm = audience.creamailer{ access_token = "tok", shared_secret = "sec", version = version,
      base_url = version == 2 and (cm_mock.root .. "/v2/api") or cm_mock.url, timeout = 5,
      rate_limit = { limit = 1000, per = 1, account = "driver-cm-" .. version } }
    local list = cm.lists:create{ name = "Driver list", language = "en" }
    check(list and list.id, "signed create v" .. version)
    check(cm.subscribers:add(list.id, { email = "ada@example.com", name = "Ada" }), "signed add v" .. version)
    cm:close()
  end
  cm_mock:stop()
end

collectgarbage()
print(("core_driver: %d checks passed"):format(checks))
