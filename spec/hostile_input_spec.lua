-- Hostile and careless input through the Lua API: wrong types, NaN and infinity, NULs,
-- huge strings, path traversal in ids, CR/LF (header injection), bytes that are not
-- UTF-8 and self-referencing bodies. Each is refused with an error that names the
-- argument or option, or sent safely encoded; none crashes, truncates or misroutes.
local audience = require "audience"
local mockserver = require "support.mockserver"

local NAN, INF = 0 / 0, math.huge
local MB = 1024 * 1024

-- Calls f and returns the error it raised (failing the test if it did not raise).
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error to be raised")
  assert.is_string(err, "errors about arguments are strings")
  return err
end

-- Asserts that f raises an error containing each plain string of `parts`.
local function refuses(parts, f, ...)
  local err = raised(f, ...)
  for _, part in ipairs(type(parts) == "table" and parts or { parts }) do
    assert.is_truthy(err:find(part, 1, true), ("%q not in error %q"):format(part, err))
  end
  return err
end

describe("hostile input", function()
  local sm, cmm, sfm          -- the three mocks
  local sys, cm, sf           -- one client each
  local urls                  -- URLs the clients' on_request saw
  local opened = {}

  local CM_CONFIG = { accounts = { default = { token = "test-token", secret = "test-secret",
    limit = 100000, per = 3600 } } }
  local SF_CONFIG = { accounts = { default = { keys = { "sf_live_test" }, limit = 100000, per = 60 } } }

  setup(function()
    sm = mockserver.start("systeme")
    cmm = mockserver.start("creamailer", CM_CONFIG)
    sfm = mockserver.start("subscribeflow", SF_CONFIG)
  end)
  teardown(function()
    for _, c in ipairs(opened) do pcall(c.close, c) end
    for _, m in ipairs{ sm, cmm, sfm } do m:stop() end
  end)

  local function record(info) urls[#urls + 1] = info.url end
  local common = { timeout = 5, retries = 0, on_request = record }
  local function with(extra)
    local o = {}
    for k, v in pairs(common) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end
    return o
  end

  local cm_accounts = 0
  before_each(function()
    sm:reset()
    cmm:reset(CM_CONFIG)
    sfm:reset(SF_CONFIG)
    urls = {}
    cm_accounts = cm_accounts + 1
    sys = audience.systeme(with{ api_key = "test-key", base_url = sm.url })
    cm = audience.creamailer(with{ access_token = "test-token", shared_secret = "test-secret",
      base_url = cmm.url, rate_limit = { limit = 10000, per = 1, account = "hostile-" .. cm_accounts } })
    sf = audience.subscribeflow(with{ api_key = "sf_live_test", base_url = sfm.url })
    for _, c in ipairs{ sys, cm, sf } do opened[#opened + 1] = c end
  end)

  -- Nothing reached any mock (the input was refused before a request went out).
  local function nothing_sent()
    assert.same({}, urls)
    for _, m in ipairs{ sm, cmm, sfm } do assert.equal(0, m:stats().requests) end
  end

  -- The clients still work after whatever happened.
  local function still_working()
    assert(sys.tags:list())
    assert(cm.lists:list())
    assert(sf.tags:list())
  end

  describe("wrong types raise an error naming the argument", function()
    local WRONG_IDS = { { nil, "nil" }, { true, "boolean" }, { {}, "table" }, { print, "function" },
      { 1.5, "number" }, { "", "string" }, { NAN, "NaN" }, { INF, "infinite number" },
      { -INF, "infinite number" }, { 2 ^ 53, "number" } }

    it("ids of every resource method", function()
      for _, case in ipairs(WRONG_IDS) do
        local v, got = case[1], case[2]
        local expected = "(id: integer or non-empty string expected, got " .. got .. ")"
        refuses({ "bad argument #1 to 'tags:get'", expected }, sys.tags.get, sys.tags, v)
        refuses({ "bad argument #1 to 'contacts:update'", expected }, sys.contacts.update, sys.contacts, v, {})
        refuses({ "bad argument #1 to 'contacts:delete'", expected }, sys.contacts.delete, sys.contacts, v)
        refuses({ "bad argument #2 to 'contacts:add_tag'", "(tag_id: " }, sys.contacts.add_tag, sys.contacts, 1, v)
        refuses({ "bad argument #1 to 'contact_fields:delete'", "(slug: " },
          sys.contact_fields.delete, sys.contact_fields, v)
        refuses({ "bad argument #1 to 'subscribers:list'", "(list_id: " }, cm.subscribers.list, cm.subscribers, v)
        refuses({ "bad argument #1 to 'subscribers:import'", "(list_id: " },
          cm.subscribers.import, cm.subscribers, v, {})
        refuses({ "bad argument #1 to 'subscribers:update_tags'", "(id: " },
          sf.subscribers.update_tags, sf.subscribers, v, { add = {} })
      end
      nothing_sent()
    end)

    it("string arguments (emails, reasons, tokens)", function()
      refuses("bad argument #2 to 'subscribers:get' (email: non-empty string expected, got number)",
        cm.subscribers.get, cm.subscribers, 1, 42)
      refuses("bad argument #1 to 'suppressions:add' (email: non-empty string expected, got nil)",
        cm.suppressions.add, cm.suppressions, nil)
      refuses("bad argument #2 to 'suppressions:add' (reason: non-empty string or nil expected, got number)",
        cm.suppressions.add, cm.suppressions, "a@example.com", 5)
      refuses("bad argument #1 to 'preferences:get' (token: non-empty string expected, got table)",
        sf.preferences.get, sf.preferences, {})
      refuses("bad argument #2 to 'subscriptions:cancel' (cancel: non-empty string expected, got boolean)",
        sys.subscriptions.cancel, sys.subscriptions, 1, true)
      nothing_sent()
    end)

    it("bodies", function()
      for _, v in ipairs{ "name", 42, true, print } do
        local got = type(v)
        refuses("bad argument #1 to 'tags:create' (body: table expected, got " .. got .. ")",
          sys.tags.create, sys.tags, v)
        refuses("bad argument #2 to 'contacts:update' (body: table expected, got " .. got .. ")",
          sys.contacts.update, sys.contacts, 1, v)
        refuses("bad argument #2 to 'courses:enroll' (body: table expected, got " .. got .. ")",
          sys.courses.enroll, sys.courses, 1, v)
        refuses("bad argument #2 to 'subscribers:add' (body: table expected, got " .. got .. ")",
          cm.subscribers.add, cm.subscribers, 1, v)
        refuses("bad argument #2 to 'preferences:update' (prefs: table expected, got " .. got .. ")",
          sf.preferences.update, sf.preferences, "tok", v)
        refuses("bad argument #2 to 'subscribers:update_tags' (changes: table expected, got " .. got .. ")",
          sf.subscribers.update_tags, sf.subscribers, "id", v)
      end
      refuses("(changes: only 'add' and 'remove' expected, got 'replace')",
        sf.subscribers.update_tags, sf.subscribers, "id", { replace = {} })
      refuses("(changes.add: list expected, got string)",
        sf.subscribers.update_tags, sf.subscribers, "id", { add = "news" })
      refuses("bad argument #2 to 'subscribers:import' (entries: list or iterator expected, got string)",
        cm.subscribers.import, cm.subscribers, 1, "a@example.com")
      nothing_sent()
    end)

    it("params of list, each and pages", function()
      for _, v in ipairs{ "x", 42, true, print } do
        for _, fname in ipairs{ "list", "each", "pages" } do
          refuses("bad argument #1 to 'contacts:" .. fname .. "' (params: table or nil expected, got " .. type(v),
            sys.contacts[fname], sys.contacts, v)
        end
        refuses("bad argument #2 to 'subscribers:list' (params: table or nil expected",
          cm.subscribers.list, cm.subscribers, 1, v)
      end
      refuses("(params.max_items: non-negative integer expected, got number)", sys.contacts.each, sys.contacts,
        { max_items = -1 })
      refuses("(params.email: string, number, boolean or list of them expected, got function)",
        sys.contacts.list, sys.contacts, { email = print })
      refuses("(params.tags[2]: string, finite number or boolean expected, got table)",
        sys.contacts.list, sys.contacts, { tags = { 1, {} } })
      refuses("(params.tags: string, number, boolean or list of them expected, got table)",
        sys.contacts.list, sys.contacts, { tags = { a = 1 } })
      refuses("(params: table with string keys expected, got number)", sf.subscribers.list, sf.subscribers, { "x" })
      nothing_sent()
    end)

    it("per-call opts", function()
      refuses("bad argument #2 to 'tags:create' (opts: table or nil expected, got string)",
        sys.tags.create, sys.tags, { name = "x" }, "fast")
      refuses("bad argument #3 to 'contacts:update' (opts: table or nil expected, got number)",
        sys.contacts.update, sys.contacts, 1, {}, 5)
      refuses("bad option 'timeout' in call to 'tags:create' (positive number expected, got string)",
        sys.tags.create, sys.tags, { name = "x" }, { timeout = "1" })
      refuses("bad option 'timeout' in call to 'subscribers:create' (positive number expected, got NaN)",
        sf.subscribers.create, sf.subscribers, { email = "a@example.com" }, { timeout = NAN })
      refuses("unknown option 'retries' in call to 'tags:create'", sys.tags.create, sys.tags, { name = "x" },
        { retries = 1 })
      refuses("bad option 'headers' in call to 'tags:create' (table expected, got string)",
        sys.tags.create, sys.tags, { name = "x" }, { headers = "X-A: 1" })
      refuses("bad option 'batch_size' in call to 'subscribers:import' (positive integer expected, got number)",
        cm.subscribers.import, cm.subscribers, 1, {}, { batch_size = 0 })
      refuses("bad argument #3 to 'subscribers:import' (opts: table or nil expected, got string)",
        cm.subscribers.import, cm.subscribers, 1, {}, "update")
      nothing_sent()
    end)

    it("client:request arguments and options", function()
      refuses("bad argument #1 to 'request' (method: HTTP method name expected, got number)",
        sys.request, sys, 1, "/tags")
      refuses("bad argument #1 to 'request' (method", sys.request, sys, "GET /x", "/tags")
      refuses("bad argument #2 to 'request' (path: string starting with '/' expected, got nil)",
        sys.request, sys, "GET")
      refuses("bad argument #2 to 'request' (path", sys.request, sys, "GET", "tags")
      refuses("bad argument #2 to 'request' (path", sys.request, sys, "GET", "/tags\r\nX-Evil: 1")
      refuses("bad argument #3 to 'request' (opts: table expected, got string)", sys.request, sys, "GET", "/tags", "x")
      refuses("bad option 'query' in call to 'request' (table expected, got string)",
        sys.request, sys, "GET", "/tags", { query = "limit=10" })
      refuses("bad option 'timeout' in call to 'request' (positive number expected, got number)",
        sys.request, sys, "GET", "/tags", { timeout = -1 })
      refuses("unknown option 'params' in call to 'request'", sys.request, sys, "GET", "/tags", { params = {} })
      nothing_sent()
    end)

    it("request checks that opts.body is a table or a string", function()
      -- Today a function or number body reaches core perform(), which raises
      -- "bad argument #5 to '?' (body must be a string or nil, got function)".
      refuses("bad option 'body' in call to 'request' (table or string expected, got function)",
        sys.request, sys, "POST", "/tags", { body = print })
      refuses("bad option 'body' in call to 'request' (table or string expected, got number)",
        sys.request, sys, "POST", "/tags", { body = 42 })
      nothing_sent()
    end)

    it("constructor options", function()
      local function ctor(opts) return audience.systeme(opts) end
      refuses("audience.systeme: bad argument #1 (options table expected, got string)", ctor, "test-key")
      refuses("audience.systeme: missing option 'api_key'", ctor, {})
      refuses("bad option 'api_key' (non-empty string without CR, LF or NUL expected, got number)", ctor,
        { api_key = 42 })
      refuses("bad option 'timeout' (positive number expected, got string)", ctor, { api_key = "k", timeout = "5" })
      refuses("bad option 'timeout' (positive number expected, got NaN)", ctor, { api_key = "k", timeout = NAN })
      refuses("bad option 'timeout' (positive number expected, got infinite number)", ctor,
        { api_key = "k", timeout = INF })
      refuses("bad option 'retries' (non-negative integer expected, got number)", ctor,
        { api_key = "k", retries = 1.5 })
      refuses("bad option 'retries' (non-negative integer expected, got infinite number)", ctor,
        { api_key = "k", retries = INF })
      refuses("bad option 'max_body' (positive integer expected, got NaN)", ctor, { api_key = "k", max_body = NAN })
      refuses("bad option 'backoff.base' (positive number expected, got string)", ctor,
        { api_key = "k", backoff = { base = "x" } })
      refuses("bad option 'rate_limit.limit' (positive integer expected, got NaN)", ctor,
        { api_key = "k", rate_limit = { limit = NAN, per = 1 } })
      refuses("bad option 'rate_limit.per' (positive number expected, got infinite number)", ctor,
        { api_key = "k", rate_limit = { limit = 1, per = INF } })
      refuses("bad option 'on_request' (function expected, got string)", ctor, { api_key = "k", on_request = "print" })
      refuses("bad option 'base_url' (http:// or https:// URL expected", ctor, { api_key = "k", base_url = "ftp://x" })
      refuses("unknown option 'apikey'", ctor, { apikey = "k" })
      refuses("audience.creamailer: missing option 'shared_secret'", audience.creamailer, { access_token = "t" })
      refuses("audience.creamailer: bad option 'version' (one of 1, 2 expected, got 3)", audience.creamailer,
        { access_token = "t", shared_secret = "s", version = 3 })
      refuses("audience.subscribeflow: missing option 'api_key' or 'token'", audience.subscribeflow, {})
      nothing_sent()
    end)

    it("webhooks.verify and sign", function()
      local verify, sign = audience.webhooks.verify, audience.webhooks.sign
      refuses("bad argument #1 to 'webhooks.verify' (provider: one of", verify, "mailchimp", "{}", {}, "s")
      refuses("bad argument #2 to 'webhooks.verify' (raw_body: string expected, got table)", verify,
        "systeme", {}, {}, "s")
      refuses("bad argument #3 to 'webhooks.verify' (headers: table expected, got string)", verify,
        "systeme", "{}", "X-Webhook-Signature: x", "s")
      refuses("bad argument #4 to 'webhooks.verify' (secret: non-empty string expected, got empty string)", verify,
        "systeme", "{}", {}, "")
      refuses("bad argument #4 to 'webhooks.sign' (secret: non-empty string expected, got nil)", sign,
        "subscribeflow", "{}")
    end)
  end)

  describe("NaN and infinity", function()
    it("in ids are refused", function()
      refuses("(id: integer or non-empty string expected, got NaN)", sys.tags.get, sys.tags, NAN)
      refuses("(list_id: integer or non-empty string expected, got infinite number)",
        cm.subscribers.add, cm.subscribers, INF, { email = "a@example.com" })
      nothing_sent()
    end)

    it("in query params of resource methods are refused, naming the parameter", function()
      refuses("bad argument #1 to 'contacts:list' (params.limit: finite number expected, got NaN)",
        sys.contacts.list, sys.contacts, { limit = NAN })
      refuses("(params.tags[2]: string, finite number or boolean expected, got infinite number)",
        sys.contacts.list, sys.contacts, { tags = { 1, INF } })
      refuses("bad argument #1 to 'subscribers:each' (params.per_page: finite number expected, got infinite number)",
        sf.subscribers.each, sf.subscribers, { per_page = -INF })
      refuses("bad argument #2 to 'subscribers:pages' (params.page: finite number expected, got NaN)",
        cm.subscribers.pages, cm.subscribers, 1, { page = NAN })
      nothing_sent()
    end)

    it("in a query of client:request is refused, naming the parameter", function()
      refuses({ "limit", "finite number expected" }, sys.request, sys, "GET", "/contacts", { query = { limit = NAN } })
      refuses({ "limit", "finite number expected" }, sf.request, sf, "GET", "/subscribers",
        { query = { limit = INF } })
      nothing_sent()
    end)

    it("request refuses NaN, infinity and non-scalars inside a query list", function()
      -- Today { tags = { 0/0 } } goes out as "tags=-nan" and { tags = { {} } } as
      -- "tags=table: 0x..." because comma-joined lists are built with tostring().
      refuses({ "'request'", "tags" }, sys.request, sys, "GET", "/contacts", { query = { tags = { NAN } } })
      refuses({ "'request'", "tags" }, sys.request, sys, "GET", "/contacts", { query = { tags = { {} } } })
      refuses({ "'request'", "sort" }, sf.request, sf, "GET", "/subscribers", { query = { sort = { "email", print } } })
      nothing_sent()
    end)

    it("in JSON bodies are refused with an error naming where they are, never sent", function()
      refuses({ "cannot be sent as JSON", "NaN", "at name" }, sys.tags.create, sys.tags, { name = NAN })
      refuses({ "cannot be sent as JSON", "infinity", "at fields[1].value" }, sys.contacts.create, sys.contacts,
        { email = "a@example.com", fields = { { slug = "first_name", value = INF } } })
      refuses({ "cannot be sent as JSON", "-infinity", "at metadata.score" }, sf.subscribers.create,
        sf.subscribers, { email = "a@example.com", metadata = { score = -INF } })
      refuses({ "cannot be sent as JSON", "NaN", "at Subscribers[1].age" }, function()
        local _, err = cm.subscribers:import(1, { { email = "a@example.com", age = NAN } })
        error(err, 0)
      end)
      refuses({ "cannot be sent as JSON", "NaN" }, cm.subscribers.add, cm.subscribers, 1,
        { email = "a@example.com", score = NAN })
      refuses({ "cannot be sent as JSON", "infinity" }, sys.request, sys, "POST", "/tags",
        { body = { name = "x", weight = INF } })
      nothing_sent()
    end)
  end)

  describe("embedded NULs", function()
    it("in an id are percent-encoded, not cut short", function()
      sm:seed("tags", 5)
      local tag, err = sys.tags:get("5\0")
      assert.is_nil(tag)                  -- not tag 5
      assert.is_table(err)
      assert.matches("/api/tags/5%%00$", urls[1])
      for _, e in ipairs(sm:stats().log) do
        assert.is_nil(e.path == "/api/tags/5" and e or nil, "the id was cut at the NUL")
      end
      still_working()
    end)

    it("in query params are percent-encoded", function()
      assert(sys.contacts:list{ email = "a\0b@example.com" })
      assert.equal("email=a%00b%40example.com", sm:stats().log[1].query)
      -- (status is checked against its values before sending: a parameter without a rule)
      cm.subscribers:list(1, { segment = "active\0deleted" })
      local cm_log = cmm:stats().log
      assert.matches("segment=active%%00deleted", cm_log[#cm_log].query)
    end)

    it("in JSON bodies are escaped as \\u0000", function()
      local tag = assert(sys.tags:create{ name = "a\0b" })
      assert.equal("a\0b", tag.name)
      local sent = sm:requests()
      assert.truthy(sent[#sent].body:find('"a\\u0000b"', 1, true))
    end)

    it("in credentials, header values and other options are refused, naming them", function()
      refuses("bad option 'api_key' (non-empty string without CR, LF or NUL expected",
        audience.systeme, { api_key = "test-key\0ignored" })
      refuses("bad option 'base_url'", audience.systeme,
        { api_key = "k", base_url = "http://127.0.0.1\0.evil.com/api" })
      refuses("bad option 'ca_file'", audience.systeme, { api_key = "k", ca_file = "/etc/ssl/ca.pem\0.txt" })
      refuses("bad value for header 'X-Trace'", sys.request, sys, "GET", "/tags",
        { headers = { ["X-Trace"] = "a\0b" } })
      refuses("bad option 'idempotency_key' in call to 'subscribers:create'", sf.subscribers.create,
        sf.subscribers, { email = "a@example.com" }, { idempotency_key = "key\0" })
      nothing_sent()
    end)
  end)

  describe("huge strings", function()
    it("a 1 MB id is refused, naming it, and nothing crashes", function()
      local huge = ("9"):rep(MB)
      refuses({ "bad argument #1 to 'tags:get'", "id: at most" }, sys.tags.get, sys.tags, huge)
      refuses({ "bad argument #1 to 'lists:get'", "id: at most" }, cm.lists.get, cm.lists, huge)
      refuses("bad argument #1 to 'preferences:get' (token: at most", sf.preferences.get, sf.preferences, ("t"):rep(MB))
      nothing_sent()
      still_working()
    end)

    it("a 1 MB query param fails as an error value, not a crash", function()
      for _, call in ipairs{
        function() return sys.contacts:list{ email = ("a"):rep(MB) } end,
        function() return sys.contacts:list{ email = ("/"):rep(MB) } end,   -- 3 MB once encoded
        function() return sf.subscribers:list{ email = ("\255"):rep(MB) } end,
        function() return cm.subscribers:get(1, ("b"):rep(MB) .. "@example.com") end,
      } do
        local value, err = call()
        assert.is_nil(value)
        assert.equal("audience.Error", getmetatable(err).__name)
        assert.is_truthy(({ network = true, http = true, validation = true })[err.kind], tostring(err))
      end
      still_working()
    end)

    it("1 MB bodies and header values do not crash", function()
      local _, err = sys.tags:create{ name = ("x"):rep(MB) }
      assert.equal("validation", err.kind)          -- the API's own limit, 64 characters
      local _, err2 = sys:request("GET", "/tags", { headers = { ["X-Big"] = ("x"):rep(MB) } })
      assert.equal("audience.Error", getmetatable(err2).__name)
      still_working()
    end)
  end)

  describe("path traversal in ids", function()
    -- Percent-encoding "/" and "." is not enough: nginx (like many servers and proxies)
    -- decodes %2F and %2E before routing. So such ids must never leave the client.
    local TRAVERSALS = { "../tags", "..", ".", "a/b", "../../api/tags", "1/tags/2", "..\\tags" }

    it("ids that would leave their path segment are refused, naming the argument", function()
      for _, id in ipairs(TRAVERSALS) do
        refuses({ "bad argument #1 to 'tags:get'", "(id: a single path segment" }, sys.tags.get, sys.tags, id)
        refuses({ "bad argument #1 to 'tags:delete'", "(id: a single path segment" }, sys.tags.delete, sys.tags, id)
        refuses({ "bad argument #1 to 'contact_fields:update'", "(slug: a single path segment" },
          sys.contact_fields.update, sys.contact_fields, id, { fieldName = "x" })
        refuses({ "bad argument #1 to 'lists:get'", "(id: a single path segment" }, cm.lists.get, cm.lists, id)
        refuses({ "bad argument #1 to 'subscribers:get'", "(id: a single path segment" },
          sf.subscribers.get, sf.subscribers, id)
        refuses("bad argument #1 to 'preferences:get' (token: a single path segment", sf.preferences.get,
          sf.preferences, id)
      end
      nothing_sent()
    end)

    it("a traversal cannot delete another resource", function()
      local contact = assert(sys.contacts:create{ email = "victim@example.com" })
      local tag = assert(sys.tags:create{ name = "t" })
      assert(sys.contacts:add_tag(contact.id, tag.id))
      pcall(sys.tags.delete, sys.tags, "../contacts/" .. contact.id)
      pcall(sys.contacts.delete, sys.contacts, contact.id .. "/tags/" .. tag.id)
      pcall(sys.tags.delete, sys.tags, "%2e%2e%2fcontacts%2f" .. contact.id)
      local still = assert(sys.contacts:get(contact.id))
      assert.equal("victim@example.com", still.email)
      assert.equal(1, #still.tags)
      for _, e in ipairs(sm:stats().log) do
        assert.is_nil(e.method == "DELETE" and e.path:find("^/api/contacts") and e or nil,
          "a DELETE reached a contact route: " .. e.path)
      end
    end)

    it("percent signs are encoded, so an encoded traversal stays one segment of the item route", function()
      sm:seed("tags", 2)
      for _, id in ipairs{ "%2e%2e", "%2E%2E%2Ftags", "%2f", "...", ". ." } do
        sm:reset()
        local tag, err = sys.tags:get(id)
        assert.is_nil(tag)
        assert.equal("not_found", err.kind)
        local log = sm:stats().log
        assert.equal(1, #log)
        -- The mock logs the path as decoded by nginx: one segment under /api/tags/.
        assert.equal("/api/tags/" .. id, log[1].path)
      end
      local _, err = sf.preferences:get("%2e%2e")
      assert.equal("not_found", err.kind)
      assert.equal("/v1/preferences/%2e%2e", sfm:stats().log[1].path)
    end)
  end)

  describe("CR and LF (header injection)", function()
    local EVIL = "k\r\nX-Evil: 1"

    it("in credentials and transport options are refused at construction, naming the option", function()
      refuses("audience.systeme: bad option 'api_key'", audience.systeme, { api_key = EVIL })
      refuses("audience.creamailer: bad option 'access_token'", audience.creamailer,
        { access_token = EVIL, shared_secret = "s" })
      refuses("audience.creamailer: bad option 'shared_secret'", audience.creamailer,
        { access_token = "t", shared_secret = EVIL })
      refuses("audience.subscribeflow: bad option 'api_key'", audience.subscribeflow, { api_key = EVIL })
      refuses("audience.subscribeflow: bad option 'token'", audience.subscribeflow, { token = "jwt\nX-Evil: 1" })
      refuses("bad option 'user_agent'", audience.systeme, { api_key = "k", user_agent = "ua\r\nX-Evil: 1" })
      refuses("bad option 'proxy'", audience.systeme, { api_key = "k", proxy = "http://proxy:3128\r\nX-Evil: 1" })
      refuses("bad option 'base_url'", audience.systeme, { api_key = "k", base_url = "http://x/api\r\nX-Evil: 1" })
      refuses("bad option 'rate_limit.account'", audience.systeme,
        { api_key = "k", rate_limit = { account = "acme\r\nX-Evil: 1" } })
      nothing_sent()
    end)

    it("in per-call headers, content types and idempotency keys are refused, naming them", function()
      refuses("bad value for header 'X-Trace'", sys.request, sys, "GET", "/tags",
        { headers = { ["X-Trace"] = "1\r\nX-Evil: 1" } })
      refuses("bad header name", sys.request, sys, "GET", "/tags", { headers = { ["X-Trace\r\nX-Evil"] = "1" } })
      refuses("bad value for header 'X-Trace'", sys.tags.create, sys.tags, { name = "x" },
        { headers = { ["X-Trace"] = "1\nX-Evil: 1" } })
      refuses("bad option 'content_type' in call to 'request'", sys.request, sys, "POST", "/tags",
        { body = "{}", content_type = "application/json\r\nX-Evil: 1" })
      refuses("bad option 'idempotency_key' in call to 'subscribers:create'", sf.subscribers.create,
        sf.subscribers, { email = "a@example.com" }, { idempotency_key = EVIL })
      refuses("bad option 'idempotency_key' in call to 'request'", sf.request, sf, "POST", "/tags",
        { body = { name = "x" }, idempotency_key = EVIL })
      nothing_sent()
    end)

    it("in values that go into the URL is percent-encoded, never a header", function()
      local _, err = sf.preferences:get("tok\r\nX-Evil: 1")
      assert.equal("not_found", err.kind)
      assert(sys.contacts:list{ email = "a@example.com\r\nX-Evil: 1" })
      cm.subscribers:get(1, "a@example.com\r\nX-Evil: 1")
      for _, m in ipairs{ sm, cmm, sfm } do
        for _, r in ipairs(m:requests()) do
          assert.is_nil(r.headers["x-evil"], "a header was injected")
        end
      end
      -- The token is a credential: hooks show it redacted, and the mock got it decoded, whole.
      assert.equal("/v1/preferences/tok\r\nX-Evil: 1", sfm:stats().log[1].path)
    end)
  end)

  describe("bytes that are not UTF-8", function()
    local BAD = "caf\233 \255\254 \192\128"

    it("in bodies are sent as given, without crashing", function()
      local tag, err = sys.tags:create{ name = BAD }
      assert.is_true(tag ~= nil or err ~= nil)
      local sent = sm:requests()
      assert.truthy(sent[#sent].body:find(BAD, 1, true))
      local s, err2 = sf.subscribers:create{ email = "a@example.com", metadata = { note = BAD } }
      assert.is_true(s ~= nil or err2 ~= nil)
      still_working()
    end)

    it("in ids and params are percent-encoded", function()
      local _, err = sys.tags:get("\255\254")
      assert.equal("not_found", err.kind)
      assert.matches("/api/tags/%%FF%%FE$", urls[1])
      assert(sys.contacts:list{ email = "\255@example.com" })
      assert.equal("email=%FF%40example.com", sm:stats().log[2].query)
    end)

    it("in an answer are decoded without crashing", function()
      sm:fault{ match = "/api/tags", method = "GET",
        action = { status = 200, body = '{"items":[{"id":1,"name":"\255\254"}],"hasMore":false}' } }
      local page = assert(sys.tags:list())
      assert.equal("\255\254", page.items[1].name)
    end)
  end)

  describe("bodies that JSON cannot hold", function()
    it("a cycle raises a clear error instead of overflowing the stack", function()
      local t = { name = "loop" }
      t.self = t
      refuses({ "cannot be sent as JSON", "cycle", "at self" }, sys.tags.create, sys.tags, t)
      local a, b = { name = "a" }, {}
      a.child, b.parent = b, a
      refuses({ "cycle", "at child.parent" }, sf.tags.create, sf.tags, a)
      local list = { { email = "x@example.com" } }
      list[1].again = list
      refuses({ "cycle", "at [1].again" }, sys.request, sys, "POST", "/tags", { body = list })
      nothing_sent()
    end)

    it("deep nesting, functions and odd keys are refused, naming where", function()
      local deep = {}
      local cur = deep
      for _ = 1, 100000 do cur.a = {}; cur = cur.a end
      refuses({ "cannot be sent as JSON", "nesting deeper than" }, sys.tags.create, sys.tags, deep)
      refuses({ "cannot be sent as JSON", "function", "at name" }, sys.tags.create, sys.tags, { name = print })
      refuses({ "cannot be sent as JSON", "thread", "at name" }, sys.tags.create, sys.tags,
        { name = coroutine.create(print) })
      refuses({ "cannot be sent as JSON", "key of type boolean" }, sys.tags.create, sys.tags, { [true] = "x" })
      nothing_sent()
    end)

    it("a shared (not cyclic) table is fine", function()
      local shared = { plan = "pro" }
      assert(sf.subscribers:create{ email = "a@example.com", metadata = { a = shared, b = { c = shared } } })
    end)
  end)
end)
