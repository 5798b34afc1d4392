-- Tests of the Systeme.io mock server itself (spec/mock/systeme.lua) and of the
-- harness (spec/support/mockserver.lua), driven over plain luasocket.
local socket = require "socket"
local mockserver = require "support.mockserver"

local KEY = "test-key"
local null = mockserver.null

describe("systeme mock", function()
  local m

  setup(function()
    m = mockserver.start("systeme")
  end)

  teardown(function()
    if m then m:stop() end
  end)

  before_each(function()
    m:reset({})
  end)

  local function api(method, path, opts)
    opts = opts or {}
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    if headers["X-API-Key"] == nil and not opts.anonymous then headers["X-API-Key"] = KEY end
    opts.headers = headers
    return m:request(method, "/api" .. path, opts)
  end

  local function ok(res, err)
    assert(res, err)
    return res
  end

  local function merge_patch(path, body, ct)
    return ok(api("PATCH", path, {
      body = mockserver.encode(body),
      headers = { ["Content-Type"] = ct or "application/merge-patch+json" },
    }))
  end

  local function raw_exchange(request, timeout)
    local c = assert(socket.tcp())
    c:settimeout(timeout or 3)
    assert(c:connect("127.0.0.1", m.port))
    assert(c:send(request))
    local data, err, partial = c:receive("*a")
    c:close()
    return data or partial, err
  end

  describe("harness", function()
    it("exposes port, root and url and answers health", function()
      assert.is_number(m.port)
      assert.equal("http://127.0.0.1:" .. m.port, m.root)
      assert.equal(m.root .. "/api", m.url)
      local h = m:admin("GET", "/__admin/health")
      assert.is_true(h.ok)
      assert.equal("systeme", h.mock)
    end)

    it("free_port returns a bindable port", function()
      local p = mockserver.free_port()
      assert.is_true(p > 0 and p < 65536)
    end)

    it("admin raises on non-2xx answers", function()
      assert.has_error(function() m:admin("GET", "/__admin/nope") end)
      assert.has_error(function() m:seed("unicorns", 3) end)
    end)

    it("stop is idempotent and kills nginx; start raises for unknown mocks", function()
      local m2 = mockserver.start("systeme", { accounts = { a = { keys = { "x" } } } })
      local pid = m2.pid
      assert.is_number(pid)
      m2:stop()
      m2:stop()
      local f = io.open("/proc/" .. pid .. "/stat")
      local state = f and f:read("*a"):match("%)%s+(%S)")
      if f then f:close() end
      assert.is_true(state == nil or state == "Z")
      assert.is_nil((m2:request("GET", "/__admin/health", { timeout = 0.3 })))
      assert.has_error(function() mockserver.start("no_such_mock") end)
    end)
  end)

  describe("auth", function()
    it("answers 401 with the two documented bodies", function()
      local r = ok(api("GET", "/contacts", { anonymous = true }))
      assert.equal(401, r.status)
      assert.same({ detail = "Full authentication is required to access this resource." }, r.json)
      assert.matches("^application/json", r.headers["content-type"])
      assert.is_nil(r.headers["x-ratelimit-limit"])

      r = ok(api("GET", "/contacts", { headers = { ["X-API-Key"] = "wrong" } }))
      assert.equal(401, r.status)
      assert.same({ detail = "Invalid API Key." }, r.json)
    end)
  end)

  describe("collections", function()
    it("answers collection GETs only as the document declares (no 422): limit brought into 10..100", function()
      m:seed("tags", 120)
      for limit, n in pairs({ [9] = 10, [101] = 100, [10] = 10, [100] = 100, abc = 10 }) do
        local r = ok(api("GET", "/tags?limit=" .. limit))
        assert.equal(200, r.status)
        assert.equal(n, #r.json.items)
      end
      local r = ok(api("GET", "/tags?order=sideways&startingAfter=x"))
      assert.equal(200, r.status)
      assert.equal(120, r.json.items[1].id)   -- the default order, desc
    end)

    it("walks 1000 seeded contacts with startingAfter, asc and desc, each id once", function()
      local s = m:seed("contacts", 1000)
      assert.equal(1000, s.created)
      assert.equal(1, s.first_id)
      assert.equal(1000, s.last_id)
      assert.equal(1000, #m:data("contacts"))

      for _, case in ipairs({ { order = "asc", limit = 100 }, { order = "desc", limit = 73 } }) do
        local seen, ids, cursor, pages = {}, {}, nil, 0
        repeat
          local q = "/contacts?order=" .. case.order .. "&limit=" .. case.limit
          if cursor then q = q .. "&startingAfter=" .. cursor end
          local r = ok(api("GET", q))
          assert.equal(200, r.status)
          pages = pages + 1
          for _, c in ipairs(r.json.items) do
            assert.is_nil(seen[c.id])
            seen[c.id] = true
            ids[#ids + 1] = c.id
          end
          cursor = r.json.items[#r.json.items].id
        until not r.json.hasMore
        assert.equal(1000, #ids)
        assert.equal(math.ceil(1000 / case.limit), pages)
        for i = 1, 1000 do
          assert.equal(case.order == "asc" and i or 1001 - i, ids[i])
        end
      end
      local first = ok(api("GET", "/contacts")).json
      assert.equal(10, #first.items)
      assert.equal(1000, first.items[1].id)
      assert.equal("user1000@example.com", first.items[1].email)
    end)

    it("filters contacts and tags", function()
      m:seed("tags", { { name = "vip" }, { name = "newsletter" } })
      m:seed("contacts", {
        { email = "a@example.com", tags = { 1 }, bounced = true },
        { email = "b@example.com", tags = { 2 } },
        { email = "c@example.com", unsubscribed = true },
      })
      local function emails(path)
        local r = ok(api("GET", path))
        assert.equal(200, r.status)
        local out = {}
        for _, c in ipairs(r.json.items) do out[#out + 1] = c.email end
        return out
      end
      assert.same({ "b@example.com" }, emails("/contacts?email=B@example.com"))
      assert.same({ "b@example.com", "a@example.com" }, emails("/contacts?tags=1,2"))
      assert.same({ "a@example.com" }, emails("/contacts?bounced=true"))
      assert.same({ "c@example.com" }, emails("/contacts?unsubscribed=true&order=asc"))
      local r = ok(api("GET", "/tags?query=VI"))
      assert.equal(1, #r.json.items)
      assert.equal("vip", r.json.items[1].name)
    end)
  end)

  describe("contacts", function()
    it("creates a contact with the documented shape and 422s a duplicate email", function()
      local r = ok(api("POST", "/contacts", { body = {
        email = "jane@example.com", locale = "fr",
        fields = { { slug = "first_name", value = "Jane" } },
      } }))
      assert.equal(201, r.status)
      local c = r.json
      assert.equal(1, c.id)
      assert.equal("jane@example.com", c.email)
      assert.equal("fr", c.locale)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d", c.registeredAt)
      assert.is_false(c.unsubscribed)
      assert.is_false(c.bounced)
      assert.is_false(c.needsConfirmation)
      assert.equal(null, c.sourceURL)
      assert.same({ { fieldName = "First name", slug = "first_name", value = "Jane" } }, c.fields)
      assert.same({}, c.tags)

      r = ok(api("POST", "/contacts", { body = { email = "jane@example.com" } }))
      assert.equal(422, r.status)
      assert.same({
        type = "https://tools.ietf.org/html/rfc2616#section-10",
        title = "An error occurred",
        detail = "email: This value is already used.",
        violations = { {
          propertyPath = "email", message = "This value is already used.",
          code = "23bd9dbf-6b9b-41cd-a99e-4844bcf3077f",
        } },
      }, r.json)

      r = ok(api("POST", "/contacts", { body = { locale = "en" } }))
      assert.equal(422, r.status)
      assert.equal("email", r.json.violations[1].propertyPath)
      assert.equal(422, ok(api("POST", "/contacts", { body = { email = "not-an-email" } })).status)
    end)

    it("answers 400 on malformed JSON and 404 with the problem body", function()
      local r = ok(api("POST", "/contacts", { body = '{"email": ',
        headers = { ["Content-Type"] = "application/json" } }))
      assert.equal(400, r.status)
      r = ok(api("GET", "/contacts/4242"))
      assert.equal(404, r.status)
      assert.same({ type = "https://tools.ietf.org/html/rfc2616#section-10",
        title = "An error occurred", detail = "Not Found" }, r.json)
      assert.equal(404, ok(api("GET", "/no/such/route")).status)
      assert.equal(405, ok(api("PUT", "/contacts")).status)
    end)

    it("requires merge-patch+json on PATCH (415 otherwise)", function()
      m:seed("contacts", 1)
      local r = merge_patch("/contacts/1", { locale = "de" }, "application/json")
      assert.equal(415, r.status)
      assert.matches("not supported", r.json.detail)
      r = merge_patch("/contacts/1", { locale = "de" }, "application/merge-patch+json; charset=utf-8")
      assert.equal(200, r.status)
      assert.equal("de", r.json.locale)
    end)

    it("merge-patch null clears values, other fields stay", function()
      m:seed("contacts", { { email = "x@example.com", locale = "fr",
        fields = { first_name = "X", phone_number = "+33123", country = "FR" } } })
      local r = merge_patch("/contacts/1", {
        locale = null,
        fields = { { slug = "country", value = "US" }, { slug = "phone_number", value = null } },
      })
      assert.equal(200, r.status)
      -- Cleared: no locale key (the document never allows null there).
      assert.is_nil(r.json.locale)
      local values = {}
      for _, f in ipairs(r.json.fields) do values[f.slug] = f.value end
      assert.same({ first_name = "X", country = "US" }, values)
      r = merge_patch("/contacts/1", { fields = { { slug = "nope", value = "1" } } })
      assert.equal(422, r.status)
    end)

    it("adds and removes tags, deletes contacts", function()
      m:seed("contacts", 1)
      local t = ok(api("POST", "/tags", { body = { name = "vip" } }))
      assert.equal(201, t.status)
      assert.equal(1, t.json.id)
      local r = ok(api("POST", "/contacts/1/tags", { body = { tagId = 1 } }))
      assert.equal(204, r.status)
      assert.equal("", r.body)
      assert.same({ { id = 1, name = "vip" } }, ok(api("GET", "/contacts/1")).json.tags)
      assert.equal(422, ok(api("POST", "/contacts/1/tags", { body = { tagId = 99 } })).status)
      assert.equal(204, ok(api("DELETE", "/contacts/1/tags/1")).status)
      assert.same({}, ok(api("GET", "/contacts/1")).json.tags)
      assert.equal(204, ok(api("DELETE", "/contacts/1")).status)
      assert.equal(404, ok(api("DELETE", "/contacts/1")).status)
    end)
  end)

  describe("other resources", function()
    it("tags: create, get, rename with PUT, delete", function()
      assert.equal(201, ok(api("POST", "/tags", { body = { name = "a" } })).status)
      assert.equal(422, ok(api("POST", "/tags", { body = { name = "a" } })).status)
      assert.equal(422, ok(api("POST", "/tags", { body = {} })).status)
      local r = ok(api("PUT", "/tags/1", { body = { name = "b" } }))
      assert.equal(200, r.status)
      assert.equal("b", r.json.name)
      assert.is_string(r.json.createdAt)
      assert.equal("b", ok(api("GET", "/tags/1")).json.name)
      assert.equal(204, ok(api("DELETE", "/tags/1")).status)
      assert.equal(404, ok(api("GET", "/tags/1")).status)
    end)

    it("contact fields: list unpaginated, create, patch, delete", function()
      local r = ok(api("GET", "/contact_fields"))
      assert.equal(200, r.status)
      assert.is_false(r.json.hasMore)
      assert.equal("first_name", r.json.items[1].slug)
      r = ok(api("POST", "/contact_fields", { body = { fieldName = "Shoe size", slug = "shoe_size" } }))
      assert.equal(201, r.status)
      assert.same({ fieldName = "Shoe size", slug = "shoe_size" }, r.json)
      assert.equal(422, ok(api("POST", "/contact_fields", { body = { fieldName = "X", slug = "shoe_size" } })).status)
      assert.equal(415, merge_patch("/contact_fields/shoe_size", { fieldName = "S" }, "application/json").status)
      r = merge_patch("/contact_fields/shoe_size", { fieldName = "Size" })
      assert.equal(200, r.status)
      assert.equal("Size", r.json.fieldName)
      assert.equal(204, ok(api("DELETE", "/contact_fields/shoe_size")).status)
      assert.equal(404, ok(api("DELETE", "/contact_fields/shoe_size")).status)
    end)

    it("webhooks: create, list, get, patch, delete", function()
      local r = ok(api("POST", "/webhooks", { body = { name = "hook", url = "https://example.com/h",
        secret = "s3cret", subscriptions = { "CONTACT_CREATED", "SALE_NEW" } } }))
      assert.equal(201, r.status)
      assert.equal("1", r.json.id)
      assert.is_true(r.json.active)
      assert.equal(2, #r.json.subscriptions)
      assert.is_nil(r.json.secret)
      assert.equal(422, ok(api("POST", "/webhooks", { body = { name = "x" } })).status)
      assert.equal(201, ok(api("POST", "/webhooks", { body = '{"name":"e","url":"https://e.example",'
        .. '"secret":"s","subscriptions":[]}', headers = { ["Content-Type"] = "application/json" } })).status)
      assert.equal(204, ok(api("DELETE", "/webhooks/2")).status)
      r = ok(api("GET", "/webhooks"))
      assert.same({ items = { r.json.items[1] }, hasMore = false }, r.json)
      -- The document's UpdateWebhookInput requires name and secret.
      r = merge_patch("/webhooks/1", { active = false, subscriptions = { "SALE_CANCELED" } })
      assert.equal(422, r.status)
      assert.same({ "name", "secret" }, { r.json.violations[1].propertyPath, r.json.violations[2].propertyPath })
      r = merge_patch("/webhooks/1", { name = "hook", secret = "s3cret", active = false,
        subscriptions = { "SALE_CANCELED" } })
      assert.equal(200, r.status)
      assert.is_false(r.json.active)
      assert.equal("SALE_CANCELED", r.json.subscriptions[1].event)
      assert.equal("s3cret", m:data("webhooks")[1].secret)
      assert.equal("hook", ok(api("GET", "/webhooks/1")).json.name)
      assert.equal(204, ok(api("DELETE", "/webhooks/1")).status)
      assert.equal(404, ok(api("GET", "/webhooks/1")).status)
    end)

    it("school: courses, enrollments", function()
      m:seed("contacts", 2)
      m:seed("courses", { { name = "Lua 101", active = true }, { name = "Old", active = false } })
      local r = ok(api("GET", "/school/courses?active=true"))
      assert.equal(1, #r.json.items)
      assert.equal("Lua 101", r.json.items[1].name)
      local mod = r.json.items[1].modules[1].id
      r = ok(api("POST", "/school/courses/1/enrollments", { body = { contactId = 2, accessType = "full_access" } }))
      assert.equal(201, r.status)
      assert.equal(2, r.json.contact.id)
      assert.equal(1, r.json.course.id)
      assert.equal(422, ok(api("POST", "/school/courses/1/enrollments",
        { body = { contactId = 2, accessType = "partial_access" } })).status)
      assert.equal(201, ok(api("POST", "/school/courses/1/enrollments",
        { body = { contactId = 1, accessType = "partial_access", modules = { mod } } })).status)
      assert.equal(404, ok(api("POST", "/school/courses/9/enrollments",
        { body = { contactId = 1, accessType = "full_access" } })).status)
      r = ok(api("GET", "/school/enrollments?contact=2"))
      assert.equal(1, #r.json.items)
      assert.equal(204, ok(api("DELETE", "/school/enrollments/1")).status)
      assert.equal(1, #m:data("enrollments"))
    end)

    it("community: communities, memberships (202)", function()
      m:seed("contacts", 1)
      m:seed("communities", 2)
      assert.equal(2, #ok(api("GET", "/community/communities")).json.items)
      local r = ok(api("POST", "/community/communities/2/memberships", { body = { contactId = 1 } }))
      assert.equal(202, r.status)
      -- The document's 202 has JSON content, never an empty body labelled as JSON.
      assert.matches("^application/json", r.headers["content-type"])
      assert.equal(2, r.json.community.id)
      assert.equal(422, ok(api("POST", "/community/communities/2/memberships", { body = { contactId = 7 } })).status)
      r = ok(api("GET", "/community/memberships?community=2"))
      assert.equal(1, #r.json.items)
      assert.equal(1, r.json.items[1].contact.id)
      assert.equal(2, r.json.items[1].community.id)
      assert.equal(204, ok(api("DELETE", "/community/memberships/1")).status)
    end)

    it("payment: subscriptions need contact, cancel answers 204", function()
      m:seed("contacts", 2)
      m:seed("subscriptions", 3, { contact = 2 })
      local r = ok(api("GET", "/payment/subscriptions"))
      assert.equal(200, r.status)   -- the document declares no 422 here
      assert.same({}, r.json.items)
      r = ok(api("GET", "/payment/subscriptions?contact=2&order=asc"))
      assert.equal(3, #r.json.items)
      assert.equal("active", r.json.items[1].status)
      assert.equal(0, #ok(api("GET", "/payment/subscriptions?contact=1")).json.items)
      assert.equal(204, ok(api("POST", "/payment/subscriptions/1/cancel", { body = { cancel = "Now" } })).status)
      assert.equal(422, ok(api("POST", "/payment/subscriptions/2/cancel", { body = { cancel = "Later" } })).status)
      assert.equal("cancelled", m:data("subscriptions")[1].status)
    end)
  end)

  describe("quota", function()
    it("is shared by the keys of an account, sends headers, 429 and Retry-After", function()
      m:reset({ accounts = { acme = { keys = { "k1", "k2" }, limit = 5, per = 2 },
        other = { keys = { "k3" }, limit = 5, per = 2 } } })
      local t0 = os.time()
      for i = 1, 5 do
        local r = ok(api("GET", "/tags", { headers = { ["X-API-Key"] = (i % 2 == 1) and "k1" or "k2" } }))
        assert.equal(200, r.status)
        assert.equal("5", r.headers["x-ratelimit-limit"])
        assert.equal(tostring(5 - i), r.headers["x-ratelimit-remaining"])
        local refill = tonumber(r.headers["x-ratelimit-refill"])
        assert.is_true(refill >= t0 and refill <= t0 + 3, "refill " .. tostring(refill))
      end
      local r = ok(api("GET", "/tags", { headers = { ["X-API-Key"] = "k2" } }))
      assert.equal(429, r.status)
      assert.equal("0", r.headers["x-ratelimit-remaining"])
      local retry = tonumber(r.headers["retry-after"])
      assert.is_true(retry >= 1 and retry <= 2 and retry == math.floor(retry))
      assert.matches("^%d+$", r.headers["retry-after"])
      assert.is_table(r.json)
      -- another account is not affected
      assert.equal(200, ok(api("GET", "/tags", { headers = { ["X-API-Key"] = "k3" } })).status)

      local st = m:stats()
      assert.equal(1, st.rate_limited)
      assert.equal(1, st.by_status["429"])
      assert.equal(3, st.by_key["acme:1"])
      assert.equal(3, st.by_key["acme:2"])

      local refill = tonumber(r.headers["x-ratelimit-refill"])
      socket.sleep(math.max(0, refill - socket.gettime()) + 0.05)
      r = ok(api("GET", "/tags", { headers = { ["X-API-Key"] = "k1" } }))
      assert.equal(200, r.status)
      assert.equal("4", r.headers["x-ratelimit-remaining"])
    end)

    it("reports refill as seconds from now with refill_style = delta", function()
      m:reset({ refill_style = "delta", accounts = { a = { keys = { KEY }, limit = 3, per = 30 } } })
      local r = ok(api("GET", "/tags"))
      local refill = tonumber(r.headers["x-ratelimit-refill"])
      assert.is_true(refill >= 29 and refill <= 30)
    end)
  end)

  describe("faults", function()
    it("status: answers with the given status/headers, 'times' times, matched by path and method", function()
      m:fault({ match = "/api/tags", method = "GET", times = 2,
        action = { status = 503, body = '{"oops":true}', headers = { ["Retry-After"] = "1" } } })
      assert.equal(201, ok(api("POST", "/tags", { body = { name = "x" } })).status)
      assert.equal(200, ok(api("GET", "/contacts")).status)
      for _ = 1, 2 do
        local r = ok(api("GET", "/tags"))
        assert.equal(503, r.status)
        assert.equal('{"oops":true}', r.body)
        assert.equal("1", r.headers["retry-after"])
      end
      assert.equal(200, ok(api("GET", "/tags")).status)
      -- default body is JSON; applies before auth
      m:fault({ action = { status = 500 } })
      local r = ok(api("GET", "/tags", { anonymous = true }))
      assert.equal(500, r.status)
      assert.is_table(r.json)
    end)

    it("delay: sleeps, then handles normally", function()
      m:fault({ action = { delay = 0.3 } })
      local r = ok(api("GET", "/tags"))
      assert.equal(200, r.status)
      assert.is_true(r.elapsed >= 0.28)
      m:fault({ action = { delay = 5 } })
      local res, err = api("GET", "/tags", { timeout = 0.2 })
      assert.is_nil(res)
      assert.equal("timeout", err)
    end)

    it("delay_after: the side effect happens although the client timed out", function()
      m:fault({ method = "POST", action = { delay_after = 1 } })
      local res, err = api("POST", "/tags", { body = { name = "late" }, timeout = 0.2 })
      assert.is_nil(res)
      assert.equal("timeout", err)
      local tags = m:data("tags")
      assert.equal(1, #tags)
      assert.equal("late", tags[1].name)
    end)

    it("reset: closes the connection without a response", function()
      m:fault({ action = { reset = true } })
      local res, err = api("GET", "/tags")
      assert.is_nil(res)
      assert.is_string(err)
      assert.equal(200, ok(api("GET", "/tags")).status)
    end)

    it("malformed, html, empty and huge bodies", function()
      m:fault({ action = { malformed = true } })
      local r = ok(api("GET", "/contacts"))
      assert.equal(200, r.status)
      assert.is_nil(r.json)
      assert.is_nil(mockserver.decode(r.body))

      m:fault({ action = { html = true } })
      r = ok(api("GET", "/contacts"))
      assert.equal(200, r.status)
      assert.matches("^text/html", r.headers["content-type"])
      assert.matches("<html", r.body)

      m:fault({ action = { empty = true } })
      r = ok(api("GET", "/contacts"))
      assert.equal(200, r.status)
      assert.equal("", r.body)

      m:fault({ action = { huge = 300000 } })
      r = ok(api("GET", "/contacts"))
      assert.equal(200, r.status)
      assert.is_true(#r.body >= 299000 and #r.body <= 301000)
      assert.is_table(r.json)
      assert.same({}, r.json.items)
    end)

    it("truncated: Content-Length larger than the bytes sent, then close", function()
      m:fault({ action = { truncated = true } })
      local data = raw_exchange("GET /api/contacts HTTP/1.1\r\nHost: x\r\nX-API-Key: " .. KEY .. "\r\n\r\n")
      local head, body = data:match("^(.-\r\n)\r\n(.*)$")
      assert.matches("^HTTP/1.1 200", head)
      local len = tonumber(head:lower():match("content%-length:%s*(%d+)"))
      assert.is_true(len > #body, ("%d > %d"):format(len, #body))
      m:fault({ action = { truncated = true } })
      local res, err = api("GET", "/contacts")
      assert.is_nil(res)
      assert.is_string(err)
    end)

    it("drip: a valid response sent slowly", function()
      m:seed("tags", 1)
      m:fault({ action = { drip = { bytes = 40, interval = 0.05 } } })
      local r = ok(api("GET", "/tags/1"))
      assert.equal(200, r.status)
      assert.equal("tag1", r.json.name)
      assert.is_true(r.elapsed >= 0.2)
      m:fault({ action = { drip = { bytes = 1, interval = 0.5 } } })
      local res, err = api("GET", "/tags/1", { timeout = 0.3 })
      assert.is_nil(res)
      assert.equal("timeout", err)
    end)

    it("queue in order and use skip", function()
      m:fault({ action = { status = 502 } })
      m:fault({ action = { status = 504 } })
      m:fault({ match = "^/api/tags/%d+$", skip = 1, action = { status = 418 } })
      assert.equal(502, ok(api("GET", "/tags")).status)
      assert.equal(504, ok(api("GET", "/tags")).status)
      assert.equal(404, ok(api("GET", "/tags/5")).status)
      assert.equal(418, ok(api("GET", "/tags/5")).status)
      assert.equal(200, ok(api("GET", "/tags")).status)
    end)
  end)

  describe("stats", function()
    it("counts requests, statuses and keys and logs without the key", function()
      api("GET", "/tags")
      api("GET", "/tags", { anonymous = true })
      api("GET", "/tags", { headers = { ["X-API-Key"] = "bad-key" } })
      api("POST", "/tags", { body = { name = "n" }, headers = { ["Content-Type"] = "application/json" } })
      m:fault({ action = { status = 503 } })
      api("GET", "/contacts?limit=10&order=asc")
      local st = m:stats()
      assert.equal(5, st.requests)
      assert.equal(1, st.by_status["200"])
      assert.equal(1, st.by_status["201"])
      assert.equal(2, st.by_status["401"])
      assert.equal(1, st.by_status["503"])
      assert.equal(0, st.rate_limited)
      assert.equal(1, st.by_key.none)
      assert.equal(1, st.by_key.invalid)
      assert.equal(1, st.faults_applied)
      assert.equal(3, st.by_route["GET /api/tags"])
      assert.equal(5, #st.log)
      local last = st.log[5]
      assert.same({ "GET", "/api/contacts", "limit=10&order=asc", 503, true },
        { last.method, last.path, last.query, last.status, last.api_key_present })
      assert.is_false(st.log[2].api_key_present)
      assert.equal("application/json", st.log[4].content_type)
      assert.is_number(last.t)
      local text = mockserver.encode(st) .. mockserver.encode(m:requests())
      assert.is_nil(text:find(KEY, 1, true))
      assert.is_nil(text:find("bad-key", 1, true))
      m:reset()
      assert.equal(0, m:stats().requests)
    end)
  end)
end)
