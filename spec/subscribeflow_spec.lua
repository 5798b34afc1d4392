-- audience.subscribeflow against the SubscribeFlow mock: envelope, errors, paging,
-- filters and sort, the rate-limit headers, magic links, webhooks and idempotent POSTs.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"
local fixtures = require "support.fixtures"

local KEY = "sf_live_test"

describe("audience.subscribeflow", function()
  local m, sf

  setup(function() m = mockserver.start("subscribeflow") end)
  teardown(function()
    if sf then sf:close() end
    if m then m:stop() end
  end)

  local JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.sig"
  local DEFAULT = { accounts = { default = { keys = { KEY }, tokens = { JWT }, limit = 100000, per = 60 } } }
  before_each(function()
    m:reset(DEFAULT)
    sf = audience.subscribeflow{ api_key = KEY, base_url = m.url, timeout = 5 }
  end)

  describe("subscribers", function()
    it("creates, gets, updates and deletes, unwrapping the envelope", function()
      local s = assert(sf.subscribers:create{ email = "ada@example.com", metadata = { plan = "pro" } })
      assert.equal("ada@example.com", s.email)
      assert.is_string(s.id)
      assert.equal(s.id, assert(sf.subscribers:get(s.id)).id)
      local u = assert(sf.subscribers:update(s.id, { status = "unsubscribed" }))
      assert.equal("unsubscribed", u.status)
      assert.is_true(sf.subscribers:delete(s.id))
      local _, err = sf.subscribers:get(s.id)
      assert.equal("not_found", err.kind)
      assert.equal("not_found", err.code)
    end)

    it("maps the error envelope: conflict, validation with details", function()
      assert(sf.subscribers:create{ email = "dup@example.com" })
      local _, dup = sf.subscribers:create{ email = "dup@example.com" }
      assert.equal("conflict", dup.kind)
      assert.equal(409, dup.status)
      local _, bad = sf.subscribers:create{ email = "not an email" }
      assert.equal("validation", bad.kind)
      assert.equal("validation_error", bad.code)
      assert.equal("email", bad.details[1].field)
      assert.matches("^subscribeflow: 400 validation: ", tostring(bad))
    end)

    it("walks 250 subscribers at per_page = 7, each exactly once", function()
      m:seed("subscribers", 250)
      local seen, n = {}, 0
      for s in sf.subscribers:each{ per_page = 7 } do
        assert.is_nil(seen[s.id])
        seen[s.id] = true
        n = n + 1
      end
      assert.equal(250, n)
      local page = assert(sf.subscribers:list{ per_page = 7 })
      assert.equal(250, page.total)
      assert.is_true(page.has_more)
      assert.equal(2, page.next.page)
      local last = assert(sf.subscribers:list{ per_page = 7, page = 36 })
      assert.is_false(last.has_more)
      assert.equal(5, #last.items)
    end)

    it("filters by status and tag and sorts by a string or a list", function()
      assert(sf.tags:create{ name = "News" })
      assert(sf.subscribers:create{ email = "b@example.com", tags = { "news" } })
      assert(sf.subscribers:create{ email = "a@example.com" })
      assert(sf.subscribers:create{ email = "c@example.com", status = "unsubscribed" })
      local tagged = assert(sf.subscribers:list{ tag = "news" })
      assert.equal(1, #tagged.items)
      local active = assert(sf.subscribers:list{ status = "active", sort = "email" })
      assert.same({ "a@example.com", "b@example.com" }, { active.items[1].email, active.items[2].email })
      local by_list = assert(sf.subscribers:list{ sort = { "-email" } })
      assert.equal("c@example.com", by_list.items[1].email)
      local log = m:stats().log
      assert.matches("sort=%-email", log[#log].query)
    end)

    it("reads and changes a subscriber's tags as plain lists", function()
      assert(sf.tags:create{ name = "Alpha" })
      assert(sf.tags:create{ name = "Beta" })
      local s = assert(sf.subscribers:create{ email = "t@example.com", tags = { "alpha" } })
      local tags = assert(sf.subscribers:tags(s.id))
      assert.equal(1, #tags)
      assert.equal("alpha", tags[1].slug)
      local after = assert(sf.subscribers:update_tags(s.id, { add = { "beta" }, remove = { "alpha" } }))
      assert.equal(1, #after)
      assert.equal("beta", after[1].slug)
      assert.same({}, assert(sf.subscribers:update_tags(s.id, { remove = { "beta" } })))
      assert.error_matches(function() sf.subscribers:update_tags(s.id, { replace = {} }) end, "changes")
    end)
  end)

  describe("tags", function()
    it("creates, lists by category, gets, updates and deletes", function()
      local t = assert(sf.tags:create{ name = "Product Updates", category = "newsletter" })
      assert.equal("product-updates", t.slug)
      assert(sf.tags:create{ name = "Other", category = "misc" })
      local page = assert(sf.tags:list{ category = "newsletter" })
      assert.equal(1, #page.items)
      assert.equal(1, page.total)
      assert.equal("Product Updates", assert(sf.tags:get(t.id)).name)
      assert.equal("Updates", assert(sf.tags:update(t.id, { name = "Updates" })).name)
      assert.is_true(sf.tags:delete(t.id))
    end)
  end)

  describe("preferences", function()
    it("reads and updates through a magic link without sending the API key", function()
      assert(sf.tags:create{ name = "News" })
      local s = assert(sf.subscribers:create{ email = "p@example.com" })
      m:seed("preferences", { items = { { token = "magic-token-123", subscriber_id = s.id } } })
      local seen = {}
      local c = audience.subscribeflow{ api_key = KEY, base_url = m.url,
        on_request = function(i) seen[#seen + 1] = i end }
      local prefs = assert(c.preferences:get("magic-token-123"))
      assert.equal("p@example.com", prefs.email)
      local updated = assert(c.preferences:update("magic-token-123", { tags = { news = true } }))
      local subscribed = false
      for _, t in ipairs(updated.tags) do subscribed = subscribed or (t.slug == "news" and t.subscribed) end
      assert.is_true(subscribed)
      local checked = 0
      for _, entry in ipairs(m:stats().log) do
        if entry.path:find("/preferences/", 1, true) then
          assert.equal(false, entry.authorization)
          checked = checked + 1
        end
      end
      assert.equal(2, checked)
      assert.is_nil(seen[1].headers.Authorization)
      assert.is_nil(fixtures.find_string(seen, "magic-token-123"))
      local _, err = c.preferences:get("no-such-token")
      assert.equal("not_found", err.kind)
      assert.is_nil(fixtures.find_string(err, "no-such-token"))
      c:close()
    end)
  end)

  describe("webhooks", function()
    it("lists, creates and deletes", function()
      local w = assert(sf.webhooks:create{ url = "https://example.com/h", events = { "subscriber.created" } })
      local page = assert(sf.webhooks:list())
      assert.equal(1, #page.items)
      assert.is_false(page.has_more)
      assert.is_true(sf.webhooks:delete(w.id))
      assert.equal(0, #assert(sf.webhooks:list()).items)
    end)
  end)

  describe("auth", function()
    it("accepts a JWT as token, refuses both at once and bad credentials", function()
      local jwt = audience.subscribeflow{ token = JWT, base_url = m.url }
      assert(jwt.subscribers:list())
      jwt:close()
      assert.error_matches(function() audience.subscribeflow{ api_key = KEY, token = "t" } end, "not both")
      assert.error_matches(function() audience.subscribeflow{} end, "missing option 'api_key' or 'token'")
      local bad = audience.subscribeflow{ api_key = "sf_live_wrong", base_url = m.url }
      local _, err = bad.subscribers:list()
      assert.equal("auth", err.kind)
      assert.equal("unauthorized", err.code)
      bad:close()
    end)

    it("maps a 403 forbidden to the kind forbidden, not auth", function()
      m:reset{ accounts = { ro = { keys = { "sf_live_ro" }, scope = "read" } } }
      local ro = audience.subscribeflow{ api_key = "sf_live_ro", base_url = m.url }
      local _, err = ro.tags:create{ name = "x" }
      assert.equal("forbidden", err.kind)
      assert.equal("forbidden", err.code)
      assert.equal(403, err.status)
      ro:close()
    end)
  end)

  describe("rate limits", function()
    it("learns X-RateLimit-* (Reset as epoch) and never meets a 429", function()
      m:reset{ accounts = { small = { keys = { "sf_live_small" }, limit = 5, per = 1 } } }
      local c = audience.subscribeflow{ api_key = "sf_live_small", base_url = m.url,
        rate_limit = { account = "sf-small" } }
      for _ = 1, 12 do assert(c.tags:list()) end
      assert.equal(0, m:stats().rate_limited)
      local rl = c:rate_limit()
      assert.equal(5, rl.limit)
      assert.is_true(rl.reset_at > core.now() - 2)
      c:close()
    end)
  end)

  describe("idempotency", function()
    it("sends an Idempotency-Key on every POST, the caller's when given", function()
      local keys = {}
      local c = audience.subscribeflow{ api_key = KEY, base_url = m.url,
        on_request = function(i) keys[#keys + 1] = i.headers["Idempotency-Key"] end }
      assert(c.tags:create{ name = "one" })
      assert(c.tags:create({ name = "two" }, { idempotency_key = "my-key-1" }))
      assert(c.tags:list())
      assert.is_string(keys[1])
      assert.is_true(#keys[1] >= 16)
      assert.equal("my-key-1", keys[2])
      assert.is_nil(keys[3])
      c:close()
    end)

    it("a create that timed out after the server stored it is retried with the same key: one subscriber", function()
      m:fault{ match = "/v1/subscribers", method = "POST", times = 1, action = { delay_after = 1.5 } }
      local attempts = {}
      local c = audience.subscribeflow{ api_key = KEY, base_url = m.url, timeout = 0.5,
        backoff = { base = 0.05, max = 0.1 },
        on_response = function(i)
          attempts[#attempts + 1] = { key = i.headers["Idempotency-Key"], kind = i.error and i.error.kind }
        end }
      local s, err = c.subscribers:create{ email = "once@example.com" }
      assert.is_nil(err, err and tostring(err))
      assert.equal("once@example.com", s.email)
      assert.equal(2, #attempts)
      assert.equal("timeout", attempts[1].kind)
      assert.equal(attempts[1].key, attempts[2].key)
      local count = 0
      for _, sub in ipairs(m:data("subscribers")) do
        if sub.email == "once@example.com" then count = count + 1 end
      end
      assert.equal(1, count)
      c:close()
    end)

    it("a key reused with another body is a conflict", function()
      assert(sf.tags:create({ name = "first" }, { idempotency_key = "k-1" }))
      local again = assert(sf.tags:create({ name = "first" }, { idempotency_key = "k-1" }))
      assert.equal("first", again.name)
      local _, err = sf.tags:create({ name = "second" }, { idempotency_key = "k-1" })
      assert.equal("conflict", err.kind)
      assert.equal(1, #assert(sf.tags:list()).items)
    end)
  end)
end)
