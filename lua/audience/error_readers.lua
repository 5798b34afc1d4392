-- How each provider's error body becomes code/message/details of an audience.Error.
-- A reader gets the decoded body (a table, or nil when it was not JSON) and returns a
-- table of fields to merge into the error: { code =, message =, details =, kind = }.
local M = {}

local function text(v)
  if type(v) == "string" and v ~= "" then return v end
  if type(v) == "number" then return tostring(v) end
  return nil
end

-- Joins details into one readable line for when the body has no summary of its own.
local function summarize(details)
  local parts = {}
  for i = 1, math.min(#details, 5) do
    local d = details[i]
    parts[#parts + 1] = d.field and (d.field .. ": " .. (d.message or "invalid")) or (d.message or "invalid")
  end
  return table.concat(parts, "; ")
end

M.summarize = summarize

-- Systeme.io is built on API Platform: RFC 7807 problem documents, with a list of
-- constraint `violations` on 422, and a bare `{detail}` on 401.
function M.api_platform(body)
  if type(body) ~= "table" then return {} end
  local out = { message = text(body.detail) or text(body["hydra:description"]) or text(body.title) }
  if type(body.violations) == "table" then
    local details = {}
    for _, v in ipairs(body.violations) do
      if type(v) == "table" then
        details[#details + 1] = { field = text(v.propertyPath), message = text(v.message), code = text(v.code) }
      end
    end
    out.details = details
    if not out.message and #details > 0 then out.message = summarize(details) end
  end
  return out
end

-- SubscribeFlow: {"error": {"code", "message", "details": [{field, message}]}}.
local ENVELOPE_KINDS = {
  validation_error = "validation", unauthorized = "auth", forbidden = "forbidden",
  not_found = "not_found", conflict = "conflict", rate_limited = "rate_limited",
  internal_error = "server",
}

function M.envelope(body)
  local e = type(body) == "table" and body.error
  if type(e) ~= "table" then return {} end
  local out = { code = text(e.code), message = text(e.message) }
  out.kind = out.code and ENVELOPE_KINDS[out.code]
  if type(e.details) == "table" then
    local details = {}
    for _, d in ipairs(e.details) do
      if type(d) == "table" then
        details[#details + 1] = { field = text(d.field), message = text(d.message), code = text(d.code) }
      end
    end
    out.details = details
  end
  return out
end

-- Creamailer: {"success": false, "message", "errors": {"field": ["message", ...]}} (v1)
-- and {"message", "errors": {...}} (v2). The field lists are the useful part.
function M.creamailer(body)
  if type(body) ~= "table" then return {} end
  local out = { message = text(body.message) }
  if type(body.errors) == "table" then
    local fields = {}
    for field in pairs(body.errors) do fields[#fields + 1] = tostring(field) end
    table.sort(fields)
    local details = {}
    for _, field in ipairs(fields) do
      local messages = body.errors[field]
      if type(messages) ~= "table" then messages = { messages } end
      for _, m in ipairs(messages) do
        details[#details + 1] = { field = field, message = text(m) }
      end
    end
    if #details > 0 then
      out.details = details
      out.message = summarize(details)
    end
  end
  return out
end

return M
