-- Credentials never leak: for every provider and kind of credential, through failures of
-- every kind, the secret must not appear in errors (any field, or tostring), in any
-- argument of the hooks, or in client.last_response; hooks show credential headers as
-- "[REDACTED]" and URLs without the secret. Webhook verification errors show neither
-- the secret nor the signature that was expected.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

local REDACTED = "[REDACTED]"

-- Walks `value` deeply (keys and values of tables, and what __tostring gives) and
-- returns a description of where one of `secrets` occurs, or nil.
local function find_secret(value, secrets, where, seen)
  seen = seen or {}
  where = where or "value"
  local tv = type(value)
  if tv == "string" then
    for _, s in ipairs(secrets) do
      if value:find(s, 1, true) then return ("%s contains secret %q"):format(where, s) end
    end
    return nil
  end
  if tv ~= "table" or seen[value] then return nil end
  seen[value] = true
  for k, v in pairs(value) do
    local at = where .. "[" .. (type(k) == "string" and ("%q"):format(k) or tostring(k)) .. "]"
    local hit = find_secret(k, secrets, at .. " (key)", seen) or find_secret(v, secrets, at, seen)
    if hit then return hit end
  end
  local mt = getmetatable(value)
  if mt and mt.__tostring then
    return find_secret(tostring(value), secrets, "tostring(" .. where .. ")", seen)
  end
  return nil
end

local function assert_no_secret(value, secrets, what)
  local hit = find_secret(value, secrets, what)
  assert.is_nil(hit, hit)
end

