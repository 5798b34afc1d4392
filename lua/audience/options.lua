-- Validation of what users pass in: constructor options and per-call options. Every
-- complaint names the option, because "bad argument" alone sends people hunting.
local M = {}

local function describe(v)
  local tv = type(v)
  if tv == "number" then
    if v ~= v then return "NaN" end
    if v == math.huge or v == -math.huge then return "infinite number" end
  end
  return tv
end

local function finite(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

local function integral(v)
  return finite(v) and v == math.floor(v)
end

-- Each check returns nil when the value is acceptable, else what was expected.
local KINDS = {
  any = function() return nil end,
  -- Strings end up in header lines, URLs or file names: CR/LF would inject headers and
  -- NUL would silently cut the value short in C.
  string = function(v)
    if type(v) ~= "string" or v == "" or v:find("[%z\r\n]") then
      return "non-empty string without CR, LF or NUL"
    end
  end,
  positive = function(v) if not finite(v) or v <= 0 then return "positive number" end end,
  count = function(v) if not integral(v) or v < 0 then return "non-negative integer" end end,
  positive_integer = function(v) if not integral(v) or v < 1 then return "positive integer" end end,
  boolean = function(v) if type(v) ~= "boolean" then return "boolean" end end,
  ["function"] = function(v) if type(v) ~= "function" then return "function" end end,
  table = function(v) if type(v) ~= "table" then return "table" end end,
  -- A request body: a table (sent as JSON) or the exact bytes to send.
  body = function(v)
    if type(v) ~= "table" and type(v) ~= "string" then return "table or string" end
  end,
}

local COMMON = {
  base_url = "url", timeout = "positive", connect_timeout = "positive", retries = "count",
  rate_limit = "rate_limit", user_agent = "string", proxy = "string", ca_file = "string",
  verify_tls = "boolean", on_request = "function", on_response = "function",
  transport = { "curl", "ngx", "dry-run" }, dry_run = "function", max_body = "positive_integer",
  keepalive_pool = "positive_integer", keepalive_timeout = "positive",
  backoff = "backoff",
}

local RATE_LIMIT = {
  limit = "positive_integer", per = "positive", wait = "boolean", store = "string",
  account = "string", max_wait = "positive", on_wait = "function",
}

local BACKOFF = { base = "positive", max = "positive" }

-- Messages carry no file position: they name the constructor and the option instead.
local function fail(ctor, fmt, ...)
  error(ctor .. ": " .. fmt:format(...), 0)
end

local check_value

local function check_table(ctor, prefix, schema, t)
  if type(t) ~= "table" then
    fail(ctor, "bad option '%s' (table expected, got %s)", prefix, describe(t))
  end
  for k, v in pairs(t) do
    local kind = schema[k]
    if kind == nil then
      fail(ctor, "unknown option '%s%s'", prefix ~= "" and prefix .. "." or "", tostring(k))
    end
    check_value(ctor, (prefix ~= "" and prefix .. "." or "") .. k, kind, v)
  end
end

function check_value(ctor, name, kind, v)
  if type(kind) == "table" then
    for _, allowed in ipairs(kind) do
      if v == allowed then return end
    end
    local shown = {}
    for i, allowed in ipairs(kind) do
      shown[i] = type(allowed) == "string" and ("%q"):format(allowed) or tostring(allowed)
    end
    fail(ctor, "bad option '%s' (one of %s expected, got %s)", name,
      table.concat(shown, ", "), type(v) == "string" and ("%q"):format(v)
        or (describe(v) == "number" and tostring(v)) or describe(v))
  elseif kind == "rate_limit" then
    check_table(ctor, name, RATE_LIMIT, v)
    if (v.limit == nil) ~= (v.per == nil) then
      fail(ctor, "bad option '%s.%s' (limit and per go together)", name,
        v.limit == nil and "limit" or "per")
    end
  elseif kind == "backoff" then
    check_table(ctor, name, BACKOFF, v)
  elseif kind == "url" then
    -- No spaces or control characters: a NUL would cut the URL short in libcurl.
    if type(v) ~= "string" or not v:find("^https?://[^%s%c]+$") then
      fail(ctor, "bad option '%s' (http:// or https:// URL expected, got %s)", name,
        type(v) == "string" and ("%q"):format(v) or describe(v))
    end
  else
    local expected = KINDS[kind](v)
    if expected then
      fail(ctor, "bad option '%s' (%s expected, got %s)", name, expected, describe(v))
    end
  end
end

--- Validates constructor options against the common ones and the provider's own.
--- Returns the options table (unchanged).
function M.check_constructor(ctor, provider, opts)
  if type(opts) ~= "table" then
    error(ctor .. ": bad argument #1 (options table expected, got " .. describe(opts) .. ")", 0)
  end
  local schema = {}
  for k, v in pairs(COMMON) do schema[k] = v end
  for k, v in pairs(provider.options) do schema[k] = v end
  check_table(ctor, "", schema, opts)
  for _, group in ipairs(provider.required) do
    local present = false
    for _, name in ipairs(group) do
      if opts[name] ~= nil then present = true end
    end
    if not present then
      fail(ctor, "missing option '%s'", table.concat(group, "' or '"))
    end
  end
  return opts
end

--- Validates a per-call options table (`opts` of create/update/request...).
function M.check_call_options(fname, opts, schema)
  for k, v in pairs(opts) do
    local kind = schema[k]
    if kind == nil then
      error(("audience: unknown option '%s' in call to '%s'"):format(tostring(k), fname), 0)
    end
    local expected = KINDS[kind](v)
    if expected then
      error(("audience: bad option '%s' in call to '%s' (%s expected, got %s)")
        :format(k, fname, expected, describe(v)), 0)
    end
  end
end

local function scalar_param(v)
  local tv = type(v)
  return tv == "string" or tv == "boolean" or finite(v)
end

--- Validates a query table: strings, booleans, finite numbers, or lists of those.
--- Anything else (NaN, a nested table, a function) would go out as garbage such as
--- "nan" or "table: 0x...", so it raises, naming the parameter:
--- `audience: bad argument #n to 'fname' (prefix.key: ... expected, got ...)`.
function M.check_query(fname, n, prefix, query)
  local function bad(name, expected, v)
    error(("audience: bad argument #%d to '%s' (%s: %s expected, got %s)")
      :format(n, fname, name, expected, describe(v)), 0)
  end
  for key, v in pairs(query) do
    if type(key) ~= "string" then bad(prefix, "table with string keys", key) end
    local name = prefix .. "." .. key
    if type(v) == "table" then
      local count = 0
      for _ in pairs(v) do count = count + 1 end
      if count ~= #v then bad(name, "string, number, boolean or list of them", v) end
      for i = 1, #v do
        if not scalar_param(v[i]) then
          bad(("%s[%d]"):format(name, i), "string, finite number or boolean", v[i])
        end
      end
    elseif not scalar_param(v) then
      bad(name, type(v) == "number" and "finite number" or "string, number, boolean or list of them", v)
    end
  end
end

M.describe = describe
M.integral = integral

return M
