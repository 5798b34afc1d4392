--- SubscribeFlow calls that do not fit the generic resource description.
-- @module audience.providers.subscribeflow.calls
local resource = require "audience.resource"
local options = require "audience.options"
local json = require "audience.json"

local M = {}

--- `sf.subscribers:update_tags(id, changes)`: adds and removes tags in one call.
-- @tparam table self the subscribers resource
-- @tparam integer|string id the subscriber
-- @tparam table changes `add` and/or `remove`, lists of tag slugs
-- @tparam[opt] table opts `timeout`, `headers`
-- @treturn[1] table the subscriber's tags, a plain array
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function M.update_tags(self, id, changes, opts)
  local fname = "subscribers:update_tags"
  resource.check_arg(fname, 1, "id", "id", id)
  resource.check_arg(fname, 2, "changes", "table", changes)
  local body = {}
  for key, list in pairs(changes) do
    if key ~= "add" and key ~= "remove" then
      error(("audience: bad argument #2 to '%s' (changes: only 'add' and 'remove' expected, got '%s')")
        :format(fname, tostring(key)), 0)
    end
    if type(list) ~= "table" then
      error(("audience: bad argument #2 to '%s' (changes.%s: list expected, got %s)")
        :format(fname, key, options.describe(list)), 0)
    end
    local copy = json.array{}
    for i, tag in ipairs(list) do copy[i] = tag end
    body[key] = copy
  end
  local path = resource.fill("/subscribers/{id}/tags", { id = id })
  local value, err, res = self._client:_call("PATCH", path, resource.call_spec(fname, opts, { body = body }))
  if value == nil then return nil, err, res end
  return self:_result(value), nil, res
end

return M
