-- The nginx side of support/ngx_run.lua: runs the posted Lua chunk in a content handler
-- and answers with its results as Lua source. Loaded by nginx, never by busted.
local M = {}

local function literal(v, seen)
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  if t == "boolean" or t == "nil" then return tostring(v) end
  if t == "table" then
    if seen[v] then return '"<cycle>"' end
    seen[v] = true
    local parts = {}
    for k, x in pairs(v) do
      if type(x) ~= "function" then
        parts[#parts + 1] = ("[%s] = %s"):format(literal(k, seen), literal(x, seen))
      end
    end
    seen[v] = nil
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  -- audience.null, userdata, functions: named, as the spec only compares them.
  return ("%q"):format("<" .. t .. ">")
end

function M.handle()
  ngx.req.read_body()
  local code = ngx.req.get_body_data()
  if not code then
    local file = ngx.req.get_body_file()
    local f = file and io.open(file)
    code = f and f:read("*a")
    if f then f:close() end
  end
  local chunk, err = loadstring(code or "", "=snippet")
  local packed
  if not chunk then
    packed = { ok = false, n = 1, err }
  else
    local function pack(ok, ...)
      return { ok = ok, n = select("#", ...), ... }
    end
    packed = pack(xpcall(chunk, function(e) return tostring(e) .. "\n" .. debug.traceback() end))
  end
  ngx.header["Content-Type"] = "text/plain"
  ngx.print("return ", literal(packed, {}))
end

return M
