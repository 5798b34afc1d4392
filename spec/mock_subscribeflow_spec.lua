-- Tests of the SubscribeFlow mock server itself (spec/mock/subscribeflow.lua), driven over
-- plain luasocket through the harness (spec/support/mockserver.lua).
local socket = require "socket"
local mockserver = require "support.mockserver"

local KEY = "sf_live_test"
local TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.sig"
local null = mockserver.null
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$"

describe("subscribeflow mock", function()
  local m

  setup(function()
    m = mockserver.start("subscribeflow")
  end)

  teardown(function()
    if m then m:stop() end
  end)

  before_each(function()
    m:reset({})
  end)

  -- raw call: returns res or nil, err
  local function call(method, path, opts)
    opts = opts or {}
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    if headers.Authorization == nil and not opts.anonymous then
      headers.Authorization = "Bearer " .. (opts.cred or KEY)
    end
    opts.headers = headers
    return mockserver.request(method, m.url .. path, opts)
  end

  local function api(method, path, opts)
    local res, err = call(method, path, opts)
    assert(res, err)
    return res
  end

  local function ids_of(list)
    local out = {}
    for i, x in ipairs(list) do out[i] = x.id end
    return out
  end

  local function emails_of(list)
    local out = {}
    for i, x in ipairs(list) do out[i] = x.email end
    return out
  end

  local function slugs_of(list)
    local out = {}
    for i, x in ipairs(list) do out[i] = x.slug end
    return out
  end

  local function sf_stats() return m:admin("GET", "/__admin/sf_stats") end

  describe("harness", function()
    it("exposes the /v1 prefix and answers health", function()
      assert.equal(m.root .. "/v1", m.url)
      local h = m:admin("GET", "/__admin/health")
      assert.is_true(h.ok)
      assert.equal("subscribeflow", h.mock)
      assert.equal("/v1", h.prefix)
    end)
  end)

  describe("auth", function()
    it("accepts the default API key and the default token as Bearer credentials", function()
      for _, cred in ipairs({ KEY, TOKEN }) do
        local r = api("GET", "/subscribers", { cred = cred })
        assert.equal(200, r.status)
        assert.matches("^application/json", r.headers["content-type"])
      end
      local st = m:stats()
      assert.equal(1, st.by_key["default:key1"])
      assert.equal(1, st.by_key["default:token1"])
    end)

    it("answers 401 with the error envelope for missing, unknown and non-Bearer credentials", function()
      local body = { error = { code = "unauthorized", message = "Missing or invalid authentication" } }
      for _, headers in ipairs({
        {}, { Authorization = "Bearer nope" }, { Authorization = "Basic " .. KEY }, { Authorization = KEY },
      }) do
        local r = api("GET", "/subscribers", { anonymous = true, headers = headers })
        assert.equal(401, r.status)
        assert.same(body, r.json)
        assert.is_nil(r.headers["x-ratelimit-limit"])
      end
    end)

    it("uses configured accounts; read scope gets 403 on every write and can still read", function()
      m:reset({ accounts = {
        ro = { keys = { "sf_live_ro" }, scope = "read" },
        rw = { tokens = { "eyJ.rw.sig" } },
      } })
      assert.equal(401, api("GET", "/tags").status)   -- the default key is gone
      m:seed("subscribers", 1)
      local id = m:data("subscribers")[1].id
      local ro = { cred = "sf_live_ro" }
      assert.equal(200, api("GET", "/subscribers", ro).status)
      local function write(method, path, body)
        local r = api(method, path, { cred = "sf_live_ro", body = body })
        assert.equal(403, r.status)
        assert.equal("forbidden", r.json.error.code)
        assert.is_string(r.json.error.message)
        assert.is_not_nil(r.headers["x-ratelimit-remaining"])
      end
      write("POST", "/subscribers", { email = "x@example.com" })
      write("PATCH", "/subscribers/" .. id, { status = "bounced" })
      write("DELETE", "/subscribers/" .. id)
      write("POST", "/tags", { name = "x" })
      write("POST", "/webhooks", { url = "https://h.example.com", events = { "a" } })
      assert.equal(1, #m:data("subscribers"))
      assert.equal(0, #m:data("tags"))
      local r = api("POST", "/tags", { cred = "eyJ.rw.sig", body = { name = "ok" } })
      assert.equal(201, r.status)
    end)
  end)

  describe("envelope and paging", function()
    it("wraps singles in data and collections in data + meta", function()
      m:seed("subscribers", 3)
      local r = api("GET", "/subscribers")
      assert.equal(200, r.status)
      assert.same({ total = 3, page = 1, per_page = 20, total_pages = 1 }, r.json.meta)
      assert.equal(3, #r.json.data)
      local s = r.json.data[1]
      assert.matches(UUID, s.id)
      assert.equal("sub1@example.com", s.email)
      assert.equal("active", s.status)
      assert.same({}, s.tags)
      assert.same({}, s.metadata)
      assert.matches(ISO, s.created_at)
      assert.matches(ISO, s.updated_at)
      assert.matches('"tags":%[%]', r.body)
      assert.matches('"metadata":{}', r.body)
      local one = api("GET", "/subscribers/" .. s.id)
      assert.same({ data = s }, one.json)

      local empty = api("GET", "/tags")
      assert.same({ total = 0, page = 1, per_page = 20, total_pages = 0 }, empty.json.meta)
      assert.matches('"data":%[%]', empty.body)
    end)

    it("rejects page and per_page outside their ranges with validation_error details", function()
      for _, q in ipairs({ "page=0", "page=abc", "per_page=0", "per_page=101", "per_page=", "page=-1" }) do
        local r = api("GET", "/subscribers?" .. q)
        assert.equal(400, r.status, q)
        assert.equal("validation_error", r.json.error.code)
        assert.equal(q:match("^(%w+_?%w*)="), r.json.error.details[1].field)
      end
      assert.equal(200, api("GET", "/subscribers?per_page=100&page=1").status)
      assert.equal(200, api("GET", "/tags?per_page=1").status)
      assert.equal(400, api("GET", "/tags?per_page=101").status)
    end)

    it("walks 250 subscribers at per_page=7: 36 pages, each id once, created_at order", function()
      local s = m:seed("subscribers", 250)
      assert.equal(250, s.created)
      assert.equal(250, s.total)
      local seen, ids, page = {}, {}, 1
      local pages
      local last_created
      repeat
        local r = api("GET", "/subscribers?per_page=7&page=" .. page)
        assert.equal(200, r.status)
        assert.equal(250, r.json.meta.total)
        assert.equal(7, r.json.meta.per_page)
        assert.equal(page, r.json.meta.page)
        pages = r.json.meta.total_pages
        for _, sub in ipairs(r.json.data) do
          assert.is_nil(seen[sub.id])
          seen[sub.id] = true
          ids[#ids + 1] = sub.id
          if last_created then assert.is_true(sub.created_at > last_created) end
          last_created = sub.created_at
        end
        if page == 36 then assert.equal(5, #r.json.data) else assert.equal(7, #r.json.data) end
        page = page + 1
      until page > pages
      assert.equal(36, pages)
      assert.equal(250, #ids)
      assert.equal("sub250@example.com", m:data("subscribers")[250].email)
      local beyond = api("GET", "/subscribers?per_page=7&page=37")
      assert.equal(200, beyond.status)
      assert.same({}, beyond.json.data)
    end)
  end)

  describe("filters and sort", function()
    before_each(function()
      m:seed("tags", {
        { name = "Product Updates", category = "product" },
        { name = "Weekly Digest", category = "newsletter" },
        { name = "Events", category = "product" },
      })
    end)

    it("filters subscribers by status, by tag slug and both; tags by category", function()
      m:seed("subscribers", {
        { email = "a@example.com", status = "active", tags = { "product-updates" } },
        { email = "b@example.com", status = "bounced", tags = { "weekly-digest" } },
        { email = "c@example.com", status = "unsubscribed", tags = { "product-updates", "events" } },
        { email = "d@example.com", status = "pending" },
        { email = "e@example.com", status = "active", tags = { "weekly-digest", "product-updates" } },
      })
      local function emails(q)
        local r = api("GET", "/subscribers?" .. q)
        assert.equal(200, r.status, q)
        return emails_of(r.json.data), r.json.meta.total
      end
      assert.same({ "a@example.com", "e@example.com" }, emails("status=active"))
      assert.same({ "b@example.com" }, emails("status=bounced"))
      assert.same({ "d@example.com" }, emails("status=pending"))
      assert.same({ "a@example.com", "c@example.com", "e@example.com" }, emails("tag=product-updates"))
      assert.same({ "a@example.com", "e@example.com" }, emails("status=active&tag=product-updates"))
      local list, total = emails("tag=product-updates&per_page=2&page=2")
      assert.same({ "e@example.com" }, list)
      assert.equal(3, total)
      assert.same({}, emails("tag=no-such-tag"))
      local r = api("GET", "/subscribers?status=gone")
      assert.equal(400, r.status)
      assert.equal("status", r.json.error.details[1].field)

      r = api("GET", "/tags?category=product")
      assert.same({ "product-updates", "events" }, slugs_of(r.json.data))
      assert.equal(2, r.json.meta.total)
      r = api("GET", "/tags?sort=name")
      assert.same({ "events", "product-updates", "weekly-digest" }, slugs_of(r.json.data))
      r = api("GET", "/tags?sort=-created_at")
      assert.same({ "events", "weekly-digest", "product-updates" }, slugs_of(r.json.data))
      assert.equal(400, api("GET", "/tags?sort=slug").status)
    end)

    it("sorts by a comma list with - for descending; ties broken by id", function()
      local t1, t2 = "2024-01-01T10:00:00.000001Z", "2024-01-02T10:00:00.5Z"
      m:seed("subscribers", {
        { email = "d@example.com", created_at = t1, status = "pending" },
        { email = "b@example.com", created_at = t2, status = "active" },
        { email = "c@example.com", created_at = t1, status = "active" },
        { email = "a@example.com", created_at = t2, status = "bounced" },
        { email = "e@example.com", created_at = t1, status = "active" },
      })
      local function emails(sort)
        local r = api("GET", "/subscribers?sort=" .. sort)
        assert.equal(200, r.status, sort)
        return emails_of(r.json.data)
      end
      assert.same({ "a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com" },
        emails("-created_at,email"))
      assert.same({ "c@example.com", "d@example.com", "e@example.com", "a@example.com", "b@example.com" },
        emails("created_at,email"))
      assert.same({ "e@example.com", "d@example.com", "c@example.com", "b@example.com", "a@example.com" },
        emails("-email"))
      assert.same({ "b@example.com", "c@example.com", "e@example.com", "a@example.com", "d@example.com" },
        emails("status,email"))

      -- created_at alone: equal timestamps come out by id, the same way on every call
      local r = api("GET", "/subscribers?sort=created_at")
      local firsts = {}
      for i = 1, 3 do firsts[i] = r.json.data[i] end
      local ids = ids_of(firsts)
      local sorted = { ids[1], ids[2], ids[3] }
      table.sort(sorted)
      assert.same(sorted, ids)
      assert.equal("2024-01-01T10:00:00.000001Z", r.json.data[1].created_at)
      assert.same(ids_of(r.json.data), ids_of(api("GET", "/subscribers?sort=created_at").json.data))
      -- default order is created_at ascending
      assert.same(ids_of(r.json.data), ids_of(api("GET", "/subscribers").json.data))

      for _, bad in ipairs({ "name", "-created_at,nope", "created_at,,email" }) do
        local e = api("GET", "/subscribers?sort=" .. bad)
        assert.equal(400, e.status, bad)
        assert.equal("validation_error", e.json.error.code)
        assert.equal("sort", e.json.error.details[1].field)
      end
    end)
  end)

  describe("rate limit", function()
    it("sends X-RateLimit-* on every authenticated answer, then 429 with Retry-After", function()
      m:reset({ accounts = { small = { keys = { "sf_live_small" }, limit = 3, per = 60 } } })
      m:seed("preferences", { items = { { token = "tokq" } } })
      local opts = { cred = "sf_live_small" }
      local t0 = os.time()
      for i = 1, 3 do
        local r = api("GET", i == 2 and "/subscribers/nope" or "/subscribers", opts)
        assert.equal(i == 2 and 404 or 200, r.status)
        assert.equal("3", r.headers["x-ratelimit-limit"])
        assert.equal(tostring(3 - i), r.headers["x-ratelimit-remaining"])
        local reset = r.headers["x-ratelimit-reset"]
        assert.matches("^%d+$", reset)
        assert.is_true(tonumber(reset) >= t0 + 59 and tonumber(reset) <= t0 + 62)
      end
      local r = api("GET", "/subscribers", opts)
      assert.equal(429, r.status)
      assert.equal("rate_limited", r.json.error.code)
      assert.equal("0", r.headers["x-ratelimit-remaining"])
      local ra = tonumber(r.headers["retry-after"])
      assert.is_true(ra >= 58 and ra <= 60)
      -- preferences are outside the quota
      local p = api("GET", "/preferences/tokq", { anonymous = true })
      assert.equal(200, p.status)
      assert.is_nil(p.headers["x-ratelimit-limit"])
      assert.equal(1, m:stats().rate_limited)
      assert.equal(1, sf_stats().rate_limited)
      -- the quota is per account: a reset restores it
      m:reset({ accounts = { small = { keys = { "sf_live_small" }, limit = 3, per = 60 } } })
      assert.equal(200, api("GET", "/subscribers", opts).status)
    end)
  end)

  describe("subscribers", function()
    it("creates, reads, patches and deletes a subscriber", function()
      m:seed("tags", { { name = "VIP" }, { name = "Beta Testers" } })
      local r = api("POST", "/subscribers", { body = {
        email = "jane@example.com", tags = { "vip" }, metadata = { plan = "pro", seats = 3, gone = null },
      } })
      assert.equal(201, r.status)
      local s = r.json.data
      assert.matches(UUID, s.id)
      assert.equal("jane@example.com", s.email)
      assert.equal("active", s.status)
      assert.same({ "vip" }, s.tags)
      assert.same({ plan = "pro", seats = 3 }, s.metadata)
      assert.equal(s.created_at, s.updated_at)
      assert.equal("/v1/subscribers/" .. s.id, r.headers["location"])

      r = api("POST", "/subscribers", { body = { email = "not-an-email" } })
      assert.equal(400, r.status)
      assert.same({ code = "validation_error", message = "Invalid email format",
        details = { { field = "email", message = "Must be a valid email address" } } }, r.json.error)
      r = api("POST", "/subscribers", { body = {} })
      assert.equal(400, r.status)
      assert.equal("email", r.json.error.details[1].field)
      r = api("POST", "/subscribers", { body = { email = "x@example.com", tags = { "vip", "nope" } } })
      assert.equal(400, r.status)
      assert.equal("tags", r.json.error.details[1].field)
      r = api("POST", "/subscribers", { body = { email = "x@example.com", status = "zombie" } })
      assert.equal(400, r.status)
      r = api("POST", "/subscribers", { body = "{not json", headers = { ["Content-Type"] = "application/json" } })
      assert.equal(400, r.status)
      assert.equal("validation_error", r.json.error.code)
      r = api("POST", "/subscribers", { body = { email = "JANE@example.com" } })
      assert.equal(409, r.status)
      assert.equal("conflict", r.json.error.code)
      assert.equal(1, #m:data("subscribers"))

      assert.same({ data = s }, api("GET", "/subscribers/" .. s.id).json)
      r = api("GET", "/subscribers/00000000-0000-4000-8000-000000000000")
      assert.equal(404, r.status)
      assert.equal("not_found", r.json.error.code)

      socket.sleep(0.002)
      r = api("PATCH", "/subscribers/" .. s.id, { body = { status = "unsubscribed",
        metadata = { plan = null, team = "red" } } })
      assert.equal(200, r.status)
      local p = r.json.data
      assert.equal("unsubscribed", p.status)
      assert.equal("jane@example.com", p.email)
      assert.same({ seats = 3, team = "red" }, p.metadata)
      assert.same({ "vip" }, p.tags)
      assert.equal(s.created_at, p.created_at)
      assert.is_true(p.updated_at > s.updated_at)
      r = api("PATCH", "/subscribers/" .. s.id, { body = { email = "jane.doe@example.com" } })
      assert.equal("jane.doe@example.com", r.json.data.email)
      assert.equal("unsubscribed", r.json.data.status)
      r = api("PATCH", "/subscribers/" .. s.id, { body = { metadata = null } })
      assert.same({}, r.json.data.metadata)
      r = api("PATCH", "/subscribers/" .. s.id, { body = { email = "bad" } })
      assert.equal(400, r.status)
      api("POST", "/subscribers", { body = { email = "other@example.com" } })
      r = api("PATCH", "/subscribers/" .. s.id, { body = { email = "other@example.com" } })
      assert.equal(409, r.status)
      assert.equal(404, api("PATCH", "/subscribers/nope", { body = { status = "active" } }).status)

      -- the subscriber's tags
      r = api("GET", "/subscribers/" .. s.id .. "/tags")
      assert.equal(200, r.status)
      assert.is_nil(r.json.meta)
      assert.equal(1, #r.json.data)
      assert.equal("vip", r.json.data[1].slug)
      assert.equal("VIP", r.json.data[1].name)
      r = api("PATCH", "/subscribers/" .. s.id .. "/tags", { body = { add = { "beta-testers" }, remove = { "vip" } } })
      assert.equal(200, r.status)
      assert.same({ "beta-testers" }, slugs_of(r.json.data))
      assert.matches(UUID, r.json.data[1].id)
      r = api("PATCH", "/subscribers/" .. s.id .. "/tags", { body = { add = { "unknown" } } })
      assert.equal(400, r.status)
      assert.equal("add", r.json.error.details[1].field)
      assert.same({ "beta-testers" }, api("GET", "/subscribers/" .. s.id).json.data.tags)
      assert.equal(404, api("GET", "/subscribers/nope/tags").status)

      r = api("DELETE", "/subscribers/" .. s.id)
      assert.equal(204, r.status)
      assert.equal("", r.body)
      assert.equal(404, api("GET", "/subscribers/" .. s.id).status)
      assert.equal(404, api("DELETE", "/subscribers/" .. s.id).status)
      assert.equal(1, #m:data("subscribers"))
      assert.equal(2, sf_stats().creates.subscribers)
    end)
  end)

  describe("tags", function()
    it("creates with a derived slug, lists, patches, and deletes (removing it from subscribers)", function()
      local r = api("POST", "/tags", { body = { name = "Product Updates", category = "product",
        description = "Monthly news" } })
      assert.equal(201, r.status)
      local t = r.json.data
      assert.matches(UUID, t.id)
      assert.equal("product-updates", t.slug)
      assert.equal("product", t.category)
      assert.equal("Monthly news", t.description)
      assert.matches(ISO, t.created_at)
      r = api("POST", "/tags", { body = { name = "Tips & Tricks!" } })
      assert.equal("tips-tricks", r.json.data.slug)
      assert.equal(null, r.json.data.category)
      assert.equal(null, r.json.data.description)

      assert.equal(409, api("POST", "/tags", { body = { name = "product updates" } }).status)
      assert.equal(409, api("POST", "/tags", { body = { name = "Product-Updates" } }).status)
      r = api("POST", "/tags", { body = { description = "x" } })
      assert.equal(400, r.status)
      assert.equal("name", r.json.error.details[1].field)

      assert.same({ data = t }, api("GET", "/tags/" .. t.id).json)
      assert.equal(404, api("GET", "/tags/nope").status)

      local sub = api("POST", "/subscribers", { body = { email = "t@example.com",
        tags = { "product-updates", "tips-tricks" } } }).json.data
      r = api("PATCH", "/tags/" .. t.id, { body = { name = "Release Notes", description = null } })
      assert.equal(200, r.status)
      assert.equal("release-notes", r.json.data.slug)
      assert.equal("product", r.json.data.category)
      assert.equal(null, r.json.data.description)
      assert.same({ "release-notes", "tips-tricks" }, api("GET", "/subscribers/" .. sub.id).json.data.tags)
      assert.equal(409, api("PATCH", "/tags/" .. t.id, { body = { name = "Tips Tricks" } }).status)

      r = api("DELETE", "/tags/" .. t.id)
      assert.equal(204, r.status)
      assert.equal("", r.body)
      assert.equal(404, api("GET", "/tags/" .. t.id).status)
      assert.same({ "tips-tricks" }, api("GET", "/subscribers/" .. sub.id).json.data.tags)
      assert.equal(1, api("GET", "/tags").json.meta.total)
      assert.equal(2, sf_stats().creates.tags)
    end)
  end)

  describe("webhooks", function()
    it("lists without meta, creates with a secret, validates, deletes", function()
      local r = api("GET", "/webhooks")
      assert.equal(200, r.status)
      assert.same({ data = {} }, r.json)
      assert.equal('{"data":[]}', r.body)

      r = api("POST", "/webhooks", { body = { url = "https://hooks.example.com/sf",
        events = { "subscriber.created", "subscriber.updated" }, secret = "s3cret" } })
      assert.equal(201, r.status)
      local w = r.json.data
      assert.matches(UUID, w.id)
      assert.equal("https://hooks.example.com/sf", w.url)
      assert.same({ "subscriber.created", "subscriber.updated" }, w.events)
      assert.equal("s3cret", w.secret)
      assert.matches(ISO, w.created_at)
      r = api("POST", "/webhooks", { body = { url = "https://hooks.example.com/2", events = { "tag.created" } } })
      assert.equal(201, r.status)
      assert.is_string(r.json.data.secret)
      assert.is_true(#r.json.data.secret > 8)

      for _, body in ipairs({
        { events = { "a" } }, { url = "https://x.example.com" }, { url = "https://x.example.com", events = {} },
        { url = "ftp://x", events = { "a" } },
      }) do
        r = api("POST", "/webhooks", { body = body })
        assert.equal(400, r.status)
        assert.equal("validation_error", r.json.error.code)
      end

      r = api("GET", "/webhooks")
      assert.is_nil(r.json.meta)
      assert.equal(2, #r.json.data)
      assert.equal(w.id, r.json.data[1].id)
      r = api("DELETE", "/webhooks/" .. w.id)
      assert.equal(204, r.status)
      assert.equal("", r.body)
      assert.equal(404, api("DELETE", "/webhooks/" .. w.id).status)
      assert.equal(1, #api("GET", "/webhooks").json.data)
      assert.equal(2, sf_stats().creates.webhooks)
    end)
  end)

  describe("preferences", function()
    it("reads and updates via magic link without auth and records that none was sent", function()
      m:seed("tags", { { name = "News" }, { name = "Offers" }, { name = "Events" } })
      local sub = m:seed("subscribers", { { email = "p@example.com", tags = { "news" } } }).first_id
      local seeded = m:seed("preferences", { items = { { token = "tok123", subscriber_id = sub } } })
      assert.equal("tok123", seeded.first_id)

      local r = api("GET", "/preferences/tok123", { anonymous = true })
      assert.equal(200, r.status)
      assert.same({ data = { email = "p@example.com", status = "active", tags = {
        { slug = "news", name = "News", subscribed = true },
        { slug = "offers", name = "Offers", subscribed = false },
        { slug = "events", name = "Events", subscribed = false },
      } } }, r.json)
      assert.is_nil(r.headers["x-ratelimit-limit"])

      r = api("PATCH", "/preferences/tok123", { anonymous = true,
        body = { tags = { news = false, offers = true } } })
      assert.equal(200, r.status)
      assert.same({ false, true, false }, { r.json.data.tags[1].subscribed, r.json.data.tags[2].subscribed,
        r.json.data.tags[3].subscribed })
      assert.equal("active", r.json.data.status)
      r = api("PATCH", "/preferences/tok123", { anonymous = true, body = { status = "unsubscribed" } })
      assert.equal("unsubscribed", r.json.data.status)
      assert.equal(true, r.json.data.tags[2].subscribed)
      local stored = m:data("subscribers")[1]
      assert.same({ "offers" }, stored.tags)
      assert.equal("unsubscribed", stored.status)

      r = api("PATCH", "/preferences/tok123", { anonymous = true, body = { tags = { nope = true } } })
      assert.equal(400, r.status)
      assert.equal("validation_error", r.json.error.code)
      r = api("GET", "/preferences/unknown", { anonymous = true })
      assert.equal(404, r.status)
      assert.equal("not_found", r.json.error.code)
      assert.equal(404, api("PATCH", "/preferences/unknown", { anonymous = true, body = { tags = {} } }).status)

      -- count seeding creates a subscriber per token
      local s2 = m:seed("preferences", 2)
      assert.equal(2, s2.created)
      assert.equal(3, s2.total)
      assert.equal(3, #m:data("subscribers"))
      assert.equal(3, #m:data("preferences"))
      assert.equal(200, api("GET", "/preferences/" .. s2.ids[2], { anonymous = true }).status)

      -- a request that does carry Authorization is served too, and recorded as such
      assert.equal(200, api("GET", "/preferences/tok123").status)
      local log = {}
      for _, e in ipairs(m:stats().log) do
        if e.path:find("/v1/preferences/", 1, true) then log[#log + 1] = e end
      end
      assert.equal(8, #log)
      for i = 1, 7 do
        assert.is_false(log[i].authorization)
        assert.is_false(log[i].api_key_present)
      end
      assert.is_true(log[8].authorization)
      local pr = sf_stats().preference_requests
      assert.equal(8, #pr)
      assert.is_false(pr[1].authorization)
      assert.is_true(pr[8].authorization)
    end)
  end)

  describe("idempotency", function()
    it("replays the stored response for the same key and body, creating nothing", function()
      local opts = { headers = { ["Idempotency-Key"] = "k-1" }, body = '{"email":"idem@example.com"}' }
      local a = api("POST", "/subscribers", opts)
      assert.equal(201, a.status)
      assert.is_nil(a.headers["idempotent-replayed"])
      local b = api("POST", "/subscribers", opts)
      assert.equal(201, b.status)
      assert.equal(a.body, b.body)
      assert.equal("true", b.headers["idempotent-replayed"])
      assert.equal(a.headers["location"], b.headers["location"])
      assert.is_not_nil(b.headers["x-ratelimit-remaining"])
      assert.equal(1, #m:data("subscribers"))

      -- same key, different body or different path: 409
      local r = api("POST", "/subscribers", { headers = { ["Idempotency-Key"] = "k-1" },
        body = '{"email":"other@example.com"}' })
      assert.equal(409, r.status)
      assert.same({ error = { code = "conflict", message = "Idempotency-Key was used with a different request" } },
        r.json)
      r = api("POST", "/tags", { headers = { ["Idempotency-Key"] = "k-1" }, body = '{"email":"idem@example.com"}' })
      assert.equal(409, r.status)
      assert.equal(1, #m:data("subscribers"))
      assert.equal(0, #m:data("tags"))

      -- keys are per account
      m:reset({ accounts = { a = { keys = { "ka" } }, b = { keys = { "kb" } } } })
      local tag = { headers = { ["Idempotency-Key"] = "shared" }, body = { name = "T1" } }
      tag.cred = "ka"
      assert.equal(201, api("POST", "/tags", tag).status)
      local tag_b = { cred = "kb", headers = { ["Idempotency-Key"] = "shared" }, body = { name = "T2" } }
      assert.equal(201, api("POST", "/tags", tag_b).status)
      assert.equal(2, #m:data("tags"))

      -- a failed request stores nothing: the key may be used again
      local bad = api("POST", "/webhooks", { cred = "ka", headers = { ["Idempotency-Key"] = "w" },
        body = { url = "https://h.example.com" } })
      assert.equal(400, bad.status)
      local good = api("POST", "/webhooks", { cred = "ka", headers = { ["Idempotency-Key"] = "w" },
        body = { url = "https://h.example.com", events = { "subscriber.created" } } })
      assert.equal(201, good.status)
      local again = api("POST", "/webhooks", { cred = "ka", headers = { ["Idempotency-Key"] = "w" },
        body = { url = "https://h.example.com", events = { "subscriber.created" } } })
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.equal(good.body, again.body)
      assert.equal(1, #m:data("webhooks"))
      local st = sf_stats()
      assert.equal(1, st.idempotent_replays)
      assert.equal(1, st.creates.webhooks)
      assert.equal(2, st.creates.tags)
    end)

    it("commits before a delay_after sleep: timed-out create + retry = replay, one subscriber", function()
      m:fault({ match = "/v1/subscribers", method = "POST", action = { delay_after = 1 } })
      local opts = { headers = { ["Idempotency-Key"] = "slow-1" }, body = { email = "slow@example.com" },
        timeout = 0.3 }
      local res, err = call("POST", "/subscribers", opts)
      assert.is_nil(res)
      assert.equal("timeout", err)
      local r = api("POST", "/subscribers", { headers = { ["Idempotency-Key"] = "slow-1" },
        body = { email = "slow@example.com" } })
      assert.equal(201, r.status)
      assert.equal("true", r.headers["idempotent-replayed"])
      assert.equal("slow@example.com", r.json.data.email)
      local all = m:data("subscribers")
      assert.equal(1, #all)
      assert.equal(all[1].id, r.json.data.id)
      local st = sf_stats()
      assert.equal(1, st.idempotent_replays)
      assert.equal(1, st.creates.subscribers)
      local common = m:stats()   -- common.lua with M.counters support mirrors them
      if common.idempotent_replays ~= nil then
        assert.equal(1, common.idempotent_replays)
        assert.equal(1, common.creates_subscribers)
      end
      -- without a key the same retry is a duplicate
      assert.equal(409, api("POST", "/subscribers", { body = { email = "slow@example.com" } }).status)
    end)

    it("answers 409 'in progress' while the first request has not committed yet", function()
      m:reset({ processing_delay = 0.6 })
      local body = { email = "busy@example.com" }
      local res, err = call("POST", "/subscribers", { headers = { ["Idempotency-Key"] = "busy" },
        body = body, timeout = 0.2 })
      assert.is_nil(res)
      assert.equal("timeout", err)
      local r = api("POST", "/subscribers", { headers = { ["Idempotency-Key"] = "busy" }, body = body })
      assert.equal(409, r.status)
      assert.equal("conflict", r.json.error.code)
      assert.matches("in progress", r.json.error.message)
      assert.equal(0, #m:data("subscribers"))
      socket.sleep(0.6)
      r = api("POST", "/subscribers", { headers = { ["Idempotency-Key"] = "busy" }, body = body })
      assert.equal(201, r.status)
      assert.equal("true", r.headers["idempotent-replayed"])
      assert.equal(1, #m:data("subscribers"))
    end)
  end)

  describe("routing", function()
    it("answers unknown routes 404 and wrong methods 405 in the error envelope", function()
      local r = api("GET", "/nothing")
      assert.equal(404, r.status)
      assert.equal("not_found", r.json.error.code)
      r = api("PUT", "/tags")
      assert.equal(405, r.status)
      assert.equal("GET, POST", r.headers["allow"])
      assert.is_string(r.json.error.code)
    end)
  end)
end)
