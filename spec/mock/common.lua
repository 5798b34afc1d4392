-- Shared machinery for the nginx + Lua mock servers (runs inside nginx, LuaJIT).
--
-- A provider mock is a module in spec/mock/ returning a table with:
--   M.prefix                      API root path, e.g. "/api" (the harness's m.url = root .. prefix)
--   M.reset(C, config)            (re)build all state from config; C is this module
--   M.handle(C, req) -> resp      handle one API request (auth, quota, routing)
--   M.seed(C, resource, spec)     -> summary table (spec = {count=, items=, defaults=})
--   M.data(C, resource)           -> array of stored objects (for assertions)
--   M.admin(C, req) -> resp|nil   optional extra /__admin/* routes
--   M.credential_headers          optional header names that carry credentials (redacted in
--                                 /__admin/requests; default {"x-api-key", "authorization"})
--   M.counters                    optional names of extra stats counters, reported (from 0) at
--                                 the top level of /__admin/stats; bump with C.count(name)
-- A handler may also set on req: key_label (stats.by_key), rate_limited = true (counts in
-- stats.rate_limited whatever the status; 429 always counts), log_fields = {...} (merged into
-- this request's stats.log entry and /__admin/requests detail). req.request_uri is the raw
-- request line target (path + "?" + query, as sent). Crypto helpers: C.hex, C.sha1_hex,
-- C.hmac_sha256_hex (resty.openssl / resty.sha256 / libcrypto via FFI / pure Lua, first that
-- passes a self-test; C.hmac_impl() names it).
-- A resp is { status = n, json = table } or { status = n, body = "raw" }, plus optional
-- content_type and headers. This module owns faults, stats, admin routes, JSON, stores,
-- fixed-window quotas and the request/response plumbing.
--
-- Faults (POST /__admin/fault): { match = "/api/contacts" (plain prefix, else Lua pattern;
-- nil = any path), method = "GET" (nil = any), times = 1, skip = 0 (let that many matching
-- requests through first), action = ACTION }. The first queued fault that matches a request
-- is used; it applies before auth/quota and counts in stats. ACTION (fields combine):
--   status = 503, body = "..." | table, headers = {...}   answer that instead of handling
--   delay = s          sleep, then handle normally
--   delay_after = s    handle normally (side effects happen), sleep, then answer
--   reset = true       close the connection without a response (444)
--   malformed = true   200 with '{"items": [1, 2,'
--   truncated = true   raw response: Content-Length larger than the bytes sent, then close
--   html = true        200 text/html page
--   empty = true       200 with an empty body
--   drip = {bytes = n, interval = s}   the normal response, n bytes per interval (raw socket)
--   huge = n           200 with a valid JSON body {"items":[],"hasMore":false,"padding":"x…"} of ~n bytes
--   headers = {...}    alone: extra headers on the normal response
--
-- Admin routes (no auth): GET /__admin/health; POST /__admin/reset [config JSON];
-- POST /__admin/seed {resource, count | items, defaults}; POST /__admin/fault;
-- GET|DELETE /__admin/faults; GET /__admin/stats; GET /__admin/requests (last 50, credential
-- headers redacted); GET /__admin/data/RESOURCE; GET /__admin/config.
local cjson = require "cjson"

local C = {}

local ngx = ngx
local null = cjson.null
C.null = null

-- ---------------------------------------------------------------- JSON

local array_mt = { __name = "json.array" }
local object_mt = { __name = "json.object" }

--- Mark a table to be encoded as a JSON array (needed for empty arrays).
function C.array(t) return setmetatable(t or {}, array_mt) end
--- Mark a table to be encoded as a JSON object.
function C.object(t) return setmetatable(t or {}, object_mt) end

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
local function esc_char(c) return escapes[c] or string.format("\\u%04x", c:byte()) end
local function enc_string(s) return '"' .. (s:gsub('[%c"\\]', esc_char)) .. '"' end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == array_mt then return true end
  if mt == object_mt then return false end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode_into(v, buf)
  local t = type(v)
  if v == nil or v == null then
    buf[#buf + 1] = "null"
  elseif t == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      buf[#buf + 1] = "null"
    elseif v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      buf[#buf + 1] = string.format("%d", v)
    else
      buf[#buf + 1] = string.format("%.14g", v)
    end
  elseif t == "string" then
    buf[#buf + 1] = enc_string(v)
  elseif t == "table" then
    if is_array(v) then
      buf[#buf + 1] = "["
      for i = 1, #v do
        if i > 1 then buf[#buf + 1] = "," end
        encode_into(v[i], buf)
      end
      buf[#buf + 1] = "]"
    else
      buf[#buf + 1] = "{"
      local first = true
      for k, val in pairs(v) do
        if not first then buf[#buf + 1] = "," end
        first = false
        buf[#buf + 1] = enc_string(tostring(k))
        buf[#buf + 1] = ":"
        encode_into(val, buf)
      end
      buf[#buf + 1] = "}"
    end
  else
    buf[#buf + 1] = "null"
  end
end

function C.encode(v)
  local buf = {}
  encode_into(v, buf)
  return table.concat(buf)
end

--- Decode JSON text; returns value or nil, err. JSON null is C.null.
function C.decode(s)
  local ok, v = pcall(cjson.decode, s)
  if not ok then return nil, tostring(v) end
  return v
end

-- ---------------------------------------------------------------- time

function C.now()
  ngx.update_time()
  return ngx.now()
end

function C.iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S+00:00", math.floor(t))
end

local function days_from_civil(y, m, d)
  y = (m <= 2) and (y - 1) or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Parse an ISO 8601 date-time ("2023-11-22T10:00:00+01:00", "...Z", date only) to Unix time.
function C.parse_iso(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, se, frac, tz = 0, 0, 0, nil, ""
  if rest ~= "" then
    local hh, mm, ss, tail = rest:match("^[T ](%d%d):(%d%d):?(%d*)(.*)$")
    if not hh then return nil end
    h, mi, se = tonumber(hh), tonumber(mm), tonumber(ss) or 0
    frac, tz = tail:match("^(%.?%d*)(.*)$")
  end
  local t = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 + h * 3600 + mi * 60 + se
  if frac and #frac > 1 then t = t + (tonumber("0" .. frac) or 0) end
  if tz ~= "" and tz ~= "Z" and tz ~= "z" then
    local sign, th, tm = tz:match("^([%+%-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    local off = tonumber(th) * 3600 + tonumber(tm) * 60
    t = (sign == "+") and (t - off) or (t + off)
  end
  return t
end

-- ---------------------------------------------------------------- crypto

--- Lowercase hex of a binary string.
function C.hex(bin)
  return (bin:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- Lowercase hex SHA-1 (ngx.sha1_bin).
function C.sha1_hex(s)
  return C.hex(ngx.sha1_bin(s))
end

-- Pure Lua (LuaJIT bit ops) SHA-256, the last-resort implementation.
local SHA256_K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256_lua(msg)
  local bit = require "bit"
  local band, bxor, bnot, rshift, ror, tobit = bit.band, bit.bxor, bit.bnot, bit.rshift, bit.ror, bit.tobit
  local K = SHA256_K
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local ml = #msg
  local bits = ml * 8
  local hi, lo = math.floor(bits / 4294967296), bits % 4294967296
  local function be32(x)
    return string.char(band(rshift(x, 24), 255), band(rshift(x, 16), 255), band(rshift(x, 8), 255), band(x, 255))
  end
  msg = msg .. "\128" .. string.rep("\0", (55 - ml) % 64) .. be32(tobit(hi)) .. be32(tobit(lo))
  local w = {}
  for pos = 1, #msg, 64 do
    for i = 0, 15 do
      local a, b, c, d = msg:byte(pos + i * 4, pos + i * 4 + 3)
      w[i] = tobit(a * 16777216 + b * 65536 + c * 256 + d)
    end
    for i = 16, 63 do
      local x, y = w[i - 15], w[i - 2]
      local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
      local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
      w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 0, 63 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[i + 1] + w[i])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      local t2 = tobit(S0 + maj)
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
    end
    h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
    h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
  end
  return be32(h0) .. be32(h1) .. be32(h2) .. be32(h3) .. be32(h4) .. be32(h5) .. be32(h6) .. be32(h7)
end
C._sha256_lua = sha256_lua

-- HMAC (RFC 2104) over a binary hash function with a 64-byte block.
local function hmac_over(hash, key, msg)
  local bit = require "bit"
  if #key > 64 then key = hash(key) end
  key = key .. string.rep("\0", 64 - #key)
  local ipad = key:gsub(".", function(ch) return string.char(bit.bxor(ch:byte(), 0x36)) end)
  local opad = key:gsub(".", function(ch) return string.char(bit.bxor(ch:byte(), 0x5c)) end)
  return hash(opad .. hash(ipad .. msg))
end

local HMAC_CANDIDATES = {
  { "resty.openssl.hmac", function()
    local hmac = require "resty.openssl.hmac"
    return function(key, msg)
      local h = assert(hmac.new(key, "sha256"))
      return assert(h:final(msg))
    end
  end },
  { "resty.sha256", function()
    local sha256 = require "resty.sha256"
    local function hash(s)
      local h = sha256:new()
      h:update(s)
      return h:final()
    end
    return function(key, msg) return hmac_over(hash, key, msg) end
  end },
  { "libcrypto (LuaJIT FFI)", function()
    local ffi = require "ffi"
    pcall(ffi.cdef, [[
      typedef struct evp_md_st EVP_MD;
      const EVP_MD *EVP_sha256(void);
      unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                          const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
    ]])
    local lib = ffi.C
    if not pcall(function() return lib.HMAC end) then
      local ok, l = pcall(ffi.load, "crypto")
      if not ok then l = ffi.load("libcrypto.so.3") end
      lib = l
    end
    local md = ffi.new("unsigned char[64]")
    local len = ffi.new("unsigned int[1]")
    return function(key, msg)
      local r = lib.HMAC(lib.EVP_sha256(), key, #key, msg, #msg, md, len)
      if r == nil then error("HMAC() failed", 0) end
      return ffi.string(md, len[0])
    end
  end },
  { "pure Lua", function()
    return function(key, msg) return hmac_over(sha256_lua, key, msg) end
  end },
}

-- RFC 4231 test case 2
local HMAC_CHECK = { "Jefe", "what do ya want for nothing?",
  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" }

local hmac_fn, hmac_name
local function pick_hmac()
  if hmac_fn then return hmac_fn end
  local tried = {}
  for _, cand in ipairs(HMAC_CANDIDATES) do
    local ok, fn = pcall(cand[2])
    if ok then
      local ok2, out = pcall(fn, HMAC_CHECK[1], HMAC_CHECK[2])
      if ok2 and type(out) == "string" and C.hex(out) == HMAC_CHECK[3] then
        hmac_fn, hmac_name = fn, cand[1]
        return fn
      end
      tried[#tried + 1] = cand[1] .. ": " .. tostring(ok2 and "self-test mismatch" or out)
    else
      tried[#tried + 1] = cand[1] .. ": " .. tostring(fn)
    end
  end
  error("no working HMAC-SHA256 implementation (" .. table.concat(tried, "; ") .. ")", 0)
end

--- Lowercase hex HMAC-SHA256(key, msg). Raises if no implementation works (never skips).
function C.hmac_sha256_hex(key, msg)
  return C.hex(pick_hmac()(key, msg))
end

--- Name of the HMAC-SHA256 implementation in use (picks one if needed).
function C.hmac_impl()
  pick_hmac()
  return hmac_name
end

-- ---------------------------------------------------------------- stores

-- An in-memory collection kept sorted by integer id (ids grow from 1).
local Store = {}
Store.__index = Store

function C.new_store()
  return setmetatable({ list = {}, by_id = {}, next_id = 1 }, Store)
end

-- first index whose id >= x
local function lower_bound(list, x)
  local lo, hi = 1, #list + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if list[mid].id < x then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- first index whose id > x
local function upper_bound(list, x)
  local lo, hi = 1, #list + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if list[mid].id <= x then lo = mid + 1 else hi = mid end
  end
  return lo
end

--- Insert a record; assigns rec.id (or honours an explicit unused integer id).
function Store:insert(rec)
  local id = rec.id
  if id == nil then
    id = self.next_id
    rec.id = id
  elseif type(id) ~= "number" or id ~= math.floor(id) or id < 1 then
    error("id must be a positive integer", 0)
  elseif self.by_id[id] then
    error("id " .. id .. " already exists", 0)
  end
  if id >= self.next_id then self.next_id = id + 1 end
  local list = self.list
  if #list == 0 or list[#list].id < id then
    list[#list + 1] = rec
  else
    table.insert(list, lower_bound(list, id), rec)
  end
  self.by_id[id] = rec
  return rec
end

function Store:get(id)
  id = tonumber(id)
  return id and self.by_id[id] or nil
end

function Store:remove(id)
  id = tonumber(id)
  local rec = id and self.by_id[id]
  if not rec then return nil end
  self.by_id[id] = nil
  local i = lower_bound(self.list, id)
  table.remove(self.list, i)
  return rec
end

function Store:count() return #self.list end
function Store:all() return self.list end

--- Cursor page: order "asc"/"desc", after = id cursor or nil, pred = filter or nil.
-- Returns records, has_more.
function Store:cursor(order, after, limit, pred)
  local list, out, has_more = self.list, {}, false
  if order == "asc" then
    local i = after and upper_bound(list, after) or 1
    while i <= #list do
      local r = list[i]
      if not pred or pred(r) then
        if #out >= limit then has_more = true; break end
        out[#out + 1] = r
      end
      i = i + 1
    end
  else
    local i = after and (lower_bound(list, after) - 1) or #list
    while i >= 1 do
      local r = list[i]
      if not pred or pred(r) then
        if #out >= limit then has_more = true; break end
        out[#out + 1] = r
      end
      i = i - 1
    end
  end
  return out, has_more
end

--- Offset page (1-based page numbers). Returns records, total.
function Store:page(page, per_page, pred)
  local matched = {}
  for _, r in ipairs(self.list) do
    if not pred or pred(r) then matched[#matched + 1] = r end
  end
  local out = {}
  local first = (page - 1) * per_page + 1
  for i = first, math.min(#matched, first + per_page - 1) do out[#out + 1] = matched[i] end
  return out, #matched
end

-- ---------------------------------------------------------------- state

C.state = nil   -- { name, mock, config, stats, faults, quota, data = {} (mock-owned) }
C.mock = nil

local LOG_MAX = 200
local REQ_MAX = 50
local BODY_MAX = 65536

local function new_stats()
  local counters = {}
  for _, name in ipairs(C.mock and C.mock.counters or {}) do counters[name] = 0 end
  return {
    requests = 0, by_status = {}, rate_limited = 0, by_key = {}, by_route = {},
    by_method = {}, faults_applied = 0, log = {}, requests_detail = {}, counters = counters,
  }
end

--- Bump a mock-specific counter (reported at the top level of /__admin/stats).
function C.count(name, n)
  local c = C.state.stats.counters
  c[name] = (c[name] or 0) + (n or 1)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function C.reset(config)
  local S = C.state
  if config ~= nil then S.config = config end
  S.stats = new_stats()
  S.faults = {}
  S.quota = {}
  S.data = {}
  C.mock.reset(C, S.config or {})
end

--- Called from init_by_lua: load the provider mock and its JSON config.
function C.boot(name, config_path, owner)
  local mock = require(name)
  C.mock = mock
  local config = {}
  local text = config_path and read_file(config_path)
  if text and text ~= "" then
    local v, err = C.decode(text)
    if v == nil then error("bad mock config " .. config_path .. ": " .. tostring(err)) end
    config = v
  end
  C.state = { name = name, config = config, owner = owner }
  C.reset()
end

-- Stop this nginx when the test process that started it is gone.
local function owner_alive(owner)
  local f = io.open("/proc/" .. owner.pid .. "/stat", "r")
  if not f then return false end
  local s = f:read("*a") or ""
  f:close()
  local rest = s:match("%)%s+(.*)$")
  if not rest then return true end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  if fields[1] == "Z" or fields[1] == "X" then return false end
  -- rest starts at field 3 (state); starttime is field 22
  if owner.start and fields[20] and fields[20] ~= tostring(owner.start) then return false end
  return true
end

function C.init_worker()
  local owner = C.state and C.state.owner
  if not owner or not owner.pid then return end
  local ok, ffi = pcall(require, "ffi")
  if not ok then return end
  pcall(ffi.cdef, "int kill(int pid, int sig);")
  local process = require "ngx.process"
  local function check(premature)
    if premature then return end
    if not owner_alive(owner) then
      ngx.log(ngx.WARN, "mock: owner process ", owner.pid, " is gone, shutting down")
      local master = process.get_master_pid()
      local prefix = ngx.config.prefix()
      if prefix and prefix:match("^/tmp/audience%-mock%.[%w]+/?$") then
        os.execute("rm -rf '" .. prefix .. "'")
      end
      if master then ffi.C.kill(master, 15) end
    end
  end
  ngx.timer.every(1, check)
end

-- ---------------------------------------------------------------- responses

C.PROBLEM_TYPE = "https://tools.ietf.org/html/rfc2616#section-10"

function C.json(status, tbl, headers, content_type)
  return { status = status, json = tbl, headers = headers, content_type = content_type }
end

function C.empty(status, headers)
  return { status = status, body = "", headers = headers }
end

--- API-Platform-style problem (application/problem+json).
function C.problem(status, detail, extra)
  local body = { type = C.PROBLEM_TYPE, title = "An error occurred", detail = detail }
  if extra then for k, v in pairs(extra) do body[k] = v end end
  return { status = status, json = body, content_type = "application/problem+json" }
end

-- Symfony validator codes
C.codes = {
  not_blank = "c1051bb4-d103-4f74-8988-acbcafc7fdc3",
  not_null = "ad32d13f-c3d4-423b-909a-857b961eb720",
  email = "bd79c0ab-ddba-46cc-a703-a7a4b08de310",
  unique = "23bd9dbf-6b9b-41cd-a99e-4844bcf3077f",
  range = "04b91c99-a946-4221-afc5-e65ebac401eb",
  choice = "8e179f1b-97aa-4560-a02f-2a8b42e49df7",
  too_long = "d94b19cc-114f-4f44-9cc4-4138e80a87b9",
  regex = "de1e3db3-5ed4-4941-aae4-59f3667cc3a3",
  type = "ba785a8c-82cb-4283-967c-3cf342181b40",
  url = "57c2f299-1154-4870-89bb-ef3b1f5ad229",
  country = "8f900c12-61bd-455d-9398-996cd040f32e",
  unique_items = "7911c98d-b845-4da0-94b7-a8dac36bc55a",
}

--- 422 with a list of {propertyPath, message, code}.
function C.violations(list)
  local details, vs = {}, {}
  for _, v in ipairs(list) do
    details[#details + 1] = v.propertyPath .. ": " .. v.message
    vs[#vs + 1] = { propertyPath = v.propertyPath, message = v.message, code = v.code }
  end
  return C.problem(422, table.concat(details, "\n"), { violations = C.array(vs) })
end

--- Media type of a Content-Type header value, lowercased, without parameters.
function C.media_type(ct)
  if type(ct) == "table" then ct = ct[1] end
  if type(ct) ~= "string" then return nil end
  local mt = ct:match("^%s*([^;%s]+)")
  return mt and mt:lower() or nil
end

-- ---------------------------------------------------------------- seeding

--- The items a seed request asks for: spec.items (a list) or spec.count empty ones,
--- each a fresh table with spec.defaults filled in under its own fields.
function C.seed_items(spec)
  local given = {}
  if type(spec.items) == "table" then
    if next(spec.items) ~= nil and #spec.items == 0 then error("items must be a list", 0) end
    for i, it in ipairs(spec.items) do given[i] = it end
  else
    local n = tonumber(spec.count)
    if not n or n < 0 then error("count or items required", 0) end
    for i = 1, n do given[i] = {} end
  end
  local defaults = type(spec.defaults) == "table" and spec.defaults or {}
  local items = {}
  for i, it in ipairs(given) do
    local item = {}
    for k, v in pairs(defaults) do item[k] = v end
    for k, v in pairs(it) do item[k] = v end
    items[i] = item
  end
  return items
end

-- ---------------------------------------------------------------- quota

--- Fixed window shared per bucket: a window starts at the first request after the
-- previous one ended, lasts `per` seconds and allows `limit` requests.
function C.quota(bucket, limit, per)
  local now = C.now()
  local q = C.state.quota[bucket]
  if not q or now >= q.ends then
    q = { starts = now, ends = now + per, count = 0 }
    C.state.quota[bucket] = q
  end
  q.count = q.count + 1
  local exceeded = q.count > limit
  local left = q.ends - now
  return {
    limit = limit,
    remaining = math.max(0, limit - q.count),
    exceeded = exceeded,
    now = now,
    ends = q.ends,
    reset_epoch = math.ceil(q.ends),
    -- For tests that measure how closely clients follow the window.
    reset_epoch_ms = ("%.3f"):format(math.ceil(q.ends * 1000) / 1000),
    reset_delta = math.max(1, math.ceil(left)),
    retry_after = math.max(1, math.ceil(left)),
  }
end

-- ---------------------------------------------------------------- stats

local function incr(t, k) t[k] = (t[k] or 0) + 1 end

local function route_of(method, path)
  return method .. " " .. (path:gsub("/%d+", "/{id}"))
end

local REDACT = { ["x-api-key"] = true, authorization = true, ["proxy-authorization"] = true, cookie = true }

local function redacted(name)
  name = name:lower()
  if REDACT[name] then return true end
  for _, h in ipairs(C.mock and C.mock.credential_headers or {}) do
    if h:lower() == name then return true end
  end
  return false
end

local function push(list, item, max)
  list[#list + 1] = item
  if #list > max then table.remove(list, 1) end
end

local function record_start(req)
  local st = C.state.stats
  st.requests = st.requests + 1
  incr(st.by_method, req.method)
  incr(st.by_route, route_of(req.method, req.path))
  local entry = {
    method = req.method, path = req.path, query = req.query_string or "",
    t = req.t, content_type = req.content_type or null,
    api_key_present = req.api_key_present, status = null,
  }
  push(st.log, entry, LOG_MAX)
  local headers = {}
  for k, v in pairs(req.headers) do
    if redacted(k) then v = "<redacted>" end
    headers[k:lower()] = v
  end
  local body = req.body or ""
  local detail = {
    method = req.method, path = req.path, query = req.query_string or "", t = req.t,
    headers = headers, body = #body > BODY_MAX and body:sub(1, BODY_MAX) or body,
    body_length = #body, status = null,
  }
  push(st.requests_detail, detail, REQ_MAX)
  req._entry, req._detail = entry, detail
end

local function record_status(req, status, fault)
  local e = req._entry
  if not e or e.status ~= null then return end
  local st = C.state.stats
  e.status = status
  req._detail.status = status
  if fault then e.fault = fault; req._detail.fault = fault end
  if req.key_label then
    e.key = req.key_label
    req._detail.key = req.key_label
    incr(st.by_key, req.key_label)
  end
  if type(req.log_fields) == "table" then
    for k, v in pairs(req.log_fields) do e[k] = v; req._detail[k] = v end
  end
  incr(st.by_status, tostring(status))
  if status == 429 or req.rate_limited then st.rate_limited = st.rate_limited + 1 end
end

-- ---------------------------------------------------------------- faults

local FAULT_KINDS = { "status", "delay", "delay_after", "reset", "malformed", "truncated",
  "html", "empty", "drip", "huge" }

local function fault_matches(f, req)
  if f.method and f.method:upper() ~= req.method then return false end
  if f.match and f.match ~= "" then
    local m = f.match
    if req.path:sub(1, #m) ~= m then
      local ok, found = pcall(string.find, req.path, m)
      if not (ok and found) then return false end
    end
  end
  return true
end

local function take_fault(req)
  local faults = C.state.faults
  for i, f in ipairs(faults) do
    if fault_matches(f, req) then
      if (f.skip or 0) > 0 then
        f.skip = f.skip - 1
      else
        f.times = f.times - 1
        if f.times <= 0 then table.remove(faults, i) end
        return f
      end
    end
  end
  return nil
end

local function fault_name(action)
  for _, k in ipairs(FAULT_KINDS) do
    if action[k] ~= nil and action[k] ~= false then
      if k ~= "delay" and k ~= "delay_after" then return k end
    end
  end
  if action.delay_after then return "delay_after" end
  if action.delay then return "delay" end
  return "none"
end

local function normalize_fault(spec)
  if type(spec) ~= "table" then return nil, "fault must be an object" end
  local action = spec.action
  if action == nil or action == null then
    action = {}
    for _, k in ipairs(FAULT_KINDS) do action[k] = spec[k] end
    action.body, action.headers = spec.body, spec.headers
  end
  if type(action) ~= "table" then return nil, "action must be an object" end
  for k, v in pairs(action) do if v == null then action[k] = nil end end
  local times = tonumber(spec.times ~= null and spec.times or nil) or 1
  local f = {
    match = (spec.match ~= null) and spec.match or nil,
    method = (spec.method ~= null) and spec.method or nil,
    times = times, skip = tonumber(spec.skip ~= null and spec.skip or nil) or 0,
    action = action,
  }
  if f.match ~= nil and type(f.match) ~= "string" then return nil, "match must be a string" end
  if f.method ~= nil and type(f.method) ~= "string" then return nil, "method must be a string" end
  if times < 1 then return nil, "times must be >= 1" end
  f.kind = fault_name(action)
  return f
end

-- ---------------------------------------------------------------- request plumbing

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then body = read_file(file) end
  end
  return body or ""
end

local function first(v)
  if type(v) == "table" then return v[1] end
  return v
end

local function build_req()
  local headers = ngx.req.get_headers(200)
  local args = ngx.req.get_uri_args(200)
  local query = {}
  for k, v in pairs(args) do
    if type(v) == "table" then v = v[#v] end
    if v == true then v = "" end
    query[k] = v
  end
  local req = {
    method = ngx.req.get_method(),
    path = ngx.var.uri,
    query = query,
    query_string = ngx.var.args,
    request_uri = ngx.var.request_uri,
    headers = headers,
    body = read_body(),
    t = C.now(),
  }
  req.content_type = first(headers["content-type"])
  req.header = function(name) return first(headers[name]) end
  return req
end
C.build_req = build_req

local function resp_body(resp)
  if resp.json ~= nil then return C.encode(resp.json), resp.content_type or "application/json" end
  return resp.body or "", resp.content_type
end

local STATUS_TEXT = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [415] = "Unsupported Media Type", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local function send(resp)
  local body, ct = resp_body(resp)
  ngx.status = resp.status
  if resp.headers then
    for k, v in pairs(resp.headers) do ngx.header[k] = v end
  end
  if resp.status == 204 or resp.status == 304 then
    ngx.header["Content-Type"] = nil
    return ngx.exit(resp.status)
  end
  if ct then
    ngx.header["Content-Type"] = ct
  elseif #body == 0 then
    -- An empty answer (202 Accepted) has no media type: without this, nginx would label
    -- it with its default_type, application/json, which an empty body is not.
    ngx.header["Content-Type"] = nil
  end
  ngx.header["Content-Length"] = #body
  if #body > 0 then ngx.print(body) end
  return ngx.exit(ngx.HTTP_OK)
end

-- Raw response over the downstream socket (for truncated/drip). Returns the socket.
local function raw_socket()
  local sock, err = ngx.req.socket(true)
  if not sock then
    ngx.log(ngx.ERR, "mock: raw socket: ", err)
    return ngx.exit(444)
  end
  return sock
end

local function raw_head(status, headers, content_length)
  local lines = { string.format("HTTP/1.1 %d %s", status, STATUS_TEXT[status] or "Status") }
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. tostring(v) end
  lines[#lines + 1] = "Content-Length: " .. content_length
  lines[#lines + 1] = "Connection: close"
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

local function resp_headers_flat(resp)
  local _, ct = resp_body(resp)
  local h = {}
  if resp.headers then for k, v in pairs(resp.headers) do h[k] = v end end
  if ct and resp.status ~= 204 then h["Content-Type"] = ct end
  return h
end

local function huge_body(n)
  local head, tail = '{"items":[],"hasMore":false,"padding":"', '"}'
  local pad = math.max(0, n - #head - #tail)
  return head .. string.rep("x", pad) .. tail
end

local HTML = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
  .. "<body><h1>Bad Gateway</h1><p>The upstream server is temporarily unavailable."
  .. " Please try again later.</p></body></html>\n"

function C.handle()
  local S = C.state
  local req = build_req()
  ngx.ctx.mock_req = req
  local cred = C.mock.credential_headers or { "x-api-key", "authorization" }
  req.api_key_present = false
  for _, h in ipairs(cred) do
    local v = req.header(h)
    if v ~= nil and v ~= "" then req.api_key_present = true end
  end
  record_start(req)
  local f = take_fault(req)
  local a = f and f.action
  if f then S.stats.faults_applied = S.stats.faults_applied + 1 end

  if a and a.delay then ngx.sleep(tonumber(a.delay) or 0) end

  if a and a.reset then
    record_status(req, 444, "reset")
    return ngx.exit(444)
  end

  local resp
  if a and a.status then
    local st = tonumber(a.status)
    if a.body ~= nil then
      resp = { status = st, body = type(a.body) == "string" and a.body or C.encode(a.body),
        content_type = "application/json" }
    else
      resp = C.json(st, { error = "injected fault", status = st, detail = STATUS_TEXT[st] or "Fault" })
    end
    resp.headers = {}
    if type(a.headers) == "table" then
      for k, v in pairs(a.headers) do
        if k:lower() == "content-type" then resp.content_type = v else resp.headers[k] = v end
      end
    end
  elseif a and a.malformed then
    resp = { status = 200, body = '{"items": [1, 2,', content_type = "application/json" }
  elseif a and a.html then
    resp = { status = 200, body = HTML, content_type = "text/html; charset=utf-8" }
  elseif a and a.empty then
    resp = { status = 200, body = "", content_type = "application/json" }
  elseif a and a.huge then
    resp = { status = 200, body = huge_body(tonumber(a.huge) or 1048576), content_type = "application/json" }
  else
    local ok, r = pcall(C.mock.handle, C, req)
    if not ok then
      ngx.log(ngx.ERR, "mock handler error: ", r)
      r = C.json(500, { error = "mock handler error", detail = tostring(r) })
    end
    resp = r
  end
  -- a header-level fault on top of a normal answer (e.g. {headers = {...}} alone)
  if a and not a.status and type(a.headers) == "table" then
    resp.headers = resp.headers or {}
    for k, v in pairs(a.headers) do resp.headers[k] = v end
  end

  local fname = f and f.kind or nil
  record_status(req, resp.status, fname)

  if a and a.delay_after then ngx.sleep(tonumber(a.delay_after) or 0) end

  if a and a.truncated then
    local body = select(1, resp_body(resp))
    if body == "" then body = '{"items":[{"id":1},{"id":2}],"hasMore":false}' end
    local part = body:sub(1, math.max(1, math.floor(#body / 2)))
    local sock = raw_socket()
    sock:send(raw_head(resp.status, resp_headers_flat(resp), #body + 100) .. part)
    return ngx.exit(444)
  end

  if a and a.drip then
    local d = type(a.drip) == "table" and a.drip or {}
    local bytes = math.max(1, tonumber(d.bytes) or 1)
    local interval = tonumber(d.interval) or 0.1
    local body = select(1, resp_body(resp))
    if resp.status == 204 then body = "" end
    local data = raw_head(resp.status, resp_headers_flat(resp), #body) .. body
    local sock = raw_socket()
    local i = 1
    while i <= #data do
      local ok = sock:send(data:sub(i, i + bytes - 1))
      if not ok then break end
      i = i + bytes
      if i <= #data then ngx.sleep(interval) end
    end
    return ngx.exit(444)
  end

  return send(resp)
end

-- log phase: requests that never got a status (client gone during a delay, errors)
function C.log_phase()
  local req = ngx.ctx.mock_req
  if req then record_status(req, ngx.status ~= 0 and ngx.status or 499) end
end

-- ---------------------------------------------------------------- admin

local function admin_error(status, msg)
  return C.json(status, { error = msg })
end

local function json_body(req)
  if req.body == nil or req.body:match("^%s*$") then return nil end
  local v, err = C.decode(req.body)
  if v == nil then return nil, "malformed JSON: " .. tostring(err) end
  return v
end

local function stats_view()
  local st = C.state.stats
  local view = {
    requests = st.requests,
    by_status = C.object(st.by_status),
    rate_limited = st.rate_limited,
    by_key = C.object(st.by_key),
    by_route = C.object(st.by_route),
    by_method = C.object(st.by_method),
    faults_applied = st.faults_applied,
    faults_pending = #C.state.faults,
    log = C.array(st.log),
  }
  for k, v in pairs(st.counters or {}) do
    if view[k] == nil then view[k] = v end
  end
  return view
end

local function admin_route(req)
  local S = C.state
  local m, p = req.method, req.path
  if p == "/__admin/health" then
    return C.json(200, { ok = true, mock = S.name, prefix = C.mock.prefix or "",
      pid = ngx.worker.pid() })
  elseif p == "/__admin/reset" and m == "POST" then
    local cfg, err = json_body(req)
    if err then return admin_error(400, err) end
    local ok, e = pcall(C.reset, cfg)
    if not ok then return admin_error(400, tostring(e)) end
    return C.json(200, { ok = true })
  elseif p == "/__admin/seed" and m == "POST" then
    local spec, err = json_body(req)
    if not spec then return admin_error(400, err or "body required") end
    if type(spec.resource) ~= "string" then return admin_error(400, "resource required") end
    local ok, res = pcall(C.mock.seed, C, spec.resource, spec)
    if not ok then return admin_error(400, tostring(res)) end
    return C.json(200, res)
  elseif (p == "/__admin/fault" or p == "/__admin/faults") and m == "POST" then
    local spec, err = json_body(req)
    if not spec then return admin_error(400, err or "body required") end
    local f, ferr = normalize_fault(spec)
    if not f then return admin_error(400, ferr) end
    S.faults[#S.faults + 1] = f
    return C.json(200, { ok = true, kind = f.kind, pending = #S.faults })
  elseif (p == "/__admin/fault" or p == "/__admin/faults") and m == "DELETE" then
    S.faults = {}
    return C.json(200, { ok = true })
  elseif p == "/__admin/faults" and m == "GET" then
    local out = {}
    for _, f in ipairs(S.faults) do
      out[#out + 1] = { match = f.match, method = f.method, times = f.times, skip = f.skip,
        kind = f.kind, action = f.action }
    end
    return C.json(200, C.array(out))
  elseif p == "/__admin/stats" and m == "GET" then
    return C.json(200, stats_view())
  elseif p == "/__admin/requests" and m == "GET" then
    return C.json(200, C.array(S.stats.requests_detail))
  elseif m == "GET" and p:match("^/__admin/data/[%w_%-]+$") then
    local resource = p:match("^/__admin/data/([%w_%-]+)$")
    local ok, list = pcall(C.mock.data, C, resource)
    if not ok then return admin_error(404, tostring(list)) end
    return C.json(200, C.array(list))
  elseif p == "/__admin/config" and m == "GET" then
    return C.json(200, S.config or C.object())
  end
  if C.mock.admin then
    local r = C.mock.admin(C, req)
    if r then return r end
  end
  return admin_error(404, "unknown admin route " .. m .. " " .. p)
end

function C.admin()
  local req = build_req()
  local ok, resp = pcall(admin_route, req)
  if not ok then
    ngx.log(ngx.ERR, "mock admin error: ", resp)
    resp = admin_error(500, tostring(resp))
  end
  return send(resp)
end

return C
