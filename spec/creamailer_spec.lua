-- audience.creamailer against the Creamailer mock: both API versions, signatures, the
-- hourly budget, the 400-vs-quota distinction, and bulk import.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"
local fixtures = require "support.fixtures"

local TOKEN, SECRET = "test-token", "test-secret"

describe("audience.creamailer", function()
  local m
  local accounts = 0

  setup(function() m = mockserver.start("creamailer") end)
  teardown(function() if m then m:stop() end end)
  local DEFAULT = { accounts = { default = { token = TOKEN, secret = SECRET, limit = 100000, per = 3600 } } }
  before_each(function() m:reset(DEFAULT) end)

  -- Each client gets an account of its own: budgets of one account only ever tighten.
  local function client(version, extra)
    accounts = accounts + 1
    local opts = {
      access_token = TOKEN, shared_secret = SECRET, version = version,
      base_url = version == 2 and (m.root .. "/v2/api") or m.url,
      rate_limit = { limit = 10000, per = 1, account = "cm-spec-" .. accounts },
      backoff = { base = 0.05, max = 0.1 }, timeout = 5,
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return audience.creamailer(opts)
  end

  for _, version in ipairs{ 1, 2 } do
    describe("v" .. version, function()
      it("creates, reads, lists, updates and deletes lists", function()
        local cm = client(version)
        local created = assert(cm.lists:create{ name = "Newsletter", language = "en", auto_suppress = true })
        local id = created.id
        assert.truthy(id)
        local got = assert(cm.lists:get(id))
        assert.equal("Newsletter", got.name)
        local all = assert(cm.lists:list())
        assert.equal(1, #all.items)
        assert.is_false(all.has_more)
        assert.truthy(cm.lists:update(id, { name = "Weekly" }))
        assert.equal("Weekly", assert(cm.lists:get(id)).name)
        assert.is_true(cm.lists:delete(id))
        local _, err = cm.lists:get(id)
        assert.equal("not_found", err.kind)
        cm:close()
      end)

      it("manages the subscribers of a list", function()
        local cm = client(version)
        local list = assert(cm.lists:create{ name = "Members", language = "fi" })
        assert.is_true(cm.subscribers:add(list.id, { email = "ada@example.com", name = "Ada" }))
        assert.is_true(cm.subscribers:add(list.id, { email = "bob@example.com", name = "Bob" }))
        local ada = assert(cm.subscribers:get(list.id, "ada@example.com"))
        assert.equal("Ada", ada.name)
        assert.truthy(cm.subscribers:update(list.id, { email = "ada@example.com", new_email = "ada@lovelace.org" }))
        assert.equal("ada@lovelace.org", assert(cm.subscribers:get(list.id, "ada@lovelace.org")).email)
        local _, gone = cm.subscribers:get(list.id, "ada@example.com")
        assert.equal("not_found", gone.kind)

        local page = assert(cm.subscribers:list(list.id, { status = "active" }))
        assert.equal(2, #page.items)
        assert.is_true(cm.subscribers:delete(list.id, "bob@example.com"))
        local emails = {}
        for s in cm.subscribers:each(list.id, { status = "active" }) do emails[#emails + 1] = s.email end
        assert.same({ "ada@lovelace.org" }, emails)
        local deleted = assert(cm.subscribers:list(list.id, { status = "deleted" }))
        assert.equal("bob@example.com", deleted.items[1].email)
        cm:close()
      end)

      it("pages through subscribers in order, each once", function()
        local cm = client(version)
        local list = assert(cm.lists:create{ name = "Big list", language = "en" })
        m:seed("subscribers", { count = 230, defaults = { list_id = tonumber(list.id) } })
        local seen, n = {}, 0
        for s in cm.subscribers:each(list.id, { pagesize = 50 }) do
          assert.is_nil(seen[s.email])
          seen[s.email] = true
          n = n + 1
        end
        assert.equal(230, n)
        local first = assert(cm.subscribers:list(list.id, { pagesize = 100 }))
        assert.is_true(first.has_more)
        assert.equal(100, #first.items)
        local second = assert(cm.subscribers:list(list.id, first.next))
        assert.equal(100, #second.items)
        assert.are_not.equal(first.items[1].email, second.items[1].email)
        cm:close()
      end)

      it("adds, lists and removes suppressions", function()
        local cm = client(version)
        assert.is_true(cm.suppressions:add("spam@example.com", "spamreport"))
        assert.is_true(cm.suppressions:add("gone@example.com"))
        local page = assert(cm.suppressions:list())
        assert.equal(2, #page.items)
        local n = 0
        for _ in cm.suppressions:each() do n = n + 1 end
        assert.equal(2, n)
        assert.is_true(cm.suppressions:remove("gone@example.com"))
        assert.equal(1, #assert(cm.suppressions:list()).items)
        cm:close()
      end)

      it("reports a validation error as validation, not rate_limited, and does not retry it", function()
        local attempts = 0
        local cm = client(version, { on_request = function() attempts = attempts + 1 end })
        local _, err = cm.lists:create{ name = "x", language = "en" }
        assert.equal("validation", err.kind)
        assert.equal("name", err.details[1].field)
        assert.equal(1, attempts)
        cm:close()
      end)

      it("is refused with a wrong secret", function()
        local cm = client(version, { shared_secret = "not-the-secret" })
        local _, err = cm.lists:list()
        assert.equal("auth", err.kind)
        assert.equal(401, err.status)
        assert.is_nil(fixtures.find_string(err, "not-the-secret"))
        cm:close()
      end)

      it("signs the exact URL it requests, query string included", function()
        local base = version == 2 and (m.root .. "/v2/api") or m.url
        local path = version == 2 and "/suppressions?page=1&pagesize=10" or "/suppressions.json?page=0&pagesize=10"
        local function send(url, body, secret, method)
          local ts = math.floor(core.now())
          return mockserver.request(method or "GET", url, {
            body = body,
            headers = {
              ["X-Access-Token"] = TOKEN,
              ["X-Request-Timestamp"] = tostring(ts),
              ["X-Request-Signature"] = core.sign_creamailer(version, secret, url, body or "", ts),
              ["Content-Type"] = body and "application/json" or nil,
            },
          })
        end
        assert.equal(200, send(base .. path, nil, SECRET).status)
        -- The same request with one byte of the query changed after signing.
        local ts = math.floor(core.now())
        local signed = core.sign_creamailer(version, SECRET, base .. path, "", ts)
        local tampered = mockserver.request("GET", base .. path:gsub("pagesize=10", "pagesize=11"), {
          headers = { ["X-Access-Token"] = TOKEN, ["X-Request-Timestamp"] = tostring(ts),
                      ["X-Request-Signature"] = signed } })
        assert.equal(401, tampered.status)
        assert.equal(401, send(base .. path, nil, SECRET .. "x").status)
        -- A body changed by one byte after signing.
        local body = '{"email":"a@example.com"}'
        local url = base .. (version == 2 and "/suppressions" or "/suppressions.json")
        local sig = core.sign_creamailer(version, SECRET, url, body, ts)
        local changed = mockserver.request("POST", url, {
          body = body:gsub("a@", "b@"),
          headers = { ["X-Access-Token"] = TOKEN, ["X-Request-Timestamp"] = tostring(ts),
                      ["X-Request-Signature"] = sig, ["Content-Type"] = "application/json" } })
        assert.equal(401, changed.status)
        assert.equal(201, send(url, body, SECRET, "POST").status)
      end)
    end)
  end

  describe("quota", function()
    it("spends a small client-side budget no faster than configured", function()
      local cm = client(1, { rate_limit = { limit = 3, per = 1, account = "cm-small-budget" } })
      local started = core.monotonic()
      for _ = 1, 6 do assert(cm.suppressions:list()) end
      -- 3 at once, then one every 1/3 s.
      assert.is_true(core.monotonic() - started >= 0.9)
      assert.equal(0, m:stats().rate_limited)
      cm:close()
    end)

    it("defaults to 100 requests per hour", function()
      local cm = audience.creamailer{ access_token = "budget-token", shared_secret = "s", base_url = m.url,
        rate_limit = { wait = false, account = "cm-default-budget" } }
      local state = cm:rate_limit()
      assert.is_nil(state.limit)
      local lim = require("audience.core").limiter("creamailer:cm-default-budget"):state()
      assert.equal(100, lim.budget_limit)
      assert.equal(3600, lim.budget_per)
      cm:close()
    end)

    for _, case in ipairs{ { 1, 400 }, { 2, 429 } } do
      local version, status = case[1], case[2]
      local title = ("v%d over-quota %d + Retry-After is rate_limited and retried after the wait")
        :format(version, status)
      it(title, function()
        m:reset{ accounts = { tight = { token = TOKEN, secret = SECRET, limit = 2, per = 1 } } }
        local statuses = {}
        local cm = client(version, { on_response = function(i) statuses[#statuses + 1] = i.status end })
        for _ = 1, 3 do
          local _, err = cm.suppressions:list()
          assert.is_nil(err, err and tostring(err))
        end
        assert.same({ 200, 200, status, 200 }, statuses)
        m:reset{ accounts = { tight = { token = TOKEN, secret = SECRET, limit = 2, per = 1 } } }
        local limited = audience.creamailer{ access_token = TOKEN, shared_secret = SECRET, version = version,
          base_url = version == 2 and (m.root .. "/v2/api") or m.url,
          rate_limit = { wait = false, limit = 1000, per = 1, account = "cm-nowait-" .. version } }
        assert(limited.suppressions:list())
        assert(limited.suppressions:list())
        local _, err = limited.suppressions:list()
        assert.equal("rate_limited", err.kind)
        assert.equal(status, err.status)
        assert.is_true(err.retry_after > 0)
        cm:close(); limited:close()
      end)
    end
  end)

  describe("import", function()
    local function entries(n, invalid_every, existing)
      local list = {}
      for i = 1, n do
        local email = ("import%d@example.com"):format(i)
        if invalid_every and i % invalid_every == 0 then email = "not-an-email-" .. i end
        if existing and i <= existing then email = ("existing%d@example.com"):format(i) end
        list[i] = { email = email, name = "Person " .. i }
      end
      return list
    end

    it("sends 1,234 entries in 3 calls and accounts for every one", function()
      local cm = client(1)
      local list = assert(cm.lists:create{ name = "Webinar", language = "en" })
      for i = 1, 10 do assert(cm.subscribers:add(list.id, { email = ("existing%d@example.com"):format(i) })) end
      local before = m:stats().requests
      local report, err = cm.subscribers:import(list.id, entries(1234, 100, 10))
      assert.is_nil(err)
      assert.equal(3, m:stats().requests - before)
      assert.equal(3, report.batches)
      assert.equal(1234, report.added + report.updated + #report.failed)
      assert.equal(12, #report.failed - 10)      -- 12 invalid addresses, 10 already there
      assert.equal(1212, report.added)
      assert.equal(0, #report.not_sent)
      cm:close()
    end)

    it("updates existing entries with update_existing", function()
      local cm = client(2)
      local list = assert(cm.lists:create{ name = "Upserts", language = "en" })
      for i = 1, 5 do assert(cm.subscribers:add(list.id, { email = ("existing%d@example.com"):format(i) })) end
      local report = assert(cm.subscribers:import(list.id, entries(20, nil, 5), { update_existing = true }))
      assert.equal(5, report.updated)
      assert.equal(15, report.added)
      assert.equal(0, #report.failed)
    end)

    it("accepts an iterator of entries and refuses entries without an email locally", function()
      local cm = client(1)
      local list = assert(cm.lists:create{ name = "Streamed", language = "en" })
      local i = 0
      local report = assert(cm.subscribers:import(list.id, function()
        i = i + 1
        if i > 7 then return nil end
        if i == 3 then return { name = "no email" } end
        return { email = ("s%d@example.com"):format(i) }
      end, { batch_size = 2 }))
      assert.equal(6, report.added)
      assert.equal(1, #report.failed)
      assert.equal("entry has no email", report.failed[1].reason)
      assert.equal(3, report.batches)
      cm:close()
    end)

    it("reports exactly which entries did not go through when a batch fails mid-import", function()
      local cm = client(1)
      local list = assert(cm.lists:create{ name = "Half", language = "en" })
      m:fault{ match = "/v1/api/subscribers/import", method = "POST", skip = 1, times = 1,
               action = { status = 500 } }
      local all = entries(1234)
      local report, err = cm.subscribers:import(list.id, all)
      assert.equal("server", err.kind)
      assert.equal(2, report.batches)
      assert.equal(500, report.added)
      assert.equal(734, #report.failed)
      assert.equal(234, #report.not_sent)
      assert.equal(all[1001].email, report.not_sent[1])
      assert.equal(all[501].email, report.failed[1].email)
      assert.matches("^batch failed", report.failed[1].reason)
      assert.equal(1234, report.added + report.updated + #report.failed)
      -- The server holds exactly the first batch.
      local stored = 0
      for _, s in ipairs(m:data("subscribers")) do
        if tostring(s.list_id) == tostring(list.id) then stored = stored + 1 end
      end
      assert.equal(500, stored)
      cm:close()
    end)

    it("checks its arguments", function()
      local cm = client(1)
      assert.error_matches(function() cm.subscribers:import(nil, {}) end, "list_id")
      assert.error_matches(function() cm.subscribers:import(1, "x") end, "entries")
      assert.error_matches(function() cm.subscribers:import(1, {}, { update_existing = "yes" }) end,
        "update_existing")
      cm:close()
    end)
  end)

  it("keeps the token, secret and signature out of errors and hooks", function()
    local token, secret = "tok-SECRET-123456", "sec-SECRET-654321"
    m:reset{ accounts = { s = { token = token, secret = secret } } }
    local seen = {}
    local cm = audience.creamailer{ access_token = token, shared_secret = secret, base_url = m.url,
      rate_limit = { limit = 1000, per = 1, account = "cm-secrets" }, retries = 1,
      backoff = { base = 0.01, max = 0.01 },
      on_request = function(i) seen[#seen + 1] = i end, on_response = function(i) seen[#seen + 1] = i end }
    m:fault{ times = 2, action = { status = 503 } }
    local _, e1 = cm.lists:list()
    local bad = audience.creamailer{ access_token = token, shared_secret = "wrong", base_url = m.url,
      rate_limit = { limit = 1000, per = 1, account = "cm-secrets-2" } }
    local _, e2 = bad.lists:list()
    for _, needle in ipairs{ token, secret } do
      assert.is_nil(fixtures.find_string({ e1, e2, tostring(e1), tostring(e2), seen }, needle))
    end
    assert.equal("[REDACTED]", seen[1].headers["X-Request-Signature"])
    assert.equal("[REDACTED]", seen[1].headers["X-Access-Token"])
    cm:close(); bad:close()
  end)

  describe("as the official SDK and the API answer", function()
    it("reads a read-only key's write as forbidden (403), not auth, and does not retry it", function()
      m:reset{ accounts = { ro = { token = "ro-token", secret = "ro-secret", access = "read" } } }
      for _, version in ipairs{ 1, 2 } do
        local attempts = 0
        local cm = client(version, { access_token = "ro-token", shared_secret = "ro-secret",
          on_request = function() attempts = attempts + 1 end })
        assert(cm.lists:list())
        local _, err = cm.lists:create{ name = "Refused", language = "en" }
        assert.equal("forbidden", err.kind)
        assert.equal(403, err.status)
        assert.equal(2, attempts)
        assert.matches("403 forbidden", tostring(err))
        cm:close()
      end
    end)

    it("turns a 422's errors: {field: [messages]} into details", function()
      local cm = client(2)
      local _, err = cm.lists:create{ name = "x", language = "english" }
      assert.equal("validation", err.kind)
      assert.equal(422, err.status)
      assert.same({
        { field = "language", message = "The language must be a 2-letter language code." },
        { field = "name", message = "The name must be between 2 and 50 characters." },
      }, err.details)
      cm:close()
    end)

    it("counts v2's quota per key, apart from v1's, by default", function()
      -- A token of its own: the default account is the credential's, and the budget of
      -- an account only ever tightens within a process.
      local token = "quota-scope-token-" .. os.time()
      m:reset{ accounts = { q = { token = token, secret = SECRET } } }
      local v1 = audience.creamailer{ access_token = token, shared_secret = SECRET, base_url = m.url,
        rate_limit = { limit = 1, per = 3600, wait = false } }
      local v2 = audience.creamailer{ access_token = token, shared_secret = SECRET, version = 2,
        base_url = m.root .. "/v2/api", rate_limit = { limit = 1, per = 3600, wait = false } }
      assert.is_true(v1:ping())
      assert.is_true(v2:ping())
      local _, err = v1:ping()
      assert.equal("rate_limited", err.kind)
      _, err = v2:ping()
      assert.equal("rate_limited", err.kind)
      v1:close(); v2:close()
    end)

    it("v1 takes the official v1 SDK's pagesize=50000; v2's limit of 1000 is checked before sending", function()
      local cm1 = client(1)
      local list = assert(cm1.lists:create{ name = "Paged", language = "en" })
      m:seed("subscribers", { count = 3, defaults = { list_id = list.id } })
      local page = assert(cm1.subscribers:list(list.id, { pagesize = 50000 }))
      assert.equal(3, #page.items)
      local _, err = cm1.subscribers:list(list.id, { pagesize = 50001 })
      assert.equal("validation", err.kind)
      assert.equal("pagesize", err.details[1].field)
      cm1:close()

      local before = m:stats().requests
      local cm2 = client(2)
      _, err = cm2.subscribers:list(list.id, { pagesize = 5000 })
      assert.equal("validation", err.kind)
      assert.equal("local", err.code)
      assert.is_nil(err.status)
      assert.equal("pagesize", err.details[1].field)
      assert.matches("pagesize must be in 1..1000", tostring(err))
      _, err = cm2.subscribers:list(list.id, { status = "gone" })
      assert.equal("status", err.details[1].field)
      _, err = cm2.subscribers:list(list.id, { date = "1.2.2026" })
      assert.matches("date must be a date YYYY%-MM%-DD", err.message)
      _, err = cm2.subscribers:activity("a@example.com", { page = 0 })
      assert.equal("page", err.details[1].field)
      assert.has_error(function() for _ in cm2.suppressions:each{ pagesize = 0 } do end end)
      assert.equal(before, m:stats().requests)
      assert(cm2.subscribers:list(list.id, { pagesize = 1000 }))
      cm2:close()
    end)
  end)
end)
