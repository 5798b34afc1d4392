-- Documented constraints of query parameters (ranges, enums, required names), checked
-- before anything is sent: the API would refuse them only after spending quota.
local M = {}

local floor, abs = math.floor, math.abs
local MAX_EXACT = 2 ^ 53

-- A rule: { integer = bool, min =, max =, enum = { ... }, pattern = "Lua pattern",
-- expected = "what the pattern means", required = bool }.
local function rule_problem(rule, v)
  if v == nil then return rule.required and "is required" or nil end
  if rule.integer then
    local n = v
    if type(v) == "string" and v:find("^%-?%d+$") and #v < 16 then n = tonumber(v) end
    if type(n) ~= "number" or n ~= floor(n) or abs(n) >= MAX_EXACT then return "must be an integer" end
    if (rule.min and n < rule.min) or (rule.max and n > rule.max) then
      if rule.max then return ("must be in %d..%d"):format(rule.min or 0, rule.max) end
      return ("must be at least %d"):format(rule.min)
    end
  end
  if rule.pattern and not (type(v) == "string" and v:find(rule.pattern)) then
    return "must be " .. (rule.expected or ("like " .. rule.pattern))
  end
  if rule.enum then
    for _, allowed in ipairs(rule.enum) do
      if v == allowed then return nil end
    end
    return "must be one of " .. table.concat(rule.enum, ", ")
  end
  return nil
end

--- check(client, method, path, query, rules...) -> nil, or a validation error naming
--- the first parameter (in name order) that breaks its rule. Each `rules` maps a
--- parameter name to its rule; nil sets are skipped.
local function refusal(client, method, path, url, name, message)
  return client:_error({ kind = "validation", code = "local", message = message .. "; not sent",
    details = { { field = name, message = message } } }, method, path, url)
end

--- check_body(client, method, path, body, required) -> nil, or a validation error
--- naming the first field of `required` (a list) that the body lacks.
function M.check_body(client, method, path, body, required)
  for _, name in ipairs(required or {}) do
    if type(body) == "table" and body[name] == nil then
      return refusal(client, method, path, client:_url(path), name, name .. " is required")
    end
  end
  return nil
end

-- The names of a rule set in order, sorted once: rule sets come from provider
-- descriptions, which do not change, and every list call is checked against them.
local SORTED = setmetatable({}, { __mode = "k" })

local function sorted_names(rules)
  local names = SORTED[rules]
  if not names then
    names = {}
    for name in pairs(rules) do names[#names + 1] = name end
    table.sort(names)
    SORTED[rules] = names
  end
  return names
end

function M.check(client, method, path, query, ...)
  for i = 1, select("#", ...) do
    local rules = select(i, ...)
    if rules then
      local names = sorted_names(rules)
      for j = 1, #names do
        local name = names[j]
        local v = query[name]
        local problem = rule_problem(rules[name], v)
        if problem then
          local shown = v == nil and "" or (" (got " .. tostring(v) .. ")")
          return refusal(client, method, path, client:_url(path, query), name, name .. " " .. problem .. shown)
        end
      end
    end
  end
  return nil
end

return M