-- The forms a secret may take on the way out: as is and percent-encoded.
local function forms(list)
  local out = {}
  for _, s in ipairs(list) do
    out[#out + 1] = s
    local encoded = core.urlencode(s)
    if encoded ~= s then out[#out + 1] = encoded end
  end
  return out
end

local SYS_KEY = "sk-SECRET-systeme-0123456789"
local CM_TOKEN = "sk-SECRET-creamailer-0123456789"
local CM_SHARED = "sk-SECRET-creamailer-shared-0123456789"
local SF_KEY = "sk-SECRET-subscribeflow-0123456789"
local SF_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.sk-SECRET-jwt-0123456789"
local SF_PREF = "sk-SECRET-pref-0123456789"

local cm_accounts = 0

local function creamailer(version)
  return {
    label = "creamailer v" .. version, mock = "creamailer", secrets = { CM_TOKEN, CM_SHARED },
    known = { accounts = { default = { token = CM_TOKEN, secret = CM_SHARED, limit = 100000, per = 3600 } } },
    -- Same token, another shared secret: every signature is refused with a 401.
    unknown = { accounts = { default = { token = CM_TOKEN, secret = "another-secret", limit = 100000,
      per = 3600 } } },
    redacted = { "X-Access-Token", "X-Request-Signature" },
    make = function(base, o)
      cm_accounts = cm_accounts + 1
      o.access_token, o.shared_secret, o.version = CM_TOKEN, CM_SHARED, version
      o.base_url = base .. (version == 1 and "/v1/api" or "/v2/api")
      o.rate_limit = { limit = 10000, per = 1, account = "secrets-cm-" .. cm_accounts }
      return audience.creamailer(o)
    end,
    match = version == 1 and "/v1/api/lists" or "/v2/api/lists",
    list = function(c) return c.lists:list() end,
    invalid = function(c) return c.lists:create{ name = "x", language = "english" } end,
    paths = version == 1 and { "/lists/" .. CM_TOKEN .. ".json", "/lists/" .. CM_SHARED .. ".json" }
      or { "/lists/" .. CM_TOKEN, "/lists/" .. CM_SHARED },
    echo401 = { message = "Invalid access token " .. CM_TOKEN .. " for secret " .. CM_SHARED },
    echo422 = { message = "The given data was invalid.",
      errors = { [CM_TOKEN] = { "token " .. CM_TOKEN }, name = { "secret " .. CM_SHARED } } },
  }
end

local PROVIDERS = {
  {
    label = "systeme", mock = "systeme", secrets = { SYS_KEY },
    known = { accounts = { default = { keys = { SYS_KEY }, limit = 100000, per = 60 } } },
    unknown = { accounts = { default = { keys = { "another-key" }, limit = 100000, per = 60 } } },
    redacted = { "X-API-Key" },
    make = function(base, o)
      o.api_key, o.base_url = SYS_KEY, base .. "/api"
      return audience.systeme(o)
    end,
    match = "/api/tags",
    list = function(c) return c.tags:list() end,
    invalid = function(c) return c.contacts:create{ email = "not an email" } end,
    paths = { "/contacts/" .. SYS_KEY },
    echo401 = { detail = "Invalid API Key " .. SYS_KEY .. "." },
    echo422 = { title = "An error occurred", violations = { { propertyPath = SYS_KEY, code = SYS_KEY,
      message = "key " .. SYS_KEY .. " is not allowed" } } },
  },
  creamailer(1),
  creamailer(2),
  {
    label = "subscribeflow (API key)", mock = "subscribeflow", secrets = { SF_KEY },
    known = { accounts = { default = { keys = { SF_KEY }, limit = 100000, per = 60 } } },
    unknown = { accounts = { default = { keys = { "sf_live_other" }, limit = 100000, per = 60 } } },
    redacted = { "Authorization" },
    make = function(base, o)
      o.api_key, o.base_url = SF_KEY, base .. "/v1"
      return audience.subscribeflow(o)
    end,
    match = "/v1/tags",
    list = function(c) return c.tags:list() end,
    invalid = function(c) return c.subscribers:create{ email = "not an email" } end,
    paths = { "/subscribers/" .. SF_KEY },
    echo401 = { error = { code = "unauthorized", message = "Unknown key " .. SF_KEY } },
    echo422 = { error = { code = SF_KEY, message = "Invalid " .. SF_KEY,
      details = { { field = SF_KEY, message = "value " .. SF_KEY } } } },
  },
  {
    label = "subscribeflow (JWT)", mock = "subscribeflow", secrets = { SF_JWT },
    known = { accounts = { default = { tokens = { SF_JWT }, limit = 100000, per = 60 } } },
    unknown = { accounts = { default = { tokens = { "eyJ.other.token" }, limit = 100000, per = 60 } } },
    redacted = { "Authorization" },
    make = function(base, o)
      o.token, o.base_url = SF_JWT, base .. "/v1"
      return audience.subscribeflow(o)
    end,
    match = "/v1/tags",
    list = function(c) return c.tags:list() end,
    invalid = function(c) return c.tags:create{ name = "!!!" } end,
    paths = { "/subscribers/" .. SF_JWT },
    echo401 = { error = { code = "unauthorized", message = "Expired token " .. SF_JWT } },
    echo422 = { error = { code = SF_JWT, message = "Invalid " .. SF_JWT,
      details = { { field = SF_JWT, message = "value " .. SF_JWT } } } },
  },
}

for _, P in ipairs(PROVIDERS) do
  describe("secrets: " .. P.label, function()
    local m
    local secrets            -- forms of the credentials, plus signatures seen by the mock
    local infos              -- every table the hooks were given
    local clients = {}

    setup(function() m = mockserver.start(P.mock, P.known) end)
    teardown(function()
      for _, c in ipairs(clients) do pcall(c.close, c) end
      if m then m:stop() end
    end)
    before_each(function()
      m:reset(P.known)
      secrets = forms(P.secrets)
      infos = {}
    end)

    local function hook(kind)
      return function(info) infos[#infos + 1] = { kind = kind, info = info } end
    end

    local function client(extra, base)
      local o = { timeout = 2, retries = 0, backoff = { base = 0.01, max = 0.02 },
        on_request = hook("on_request"), on_response = hook("on_response") }
      for k, v in pairs(extra or {}) do o[k] = v end
      local c = P.make(base or m.root, o)
      clients[#clients + 1] = c
      return c
    end

    -- Creamailer signatures are credentials too: add every one the mock received.
    local function harvest_signatures()
      if P.mock ~= "creamailer" then return end
      local ok, requests = pcall(m.requests, m)
      if not ok then return end
      for _, r in ipairs(requests) do
        local sig = r.headers["x-request-signature"]
        if type(sig) == "string" and #sig >= 40 then secrets[#secrets + 1] = sig end
      end
    end

    -- The checks every scenario ends with.
    local function assert_clean(c, err)
      harvest_signatures()
      if err ~= nil then
        assert.equal("audience.Error", getmetatable(err).__name)
        assert_no_secret(err, secrets, "err")
        for _, s in ipairs(secrets) do
          assert.is_nil(tostring(err):find(s, 1, true), "tostring(err) shows a secret")
        end
      end
      assert_no_secret(c.last_response, secrets, "client.last_response")
      local requests = 0
      for i, rec in ipairs(infos) do
        assert_no_secret(rec.info, secrets, ("%s #%d"):format(rec.kind, i))
        if rec.kind == "on_request" then
          requests = requests + 1
          for _, name in ipairs(P.redacted) do
            assert.equal(REDACTED, rec.info.headers[name], name .. " is not redacted in on_request")
          end
          for _, s in ipairs(secrets) do
            assert.is_nil(rec.info.url:find(s, 1, true), "on_request url shows a secret")
          end
        end
      end
      assert.is_true(requests > 0, "on_request never ran")
    end

    local function fault(action, times)
      m:fault{ match = P.match, times = times or 1, action = action }
    end

    it("a successful call", function()
      local c = client()
      local page, err = P.list(c)
      assert.is_nil(err, err and tostring(err))
      assert.is_table(page)
      assert_clean(c)
    end)

    it("a 401 from the server", function()
      m:reset(P.unknown)
      local c = client()
      local _, err = P.list(c)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert_clean(c, err)
    end)

    it("a 401 whose body echoes the credential", function()
      fault{ status = 401, body = P.echo401 }
      local c = client()
      local _, err = P.list(c)
      assert.equal("auth", err.kind)
      assert.matches(REDACTED, err.message, 1, true)
      assert_clean(c, err)
    end)

    it("a 5xx retried, its page echoing the credential", function()
      local page = "<html><body>upstream failed for " .. table.concat(P.secrets, " / ") .. "</body></html>"
      fault({ status = 503, body = page, headers = { ["Content-Type"] = "text/html" } }, 3)
      local c = client{ retries = 2 }
      local _, err = P.list(c)
      assert.equal("server", err.kind)
      local attempts = 0
      for _, rec in ipairs(infos) do if rec.kind == "on_request" then attempts = attempts + 1 end end
      assert.equal(3, attempts)
      assert_clean(c, err)
    end)

    it("a timeout", function()
      fault{ delay = 3 }
      local c = client{ timeout = 0.3 }
      local _, err = P.list(c)
      assert.equal("timeout", err.kind)
      assert_clean(c, err)
    end)

    it("a network error", function()
      local c = client({ retries = 1 }, "http://127.0.0.1:" .. mockserver.free_port())
      local _, err = P.list(c)
      assert.equal("network", err.kind)
      assert_clean(c, err)
    end)

    it("a validation error", function()
      local c = client()
      local _, err = P.invalid(c)
      assert.equal("validation", err.kind, tostring(err))
      assert_clean(c, err)
    end)

    it("a request whose path and query contain the secret (client:request)", function()
      local c = client()
      for _, path in ipairs(P.paths) do
        local _, err = c:request("GET", path)
        assert.is_table(err)
        assert.matches(REDACTED, err.path, 1, true)
        assert_clean(c, err)
        local _, err2 = c:request("GET", path, { query = { q = P.secrets[1], also = P.secrets[#P.secrets] } })
        assert.is_table(err2)
        assert_clean(c, err2)
      end
      for _, rec in ipairs(infos) do
        assert.matches(REDACTED, rec.info.url, 1, true)
      end
    end)

    it("a retried request whose path contains the secret, ending in a timeout", function()
      m:fault{ times = 2, action = { delay = 3 } }
      local c = client{ timeout = 0.3, retries = 1 }
      local _, err = c:request("GET", P.paths[1], { query = { q = P.secrets[1] } })
      assert.equal("timeout", err.kind)
      assert_clean(c, err)
    end)

    it("errors scrub code, details[].field and details[].code", function()
      -- Today only message and details[].message are scrubbed.
      m:fault{ match = P.match, action = { status = 422, body = P.echo422 } }
      local c = client()
      local _, err = P.list(c)
      assert.equal("validation", err.kind)
      assert_clean(c, err)
    end)

    it("res, last_response and on_response response headers are scrubbed",
      function()
        -- Today a server echoing the credential in a header shows it in client.last_response
        -- .headers, in the `res` returned by client:request and in on_response's response_headers.
        fault{ headers = { ["X-Echo"] = P.secrets[1], ["X-Debug-Auth"] = "key=" .. P.secrets[#P.secrets] } }
        local c = client()
        local page, err, res = P.list(c)
        assert.is_nil(err, err and tostring(err))
        assert.is_table(page)
        assert_no_secret(res, secrets, "res")
        assert_clean(c)
      end)
  end)
end

describe("secrets: subscribeflow magic-link tokens", function()
  local m
  local infos
  local clients = {}
  local CONFIG = { accounts = { default = { keys = { SF_KEY }, limit = 100000, per = 60 } } }
  local SECRETS = forms{ SF_PREF, SF_KEY }

  setup(function() m = mockserver.start("subscribeflow", CONFIG) end)
  teardown(function()
    for _, c in ipairs(clients) do pcall(c.close, c) end
    if m then m:stop() end
  end)
  before_each(function()
    m:reset(CONFIG)
    m:seed("preferences", { items = { { token = SF_PREF, email = "ada@example.com" } } })
    infos = {}
  end)

  local function client(extra, base)
    local o = { api_key = SF_KEY, base_url = base or m.url, timeout = 2, retries = 0,
      backoff = { base = 0.01, max = 0.02 },
      on_request = function(i) infos[#infos + 1] = i end,
      on_response = function(i) infos[#infos + 1] = i end }
    for k, v in pairs(extra or {}) do o[k] = v end
    local c = audience.subscribeflow(o)
    clients[#clients + 1] = c
    return c
  end

  local function assert_clean(c, ...)
    for i = 1, select("#", ...) do
      local v = select(i, ...)
      if type(v) == "table" and getmetatable(v) then
        assert_no_secret(v, SECRETS, "err")
        for _, s in ipairs(SECRETS) do assert.is_nil(tostring(v):find(s, 1, true)) end
      end
    end
    assert_no_secret(c.last_response, SECRETS, "client.last_response")
    assert.is_true(#infos > 0)
    for i, info in ipairs(infos) do
      assert_no_secret(info, SECRETS, "hook argument #" .. i)
      assert.is_nil(info.headers.Authorization, "preferences must send no API key")
      assert.matches("/preferences/" .. REDACTED, info.url, 1, true)
    end
  end

  it("a successful get and update", function()
    local c = client()
    local prefs, err = c.preferences:get(SF_PREF)
    assert.is_nil(err, err and tostring(err))
    assert.is_table(prefs)
    assert_clean(c)
    assert(c.preferences:update(SF_PREF, { status = "active" }))
    assert_clean(c)
  end)

  it("an unknown token (404)", function()
    local c = client()
    local _, err = c.preferences:get(SF_PREF .. "-unknown")
    assert.equal("not_found", err.kind)
    assert.matches("/preferences/" .. REDACTED, err.path, 1, true)
    assert_clean(c, err)
  end)

  it("a 5xx retried, a timeout and a network error", function()
    m:fault{ match = "/v1/preferences", times = 3, action = { status = 503, body = "token " .. SF_PREF } }
    local c = client{ retries = 2 }
    local _, e1 = c.preferences:get(SF_PREF)
    assert.equal("server", e1.kind)
    assert_clean(c, e1)

    m:fault{ match = "/v1/preferences", times = 1, action = { delay = 3 } }
    local c2 = client{ timeout = 0.3 }
    local _, e2 = c2.preferences:update(SF_PREF, { status = "active" })
    assert.equal("timeout", e2.kind)
    assert_clean(c2, e2)

    local c3 = client({ retries = 1 }, "http://127.0.0.1:" .. mockserver.free_port() .. "/v1")
    local _, e3 = c3.preferences:get(SF_PREF)
    assert.equal("network", e3.kind)
    assert_clean(c3, e3)
  end)

  it("a validation error", function()
    local c = client()
    local _, err = c.preferences:update(SF_PREF, { status = "nonsense" })
    assert.equal("validation", err.kind, tostring(err))
    assert_clean(c, err)
  end)
end)

describe("secrets: webhooks.verify", function()
  local SECRET = "whsec-SECRET-0123456789"
  local BODY = '{"type":"CONTACT_CREATED","data":{"email":"ada@example.com"}}'

  for _, provider in ipairs{ "systeme", "subscribeflow" } do
    it(provider .. ": errors show neither the secret nor the expected signature", function()
      local good = audience.webhooks.sign(provider, BODY, SECRET)
      local name, expected = next(good)
      local never = { SECRET, expected, (expected:gsub("^sha256=", "")) }
      if provider == "subscribeflow" then
        local _, b64 = next(audience.webhooks.sign(provider, BODY, SECRET, "base64"))
        never[#never + 1] = b64
      end
      assert.is_true(audience.webhooks.verify(provider, BODY, good, SECRET))

      local other = select(2, next(audience.webhooks.sign(provider, BODY, "another-secret")))
      local cases = {
        { [name] = other },                                     -- signed with another secret
        { [name] = expected:sub(1, -2) .. (expected:sub(-1) == "0" and "1" or "0") },
        { [name:lower()] = { other, expected } },               -- repeated header: the first counts
        {},                                                     -- missing
        { [name] = "not a signature" },                         -- malformed
        { [name] = "sha256=" .. ("z"):rep(64) },
      }
      for i, headers in ipairs(cases) do
        local ok, err = audience.webhooks.verify(provider, BODY .. (i == 2 and "" or " "), headers, SECRET)
        assert.is_nil(ok)
        assert.equal("audience.Error", getmetatable(err).__name)
        assert_no_secret(err, never, "err")
        for _, s in ipairs(never) do assert.is_nil(tostring(err):find(s, 1, true)) end
      end
      -- Argument errors do not show the secret either.
      for _, f in ipairs{
        function() audience.webhooks.verify("nope", BODY, good, SECRET) end,
        function() audience.webhooks.verify(provider, nil, good, SECRET) end,
        function() audience.webhooks.verify(provider, BODY, "headers", SECRET) end,
      } do
        local ok, msg = pcall(f)
        assert.is_false(ok)
        for _, s in ipairs(never) do assert.is_nil(tostring(msg):find(s, 1, true)) end
      end
    end)
  end
end)
