-- Small shared helpers for specs that drive audience clients against the mocks.
local M = {}

--- Walks any value (tables deeply, keys and values) and returns the first string in it
--- that contains `needle`, or nil.
function M.find_string(value, needle, seen)
  seen = seen or {}
  local tv = type(value)
  if tv == "string" then
    return value:find(needle, 1, true) and value or nil
  end
  if tv == "table" and not seen[value] then
    seen[value] = true
    for k, v in pairs(value) do
      local hit = M.find_string(k, needle, seen) or M.find_string(v, needle, seen)
      if hit then return hit end
    end
    local mt = getmetatable(value)
    if mt and mt.__tostring then
      local s = tostring(value)
      if s:find(needle, 1, true) then return s end
    end
  end
  return nil
end

--- Counts log entries of a mock's stats matching method and path prefix.
function M.count_requests(stats, method, path_prefix)
  local n = 0
  for _, entry in ipairs(stats.log or {}) do
    if (not method or entry.method == method)
      and (not path_prefix or entry.path:sub(1, #path_prefix) == path_prefix) then
      n = n + 1
    end
  end
  return n
end

return M
