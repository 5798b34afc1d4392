-- Every method of the official Creamailer PHP SDK 2.0.1 (and v1's credentials check)
-- beside its audience counterpart, each called against the Creamailer mock: the request
-- that goes out must be the one the SDK sends (method, route, query, body), and the
-- answer must come back in the shape API.md names.
local audience = require "audience"
local mockserver = require "support.mockserver"

local TOKEN, SECRET = "test-token", "test-secret"

local function query_of(q)
  local out = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

describe("the official Creamailer SDK's calls", function()
  local m, n = nil, 0
  setup(function() m = mockserver.start("creamailer") end)
  teardown(function() if m then m:stop() end end)

  local function client(version, extra)
    n = n + 1
    local opts = { access_token = TOKEN, shared_secret = SECRET, version = version,
      base_url = m.root .. (version == 2 and "/v2/api" or "/v1/api"),
      rate_limit = { limit = 10000, per = 1, account = "sdk-spec-" .. n }, timeout = 5,
      backoff = { base = 0.01, max = 0.02 } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return audience.creamailer(opts)
  end

  local function last_request()
    local all = m:requests()
    return all[#all]
  end

  local list_id
  local cm

  -- SDK method, audience counterpart, the call, what must go out, what must come back.
  local CASES = {
    { "Client::ping()", "cm:ping()",
      function() return cm:ping() end,
      { "GET", "/v2/api/connection-test" },
      function(v) assert.is_true(v) end },
    { "Lists::all()", "cm.lists:list()",
      function() return cm.lists:list() end,
      { "GET", "/v2/api/lists" },
      function(v) assert.is_true(#v.items >= 1); assert.is_false(v.has_more) end },
    { "Lists::create($data)", "cm.lists:create(body)",
      function() return cm.lists:create{ name = "SDK list", language = "en", auto_suppress = true } end,
      { "POST", "/v2/api/lists", body = { name = "SDK list", language = "en", auto_suppress = true } },
      function(v) assert.equal("SDK list", v.name); assert.is_number(v.id) end },
    { "Lists::get($listId)", "cm.lists:get(id)",
      function() return cm.lists:get(list_id) end,
      { "GET", "/v2/api/lists/{list}" },
      function(v) assert.equal(list_id, v.id) end },
    { "Lists::update($listId, $data)", "cm.lists:update(id, body)",
      function() return cm.lists:update(list_id, { name = "Renamed" }) end,
      { "PUT", "/v2/api/lists/{list}", body = { name = "Renamed" } },
      function(v) assert.equal("Renamed", v.name) end },
    { "Lists::fields($listId)", "cm.lists:fields(id)",
      function() return cm.lists:fields(list_id) end,
      { "GET", "/v2/api/lists/{list}/fields" },
      function(v) assert.same({ { id = 1, name = "plan", type = "text" } }, v) end },
    { "Subscribers::create($listId, $data)", "cm.subscribers:add(list_id, body)",
      function()
        return cm.subscribers:add(list_id, { email = "ada@example.com", custom_fields = { plan = "gold" } })
      end,
      { "POST", "/v2/api/lists/{list}/subscribers", body = { email = "ada@example.com",
        custom_fields = { plan = "gold" } } },
      function(v) assert.is_true(v) end },
    { "Subscribers::all($listId, $filters)", "cm.subscribers:list(list_id, params)",
      function() return cm.subscribers:list(list_id, { status = "all", pagesize = 10, page = 1 }) end,
      { "GET", "/v2/api/lists/{list}/subscribers", query = { status = "all", pagesize = "10", page = "1" } },
      function(v) assert.equal("ada@example.com", v.items[2].email) end },
    { "Subscribers::find($listId, $email)", "cm.subscribers:get(list_id, email)",
      function() return cm.subscribers:get(list_id, "ada@example.com") end,
      { "GET", "/v2/api/lists/{list}/subscribers/show", query = { email = "ada@example.com" } },
      function(v) assert.equal("gold", v.custom_fields.plan) end },
    { "Subscribers::update($listId, $data)", "cm.subscribers:update(list_id, body)",
      function() return cm.subscribers:update(list_id, { email = "ada@example.com", name = "Ada" }) end,
      { "PUT", "/v2/api/lists/{list}/subscribers", body = { email = "ada@example.com", name = "Ada" } },
      function(v) assert.equal("Ada", v.name) end },
    { "Subscribers::import($listId, $subscribers)", "cm.subscribers:import(list_id, entries, opts)",
      function()
        return cm.subscribers:import(list_id, { { email = "ada@example.com", name = "Ada L." },
          { email = "bob@example.com" } }, { update_existing = true })
      end,
      { "POST", "/v2/api/lists/{list}/subscribers/import", body = { subscribers = {
        { email = "ada@example.com", name = "Ada L.", update_existing = true },
        { email = "bob@example.com", update_existing = true } } } },
      function(v) assert.equal(1, v.added); assert.equal(1, v.updated); assert.same({}, v.failed) end },
    { "Subscribers::activity($email, $pagesize, $page)",
      "cm.subscribers:activity(email, { pagesize =, page = })",
      function() return cm.subscribers:activity("ada@example.com", { pagesize = 2, page = 1 }) end,
      { "GET", "/v2/api/subscribers/activity", query = { email = "ada@example.com", pagesize = "2", page = "1" } },
      function(v)
        assert.equal("ada@example.com", v.email)
        assert.equal(3, v.summary.total_messages)
        assert.equal(2, #v.messages.items)
        assert.is_true(v.messages.has_more)
        assert.equal(3, v.messages.total)
        assert.same({ page = 2, pagesize = 2 }, v.messages.next)
      end },
    { "Subscribers::delete($listId, $email, true)",
      "cm.subscribers:delete(list_id, email, { send_autoresponders = true })",
      function() return cm.subscribers:delete(list_id, "bob@example.com", { send_autoresponders = true }) end,
      { "DELETE", "/v2/api/lists/{list}/subscribers",
        query = { email = "bob@example.com", send_autoresponders = "1" } },
      function(v) assert.is_true(v); assert.equal(1, m:stats().autoresponders_sent) end },
    { "Subscribers::delete($listId, $email)", "cm.subscribers:delete(list_id, email)",
      function() return cm.subscribers:delete(list_id, "ada@example.com") end,
      { "DELETE", "/v2/api/lists/{list}/subscribers", query = { email = "ada@example.com" } },
      function(v) assert.is_true(v); assert.equal(1, m:stats().autoresponders_sent) end },
    { "Suppressions::create($email)", "cm.suppressions:add(email)",
      function() return cm.suppressions:add("spam@example.com") end,
      { "POST", "/v2/api/suppressions", body = { email = "spam@example.com" } },
      function(v) assert.is_true(v) end },
    { "Suppressions::all($pagesize, $page)", "cm.suppressions:list{ pagesize =, page = }",
      function() return cm.suppressions:list{ pagesize = 5, page = 1 } end,
      { "GET", "/v2/api/suppressions", query = { pagesize = "5", page = "1" } },
      function(v) assert.equal("spam@example.com", v.items[1].email) end },
    { "Suppressions::delete($email)", "cm.suppressions:remove(email)",
      function() return cm.suppressions:remove("spam@example.com") end,
      { "DELETE", "/v2/api/suppressions", query = { email = "spam@example.com" } },
      function(v) assert.is_true(v) end },
    { "Lists::delete($listId)", "cm.lists:delete(id)",
      function() return cm.lists:delete(list_id) end,
      { "DELETE", "/v2/api/lists/{list}" },
      function(v) assert.is_true(v) end },
  }

  it("has a counterpart for each of the SDK's 18 calls, sending what the SDK sends", function()
    m:reset{ seed = { lists = { { name = "Seeded" } } } }
    cm = client(2)
    for _, case in ipairs(CASES) do
      local sdk, ours, call, wire, check = case[1], case[2], case[3], case[4], case[5]
      local value, err = call()
      assert(value ~= nil, sdk .. " -> " .. ours .. ": " .. tostring(err))
      local req = last_request()
      if sdk == "Lists::create($data)" then
        list_id = value.id
        m:seed("messages", { items = {
          { email = "ada@example.com", subject = "One", opens = 2,
            clicks = { { url = "https://a.example", count = 3 } } },
          { email = "ada@example.com", subject = "Two", bounced = true },
          { email = "ada@example.com", subject = "Three" } } })
      elseif sdk == "Lists::get($listId)" then
        -- A subscriber with a custom field, for Lists::fields.
        m:seed("subscribers", { items = { { list_id = list_id, email = "seed@example.com",
          custom_fields = { plan = "silver" } } } })
      end
      local path = wire[2]:gsub("{list}", tostring(list_id))
      assert.equal(wire[1] .. " " .. path, req.method .. " " .. req.path, sdk)
      assert.same(wire.query or {}, query_of(req.query), sdk)
      if wire.body then
        assert.same(wire.body, mockserver.decode(req.body), sdk)
      else
        assert.equal("", req.body, sdk)
        assert.is_nil(req.headers["content-type"], sdk .. " sends no body, so no Content-Type")
      end
      check(value)
    end
    assert.equal(18, #CASES)
    cm:close()
  end)

  it("walks a subscriber's whole activity with each_activity", function()
    m:reset{ seed = { lists = 1 } }
    local items = {}
    for i = 1, 7 do items[i] = { email = "ada@example.com", subject = "S" .. i } end
    m:seed("messages", { items = items })
    cm = client(2)
    local subjects = {}
    for msg in cm.subscribers:each_activity("ada@example.com", { pagesize = 3 }) do
      subjects[#subjects + 1] = msg.subject
    end
    assert.same({ "S7", "S6", "S5", "S4", "S3", "S2", "S1" }, subjects)
    assert.equal(3, m:stats().by_route["GET /v2/api/subscribers/activity"])
    local _, err = cm.subscribers:activity("nobody@example.com")
    assert.equal("not_found", err.kind)
    cm:close()
  end)

  it("v1: ping is connection_test.json, delete carries send_autoresponders, v2-only calls raise", function()
    m:reset{}
    local v1 = client(1)
    assert.is_true(v1:ping())
    local req = last_request()
    assert.equal("GET /v1/api/connection_test.json", req.method .. " " .. req.path)
    local list = assert(v1.lists:create{ name = "V1 list", language = "fi" })
    assert.is_true(v1.subscribers:add(list.id, { email = "ada@example.com" }))
    assert.is_true(v1.subscribers:delete(list.id, "ada@example.com", { send_autoresponders = true }))
    req = last_request()
    assert.same({ email = "ada@example.com", send_autoresponders = "1" }, query_of(req.query))
    assert.equal(1, m:stats().autoresponders_sent)
    for _, call in ipairs{
      function() return v1.lists:fields(list.id) end,
      function() return v1.subscribers:activity("ada@example.com") end,
      function() return v1.subscribers:each_activity("ada@example.com") end,
    } do
      assert.error_matches(call, "needs Creamailer API version 2 %(this client uses version 1")
    end
    assert.error_matches(function() v1.subscribers:delete(list.id, "a@example.com", { autoresponders = true }) end,
      "unknown option 'autoresponders'")
    assert.error_matches(function() v1.subscribers:delete(list.id, "a@example.com", { send_autoresponders = 1 }) end,
      "bad option 'send_autoresponders'")
    v1:close()
  end)

  it("v1 create gives the id as the integer that get gives", function()
    m:reset{}
    local v1 = client(1)
    local created = assert(v1.lists:create{ name = "Typed", language = "en" })
    assert.equal(math.type and "integer" or "number", math.type and math.type(created.id) or type(created.id))
    assert.equal(assert(v1.lists:get(created.id)).id, created.id)
    v1:close()
  end)
end)
