-- The `audience` command, run as a subprocess (lua5.4 bin/audience) against the mocks:
-- help, exit codes, --json, --dry-run, a 10,000-contact export read back, imports of
-- every provider, an import interrupted with SIGINT and resumed, and progress output.
local audience = require "audience"
local mockserver = require "support.mockserver"
local socket = require "socket"

local ROOT = assert(io.popen("pwd")):read("l")
local TMP

local files = require "support.files"
local shq, read_file, write_file = files.quote, files.read, files.write

-- Every credential variable is cleared first, so the caller's environment cannot leak in.
local CLEARED = { "SYSTEME_API_KEY", "SYSTEME_BASE_URL", "CREAMAILER_ACCESS_TOKEN", "CREAMAILER_SHARED_SECRET",
  "CREAMAILER_VERSION", "CREAMAILER_BASE_URL", "CREAMAILER_V2_BASE_URL", "SUBSCRIBEFLOW_API_KEY",
  "SUBSCRIBEFLOW_TOKEN", "SUBSCRIBEFLOW_BASE_URL" }

local function command(args, env)
  local parts = { "env" }
  for _, name in ipairs(CLEARED) do parts[#parts + 1] = "-u " .. name end
  parts[#parts + 1] = "LUA_PATH=" .. shq(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;")
  parts[#parts + 1] = "LUA_CPATH=" .. shq(ROOT .. "/build/lua5.4/?.so;;")
  local names = {}
  for k in pairs(env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. shq(env[k]) end
  parts[#parts + 1] = "lua5.4 " .. shq(ROOT .. "/bin/audience") .. " " .. args
  return table.concat(parts, " ")
end

-- Runs the command; returns exit code, stdout, stderr. `redirect` replaces stdout capture.
local function run(args, env, redirect)
  local errf = TMP .. "/stderr"
  local p = assert(io.popen(command(args, env) .. (redirect or "") .. " 2>" .. errf .. "; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  out = out:gsub("exit=%d+%s*$", "")
  return code, out, read_file(errf) or ""
end

local function sleep(s) socket.sleep(s) end

local function nz(v)
  if v == nil or type(v) == "userdata" then return nil end
  return v
end

setup(function()
  TMP = assert(io.popen("mktemp -d /tmp/audience-cli.XXXXXX")):read("l")
end)
teardown(function() os.execute("rm -rf " .. shq(TMP)) end)

describe("audience command: help and usage", function()
  it("--help at every level, exit 0, on stdout", function()
    local code, out = run("--help")
    assert.equal(0, code)
    assert.matches("usage: audience <provider> <resource> <action>", out, 1, true)
    assert.matches("SUBSCRIBEFLOW_API_KEY", out, 1, true)
    assert.matches("130 interrupted", out, 1, true)

    code, out = run("systeme --help")
    assert.equal(0, code)
    assert.matches("contact_fields", out, 1, true)
    assert.matches("SYSTEME_API_KEY", out, 1, true)

    code, out = run("systeme contacts --help")
    assert.equal(0, code)
    assert.matches("audience systeme contacts import --file FILE", out, 1, true)
    assert.matches("audience systeme contacts tag --tag NAME", out, 1, true)

    code, out = run("creamailer subscribers -h")
    assert.equal(0, code)
    assert.matches("--list ID", out, 1, true)
  end)

  it("exit 2 for a bad command, option or missing credential, with the reason on stderr", function()
    local cases = {
      { "", "which provider" },
      { "mailchimp lists list", "unknown provider 'mailchimp'" },
      { "systeme people list", "unknown resource 'people'" },
      { "systeme courses delete 3", "has no action 'delete'" },
      { "systeme contacts list --bogus", "unknown option --bogus" },
      { "systeme contacts get", "get takes exactly one ID" },
      { "systeme contacts list --file x.csv", "option --file does not apply to list" },
      { "systeme contacts list", "SYSTEME_API_KEY is not set" },
      { "creamailer subscribers list", "creamailer subscribers needs --list ID" },
    }
    for _, case in ipairs(cases) do
      local code, out, err = run(case[1])
      assert.equal(2, code, case[1])
      assert.equal("", out, case[1])
      assert.matches(case[2], err, 1, true)
    end
  end)

  it("is a module whose run() can be driven in-process", function()
    local cli = require "audience.cli"
    local out, err = io.tmpfile(), io.tmpfile()
    local code = cli.run({ "systeme", "contacts", "list", "--limit", "x" },
      { out = out, err = err, getenv = function(name) return name == "SYSTEME_API_KEY" and "k" or nil end,
        progress = "none" })
    assert.equal(2, code)
    err:seek("set")
    assert.matches("--limit expects a positive integer", err:read("a"), 1, true)
    assert.same({ "a", "b" }, cli.parse({ "--tag", "a", "--tag=b" }).tag)
  end)
end)

describe("audience command: Systeme.io", function()
  local m, env

  setup(function()
    m = mockserver.start("systeme", { accounts = { demo = { keys = { "cli-key" } } } })
    env = { SYSTEME_API_KEY = "cli-key", SYSTEME_BASE_URL = m.url }
  end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  it("exit 3 for API errors, with the error on stderr and never the key", function()
    m:seed("contacts", 2)
    local code, out, err = run("systeme contacts get 999", env)
    assert.equal(3, code)
    assert.equal("", out)
    assert.matches("systeme: 404 not_found", err, 1, true)

    code, out, err = run("systeme contacts list", { SYSTEME_API_KEY = "secret-key-XYZ", SYSTEME_BASE_URL = m.url })
    assert.equal(3, code)
    assert.matches("401 auth", err, 1, true)
    assert.is_nil((out .. err):find("secret-key-XYZ", 1, true))
  end)

  it("list: a table for people, JSON lines with --json; get and create with --json", function()
    m:seed("contacts", 5)
    local code, out = run("systeme contacts list --limit 3 --json", env)
    assert.equal(0, code)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      local c = assert(require("audience.json").decode(line))
      assert.matches("^user%d@example%.com$", c.email)
    end
    assert.equal(3, n)

    code, out = run("systeme contacts list --param email=user2@example.com", env)
    assert.equal(0, code)
    assert.matches("^id%s+email%s+locale", out)
    assert.matches("\n2%s+user2@example%.com%s+en", out)

    code, out = run([[systeme contacts create --json --data '{"email":"new@example.com","locale":"fr"}']], env)
    assert.equal(0, code)
    local created = require("audience.json").decode(out)
    assert.equal("new@example.com", created.email)
    code, out = run("systeme contacts get " .. created.id .. " --json", env)
    assert.equal(0, code)
    assert.equal("fr", require("audience.json").decode(out).locale)
  end)

  it("--dry-run prints the request and sends nothing", function()
    m:seed("contacts", 3)
    local before = m:stats().requests
    local code, out = run([[systeme contacts create --dry-run --data '{"email":"dry@example.com"}']], env)
    assert.equal(0, code)
    assert.matches("DRY RUN POST " .. m.url .. "/contacts", out, 1, true)
    assert.matches('{"email":"dry@example.com"}', out, 1, true)
    code, out = run([[systeme contacts update 2 --dry-run --json --data '{"locale":"de"}']], env)
    assert.equal(0, code)
    local req = require("audience.json").decode(out)
    assert.equal("PATCH", req.method)
    assert.equal("de", req.body.locale)
    code = run("systeme contacts delete 2 --dry-run", env)
    assert.equal(0, code)
    local path = write_file(TMP .. "/dry.csv", "email\na@example.com\nb@example.com\n")
    code, out = run("systeme contacts import --dry-run --file " .. shq(path), env)
    assert.equal(0, code)
    local _, posts = out:gsub("DRY RUN POST", "")
    assert.equal(2, posts)
    code = run("systeme contacts tag --dry-run --tag vip a@example.com", env)
    assert.equal(0, code)
    assert.equal(before, m:stats().requests)
    assert.equal(3, #m:data("contacts"))
  end)

  it("export --format csv of 10,000 contacts reads back to the mock's data", function()
    local special = {
      { email = "odd1@example.com", fields = { first_name = "Smith, \"J\"", city = "Zürich" },
        tags = { "buyers", "a;b" }, locale = "de" },
      { email = "odd2@example.com", fields = { surname = "東京 ✓" }, tags = { "buyers" }, unsubscribed = true },
      { email = "odd3@example.com", sourceURL = "https://example.com/?a=1,b=2", bounced = true },
    }
    m:seed("contacts", special)
    m:seed("contacts", 9997)
    local out_path = TMP .. "/out.csv"
    local code, _, err = run("systeme contacts export --format csv", env, " > " .. shq(out_path))
    assert.equal(0, code, err)
    local text = read_file(out_path)
    local _, lines = text:gsub("\n", "")
    assert.equal(10001, lines)
    assert.is_nil(err:find("\r", 1, true))

    local by_id = {}
    for _, c in ipairs(m:data("contacts")) do by_id[c.id] = c end
    local n = 0
    for row in audience.read_csv(out_path) do
      n = n + 1
      local back = audience.unflatten_contact(row)
      local c = by_id[back.id]
      assert.is_table(c, row.id)
      assert.equal(c.email, back.email)
      assert.equal(nz(c.locale), back.locale)
      assert.equal(c.registeredAt, back.registeredAt)
      assert.equal(nz(c.sourceURL), back.sourceURL)
      assert.equal(c.unsubscribed, back.unsubscribed)
      assert.equal(c.bounced, back.bounced)
      assert.equal(c.needsConfirmation, back.needsConfirmation)
      local names, fields = {}, {}
      for i, t in ipairs(c.tags) do names[i] = t.name end
      for _, f in ipairs(c.fields) do fields[f.slug] = nz(f.value) end
      assert.same(names, back.tags)
      assert.same(fields, back.fields)
      by_id[back.id] = nil
    end
    assert.equal(10000, n)
    assert.is_nil(next(by_id))
  end)

  it("a CSV export imports into an empty account as the same contacts", function()
    m:seed("contacts", {
      { email = "a@example.com", fields = { first_name = "Ann, \"A\"", city = "line1\nline2" }, tags = { "x;y", "z" } },
      { email = "b@example.com", locale = "fr", tags = { "z" } },
      { email = "c@example.com" },
    })
    local path = TMP .. "/roundtrip.csv"
    assert.equal(0, (run("systeme contacts export --output " .. shq(path), env)))
    local function snapshot()
      local out = {}
      for _, c in ipairs(m:data("contacts")) do
        local tags, fields = {}, {}
        for _, t in ipairs(c.tags) do tags[#tags + 1] = t.name end
        for _, f in ipairs(c.fields) do fields[f.slug] = f.value end
        out[c.email] = { locale = nz(c.locale), tags = tags, fields = fields }
      end
      return out
    end
    local before = snapshot()
    m:reset()
    local code, _, err = run("systeme contacts import --file " .. shq(path), env)
    assert.equal(0, code, err)
    assert.same(before, snapshot())
  end)

  it("export --format jsonl --output FILE writes the API's objects", function()
    m:seed("contacts", 30)
    local path = TMP .. "/out.jsonl"
    local code, out = run("systeme contacts export --output " .. shq(path) .. " --param unsubscribed=false", env)
    assert.equal(0, code)
    assert.equal("", out)
    local ids = {}
    for c in audience.read_jsonl(path) do ids[#ids + 1] = c.id end
    assert.equal(30, #ids)
    assert.equal(1, ids[1])   -- oldest first
  end)

  it("import: created, existing and failed rows; exit 4 when some failed", function()
    m:seed("contacts", 2)
    local path = write_file(TMP .. "/some.csv", "email,first_name,tags\r\n"
      .. "user1@example.com,Old,\r\nfresh@example.com,\"Fresh, New\",vip;news\r\nnot-an-email,X,\r\n")
    local code, out, err = run("systeme contacts import --json --file " .. shq(path), env)
    assert.equal(4, code)
    assert.matches("row 3: systeme: 422 validation", err, 1, true)
    local summary = require("audience.json").decode(out)
    assert.same({ 1, 1, 0, 1 }, { summary.created, summary.existing, summary.updated, summary.failed })
    assert.is_nil(read_file(path .. ".checkpoint"))
    local fresh
    for _, c in ipairs(m:data("contacts")) do if c.email == "fresh@example.com" then fresh = c end end
    assert.equal("Fresh, New", fresh.fields[1].value)
    assert.equal(2, #fresh.tags)

    -- --update: the taken email is updated instead.
    path = write_file(TMP .. "/upd.csv", "email,first_name\nuser1@example.com,Renamed\n")
    code, out = run("systeme contacts import --json --update --file " .. shq(path), env)
    assert.equal(0, code)
    assert.equal(1, require("audience.json").decode(out).updated)
  end)

  it("tag and untag contacts by email; exit 4 when one is not found", function()
    m:seed("contacts", 3)
    local code, out, err = run("systeme contacts tag --tag vip --tag 2024 user1@example.com ghost@example.com", env)
    assert.equal(4, code)
    assert.matches("tag: 1 done, 1 not found, 0 failed", out, 1, true)
    assert.matches("not found: ghost@example.com", err, 1, true)
    local list = write_file(TMP .. "/emails.txt", "user1@example.com\nuser2@example.com\n")
    code = run("systeme contacts untag --tag vip --file " .. shq(list), env)
    assert.equal(0, code)
    local tags = {}
    for _, c in ipairs(m:data("contacts")) do tags[c.email] = #c.tags end
    assert.equal(1, tags["user1@example.com"])
  end)

  it("an import killed with SIGINT saves its checkpoint, exits 130, and --resume finishes it exactly once", function()
    local rows = { "email,first_name" }
    for i = 1, 5000 do rows[#rows + 1] = ("bulk%d@example.com,Bulk %d"):format(i, i) end
    local path = write_file(TMP .. "/bulk.csv", table.concat(rows, "\n") .. "\n")
    local checkpoint = path .. ".checkpoint"
    local pidf, rcf = TMP .. "/bulk.pid", TMP .. "/bulk.rc"
    os.remove(pidf)
    os.remove(rcf)
    local inner = command("systeme contacts import --file " .. shq(path), env)
      .. " >" .. shq(TMP .. "/bulk.out") .. " 2>" .. shq(TMP .. "/bulk.err")
      .. " & echo $! > " .. shq(pidf) .. "; wait $!; echo $? > " .. shq(rcf)
    os.execute("sh -c " .. shq(inner) .. " >/dev/null 2>&1 &")

    local pid
    for _ = 1, 500 do
      pid = tonumber(read_file(pidf) or "")
      if pid then break end
      sleep(0.01)
    end
    assert.is_number(pid)
    local seen = 0
    for _ = 1, 3000 do   -- at most 30 s
      local state = require("audience.json").decode(read_file(checkpoint) or "")
      seen = type(state) == "table" and state.row or 0
      if seen >= 1000 or read_file(rcf) then break end
      sleep(0.01)
    end
    assert.is_true(seen >= 1000, "the import never got to row 1,000")
    os.execute("kill -INT " .. pid)
    local rc
    for _ = 1, 1500 do   -- at most 15 s
      rc = tonumber(read_file(rcf) or "")
      if rc then break end
      sleep(0.01)
    end
    assert.equal(130, rc, read_file(TMP .. "/bulk.err"))
    local err = read_file(TMP .. "/bulk.err")
    assert.matches("interrupted after row %d+", err)
    local state = require("audience.json").decode(read_file(checkpoint))
    assert.is_true(state.row >= 1000 and state.row < 5000, "checkpoint row " .. state.row)
    assert.equal(state.row, state.counts.created)
    local after_kill = #m:data("contacts")
    assert.is_true(after_kill >= state.row and after_kill <= state.row + 1)

    -- Without --resume, an existing checkpoint is not silently ignored.
    local code, _, refuse = run("systeme contacts import --file " .. shq(path), env)
    assert.equal(2, code)
    assert.matches("--resume", refuse, 1, true)

    local out
    code, out, err = run("systeme contacts import --resume --json --file " .. shq(path), env)
    assert.equal(0, code, err)
    local summary = require("audience.json").decode(out)
    assert.equal(5000, summary.rows)
    assert.equal(0, summary.failed)
    assert.is_nil(read_file(checkpoint))

    local contacts = m:data("contacts")
    assert.equal(5000, #contacts)
    local seen_email = {}
    for _, c in ipairs(contacts) do
      assert.is_nil(seen_email[c.email], "twice: " .. c.email)
      seen_email[c.email] = true
    end
    for i = 1, 5000 do assert.is_true(seen_email[("bulk%d@example.com"):format(i)]) end
  end)

  describe("progress", function()
    local function rows_file(name, n)
      local rows = { "email" }
      for i = 1, n do rows[#rows + 1] = ("%s%d@example.com"):format(name, i) end
      return write_file(TMP .. "/" .. name .. ".csv", table.concat(rows, "\n") .. "\n")
    end

    local has_script = os.execute("command -v script >/dev/null 2>&1")
    local pty_it = (has_script == true or has_script == 0) and it or pending

    pty_it("draws a bar with \\r, rate and ETA on a terminal", function()
      local path = rows_file("tty", 1500)
      local p = assert(io.popen("script -q -e -c " .. shq(command("systeme contacts import --file " .. shq(path), env))
        .. " /dev/null; echo \"exit=$?\""))
      local out = p:read("a")
      p:close()
      assert.matches("exit=0", out, 1, true)
      assert.matches("\rimport %d+/1500 %[[#%-]+%] %d+%%, %d+/s, ETA %d+", out)
      assert.matches("import 1500/1500 [####################] 100%", out, 1, true)
    end)

    it("writes plain lines, without \\r, when stderr is a file", function()
      local path = rows_file("plain", 2500)
      local code, out, err = run("systeme contacts import --file " .. shq(path), env)
      assert.equal(0, code)
      assert.equal("", out)
      assert.is_nil(err:find("\r", 1, true))
      assert.matches("import 1000/2500 40%%, %d+/s, ETA %d+", err)
      assert.matches("import 2000/2500 80%%", err)
      assert.matches("done after row 2500: 2500 created", err, 1, true)
    end)
  end)
end)

describe("audience command: Creamailer", function()
  local m, env

  setup(function()
    m = mockserver.start("creamailer")
    env = { CREAMAILER_ACCESS_TOKEN = "test-token", CREAMAILER_SHARED_SECRET = "test-secret",
      CREAMAILER_BASE_URL = m.url, CREAMAILER_V2_BASE_URL = m.root .. "/v2/api" }
  end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  it("creates a list, imports subscribers in batches, syncs and lists them", function()
    local json = require "audience.json"
    local code, out = run([[creamailer lists create --json --data '{"name":"CLI","language":"en"}']], env)
    assert.equal(0, code)
    local list = json.decode(out).id

    local rows = { "email,name,custom_fields" }
    for i = 1, 1200 do rows[#rows + 1] = ("s%d@example.com,S %d,"):format(i, i) end
    rows[43] = "broken,B,"
    rows[#rows + 1] = 's9999@example.com,Custom,"{""plan"":""gold""}"'
    local path = write_file(TMP .. "/subs.csv", table.concat(rows, "\n") .. "\n")
    local before = m:stats().requests
    local err
    code, out, err = run("creamailer subscribers import --json --list " .. list .. " --file " .. shq(path), env)
    assert.equal(4, code, err)
    local summary = json.decode(out)
    assert.same({ 1200, 0, 1 }, { summary.created, summary.updated, summary.failed })
    assert.matches("row 42: broken:", err, 1, true)
    assert.equal(3, m:stats().requests - before)   -- 1,201 rows in batches of 500

    -- Again, with --update: what is there is updated, in the same three requests.
    code, out = run("creamailer subscribers import --json --update --list " .. list .. " --file " .. shq(path), env)
    assert.equal(4, code)
    assert.equal(1200, json.decode(out).updated)

    path = write_file(TMP .. "/sync.csv", "email,name\ns1@example.com,Changed\ns2@example.com,S 2\nnew@example.com,N\n")
    code, out = run("creamailer subscribers sync --list " .. list .. " --file " .. shq(path), env)
    assert.equal(0, code)
    assert.matches("sync: 1 added, 1 updated, 1 unchanged, 0 failed", out, 1, true)

    code, out = run("creamailer subscribers list --json --limit 2 --list " .. list, env)
    assert.equal(0, code)
    local _, n = out:gsub("\n", "")
    assert.equal(2, n)
    code, out = run("creamailer subscribers get s9999@example.com --json --list " .. list, env)
    assert.equal(0, code)
    assert.equal("gold", json.decode(out).custom_fields.plan)
  end)

  it("works with version 2 from CREAMAILER_VERSION", function()
    local v2 = {}
    for k, v in pairs(env) do v2[k] = v end
    v2.CREAMAILER_VERSION = "2"
    local code, out = run([[creamailer lists create --json --data '{"name":"V2","language":"fi"}']], v2)
    assert.equal(0, code)
    assert.equal("V2", require("audience.json").decode(out).name)
    assert.equal("v2", m:stats().log[#m:stats().log].api)
  end)
end)

describe("audience command: SubscribeFlow", function()
  local m, env

  setup(function()
    m = mockserver.start("subscribeflow")
    env = { SUBSCRIBEFLOW_API_KEY = "sf_live_test", SUBSCRIBEFLOW_BASE_URL = m.url }
  end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    local sf = audience.subscribeflow{ api_key = "sf_live_test", base_url = m.url }
    assert(sf.tags:create{ name = "News" })
    sf:close()
  end)

  it("imports with deterministic Idempotency-Keys: a re-sent row replays instead of duplicating", function()
    local path = write_file(TMP .. "/sf.csv", "email,tags,plan\na@example.com,news,gold\nb@example.com,,\n"
      .. "c@example.com,news,silver\n")
    local code, out, err = run("subscribeflow subscribers import --json --file " .. shq(path), env)
    assert.equal(0, code, err)
    assert.equal(3, require("audience.json").decode(out).created)

    -- As if the run had died while row 3 was in flight: the checkpoint says row 2.
    write_file(path .. ".checkpoint", '{"counts":{"created":2,"existing":0,"failed":0,"updated":0},'
      .. '"file":"sf.csv","row":2}\n')
    code, out = run("subscribeflow subscribers import --json --resume --file " .. shq(path), env)
    assert.equal(0, code)
    local summary = require("audience.json").decode(out)
    assert.same({ 2, 1, 3 }, { summary.created, summary.existing, summary.rows })
    assert.equal(1, m:admin("GET", "/__admin/sf_stats").idempotent_replays)
    local subs = m:data("subscribers")
    assert.equal(3, #subs)
    for _, s in ipairs(subs) do
      if s.email == "a@example.com" then
        assert.equal("gold", s.metadata.plan)
        assert.same({ "news" }, s.tags)
      end
    end

    -- A second full run finds everyone there.
    code, out = run("subscribeflow subscribers import --json --file " .. shq(path), env)
    assert.equal(0, code)
    assert.equal(3, require("audience.json").decode(out).existing)
  end)
end)
