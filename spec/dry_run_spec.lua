-- The dry-run transport: reads go out, writes are shown exactly as they would leave and
-- answered as successes, secrets redacted, and waits pass without sleeping.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

describe("transport = \"dry-run\"", function()
  local m

  setup(function() m = mockserver.start("systeme") end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local function dry_client(shown, extra)
    local opts = { api_key = "test-key", base_url = m.url, timeout = 5, transport = "dry-run",
                   dry_run = function(request) shown[#shown + 1] = request end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return audience.systeme(opts)
  end

  it("sends the reads and shows the writes, as they would go out, without sending them", function()
    m:seed("contacts", 3)
    local shown = {}
    local sys = dry_client(shown)
    local before = m:stats().requests
    local page = assert(sys.contacts:list{ limit = 10 })
    assert.equal(3, #page.items)
    assert.equal(before + 1, m:stats().requests)

    local created = assert(sys.contacts:create{ email = "dry@example.com" })
    assert.equal("dry@example.com", created.email)
    assert.is_true(assert(sys.contacts:add_tag(1, 2)))
    assert.is_true(assert(sys.contacts:delete(2)))
    assert.equal(before + 1, m:stats().requests)
    assert.equal(3, #m:data("contacts"))

    assert.equal(3, #shown)
    assert.equal("POST", shown[1].method)
    assert.equal(m.url .. "/contacts", shown[1].url)
    assert.equal('{"email":"dry@example.com"}', shown[1].body)
    assert.equal("DELETE", shown[3].method)
    local text = table.concat(shown[1].headers, "\n")
    assert.matches("X-API-Key: [REDACTED]", text, 1, true)
    assert.matches("Content-Type: application/json", text, 1, true)
    assert.not_matches("test-key", text, 1, true)
  end)

  it("shows the URL the real call would use, lists encoded as the API expects", function()
    local shown = {}
    local sys = dry_client(shown)
    assert(sys:request("POST", "/contacts", { query = { tags = { 1, 2 } }, body = { email = "a@example.com" } }))
    assert.equal(m.url .. "/contacts?tags=1%2C2", shown[1].url)
  end)

  it("spends no quota on the writes it does not send", function()
    local shown = {}
    local sys = dry_client(shown, { rate_limit = { limit = 2, per = 3600, account = "dry-run-spec" } })
    local started = core.monotonic()
    for i = 1, 5 do assert(sys.contacts:create{ email = ("w%d@example.com"):format(i) }) end
    assert.equal(5, #shown)
    assert.is_true(core.monotonic() - started < 2)
    -- The reads do go out, and spend the budget of two.
    assert(sys.contacts:list{})
    assert(sys.contacts:list{})
    local _, err = sys.contacts:list{}
    assert.equal("rate_limited", err and err.kind)
  end)

  it("runs client:parallel calls one after another", function()
    local shown = {}
    local sys = dry_client(shown)
    local results = sys:parallel({
      function() return sys.contacts:create{ email = "p1@example.com" } end,
      function() return sys.contacts:create{ email = "p2@example.com" } end,
    })
    assert.equal("p1@example.com", results[1].value.email)
    assert.equal("p2@example.com", results[2].value.email)
    assert.equal(2, #shown)
    assert.equal(0, #m:data("contacts"))
  end)

  it("needs a function to show the writes to, and that function only with it", function()
    local ok, err = pcall(audience.systeme, { api_key = "k", transport = "dry-run" })
    assert.is_false(ok)
    assert.matches("dry_run", tostring(err))
    ok, err = pcall(audience.systeme, { api_key = "k", dry_run = function() end })
    assert.is_false(ok)
    assert.matches("applies only with transport", tostring(err))
    ok, err = pcall(audience.systeme, { api_key = "k", transport = "dry-run", dry_run = "yes" })
    assert.is_false(ok)
    assert.matches("dry_run", tostring(err))
  end)
end)

describe("transport = \"dry-run\" on Creamailer", function()
  local m

  setup(function()
    m = mockserver.start("creamailer", { accounts = { default = { token = "t", secret = "s" } } })
  end)
  teardown(function() if m then m:stop() end end)

  for _, version in ipairs{ 1, 2 } do
    it("answers an import batch (v" .. version .. ") with the report of a batch that went in whole", function()
      local shown = {}
      local cm = audience.creamailer{
        access_token = "t", shared_secret = "s", version = version, timeout = 5,
        base_url = version == 2 and (m.root .. "/v2/api") or m.url,
        transport = "dry-run", dry_run = function(request) shown[#shown + 1] = request end,
        rate_limit = { account = "dry-run-cm-" .. version },
      }
      local before = m:stats().requests
      local entries = {}
      for i = 1, 700 do entries[i] = { email = ("i%d@example.com"):format(i) } end
      local report = assert(cm.subscribers:import(7, entries))
      assert.equal(700, report.added)
      assert.equal(0, #report.failed)
      assert.equal(2, #shown)
      assert.equal(before, m:stats().requests)
      local text = table.concat(shown[1].headers, "\n")
      assert.matches("X-Request-Signature: [REDACTED]", text, 1, true)
      assert.matches("X-Access-Token: [REDACTED]", text, 1, true)
    end)
  end
end)
