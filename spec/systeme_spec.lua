-- Every Systeme.io operation of the OpenAPI document, through audience.systeme, against
-- the mock server.
local audience = require "audience"
local mockserver = require "support.mockserver"

describe("audience.systeme", function()
  local m, sys

  setup(function()
    m = mockserver.start("systeme")
  end)

  teardown(function()
    if sys then sys:close() end
    if m then m:stop() end
  end)

  before_each(function()
    m:reset()
    sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 5 }
  end)

  describe("contacts", function()
    it("creates, reads, updates with merge-patch and deletes a contact", function()
      local c, err = sys.contacts:create{
        email = "ada@example.com", locale = "en",
        fields = { { slug = "first_name", value = "Ada" }, { slug = "country", value = "GB" } },
      }
      assert.is_nil(err)
      assert.equal("ada@example.com", c.email)
      if math.type then assert.equal("integer", math.type(c.id)) end

      local got = assert(sys.contacts:get(c.id))
      assert.equal(c.id, got.id)

      local updated, uerr = sys.contacts:update(c.id, {
        locale = "fr", fields = { { slug = "country", value = audience.null } },
      })
      assert.is_nil(uerr)
      assert.equal("fr", updated.locale)
      for _, f in ipairs(updated.fields) do
        if f.slug == "country" then assert.is_true(f.value == nil or f.value == audience.null) end
      end
      local log = m:stats().log
      local patch = log[#log]
      assert.equal("PATCH", patch.method)
      assert.matches("application/merge%-patch%+json", patch.content_type)

      assert.is_true(sys.contacts:delete(c.id))
      local gone, gerr = sys.contacts:get(c.id)
      assert.is_nil(gone)
      assert.equal("not_found", gerr.kind)
      assert.equal(404, gerr.status)
    end)

    it("lists with filters and a cursor page", function()
      m:seed("contacts", 25)
      local page = assert(sys.contacts:list{ limit = 10, order = "asc" })
      assert.equal(10, #page.items)
      assert.is_true(page.has_more)
      assert.equal(page.items[10].id, page.next.startingAfter)
      local second = assert(sys.contacts:list(page.next))
      assert.equal(page.items[10].id + 1, second.items[1].id)

      local one = assert(sys.contacts:list{ email = "user7@example.com" })
      assert.equal(1, #one.items)
      assert.is_false(one.has_more)
      assert.is_nil(one.next)
    end)

    it("adds and removes a tag", function()
      local c = assert(sys.contacts:create{ email = "tagged@example.com" })
      local t = assert(sys.tags:create{ name = "buyers" })
      assert.is_true(sys.contacts:add_tag(c.id, t.id))
      local with = assert(sys.contacts:get(c.id))
      assert.equal("buyers", with.tags[1].name)
      local filtered = assert(sys.contacts:list{ tags = { t.id } })
      assert.equal(1, #filtered.items)
      assert.is_true(sys.contacts:remove_tag(c.id, t.id))
      assert.equal(0, #assert(sys.contacts:get(c.id)).tags)
    end)

    it("reports a duplicate email as a validation error with details", function()
      assert(sys.contacts:create{ email = "dup@example.com" })
      local none, err, res = sys.contacts:create{ email = "dup@example.com" }
      assert.is_nil(none)
      assert.equal(422, res.status)
      assert.equal("validation", err.kind)
      assert.equal(422, err.status)
      assert.equal("email", err.details[1].field)
      assert.matches("already used", err.details[1].message)
      assert.equal("systeme", err.provider)
      assert.equal("POST", err.method)
      assert.equal(audience.Error, getmetatable(err))
      assert.equal("systeme: 422 validation: email: This value is already used. (POST /contacts)", tostring(err))
    end)
  end)

  describe("tags", function()
    it("creates, gets, renames with PUT, lists and deletes", function()
      local t = assert(sys.tags:create{ name = "vip" })
      assert.equal("vip", assert(sys.tags:get(t.id)).name)
      assert.equal("very-vip", assert(sys.tags:update(t.id, { name = "very-vip" })).name)
      assert.equal("PUT", m:stats().log[#m:stats().log].method)
      local page = assert(sys.tags:list{ query = "very" })
      assert.equal(1, #page.items)
      assert.is_true(sys.tags:delete(t.id))
      assert.equal("not_found", select(2, sys.tags:get(t.id)).kind)
    end)
  end)

  describe("contact_fields", function()
    it("creates, lists (unpaginated), renames and deletes by slug", function()
      local f = assert(sys.contact_fields:create{ fieldName = "Shoe size", slug = "shoe_size" })
      assert.equal("shoe_size", f.slug)
      local page = assert(sys.contact_fields:list())
      assert.is_false(page.has_more)
      local found = false
      for _, item in ipairs(page.items) do found = found or item.slug == "shoe_size" end
      assert.is_true(found)
      local n = 0
      for _ in sys.contact_fields:each() do n = n + 1 end
      assert.equal(#page.items, n)
      assert.equal("Shoe", assert(sys.contact_fields:update("shoe_size", { fieldName = "Shoe" })).fieldName)
      assert.is_true(sys.contact_fields:delete("shoe_size"))
    end)
  end)

  describe("webhooks", function()
    it("creates, gets, lists, updates and deletes", function()
      local w = assert(sys.webhooks:create{
        name = "crm", url = "https://example.com/hook", secret = "whsec",
        subscriptions = { "CONTACT_CREATED" },
      })
      assert.equal("crm", assert(sys.webhooks:get(w.id)).name)
      local page = assert(sys.webhooks:list())
      assert.equal(1, #page.items)
      assert.is_false(page.has_more)
      local updated = assert(sys.webhooks:update(w.id, { name = "crm2", secret = "whsec2", active = false }))
      assert.equal("crm2", updated.name)
      assert.is_true(sys.webhooks:delete(w.id))
    end)

    it("sends an empty list as [] with audience.array", function()
      local w = assert(sys.webhooks:create{
        name = "none", url = "https://example.com/h", secret = "s", subscriptions = audience.array{},
      })
      assert.same({}, w.subscriptions)
    end)
  end)

  describe("school", function()
    it("lists courses, enrolls a contact, lists and deletes enrollments", function()
      m:seed("courses", 3)
      local c = assert(sys.contacts:create{ email = "student@example.com" })
      local courses = assert(sys.courses:list{ limit = 10 })
      assert.equal(3, #courses.items)
      local course = courses.items[1]
      local e = assert(sys.courses:enroll(course.id, { contactId = c.id, accessType = "full_access" }))
      assert.truthy(e)
      local enrollments = assert(sys.enrollments:list{ contact = c.id })
      assert.equal(1, #enrollments.items)
      assert.is_true(sys.enrollments:delete(enrollments.items[1].id))
      assert.equal(0, #assert(sys.enrollments:list{ contact = c.id }).items)
    end)
  end)

  describe("community", function()
    it("lists communities, adds a member, lists and deletes memberships", function()
      m:seed("communities", 2)
      local c = assert(sys.contacts:create{ email = "member@example.com" })
      local communities = assert(sys.communities:list())
      assert.equal(2, #communities.items)
      assert.is_true(sys.communities:add_member(communities.items[1].id, c.id))
      local ms = assert(sys.memberships:list{ contact = c.id })
      assert.equal(1, #ms.items)
      assert.is_true(sys.memberships:delete(ms.items[1].id))
    end)
  end)

  describe("subscriptions", function()
    it("lists a contact's subscriptions and cancels one", function()
      local c = assert(sys.contacts:create{ email = "payer@example.com" })
      m:seed("subscriptions", { items = { { contact = c.id }, { contact = c.id } } })
      local subs = assert(sys.subscriptions:list{ contact = c.id })
      assert.equal(2, #subs.items)
      assert.is_true(sys.subscriptions:cancel(subs.items[1].id, "WhenBillingPeriodEnds"))
    end)
  end)

  describe("request", function()
    it("reaches any route with the client's auth and returns the response", function()
      m:seed("contacts", 3)
      local body, err, res = sys:request("GET", "/contacts", { query = { limit = 10, order = "asc" } })
      assert.is_nil(err)
      assert.equal(3, #body.items)
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"]:match("^[^;]+"))
      assert.equal(res, sys.last_response)
    end)

    it("refuses bad arguments naming them", function()
      assert.has_error(function() sys:request(42, "/x") end,
        "audience: bad argument #1 to 'request' (method: HTTP method name expected, got number)")
      assert.error_matches(function() sys:request("GET", "contacts") end, "path")
      assert.error_matches(function() sys:request("GET", "/x", { bogus = 1 }) end, "unknown option 'bogus'")
      assert.error_matches(function() sys:request("GET", "/x", { headers = { ["X-A"] = "a\r\nX-B: b" } }) end,
        "bad value for header 'X%-A'")
    end)
  end)

  describe("auth", function()
    it("maps both 401 bodies to kind auth", function()
      local bad = audience.systeme{ api_key = "wrong-key", base_url = m.url }
      local _, err = bad.contacts:list()
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("Invalid API Key.", err.message)
      bad:close()
    end)
  end)

  describe("documented constraints, checked before anything is sent", function()
    local function sent() return m:stats().requests end

    it("refuses limit outside 10..100, a bad order or startingAfter as validation naming the parameter", function()
      local before = sent()
      for _, case in ipairs{
        { { limit = 5 }, "limit", "limit must be in 10..100 %(got 5%)" },
        { { limit = 101 }, "limit" }, { { limit = "many" }, "limit", "must be an integer" },
        { { limit = 10.5 }, "limit" }, { { order = "sideways" }, "order", "must be one of asc, desc" },
        { { startingAfter = "abc" }, "startingAfter" },
      } do
        local page, err = sys.contacts:list(case[1])
        assert.is_nil(page)
        assert.equal("validation", err.kind)
        assert.equal("local", err.code)
        assert.is_nil(err.status)
        assert.equal(case[2], err.details[1].field)
        if case[3] then assert.matches(case[3], tostring(err)) end
      end
      assert.has_error(function() for _ in sys.tags:each{ limit = 500 } do end end)
      assert.equal(before, sent())
      assert(sys.contacts:list{ limit = 10 })
      assert(sys.contacts:list{ limit = "100", order = "asc" })
      -- A value of the wrong Lua type is a mistake in the program: it raises.
      assert.error_matches(function() sys.contacts:list{ limit = print } end, "params.limit")
    end)

    it("refuses subscriptions:list without its contact, webhooks:update without name and secret", function()
      local before = sent()
      local _, err = sys.subscriptions:list{}
      assert.equal("validation", err.kind)
      assert.equal("contact", err.details[1].field)
      assert.matches("contact is required", err.message)
      _, err = sys.subscriptions:list{ contact = 0 }
      assert.equal("contact", err.details[1].field)
      _, err = sys.memberships:list{ community = "x" }
      assert.equal("community", err.details[1].field)
      _, err = sys.webhooks:update(1, { name = "only the name" })
      assert.equal("validation", err.kind)
      assert.equal("secret", err.details[1].field)
      assert.equal(before, sent())
    end)

    it("add_member answers true, whatever body comes with the 202", function()
      m:seed("contacts", 1)
      m:seed("communities", 1)
      local ok, err = sys.communities:add_member(1, 1)
      assert.is_nil(err)
      assert.is_true(ok)
    end)

    it("reads a 403 as forbidden", function()
      m:fault{ times = 1, action = { status = 403, body = { detail = "Access Denied." } } }
      local _, err = sys.tags:create{ name = "x" }
      assert.equal("forbidden", err.kind)
      assert.equal(403, err.status)
      assert.equal("Access Denied.", err.message)
    end)
  end)
end)
