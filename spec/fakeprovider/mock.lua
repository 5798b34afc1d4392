-- The fake provider's API, served by spec/support/mockserver (nginx + Lua) with
-- spec/mock/common.lua: members with ids, pages of {"members", "paging"}, {"fault"}
-- errors and rate-limit headers on every answer.
local M = {}

M.prefix = "/v0"
M.credential_headers = { "x-fake-key" }

local C, D

local function headers()
  return { ["X-Fake-Limit"] = "1000", ["X-Fake-Remaining"] = "999",
    ["X-Fake-Reset"] = tostring(math.floor(C.now()) + 60) }
end

local function answer(status, body)
  return C.json(status, body, headers())
end

local function fault(status, kind, why, fields)
  return answer(status, { fault = { kind = kind, why = why, fields = fields } })
end

local function add(item)
  local m = { id = D.next_id, email = item.email, name = item.name or C.null, banned = false }
  D.next_id = D.next_id + 1
  D.list[#D.list + 1] = m
  return m
end

local function find(id)
  for i, m in ipairs(D.list) do
    if m.id == id then return m, i end
  end
end

function M.reset(c, config)
  C = c
  D = c.state.data
  D.list, D.next_id = {}, 1
  D.key = config.key or "fk-1"
end

function M.seed(c, _, spec)
  C = c
  local items = C.seed_items(spec)
  local first, last
  for _, item in ipairs(items) do
    local m = add(item)
    first, last = first or m.id, m.id
  end
  return { count = #items, first_id = first, last_id = last }
end

function M.data(c)
  C = c
  return D.list
end

local function list(req)
  local page = tonumber(req.query.page) or 1
  local size = tonumber(req.query.size) or 5
  if size < 1 or size > 50 then return fault(422, "invalid", "size is 1 to 50", { size = "out of range" }) end
  local matching = {}
  for _, m in ipairs(D.list) do
    if not req.query.email or m.email:lower():find(req.query.email:lower(), 1, true) then
      matching[#matching + 1] = m
    end
  end
  local out = C.array{}
  for i = (page - 1) * size + 1, math.min(#matching, page * size) do out[#out + 1] = matching[i] end
  local pages = math.max(1, math.ceil(#matching / size))
  return answer(200, { members = out, paging = { page = page, pages = pages, count = #matching } })
end

function M.handle(c, req)
  C = c
  if req.header("x-fake-key") ~= D.key then return fault(401, "denied", "unknown key") end
  local path = req.path:sub(#M.prefix + 1)
  local body = req.body ~= "" and C.decode(req.body) or {}
  if path == "/members" and req.method == "GET" then return list(req) end
  if path == "/members" and req.method == "POST" then
    if type(body.email) ~= "string" or body.email == "" then
      return fault(422, "invalid", "email is required", { email = "required" })
    end
    for _, m in ipairs(D.list) do
      if m.email:lower() == body.email:lower() then
        return fault(422, "invalid", "email is taken", { email = "taken" })
      end
    end
    return answer(201, add(body))
  end
  local id, rest = path:match("^/members/(%d+)(.*)$")
  local m = id and find(tonumber(id))
  if not m then return fault(404, "missing", "no such member") end
  if rest == "/ban" and req.method == "POST" then
    m.banned = true
    m.ban_reason = body.reason
    return answer(200, { ok = true })
  elseif rest ~= "" then
    return fault(404, "missing", "no such route")
  elseif req.method == "GET" then
    return answer(200, m)
  elseif req.method == "PATCH" then
    for k, v in pairs(body) do if k ~= "id" then m[k] = v end end
    return answer(200, m)
  elseif req.method == "DELETE" then
    local _, i = find(m.id)
    table.remove(D.list, i)
    return C.empty(204, headers())
  end
  return fault(405, "invalid", "method not allowed")
end

return M
