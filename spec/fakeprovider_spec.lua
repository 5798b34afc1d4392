-- A fourth API defined in one folder (spec/fakeprovider/: its description, command
-- verbs and mock server) works through everything generic: the client, its iterators,
-- the error reader and auth scheme it brings, its helpers, the command and webhooks.
local audience = require "audience"
local providers = require "audience.providers"
local mockserver = require "support.mockserver"
local files = require "support.files"

local KEY = "fk-secret-4711"

describe("a provider defined in one folder outside the module", function()
  local m, fake

  setup(function()
    audience.register_provider("fake", "fakeprovider")
    m = mockserver.start("mock", { key = KEY }, { mock_dir = mockserver.spec_dir .. "/fakeprovider" })
  end)
  teardown(function()
    if m then m:stop() end
  end)
  before_each(function()
    m:reset({ key = KEY })
    fake = audience.client("fake", { api_key = KEY, base_url = m.url, retries = 0 })
  end)

  it("is known by name, after the shipped ones", function()
    local names = providers.names()
    assert.same({ "systeme", "creamailer", "subscribeflow", "fake" }, names)
    assert.equal("fake", providers.get("fake").name)
    assert.is_nil(providers.get("nope"))
    assert.has_error(function() audience.client("nope", {}) end,
      "audience: bad argument #1 to 'audience.client' (name: a provider expected, got 'nope')")
  end)

  it("is found by name as a folder audience/providers/NAME/ on package.path, unregistered", function()
    local dir = files.tmpdir("audience-folder")
    assert(os.execute("mkdir -p " .. files.quote(dir .. "/audience/providers/folded")))
    files.write(dir .. "/audience/providers/folded/init.lua", [[
local copy = {}
for k, v in pairs(require "fakeprovider") do copy[k] = v end
copy.name = "folded"
return copy
]])
    local saved = package.path
    package.path = dir .. "/?/init.lua;" .. package.path
    local ok, err = pcall(function()
      local folded = audience.client("folded", { api_key = KEY, base_url = m.url })
      assert(folded.members:create{ email = "f@example.com" })
      assert.equal(1, #m:data("members"))
      local out, errf = io.tmpfile(), io.tmpfile()
      local code = require("audience.cli").run({ "folded", "members", "list", "--json" },
        { out = out, err = errf, progress = "none",
          getenv = function(name) return ({ FAKE_API_KEY = KEY, FAKE_BASE_URL = m.url })[name] end })
      assert.equal(0, code)
      out:seek("set")
      assert.matches('"email":"f@example.com"', out:read("a"), 1, true)
    end)
    package.path = saved
    package.loaded["audience.providers.folded"] = nil
    files.remove_tree(dir)
    assert(ok, err)
  end)

  it("checks its options like any provider", function()
    assert.has_error(function() audience.client("fake", {}) end)
    assert.has_error(function() audience.client("fake", { api_key = KEY, colour = "red" }) end)
  end)

  it("creates, reads, updates and deletes through the generic resource methods", function()
    local a = assert(fake.members:create{ email = "ann@example.com", name = "Ann" })
    assert.equal("Ann", a.name)
    assert.equal("ann@example.com", assert(fake.members:get(a.id)).email)
    assert.equal("Annie", assert(fake.members:update(a.id, { name = "Annie" })).name)
    assert.is_true(fake.members:ban(a.id, "spam"))
    assert.is_true(m:data("members")[1].banned)
    assert.is_true(fake.members:delete(a.id))
    assert.same({}, m:data("members"))
  end)

  it("sends its own auth scheme on every attempt", function()
    assert(fake.members:list())
    assert(fake.members:list())
    local seen = {}
    for _, r in ipairs(m:requests()) do seen[#seen + 1] = r.headers["x-fake-attempt"] end
    assert.same({ "1", "2" }, seen)
  end)

  it("reads its errors with its own reader, and keeps its key out of them", function()
    assert(fake.members:create{ email = "ann@example.com" })
    local none, err = fake.members:create{ email = "ANN@example.com" }
    assert.is_nil(none)
    assert.equal("validation", err.kind)
    assert.equal(422, err.status)
    assert.equal("invalid", err.code)
    assert.same({ { field = "email", message = "taken" } }, err.details)

    local wrong = audience.client("fake", { api_key = "fk-wrong-key", base_url = m.url, retries = 0 })
    local _, aerr = wrong.members:list()
    assert.equal("auth", aerr.kind)
    assert.equal("unknown key", aerr.message)
    assert.is_nil(tostring(aerr):find("fk-wrong-key", 1, true))

    local _, nerr = fake.members:get(999)
    assert.equal("not_found", nerr.kind)
  end)

  it("pages through every item with each and pages, and reads its rate-limit headers", function()
    local items = {}
    for i = 1, 23 do items[i] = { email = ("m%02d@example.com"):format(i) } end
    m:seed("members", { items = items })
    local seen = {}
    for member in fake.members:each{ size = 5 } do seen[#seen + 1] = member.email end
    assert.equal(23, #seen)
    assert.equal("m23@example.com", seen[23])

    local sizes, total = {}, nil
    for page in fake.members:pages{ size = 10 } do
      sizes[#sizes + 1] = #page.items
      total = total or page.total
    end
    assert.same({ 10, 10, 3 }, sizes)
    assert.equal(23, total)

    local first = assert(fake.members:list{ size = 5 })
    assert.equal(5, #first.items)
    assert.is_true(first.has_more)
    assert.equal(2, first.next.page)
    assert.equal(1000, fake:rate_limit().limit)
  end)

  it("brings its helpers: find by email", function()
    m:seed("members", { items = { { email = "bob@example.com" }, { email = "bobby@example.com" } } })
    assert.equal("bob@example.com", assert(fake:find_member("BOB@example.com")).email)
    assert.is_false(fake:find_member("carol@example.com"))
    assert.has_error(function() fake:find_member("") end)
  end)

  it("signs and verifies its webhooks with its header", function()
    local body = '{"event":"member.created","id":7}'
    local headers = audience.webhooks.sign("fake", body, "whsec")
    assert.is_string(headers["X-Fake-Signature"])
    assert.is_true(audience.webhooks.verify("fake", body, headers, "whsec"))
    assert.is_true(audience.webhooks.verify("fake", body,
      { ["x-fake-signature"] = headers["X-Fake-Signature"] }, "whsec"))
    local ok, err = audience.webhooks.verify("fake", body .. " ", headers, "whsec")
    assert.is_nil(ok)
    assert.equal("mismatch", err.code)
    assert.matches("X-Fake-Signature", err.message, 1, true)
    local _, missing = audience.webhooks.verify("fake", body, {}, "whsec")
    assert.equal("missing_signature", missing.code)
  end)

  describe("in the command", function()
    local cli = require "audience.cli"

    local function run(argv, env)
      local out, err = io.tmpfile(), io.tmpfile()
      env = env or { FAKE_API_KEY = KEY, FAKE_BASE_URL = m.url }
      local code = cli.run(argv, { out = out, err = err, progress = "none",
        getenv = function(name) return env[name] end })
      out:seek("set")
      err:seek("set")
      return code, out:read("a"), err:read("a")
    end

    it("has help at every level", function()
      local code, out = run({ "--help" })
      assert.equal(0, code)
      assert.matches("Creamailer, SubscribeFlow and Fake", out, 1, true)
      assert.matches("  fake           members", out, 1, true)
      assert.matches("FAKE_API_KEY (required), FAKE_BASE_URL", out, 1, true)
      code, out = run({ "fake", "--help" })
      assert.equal(0, code)
      assert.matches("members         list get create update delete export import", out, 1, true)
      code, out = run({ "fake", "members", "--help" })
      assert.equal(0, code)
      assert.matches("audience fake members import --file FILE", out, 1, true)
      assert.matches("Import creates one member per row", out, 1, true)
    end)

    it("names it among the providers, and asks for its credential", function()
      local code, _, err = run({ "mailchimp", "lists", "list" })
      assert.equal(2, code)
      assert.matches("(systeme, creamailer, subscribeflow or fake)", err, 1, true)
      code, _, err = run({ "fake", "members", "list" }, {})
      assert.equal(2, code)
      assert.matches("FAKE_API_KEY is not set", err, 1, true)
    end)

    it("lists, gets and creates", function()
      m:seed("members", { items = { { email = "a@example.com", name = "A" }, { email = "b@example.com" } } })
      local code, out = run({ "fake", "members", "list", "--json" })
      assert.equal(0, code)
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = require("audience.json").decode(line) end
      assert.equal(2, #lines)
      assert.equal("a@example.com", lines[1].email)
      code, out = run({ "fake", "members", "get", "1" })
      assert.equal(0, code)
      assert.matches("email%s+a@example.com", out)
      code = run({ "fake", "members", "create", "--data", '{"email": "c@example.com"}' })
      assert.equal(0, code)
      assert.equal(3, #m:data("members"))
      code = run({ "fake", "members", "get", "99" })
      assert.equal(3, code)
    end)

    it("imports a CSV file row by row, and exports it again", function()
      local dir = files.tmpdir("audience-fake")
      local csv = files.write(dir .. "/members.csv", "email,name\nx@example.com,X\ny@example.com,Y\n,nobody\n")
      local code, _, err = run({ "fake", "members", "import", "--file", csv })
      assert.equal(4, code)
      assert.matches("2 created, 0 existing, 0 updated, 1 failed", err, 1, true)
      assert.equal(2, #m:data("members"))
      code, _, err = run({ "fake", "members", "export", "--output", dir .. "/out.csv" })
      assert.equal(0, code, err)
      local text = files.read(dir .. "/out.csv")
      assert.matches("x@example.com", text, 1, true)
      assert.matches("y@example.com", text, 1, true)
      files.remove_tree(dir)
    end)
  end)
end)
