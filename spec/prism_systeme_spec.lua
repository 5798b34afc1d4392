-- Prism (npm @stoplight/prism-cli 5.x, installed by scripts/install-prism.sh) in proxy
-- mode between audience.systeme and the bundled Systeme.io mock, validating every
-- request the client sends and every answer the mock gives against the provider's
-- published OpenAPI document. Each of the document's 31 operations is called once on
-- its documented success path; any violation, of either side, fails the spec.
local audience = require "audience"
local cjson = require "cjson"
local mockserver = require "support.mockserver"
local processes = require "support.processes"

local KEY = "prism-key"

local function read(path)
  return (assert(require("support.files").read(path), path))
end

local function shell(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

-- The provider's document, as published (docs/systeme-openapi.json).
local function openapi_path()
  return mockserver.spec_dir .. "/../docs/systeme-openapi.json"
end

-- "/api/contacts/{id}/tags/{tagId}" -> a Lua pattern matching a concrete path.
local function path_pattern(template)
  return "^" .. template:gsub("[%-%.]", "%%%0"):gsub("{[^}]+}", "[^/]+") .. "$"
end

local function operations(doc)
  local ops = {}
  for path, item in pairs(doc.paths) do
    for method in pairs(item) do
      if ({ get = true, post = true, put = true, patch = true, delete = true })[method] then
        ops[#ops + 1] = { method = method:upper(), template = path, pattern = path_pattern(path) }
      end
    end
  end
  -- Literal segments first, so "/api/contacts/{id}/tags" never takes ".../tags/{tagId}".
  table.sort(ops, function(a, b) return #a.template > #b.template end)
  return ops
end

describe("audience.systeme through Prism, validating the OpenAPI document", function()
  local m, procs, prism_url, log_index
  local doc_path = openapi_path()
  local ops = operations(cjson.decode(read(doc_path)))

  setup(function()
    local ok, out = shell("bash " .. mockserver.spec_dir .. "/../scripts/install-prism.sh 2>&1")
    assert(ok, "scripts/install-prism.sh failed:\n" .. out)
    local prism = out:match("([^\n]+)\n?$")
    m = mockserver.start("systeme", { accounts = { demo = { keys = { KEY } } } })
    procs = processes.group()
    local port = mockserver.free_port()
    log_index = procs:start(("%q proxy --errors -h 127.0.0.1 -p %d %q %q"):format(
      prism, port, doc_path, m.root))
    prism_url = "http://127.0.0.1:" .. port
    local clock = require("audience.core").monotonic
    local deadline = clock() + 90
    while not procs:output(log_index):find("Prism is listening", 1, true) do
      assert(clock() < deadline, "Prism did not start:\n" .. procs:output(log_index))
      os.execute("sleep 0.2")
    end
  end)

  teardown(function()
    if procs then
      if log_index then procs:kill(log_index, "TERM") end
      procs:wait(10)
      procs:cleanup()
    end
    if m then m:stop() end
  end)

  it("sends and gets only what the document allows, over all 31 operations", function()
    assert.equal(31, #ops)
    m:reset{ accounts = { demo = { keys = { KEY } } }, seed = {
      -- A contact without a locale, a course without a domain, a finished subscription:
      -- the shapes where a mock is most tempted to answer null.
      contacts = { {}, { locale = cjson.null, sourceURL = "https://example.com/a" }, { tags = { 1 } } },
      tags = 2, courses = { { active = true }, { active = false, domainName = "school.example.com" } },
      communities = 1, webhooks = 1,
      subscriptions = { { contact = 1 },
        { contact = 1, status = "completed", completedAt = "2026-01-02T03:04:05+00:00" } },
      enrollments = { { contact = 1, course = 1 } },
      memberships = { { contact = 2, community = 1 } } } }
    local violations, seen = {}, {}
    local function note(what) violations[#violations + 1] = what end
    local sys = audience.systeme{ api_key = KEY, base_url = prism_url .. "/api", retries = 0, timeout = 20,
      rate_limit = { limit = 10000, per = 1, account = "prism-spec" },
      on_response = function(i)
        local template
        for _, op in ipairs(ops) do
          if op.method == i.method and ("/api" .. i.path:gsub("%?.*$", "")):find(op.pattern) then
            template = op.method .. " " .. op.template
            break
          end
        end
        seen[template or (i.method .. " " .. i.path .. " (not in the document)")] = i.status or "no answer"
        local h = i.response_headers and i.response_headers["sl-violations"]
        if h then note(i.method .. " " .. i.path .. ": " .. h) end
        if i.error and tostring(i.error.message):find("Prism", 1, true) then
          note(i.method .. " " .. i.path .. ": " .. tostring(i.error))
        end
      end }

    local function ok(v, err)
      if v == nil then
        local log = {}
        for line in procs:output(log_index):gmatch("[^\n]+") do
          if line:find("Violation:", 1, true) or line:find("✖", 1, true) then log[#log + 1] = line end
        end
        error(tostring(err) .. "\nviolations:\n" .. table.concat(violations, "\n")
          .. "\nPrism:\n" .. table.concat(log, "\n"), 2)
      end
      return v
    end

    -- contacts, tags, fields
    local page = ok(sys.contacts:list{ limit = 10, order = "asc" })
    assert.equal(3, #page.items)
    for _, contact in ipairs(page.items) do ok(sys.contacts:get(contact.id)) end
    ok(sys.contacts:list{ tags = { 1 }, limit = 100, startingAfter = 1 })
    local c = ok(sys.contacts:create{ email = "prism@example.com", locale = "en",
      fields = { { slug = "first_name", value = "Pri" } } })
    ok(sys.contacts:get(c.id))
    ok(sys.contacts:update(c.id, { fields = { { slug = "surname", value = "Sm" } } }))
    local tag = ok(sys.tags:create{ name = "prism-tag" })
    ok(sys.tags:list{ query = "prism" })
    ok(sys.tags:get(tag.id))
    ok(sys.tags:update(tag.id, { name = "prism-tag-2" }))
    assert.is_true(ok(sys.contacts:add_tag(c.id, tag.id)))
    assert.is_true(ok(sys.contacts:remove_tag(c.id, tag.id)))
    assert.is_true(ok(sys.tags:delete(tag.id)))
    ok(sys.contact_fields:list())
    local field = ok(sys.contact_fields:create{ fieldName = "Prism field", slug = "prism_field" })
    ok(sys.contact_fields:update(field.slug, { fieldName = "Prism field 2" }))
    assert.is_true(ok(sys.contact_fields:delete(field.slug)))

    -- webhooks
    ok(sys.webhooks:list())
    local hook = ok(sys.webhooks:create{ name = "Prism hook", url = "https://hooks.example.com/prism",
      secret = "prism-secret", subscriptions = { "CONTACT_CREATED" } })
    ok(sys.webhooks:get(hook.id))
    ok(sys.webhooks:update(hook.id, { name = "Prism hook 2", secret = "prism-secret-2",
      subscriptions = { "CONTACT_CREATED", "CONTACT_TAG_ADDED" } }))
    assert.is_true(ok(sys.webhooks:delete(hook.id)))

    -- school, community, payment
    ok(sys.courses:list())
    local courses = ok(sys.courses:list{ active = true })
    ok(sys.courses:enroll(courses.items[1].id, { contactId = c.id, accessType = "full_access" }))
    local enrollments = ok(sys.enrollments:list{ contact = c.id })
    assert.is_true(ok(sys.enrollments:delete(enrollments.items[1].id)))
    local communities = ok(sys.communities:list())
    assert.is_true(ok(sys.communities:add_member(communities.items[1].id, c.id)))
    local memberships = ok(sys.memberships:list{ community = communities.items[1].id })
    assert.is_true(ok(sys.memberships:delete(memberships.items[1].id)))
    local subs = ok(sys.subscriptions:list{ contact = 1, order = "asc" })
    assert.equal(2, #subs.items)
    assert.is_true(ok(sys.subscriptions:cancel(subs.items[1].id, "WhenBillingPeriodEnds")))

    assert.is_true(ok(sys.contacts:delete(c.id)))

    -- The error answers the document declares, in the shapes it gives them.
    local function fails(kind, v, err)
      assert.is_nil(v)
      assert.equal(kind, err.kind, tostring(err))
      assert.is_nil(tostring(err.message):find("Prism", 1, true), tostring(err))
    end
    fails("not_found", sys.contacts:get(999999))
    fails("not_found", sys.contacts:delete(999999))
    fails("not_found", sys.tags:update(999999, { name = "x" }))
    fails("not_found", sys.webhooks:update(999999, { name = "x", secret = "y" }))
    fails("validation", sys.contacts:create{ email = "user1@example.com" })
    fails("validation", sys.contacts:create{ email = "not-an-email" })
    fails("validation", sys.tags:create{ name = "" })
    fails("validation", sys.contacts:add_tag(1, 999999))
    sys:close()

    local missing = {}
    for _, op in ipairs(ops) do
      if not seen[op.method .. " " .. op.template] then missing[#missing + 1] = op.method .. " " .. op.template end
    end
    for name in pairs(seen) do
      if name:find("not in the document", 1, true) then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert.same({}, missing)

    -- What Prism itself logged: violations it only warned about, and errors it answered.
    for line in procs:output(log_index):gmatch("[^\n]+") do
      if line:find("Violation:", 1, true) or line:find("✖", 1, true) then note("prism log: " .. line) end
    end
    assert(#violations == 0, #violations .. " violation(s):\n" .. table.concat(violations, "\n"))
  end)
end)
