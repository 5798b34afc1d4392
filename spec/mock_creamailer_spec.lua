-- Tests of the Creamailer mock server (spec/mock/creamailer.lua): v1 (/v1/api, SHA-1
-- signatures) and v2 (/v2/api, HMAC-SHA256 signatures), driven over plain luasocket with
-- requests signed here (openssl CLI, so that nothing depends on the C core's helpers).
local mockserver = require "support.mockserver"

local null = mockserver.null
local TOKEN, SECRET = "test-token", "test-secret"

-- ---------------------------------------------------------------- signing

local shell_quote = require("support.files").quote

local function openssl_hex(args, data)
  local f = os.tmpname()
  local h = assert(io.open(f, "wb"))
  h:write(data)
  h:close()
  local p = assert(io.popen("openssl dgst " .. args .. " -r " .. shell_quote(f) .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(f)
  return assert(out:match("^(%x+)"), "openssl dgst failed: " .. out)
end

local core_ok, core = pcall(require, "audience.core")
local function sha1_hex(s)
  if core_ok and type(core.sha1_hex) == "function" then return core.sha1_hex(s) end
  return openssl_hex("-sha1", s)
end

local function hmac_sha256_hex(key, s)
  return openssl_hex("-sha256 -hmac " .. shell_quote(key), s)
end

local function sign(v, url, body, ts, secret)
  if v == 1 then return sha1_hex(url .. body .. ts .. secret) end
  return hmac_sha256_hex(secret, url .. body .. ts)
end

describe("creamailer mock", function()
  local m

  setup(function()
    m = mockserver.start("creamailer")
  end)

  teardown(function()
    if m then m:stop() end
  end)

  before_each(function()
    m:reset({})
  end)

  -- Signed request. path is relative to the version root ("/lists.json", "/lists").
  -- opts: body (table -> JSON, or raw string), token, secret, ts, headers,
  --       sign_path / sign_body (sign something other than what is sent), no_sign.
  local function call(v, method, path, opts)
    opts = opts or {}
    local root = (v == 1) and "/v1/api" or "/v2/api"
    local body = opts.body
    if type(body) == "table" then body = mockserver.encode(body) end
    local ts = tostring(opts.ts or os.time())
    local url = m.root .. root .. path
    local signed_url = m.root .. root .. (opts.sign_path or path)
    local headers = {
      ["X-Access-Token"] = opts.token or TOKEN,
      ["X-Request-Timestamp"] = ts,
      ["X-Request-Signature"] = sign(v, signed_url, opts.sign_body or body or "", ts, opts.secret or SECRET),
    }
    if body then headers["Content-Type"] = "application/json; charset=UTF-8" end
    if opts.no_sign then headers["X-Request-Signature"], headers["X-Request-Timestamp"] = nil, nil end
    for k, val in pairs(opts.headers or {}) do headers[k] = val end
    local res, err = mockserver.request(method, url, { body = body, headers = headers })
    assert(res, err)
    return res
  end

  local function v1(method, path, opts) return call(1, method, path, opts) end
  local function v2(method, path, opts) return call(2, method, path, opts) end

  local function new_list(name)
    local r = v1("POST", "/lists.json", { body = { name = name or "Test list", language = "en" } })
    assert.equal(201, r.status)
    return tonumber(r.json.id)
  end

  local function subs_of(list_id)
    local out = {}
    for _, s in ipairs(m:data("subscribers")) do
      if s.list_id == list_id then out[#out + 1] = s end
    end
    return out
  end

  describe("harness", function()
    it("serves v1 at m.url and reports a working HMAC implementation", function()
      assert.equal(m.root .. "/v1/api", m.url)
      local info = m:admin("GET", "/__admin/creamailer")
      assert.is_string(info.hmac_impl)
      assert.not_matches("^unavailable", info.hmac_impl)
      assert.equal(300, info.skew)
      assert.same({ "default" }, info.accounts)
      local st = m:stats()
      assert.equal(0, st.signature_failures)
    end)
  end)

  describe("signatures", function()
    it("accepts correctly signed v1 and v2 requests", function()
      local r = v1("GET", "/connection_test.json")
      assert.equal(200, r.status)
      assert.same({ success = true, message = "Connection OK" }, r.json)
      r = v2("GET", "/connection-test")
      assert.equal(200, r.status)
      assert.same({ message = "Connection successful." }, r.json)
      local body = { name = "Signed", language = "fi", auto_suppress = true }
      assert.equal(201, v1("POST", "/lists.json", { body = body }).status)
      assert.equal(201, v2("POST", "/lists", { body = body }).status)
      local st = m:stats()
      assert.equal(0, st.signature_failures)
      for _, e in ipairs(st.log) do
        assert.is_true(e.signature_valid)
        assert.equal("ok", e.auth)
      end
      assert.equal("v1", st.log[1].api)
      assert.equal("v2", st.log[2].api)
    end)

    it("refuses one changed byte of body, query or secret, for v1 and v2", function()
      local list = new_list()
      local body = '{"email":"a@example.com","name":"A"}'
      for _, v in ipairs({ 1, 2 }) do
        local sub_path = (v == 1) and ("/subscribers/" .. list .. ".json") or ("/lists/" .. list .. "/subscribers")
        local get_path = (v == 1) and ("/lists/subscribers/" .. list .. ".json?status=all&page=%d")
          or ("/lists/" .. list .. "/subscribers?status=all&page=%d")
        local bad_body = body:gsub('"A"', '"B"')
        local unauth = (v == 1) and { success = false, message = "Invalid signature" }
          or { message = "Unauthenticated." }
        -- body
        local r = call(v, "POST", sub_path, { body = bad_body, sign_body = body })
        assert.equal(401, r.status)
        assert.same(unauth, r.json)
        -- query
        r = call(v, "GET", get_path:format(1), { sign_path = get_path:format(2) })
        assert.equal(401, r.status)
        assert.same(unauth, r.json)
        -- secret
        r = call(v, "POST", sub_path, { body = body, secret = SECRET .. "x" })
        assert.equal(401, r.status)
        -- the same requests, correctly signed, pass
        assert.equal(200, call(v, "GET", get_path:format(v == 1 and 0 or 1)).status)
      end
      assert.equal(201, v1("POST", "/subscribers/" .. list .. ".json", { body = body }).status)
      assert.equal(1, #subs_of(list))
      local st = m:stats()
      assert.equal(6, st.signature_failures)
      local valid = 0
      for _, e in ipairs(st.log) do if e.signature_valid then valid = valid + 1 end end
      assert.equal(#st.log - 6, valid)
    end)

    it("refuses stale, future, missing and unknown credentials", function()
      local r = v1("GET", "/lists.json", { ts = os.time() - 301 })
      assert.equal(401, r.status)
      assert.same({ success = false, message = "Request timestamp expired" }, r.json)
      r = v1("GET", "/lists.json", { ts = os.time() + 301 })
      assert.equal(401, r.status)
      r = v2("GET", "/lists", { ts = os.time() - 1000 })
      assert.equal(401, r.status)
      assert.same({ message = "Unauthenticated." }, r.json)
      assert.equal(200, v1("GET", "/lists.json", { ts = os.time() - 250 }).status)

      r = v1("GET", "/lists.json", { token = "nope" })
      assert.equal(401, r.status)
      assert.same({ success = false, message = "Invalid access token" }, r.json)
      r = v1("GET", "/lists.json", { no_sign = true })
      assert.equal(401, r.status)
      assert.same({ success = false, message = "Invalid signature" }, r.json)
      r = mockserver.request("GET", m.root .. "/v2/api/lists")
      assert.equal(401, r.status)
      assert.same({ message = "Unauthenticated." }, r.json)
      -- signature over a timestamp other than the header's
      r = v2("GET", "/lists", { headers = { ["X-Request-Timestamp"] = tostring(os.time() - 1) } })
      assert.equal(401, r.status)

      local st = m:stats()
      local auths = {}
      for _, e in ipairs(st.log) do auths[#auths + 1] = e.auth end
      assert.same({ "expired", "expired", "expired", "ok", "invalid_token", "invalid_signature",
        "invalid_token", "invalid_signature" }, auths)
      assert.equal(2, st.signature_failures)
      -- credentials are redacted in the request details
      local reqs = m:requests()
      assert.equal("<redacted>", reqs[1].headers["x-access-token"])
    end)

    it("honours a configured skew and several accounts", function()
      m:reset({ skew = 10, accounts = {
        a = { token = "tok-a", secret = "sec-a" }, b = { token = "tok-b", secret = "sec-b" } } })
      assert.equal(401, v1("GET", "/lists.json", { ts = os.time() - 20, token = "tok-a", secret = "sec-a" }).status)
      assert.equal(200, v1("GET", "/lists.json", { token = "tok-a", secret = "sec-a" }).status)
      assert.equal(200, v2("GET", "/lists", { token = "tok-b", secret = "sec-b" }).status)
      assert.equal(401, v2("GET", "/lists", { token = "tok-b", secret = "sec-a" }).status)
      assert.equal(401, v2("GET", "/lists").status)
      local st = m:stats()
      assert.equal(2, st.by_key.a)
      assert.equal(2, st.by_key.b)
    end)
  end)

  describe("quota", function()
    it("allows 5 per 60 s for each version: then v1 400 and v2 429 with Retry-After; auth failures are free", function()
      m:reset({ accounts = { a = { token = TOKEN, secret = SECRET, limit = 5, per = 60 } } })
      for _ = 1, 3 do assert.equal(401, v1("GET", "/lists.json", { secret = "wrong" }).status) end
      for _ = 1, 5 do
        local r = v1("GET", "/lists.json")
        assert.equal(200, r.status)
        assert.is_nil(r.headers["x-ratelimit-limit"])
        assert.is_nil(r.headers["x-ratelimit-remaining"])
      end
      -- v2's quota is the key's own: v1's use has not touched it.
      for _ = 1, 5 do assert.equal(200, v2("GET", "/lists").status) end
      local r = v1("GET", "/lists.json")
      assert.equal(400, r.status)
      assert.same({ success = false, message = "Rate limit exceeded" }, r.json)
      local ra = tonumber(r.headers["retry-after"])
      assert.is_truthy(r.headers["retry-after"]:match("^%d+$"))
      assert.is_true(ra >= 1 and ra <= 60)
      assert.is_nil(r.headers["x-ratelimit-limit"])

      r = v2("GET", "/lists")
      assert.equal(429, r.status)
      assert.same({ message = "Too Many Attempts." }, r.json)
      assert.is_truthy(r.headers["retry-after"]:match("^%d+$"))
      -- a bad signature is still 401, not a quota answer
      assert.equal(401, v2("GET", "/lists", { secret = "wrong" }).status)

      local st = m:stats()
      assert.equal(2, st.rate_limited)
      assert.equal(4, st.signature_failures)
    end)
  end)

  describe("imports", function()
    it("rejects more than 500 entries and imports nothing (v1 400, v2 422)", function()
      local list = new_list()
      local entries = {}
      for i = 1, 501 do entries[i] = { email = ("big%d@example.com"):format(i) } end
      local r = v1("POST", "/subscribers/import/" .. list .. ".json", { body = { Subscribers = entries } })
      assert.equal(400, r.status)
      assert.same({ success = false, message = "Too many subscribers: at most 500 per import" }, r.json)
      r = v2("POST", "/lists/" .. list .. "/subscribers/import", { body = { subscribers = entries } })
      assert.equal(422, r.status)
      assert.equal("The given data was invalid.", r.json.message)
      assert.is_string(r.json.errors.subscribers[1])
      assert.equal(0, #subs_of(list))
    end)

    it("accounts for every entry of a mixed import of 500 (v1)", function()
      local list = new_list()
      m:seed("subscribers", { count = 20, defaults = { list_id = list, name = "Old" } })
      local entries = {}
      for i = 1, 10 do   -- existing, upsert
        entries[#entries + 1] = { email = ("sub%d@example.com"):format(i), name = "New", update_existing = true }
      end
      for i = 11, 20 do  -- existing, no upsert (one explicit false)
        entries[#entries + 1] = { email = ("sub%d@example.com"):format(i), name = "New",
          update_existing = (i == 11) and false or nil }
      end
      for i = 1, 30 do entries[#entries + 1] = { email = ("not-an-email-%d"):format(i), name = "X" } end
      local n_new = 500 - #entries
      for i = 1, n_new do
        entries[#entries + 1] = { email = ("new%d@example.com"):format(i), name = "N" .. i,
          custom_fields = { plan = "gold" }, update_existing = (i % 2 == 0) }
      end
      assert.equal(500, #entries)
      local r = v1("POST", "/subscribers/import/" .. list .. ".json", { body = { Subscribers = entries } })
      assert.equal(200, r.status)
      assert.is_true(r.json.success)
      assert.equal(n_new, r.json.added)
      assert.equal(10, r.json.updated)
      assert.equal(40, #r.json.failed)
      assert.equal(500, r.json.added + r.json.updated + #r.json.failed)
      local reasons = {}
      for _, f in ipairs(r.json.failed) do reasons[f.reason] = (reasons[f.reason] or 0) + 1 end
      assert.same({ ["Subscriber already exists"] = 10, ["Invalid email address"] = 30 }, reasons)
      assert.same({ email = "sub11@example.com", reason = "Subscriber already exists" }, r.json.failed[1])

      local subs = subs_of(list)
      assert.equal(20 + n_new, #subs)
      local by_email = {}
      for _, s in ipairs(subs) do by_email[s.email] = s end
      assert.equal("New", by_email["sub1@example.com"].name)
      assert.equal("Old", by_email["sub11@example.com"].name)
      assert.equal("gold", by_email["new1@example.com"].custom_fields.plan)

      -- two more imports: exactly three import calls are counted
      for _ = 1, 2 do
        r = v1("POST", "/subscribers/import/" .. list .. ".json",
          { body = { Subscribers = { { email = "sub1@example.com", update_existing = true } } } })
        assert.equal(1, r.json.updated)
      end
      assert.equal(3, m:stats().by_route["POST /v1/api/subscribers/import/{id}.json"])
    end)

    it("imports with update_existing on each entry, as the SDK sends it (v2)", function()
      local list = new_list()
      m:seed("subscribers", { count = 2, defaults = { list_id = list } })
      local body = { subscribers = {
        { email = "sub1@example.com", name = "Up", update_existing = true }, { email = "fresh@example.com" },
        { email = "bad@" } } }
      local r = v2("POST", "/lists/" .. list .. "/subscribers/import", { body = body })
      assert.equal(200, r.status)
      assert.same({ data = { added = 1, updated = 1,
        failed = { { email = "bad@", reason = "Invalid email address" } } } }, r.json)
      -- A flag beside the list is an unknown key: ignored, so nothing is updated.
      body = { update_existing = true, subscribers = { { email = "sub2@example.com" } } }
      r = v2("POST", "/lists/" .. list .. "/subscribers/import", { body = body })
      assert.same({ { email = "sub2@example.com", reason = "Subscriber already exists" } }, r.json.data.failed)
      assert.equal(404, v2("POST", "/lists/999/subscribers/import", { body = body }).status)
      assert.equal(404, v1("POST", "/subscribers/import/999.json", { body = { Subscribers = {} } }).status)
    end)
  end)

  describe("pagination", function()
    it("v1 pages are 0-based arrays, v2 pages 1-based with meta", function()
      local list = new_list()
      m:seed("subscribers", { count = 250, defaults = { list_id = list } })
      local seen, n = {}, 0
      for page = 0, 3 do
        local r = v1("GET", ("/lists/subscribers/%d.json?pagesize=100&page=%d"):format(list, page))
        assert.equal(200, r.status)
        assert.equal(({ 100, 100, 50, 0 })[page + 1], #r.json)
        for _, s in ipairs(r.json) do
          n = n + 1
          assert.equal(("sub%d@example.com"):format(n), s.email)   -- id order
          assert.is_nil(seen[s.email]); seen[s.email] = true
        end
      end
      assert.equal(250, n)
      assert.equal(100, #v1("GET", ("/lists/subscribers/%d.json"):format(list)).json)   -- defaults

      n = 0
      for page = 1, 3 do
        local r = v2("GET", ("/lists/%d/subscribers?pagesize=100&page=%d"):format(list, page))
        assert.equal(200, r.status)
        assert.same({ current_page = page, last_page = 3, per_page = 100, total = 250 }, r.json.meta)
        n = n + #r.json.data
      end
      assert.equal(250, n)
      local r = v2("GET", ("/lists/%d/subscribers"):format(list))
      assert.same({ current_page = 1, last_page = 3, per_page = 100, total = 250 }, r.json.meta)
      r = v2("GET", ("/lists/%d/subscribers?pagesize=1000&page=4"):format(list))
      assert.same({ current_page = 4, last_page = 1, per_page = 1000, total = 250 }, r.json.meta)
      assert.same({}, r.json.data)
    end)

    it("validates page and pagesize", function()
      local list = new_list()
      -- v1 serves the official v1 SDK's default of 50,000 rows; v2 documents 1,000.
      local r = v1("GET", ("/lists/subscribers/%d.json?pagesize=50001"):format(list))
      assert.equal(400, r.status)
      assert.equal("Validation failed", r.json.message)
      assert.is_false(r.json.success)
      assert.is_string(r.json.errors.pagesize[1])
      assert.equal(200, v1("GET", ("/lists/subscribers/%d.json?pagesize=50000"):format(list)).status)
      assert.equal(400, v1("GET", ("/lists/subscribers/%d.json?page=-1"):format(list)).status)
      r = v2("GET", ("/lists/%d/subscribers?pagesize=1001"):format(list))
      assert.equal(422, r.status)
      assert.is_string(r.json.errors.pagesize[1])
      r = v2("GET", ("/lists/%d/subscribers?page=0"):format(list))
      assert.equal(422, r.status)
      assert.is_string(r.json.errors.page[1])
      assert.equal(200, v1("GET", ("/suppressions.json?pagesize=5000")).status)
      assert.equal(400, v1("GET", ("/suppressions.json?pagesize=50001")).status)
      assert.equal(422, v2("GET", "/suppressions?pagesize=abc").status)
    end)

    it("filters by status and date", function()
      local list = new_list()
      m:seed("subscribers", { list_id = list, items = {
        { created = "2024-01-01T10:00:00Z" },
        { created = "2024-01-01T10:00:00Z", updated = "2024-03-05T08:00:00Z" },
        { created = "2024-03-10T00:00:00Z", status = "unsubscribed" },
        { created = "2024-02-01T00:00:00Z", status = "bounced" },
      }, defaults = { list_id = list } })
      local function emails(res)
        local out = {}
        for _, s in ipairs(res) do out[#out + 1] = s.email end
        return out
      end
      local base = ("/lists/subscribers/%d.json"):format(list)
      assert.same({ "sub1@example.com", "sub2@example.com" }, emails(v1("GET", base).json))
      assert.same({ "sub1@example.com", "sub2@example.com", "sub3@example.com", "sub4@example.com" },
        emails(v1("GET", base .. "?status=all").json))
      assert.same({ "sub4@example.com" }, emails(v1("GET", base .. "?status=bounced").json))
      assert.same({ "sub2@example.com", "sub3@example.com" },
        emails(v1("GET", base .. "?status=all&date=2024-03-01").json))
      assert.same({ "sub3@example.com" }, emails(v2("GET",
        ("/lists/%d/subscribers?status=unsubscribed&date=2024-03-10"):format(list)).json.data))
      assert.equal(400, v1("GET", base .. "?status=weird").status)
      assert.equal(400, v1("GET", base .. "?date=2024-13-01").status)
      assert.equal(422, v2("GET", ("/lists/%d/subscribers?date=yesterday"):format(list)).status)
    end)
  end)

  describe("v1 routes", function()
    it("lists: create, index, show, update, delete", function()
      local r = v1("POST", "/lists.json", { body = { name = "My list", language = "fi", auto_suppress = true } })
      assert.equal(201, r.status)
      assert.same({ success = true, message = "List added", id = 1 }, r.json)
      r = v1("POST", "/lists.json", { body = { name = "x", language = "finnish", auto_suppress = "yes" } })
      assert.equal(400, r.status)
      assert.equal("Validation failed", r.json.message)
      assert.is_string(r.json.errors.name[1])
      assert.is_string(r.json.errors.language[1])
      assert.is_string(r.json.errors.auto_suppress[1])
      r = v1("POST", "/lists.json", { body = { name = string.rep("n", 51), language = "en" } })
      assert.is_string(r.json.errors.name[1])
      assert.equal(201, v1("POST", "/lists.json", { body = { name = "Second", language = "en" } }).status)

      m:seed("subscribers", { count = 3, defaults = { list_id = 1 } })
      r = v1("GET", "/lists.json")
      assert.equal(200, r.status)
      assert.same({
        { id = 1, name = "My list", language = "fi", auto_suppress = true, subscribers = 3 },
        { id = 2, name = "Second", language = "en", auto_suppress = false, subscribers = 0 },
      }, r.json)
      r = v1("GET", "/lists/2.json")
      assert.same({ id = 2, name = "Second", language = "en", auto_suppress = false, subscribers = 0 }, r.json)
      r = v1("PUT", "/lists/2.json", { body = { name = "Renamed" } })
      assert.same({ success = true, message = "List updated" }, r.json)
      assert.equal("Renamed", v1("GET", "/lists/2.json").json.name)
      assert.equal("en", v1("GET", "/lists/2.json").json.language)
      assert.equal(400, v1("PUT", "/lists/2.json", { body = { language = "EN!" } }).status)
      r = v1("DELETE", "/lists/1.json")
      assert.same({ success = true, message = "List deleted" }, r.json)
      r = v1("GET", "/lists/1.json")
      assert.equal(404, r.status)
      assert.same({ success = false, message = "Not found" }, r.json)
      assert.equal(404, v1("PUT", "/lists/1.json", { body = { name = "Gone" } }).status)
      assert.equal(404, v1("DELETE", "/lists/1.json").status)
      assert.equal(0, #subs_of(1))
      assert.equal(1, #v1("GET", "/lists.json").json)
    end)

    it("subscribers: add, show, update, delete", function()
      local list = new_list()
      local path = "/subscribers/" .. list .. ".json"
      local r = v1("POST", path, { body = { email = "ann@example.com", name = "Ann", city = "Oulu",
        zip_code = 90100, custom_fields = { plan = "gold" } } })
      assert.equal(201, r.status)
      assert.same({ success = true, message = "Subscriber added" }, r.json)
      r = v1("POST", path, { body = { email = "ANN@example.com" } })
      assert.equal(400, r.status)
      assert.is_string(r.json.errors.email[1])
      r = v1("POST", path, { body = { email = "nope", name = "N" } })
      assert.equal(400, r.status)
      assert.is_string(r.json.errors.email[1])
      assert.equal(404, v1("POST", "/subscribers/999.json", { body = { email = "x@example.com" } }).status)

      r = v1("GET", path .. "?email=ann%40example.com")
      assert.equal(200, r.status)
      local s = r.json
      assert.equal("ann@example.com", s.email)
      assert.equal("Ann", s.name)
      assert.equal("Oulu", s.city)
      assert.equal("90100", s.zip_code)
      assert.equal(null, s.company)
      assert.same({ plan = "gold" }, s.custom_fields)
      assert.equal("active", s.status)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d", s.created)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", s.updated)
      for _, f in ipairs({ "address", "country", "phone", "customer_number" }) do assert.equal(null, s[f]) end
      assert.equal(404, v1("GET", path .. "?email=nobody%40example.com").status)
      assert.equal(400, v1("GET", path).status)

      assert.equal(201, v1("POST", path, { body = { email = "bob@example.com" } }).status)
      r = v1("PUT", path, { body = { email = "ann@example.com", new_email = "anna@example.com", name = "Anna" } })
      assert.same({ success = true, message = "Subscriber updated" }, r.json)
      assert.equal("Anna", v1("GET", path .. "?email=anna@example.com").json.name)
      assert.equal(404, v1("GET", path .. "?email=ann@example.com").status)
      assert.equal(404, v1("PUT", path, { body = { email = "ghost@example.com", name = "G" } }).status)
      r = v1("PUT", path, { body = { email = "anna@example.com", new_email = "bob@example.com" } })
      assert.equal(400, r.status)
      assert.is_string(r.json.errors.new_email[1])

      r = v1("DELETE", path .. "?email=bob%40example.com")
      assert.same({ success = true, message = "Subscriber deleted" }, r.json)
      assert.equal("deleted", v1("GET", path .. "?email=bob@example.com").json.status)
      assert.equal(404, v1("DELETE", path .. "?email=ghost@example.com").status)
      local stored = subs_of(list)
      assert.equal(2, #stored)
      assert.equal("deleted", stored[2].status)
      assert.equal(list, stored[2].list_id)
      -- deleted subscribers are listed only with status=deleted/all
      assert.equal(1, #v1("GET", "/lists/subscribers/" .. list .. ".json").json)
      assert.equal(1, #v1("GET", "/lists/subscribers/" .. list .. ".json?status=deleted").json)
      assert.equal(404, v1("GET", "/lists/subscribers/999.json").status)
    end)

    it("suppressions: add, list, remove", function()
      local r = v1("POST", "/suppressions.json", { body = { email = "s@example.com" } })
      assert.equal(201, r.status)
      assert.same({ success = true, message = "Address suppressed" }, r.json)
      local function supp(body) return v1("POST", "/suppressions.json", { body = body }).status end
      assert.equal(201, supp({ email = "b@example.com", reason = "bounced" }))
      assert.equal(400, supp({ email = "c@example.com", reason = "bored" }))
      assert.equal(400, v1("POST", "/suppressions.json", { body = { email = "s@example.com" } }).status)
      m:seed("suppressions", 3)
      r = v1("GET", "/suppressions.json?pagesize=2&page=0")
      assert.equal(200, r.status)
      assert.equal(2, #r.json)
      assert.equal("s@example.com", r.json[1].email)
      assert.equal("unsubscribed", r.json[1].reason)
      assert.equal("bounced", r.json[2].reason)
      assert.is_string(r.json[1].created)
      assert.equal(1, #v1("GET", "/suppressions.json?pagesize=2&page=2").json)
      assert.equal(5, #v1("GET", "/suppressions.json").json)
      r = v1("DELETE", "/suppressions.json?email=s%40example.com")
      assert.equal(200, r.status)
      assert.is_true(r.json.success)
      assert.equal(404, v1("DELETE", "/suppressions.json?email=s%40example.com").status)
      assert.equal(4, #m:data("suppressions"))
    end)

    it("answers 404 for unknown routes and 400 for non-JSON bodies", function()
      assert.equal(404, v1("GET", "/lists").status)            -- no .json
      assert.equal(404, v1("GET", "/lists.xml").status)
      local r = v1("GET", "/nothing.json")
      assert.same({ success = false, message = "Not found" }, r.json)
      r = v1("POST", "/lists.json", { body = "name=x", headers = { ["Content-Type"] = "text/plain" } })
      assert.equal(400, r.status)
      assert.is_false(r.json.success)
      r = v1("POST", "/lists.json", { body = '{"name":', })
      assert.equal(400, r.status)
      r = v2("POST", "/lists", { body = "{}", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert.equal(422, r.status)
      assert.equal(404, v2("GET", "/lists.json").status)
      assert.same({ message = "Not found." }, v2("GET", "/nothing").json)
    end)
  end)

  describe("v2 routes of the official SDK", function()
    it("fields: the list's seeded fields, then custom field names its subscribers carry", function()
      m:seed("lists", { { name = "With fields", fields = { { name = "plan", type = "select" } } } })
      m:seed("subscribers", { { list_id = 1, email = "a@example.com", custom_fields = { city = "Oulu", plan = "x" } } })
      local r = v2("GET", "/lists/1/fields")
      assert.equal(200, r.status)
      assert.same({ data = { { id = 1, name = "plan", type = "select" }, { id = 2, name = "city", type = "text" } } },
        r.json)
      assert.equal(404, v2("GET", "/lists/9/fields").status)
      assert.equal(405, v2("POST", "/lists/1/fields", { body = {} }).status)
    end)

    it("subscribers/activity: messages across all lists, newest first, paginated, with a summary", function()
      m:seed("messages", { { email = "a@example.com", subject = "Old", sent_date = "2026-01-01T00:00:00Z", opens = 1,
        clicks = { { url = "https://x.example", count = 2 } } },
        { email = "A@example.com", subject = "New", sent_date = "2026-02-01T00:00:00Z", bounced = true },
        { email = "b@example.com", subject = "Other" } })
      local r = v2("GET", "/subscribers/activity?email=a%40example.com&pagesize=1&page=1")
      assert.equal(200, r.status)
      local d = r.json.data
      assert.equal("a@example.com", d.email)
      assert.same({ total_messages = 2, total_opens = 1, total_clicks = 2, total_bounces = 1,
        total_unsubscribes = 0, first_message_date = "2026-01-01T00:00:00+00:00" }, d.summary)
      assert.same({ 1, 2, 1, 2 }, { d.messages.current_page, d.messages.last_page, d.messages.per_page,
        d.messages.total })
      assert.equal("New", d.messages.data[1].subject)
      r = v2("GET", "/subscribers/activity?email=a%40example.com&pagesize=1&page=2")
      assert.equal("Old", r.json.data.messages.data[1].subject)
      assert.same({ { url = "https://x.example", count = 2 } }, r.json.data.messages.data[1].clicks)
      assert.equal(422, v2("GET", "/subscribers/activity").status)
      assert.equal(422, v2("GET", "/subscribers/activity?email=a%40example.com&pagesize=1001").status)
      assert.equal(404, v2("GET", "/subscribers/activity?email=nobody%40example.com").status)
    end)

    it("connection-test answers the SDK's message; a read key may only GET (403)", function()
      m:reset({ accounts = { ro = { token = TOKEN, secret = SECRET, access = "read" } } })
      assert.same({ message = "Connection successful." }, v2("GET", "/connection-test").json)
      assert.equal(200, v2("GET", "/lists").status)
      local r = v2("POST", "/lists", { body = { name = "Nope", language = "en" } })
      assert.equal(403, r.status)
      assert.same({ message = "This action is unauthorized." }, r.json)
      assert.equal(403, v1("POST", "/lists.json", { body = { name = "Nope", language = "en" } }).status)
      assert.same({}, m:data("lists"))
    end)

    it("delete sends autoresponders only when asked with 1", function()
      local list = new_list()
      m:seed("subscribers", { count = 3, defaults = { list_id = list } })
      local base = "/lists/" .. list .. "/subscribers?email="
      assert.equal(204, v2("DELETE", base .. "sub1%40example.com").status)
      assert.equal(204, v2("DELETE", base .. "sub2%40example.com&send_autoresponders=1").status)
      assert.equal(422, v2("DELETE", base .. "sub3%40example.com&send_autoresponders=yes").status)
      assert.equal(1, m:stats().autoresponders_sent)
    end)
  end)

  describe("v2 routes", function()
    it("lists: create, index, show, update, delete", function()
      local r = v2("POST", "/lists", { body = { name = "V2 list", language = "sv" } })
      assert.equal(201, r.status)
      assert.same({ data = { id = 1, name = "V2 list", language = "sv", auto_suppress = false, subscribers = 0 } },
        r.json)
      r = v2("POST", "/lists", { body = { language = "sv" } })
      assert.equal(422, r.status)
      assert.equal("The given data was invalid.", r.json.message)
      assert.is_string(r.json.errors.name[1])
      m:seed("lists", 4)
      r = v2("GET", "/lists?pagesize=2&page=3")
      assert.equal(200, r.status)
      assert.equal(1, #r.json.data)
      assert.same({ current_page = 3, last_page = 3, per_page = 2, total = 5 }, r.json.meta)
      r = v2("GET", "/lists/1")
      assert.equal("V2 list", r.json.data.name)
      r = v2("PUT", "/lists/1", { body = { auto_suppress = true } })
      assert.equal(200, r.status)
      assert.is_true(r.json.data.auto_suppress)
      assert.equal("V2 list", r.json.data.name)
      r = v2("DELETE", "/lists/1")
      assert.equal(204, r.status)
      assert.equal("", r.body)
      r = v2("GET", "/lists/1")
      assert.equal(404, r.status)
      assert.same({ message = "Not found." }, r.json)
      -- v1 and v2 share the store
      assert.equal(4, #v1("GET", "/lists.json").json)
    end)

    it("subscribers: add, index, show, update, delete", function()
      local list = new_list()
      local base = "/lists/" .. list .. "/subscribers"
      local r = v2("POST", base, { body = { email = "eve@example.com", name = "Eve", phone = "+358 40 1" } })
      assert.equal(201, r.status)
      assert.equal("eve@example.com", r.json.data.email)
      assert.equal("active", r.json.data.status)
      r = v2("POST", base, { body = { email = "eve@example.com" } })
      assert.equal(422, r.status)
      assert.is_string(r.json.errors.email[1])
      assert.equal(422, v2("POST", base, { body = { email = "eve" } }).status)
      assert.equal(404, v2("POST", "/lists/999/subscribers", { body = { email = "a@example.com" } }).status)

      r = v2("GET", base .. "/show?email=eve%40example.com")
      assert.equal(200, r.status)
      assert.equal("Eve", r.json.data.name)
      assert.equal("+358 40 1", r.json.data.phone)
      assert.equal(404, v2("GET", base .. "/show?email=x%40example.com").status)

      r = v2("PUT", base, { body = { email = "eve@example.com", new_email = "eve2@example.com",
        custom_fields = { a = "1" } } })
      assert.equal(200, r.status)
      assert.equal("eve2@example.com", r.json.data.email)
      assert.same({ a = "1" }, r.json.data.custom_fields)
      assert.equal(404, v2("PUT", base, { body = { email = "nobody@example.com" } }).status)

      r = v2("GET", base)
      assert.equal(1, r.json.meta.total)
      assert.equal("eve2@example.com", r.json.data[1].email)

      r = v2("DELETE", base .. "?email=eve2%40example.com")
      assert.equal(204, r.status)
      assert.equal("deleted", v1("GET", "/subscribers/" .. list .. ".json?email=eve2@example.com").json.status)
      assert.equal(404, v2("DELETE", base .. "?email=eve2x%40example.com").status)
      assert.equal(0, v2("GET", base).json.meta.total)
      assert.equal(1, v2("GET", base .. "?status=all").json.meta.total)
      assert.equal(422, v2("DELETE", base).status)
    end)

    it("suppressions: add, list, remove", function()
      local r = v2("POST", "/suppressions", { body = { email = "q@example.com", reason = "spamreport" } })
      assert.equal(201, r.status)
      assert.equal("q@example.com", r.json.data.email)
      assert.equal("spamreport", r.json.data.reason)
      assert.equal(422, v2("POST", "/suppressions", { body = { email = "bad" } }).status)
      m:seed("suppressions", { items = { { email = "z@example.com", reason = "deleted" } } })
      r = v2("GET", "/suppressions?pagesize=1&page=2")
      assert.same({ current_page = 2, last_page = 2, per_page = 1, total = 2 }, r.json.meta)
      assert.same("z@example.com", r.json.data[1].email)
      assert.equal(204, v2("DELETE", "/suppressions?email=q%40example.com").status)
      assert.equal(404, v2("DELETE", "/suppressions?email=q%40example.com").status)
      assert.equal(1, #v1("GET", "/suppressions.json").json)
    end)
  end)
end)
