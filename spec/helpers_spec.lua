-- The helper methods attached to clients (upsert by email, tags by name, list sync) and
-- audience.export, against the mock servers.
local audience = require "audience"
local mockserver = require "support.mockserver"

local function route_count(m, route)
  return m:stats().by_route[route] or 0
end

describe("helpers: Systeme.io", function()
  local m, sys

  setup(function() m = mockserver.start("systeme") end)
  teardown(function()
    if sys then sys:close() end
    if m then m:stop() end
  end)
  before_each(function()
    m:reset()
    if sys then sys:close() end
    sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 5 }
  end)

  it("find_contact: the contact, false when no contact has the email, nil + err on failure", function()
    m:seed("contacts", 3)
    local c = assert(sys:find_contact("USER2@example.com"))
    assert.equal("user2@example.com", c.email)
    local none, err = sys:find_contact("nobody@example.com")
    assert.is_false(none)
    assert.is_nil(err)

    local bad = audience.systeme{ api_key = "wrong-key", base_url = m.url, timeout = 5 }
    local r, e = bad:find_contact("user2@example.com")
    assert.is_nil(r)
    assert.equal("auth", e.kind)
    bad:close()
    assert.has_error(function() sys:find_contact(42) end,
      "audience: bad argument #1 to 'find_contact' (email: non-empty string expected, got number)")
  end)

  it("upsert_contact creates, then patches only what differs, and resolves each tag name once", function()
    local c, created = sys:upsert_contact{
      email = "ada@example.com", locale = "en",
      fields = { first_name = "Ada", surname = "Lovelace" }, tags = { "customers", "newsletter" },
    }
    assert.is_true(created)
    assert.equal("ada@example.com", c.email)
    local names = {}
    for _, t in ipairs(c.tags) do names[#names + 1] = t.name end
    table.sort(names)
    assert.same({ "customers", "newsletter" }, names)
    assert.equal(2, #m:data("tags"))

    -- The same tags again, for someone else: no tag lookups and no tag creations.
    local tag_gets, tag_posts = route_count(m, "GET /api/tags"), route_count(m, "POST /api/tags")
    local g, gcreated = sys:upsert_contact{ email = "grace@example.com", tags = { "customers" } }
    assert.is_true(gcreated)
    assert.equal("customers", g.tags[1].name)
    assert.equal(tag_gets, route_count(m, "GET /api/tags"))
    assert.equal(tag_posts, route_count(m, "POST /api/tags"))

    -- Found: nothing differs, so nothing is written.
    local patches = route_count(m, "PATCH /api/contacts/{id}")
    local same, screated = sys:upsert_contact{ email = "ada@example.com", fields = { first_name = "Ada" },
      tags = { "customers" } }
    assert.is_false(screated)
    assert.equal(c.id, same.id)
    assert.equal(patches, route_count(m, "PATCH /api/contacts/{id}"))

    -- The API's list form works too, and only the changed field goes out.
    local changed = assert(sys:upsert_contact{ email = "ada@example.com", locale = "fr",
      fields = { { slug = "surname", value = "King" } } })
    assert.equal(patches + 1, route_count(m, "PATCH /api/contacts/{id}"))
    assert.equal("fr", changed.locale)
    local values = {}
    for _, f in ipairs(changed.fields) do values[f.slug] = f.value end
    assert.same({ first_name = "Ada", surname = "King" }, values)
    assert.equal(2, #m:data("contacts"))
  end)

  it("upsert_contact finds a tag that exists but is not cached yet, by exact name", function()
    m:seed("tags", { { name = "vip-old" }, { name = "vip" } })
    local c = assert(sys:upsert_contact{ email = "x@example.com", tags = { "vip" } })
    assert.equal("vip", c.tags[1].name)
    assert.equal(2, #m:data("tags"))
  end)

  it("upsert_contact returns nil, err on an API failure and raises on bad arguments", function()
    local c, err = sys:upsert_contact{ email = "not an email" }
    assert.is_nil(c)
    assert.equal("validation", err.kind)
    assert.has_error(function() sys:upsert_contact("ada@example.com") end,
      "audience: bad argument #1 to 'upsert_contact' (spec: table expected, got string)")
    assert.has_error(function() sys:upsert_contact{ email = "a@b.c", tags = "vip" } end,
      "audience: bad argument #1 to 'upsert_contact' (spec.tags: list of non-empty strings expected, got string)")
  end)

  it("tag_contacts and untag_contacts account for every email", function()
    m:seed("contacts", 3)
    local report, err = sys:tag_contacts({ "user1@example.com", "user2@example.com", "ghost@example.com" },
      { "buyers", "2024" })
    assert.is_nil(err)
    assert.equal(2, report.done)
    assert.same({ "ghost@example.com" }, report.not_found)
    assert.same({}, report.failed)
    local by_email = {}
    for _, c in ipairs(m:data("contacts")) do by_email[c.email] = c end
    assert.equal(2, #by_email["user1@example.com"].tags)
    assert.equal(0, #by_email["user3@example.com"].tags)

    -- An iterator works as well as a list.
    local emails = { "user1@example.com", "user3@example.com" }
    local i = 0
    local untagged = assert(sys:untag_contacts(function() i = i + 1; return emails[i] end, { "buyers", "never-made" }))
    assert.equal(2, untagged.done)
    by_email = {}
    for _, c in ipairs(m:data("contacts")) do by_email[c.email] = c end
    assert.equal("2024", by_email["user1@example.com"].tags[1].name)
    assert.equal(1, #by_email["user1@example.com"].tags)
    -- Untagging never creates tags.
    assert.equal(2, #m:data("tags"))
  end)

  it("tag_contacts stops at an error that would fail every row, and still accounts for all", function()
    m:seed("contacts", 3)
    m:fault{ match = "/api/contacts", method = "GET", skip = 1, times = 1, action = { status = 401,
      body = { type = "about:blank", title = "Unauthorized", status = 401, detail = "API key is invalid" } } }
    local report, err = sys:tag_contacts({ "user1@example.com", "user2@example.com", "user3@example.com" }, { "t" })
    assert.equal("auth", err.kind)
    assert.equal(1, report.done)
    assert.equal(2, #report.failed)
    assert.matches("^not sent: ", report.failed[2].reason)
  end)
end)

describe("helpers: Creamailer sync_list", function()
  local m, cm
  local n = 0

  setup(function() m = mockserver.start("creamailer") end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    n = n + 1
    cm = audience.creamailer{ access_token = "test-token", shared_secret = "test-secret", base_url = m.url,
      timeout = 5, rate_limit = { limit = 10000, per = 1, account = "helpers-" .. n } }
  end)
  after_each(function() cm:close() end)

  local function people(from, to, name)
    local out = {}
    for i = from, to do out[#out + 1] = { email = ("p%d@example.com"):format(i), name = (name or "P") .. i } end
    return out
  end

  it("imports only new and changed entries, in few requests, and accounts for every entry", function()
    local list = assert(cm.lists:create{ name = "Sync", language = "en" })
    assert(cm.subscribers:import(list.id, people(1, 1200), { update_existing = true }))
    local source = people(1, 1200)
    for i = 1, 10 do source[i].name = "Changed " .. i end
    for _, p in ipairs(people(1201, 1250)) do source[#source + 1] = p end
    source[#source + 1] = { name = "nobody" }
    source[#source + 1] = { email = "not an address" }

    local before = m:stats().requests
    local report, err = cm:sync_list(list.id, source)
    assert.is_nil(err)
    assert.equal(50, report.added)
    assert.equal(10, report.updated)
    assert.equal(1190, report.unchanged)
    assert.equal(2, #report.failed)
    assert.equal(#source, report.added + report.updated + report.unchanged + #report.failed)
    -- Two pages of 1,000 to read the list, one import of 61 entries.
    assert.equal(3, m:stats().requests - before)
    local names = {}
    for _, s in ipairs(m:data("subscribers")) do names[s.email] = s.name end
    assert.equal("Changed 3", names["p3@example.com"])
    assert.equal("P1250", names["p1250@example.com"])
  end)

  it("reads a CSV file and an iterator; update = false leaves existing subscribers alone", function()
    local list = assert(cm.lists:create{ name = "Csv", language = "en" })
    assert(cm.subscribers:import(list.id, people(1, 3)))
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("email,name,custom_fields\r\n", "p1@example.com,P1,\r\n", "p2@example.com,Other,\r\n",
      "p9@example.com,\"Nine, Jr\",\"{\"\"plan\"\":\"\"gold\"\"}\"\r\n")
    f:close()
    local report = assert(cm:sync_list(list.id, path, { update = false }))
    os.remove(path)
    assert.equal(1, report.added)
    assert.equal(0, report.updated)
    assert.equal(2, report.unchanged)
    local by = {}
    for _, s in ipairs(m:data("subscribers")) do by[s.email] = s end
    assert.equal("P2", by["p2@example.com"].name)
    assert.equal("Nine, Jr", by["p9@example.com"].name)
    assert.equal("gold", by["p9@example.com"].custom_fields.plan)

    local i = 0
    local again = assert(cm:sync_list(list.id, function() i = i + 1; return people(1, 2, "X")[i] end))
    assert.equal(2, again.updated)
  end)

  it("returns nil, err when the list cannot be read, and raises on bad arguments", function()
    local report, err = cm:sync_list(999, {})
    assert.is_nil(report)
    assert.equal("not_found", err.kind)
    assert.has_error(function() cm:sync_list(1, 42) end,
      "audience: bad argument #2 to 'sync_list' (source: list or iterator function expected, got number)")
    assert.has_error(function() cm:sync_list(1, {}, { keys = "email" }) end,
      "audience: unknown option 'keys' in call to 'sync_list'")
  end)
end)

describe("helpers: SubscribeFlow", function()
  local m, sf

  setup(function() m = mockserver.start("subscribeflow") end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    sf = audience.subscribeflow{ api_key = "sf_live_test", base_url = m.url, timeout = 5 }
    assert(sf.tags:create{ name = "News" })
    assert(sf.tags:create{ name = "Events" })
  end)
  after_each(function() sf:close() end)

  it("upsert_subscriber creates, then patches and adds tags; find_subscriber says false when absent", function()
    assert.is_false(sf:find_subscriber("ada@example.com"))
    local s, created = sf:upsert_subscriber{ email = "ada@example.com", metadata = { plan = "free" },
      tags = { "news" } }
    assert.is_true(created)
    assert.same({ "news" }, s.tags)

    local again, acreated = sf:upsert_subscriber{ email = "ada@example.com", status = "unsubscribed",
      metadata = { plan = "pro" }, tags = { "news", "events" } }
    assert.is_false(acreated)
    assert.equal(s.id, again.id)
    assert.equal("unsubscribed", again.status)
    assert.equal("pro", again.metadata.plan)
    assert.same({ "news", "events" }, again.tags)
    assert.equal(1, #m:data("subscribers"))
  end)

  it("upsert_subscriber with the same Idempotency-Key in another run creates one subscriber", function()
    local spec = { email = "bob@example.com", tags = { "events" }, metadata = { a = 1, b = "two" } }
    assert(sf:upsert_subscriber(spec, { idempotency_key = "row-7" }))
    -- The same key and body replays; the server compares bytes, which the helper keeps stable.
    local body = { email = "bob@example.com", tags = audience.array{ "events" }, metadata = { b = "two", a = 1 } }
    local s, replayed = require("audience.providers.subscribeflow.helpers").create_subscriber(sf, body, "row-7")
    assert.truthy(s)
    assert.is_true(replayed)
    assert.equal(1, #m:data("subscribers"))
  end)

  it("returns nil, err on failures", function()
    local s, err = sf:upsert_subscriber{ email = "x@example.com", tags = { "no-such-tag" } }
    assert.is_nil(s)
    assert.equal("validation", err.kind)
  end)
end)

describe("audience.export", function()
  local dir
  setup(function()
    dir = assert(io.popen("mktemp -d /tmp/audience-export.XXXXXX")):read("l")
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("writes CSV with id and email first, nested tables as JSON, to a path or a handle", function()
    local items = { { email = "a@x", id = 2, tags = { "p", "q" }, meta = { k = "v,1" }, ok = true },
      { id = 3, email = "b@x", ok = false } }
    local n = assert(audience.export(items, dir .. "/a.csv", "csv"))
    assert.equal(2, n)
    local f = assert(io.open(dir .. "/a.csv", "rb"))
    local text = f:read("a")
    f:close()
    assert.equal('id,email,meta,ok,tags\r\n2,a@x,"{""k"":""v,1""}",true,"[""p"",""q""]"\r\n3,b@x,,false,\r\n', text)

    local h = assert(io.open(dir .. "/b.jsonl", "wb"))
    assert.equal(2, audience.export(items, h, "jsonl", { columns = { "id", "email" } }))
    h:close()
    local lines = {}
    for v in audience.read_jsonl(dir .. "/b.jsonl") do lines[#lines + 1] = v end
    assert.same({ { id = 2, email = "a@x" }, { id = 3, email = "b@x" } }, lines)
  end)

  it("returns nil, err, count when the iterator fails, and raises on bad arguments", function()
    local Error = require "audience.error"
    local i = 0
    local function failing()
      i = i + 1
      if i > 2 then error(Error.new{ kind = "server", status = 500, message = "boom" }) end
      return { id = i }
    end
    local n, err, count = audience.export(failing, dir .. "/c.csv", "csv")
    assert.is_nil(n)
    assert.equal("server", err.kind)
    assert.equal(2, count)
    assert.has_error(function() audience.export({}, dir .. "/d", "xml") end,
      "audience: bad argument #3 to 'export' (format: 'csv' or 'jsonl' expected, got string)")
    assert.has_error(function() audience.export({}, 5, "csv") end,
      "audience: bad argument #2 to 'export' (file: path or open file handle expected, got number)")
  end)

  it("flattens Systeme contacts and reads them back", function()
    local c = { id = 7, email = "a@x", locale = "en", registeredAt = "2024-01-01T00:00:00+00:00",
      unsubscribed = false, bounced = true, needsConfirmation = false,
      tags = { { id = 1, name = "a;b" }, { id = 2, name = "c\\d" } },
      fields = { { slug = "first_name", value = "Ann, \"Q\"" }, { slug = "surname", value = audience.null } } }
    assert(audience.export({ c }, dir .. "/e.csv", "csv",
      { transform = audience.flatten_contact, columns = audience.CONTACT_COLUMNS }))
    local rows = {}
    for row in audience.read_csv(dir .. "/e.csv") do rows[#rows + 1] = audience.unflatten_contact(row) end
    assert.equal(1, #rows)
    local back = rows[1]
    assert.equal(7, back.id)
    assert.is_true(back.bounced)
    assert.is_false(back.unsubscribed)
    assert.is_nil(back.sourceURL)
    assert.same({ "a;b", "c\\d" }, back.tags)
    assert.same({ first_name = "Ann, \"Q\"" }, back.fields)
    -- A plain CSV: the other columns are field slugs.
    local plain = audience.unflatten_contact{ email = "z@x", first_name = "Zed", surname = "", tags = "x; y" }
    assert.same({ first_name = "Zed" }, plain.fields)
    assert.same({ "x", "y" }, plain.tags)
  end)
end)
