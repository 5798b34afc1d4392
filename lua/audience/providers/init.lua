--- The providers audience knows, by name. A provider is one folder,
-- lua/audience/providers/NAME/, whose init.lua returns its description; the client, the
-- resources, the helpers, the webhooks and the command read only that description, so
-- another API is another folder (or a description registered at run time).
-- @module audience.providers
local M = {}

-- The folders shipped with the module, in the order help texts list them.
local SHIPPED = { "systeme", "creamailer", "subscribeflow" }

local registered, registered_order = {}, {}

local function check_name(fname, name)
  if type(name) ~= "string" or not name:find("^[%a][%w_]*$") then
    error(("audience: bad argument #1 to '%s' (name: identifier expected, got %s)")
      :format(fname, type(name) == "string" and ("'" .. name .. "'") or type(name)), 0)
  end
end

--- Registers a provider that is not a folder of the module.
-- @tparam string name the name it is known by (`audience <name> ...`, `webhooks.verify(name, ...)`)
-- @tparam table|string source its description, or the name of the module returning it
function M.register(name, source)
  check_name("providers.register", name)
  if type(source) ~= "table" and type(source) ~= "string" then
    error(("audience: bad argument #2 to 'providers.register' (source: description table or module name "
      .. "expected, got %s)"):format(type(source)), 0)
  end
  if registered[name] == nil then registered_order[#registered_order + 1] = name end
  registered[name] = source
end

local function findable(modname)
  if package.loaded[modname] ~= nil or package.preload[modname] ~= nil then return true end
  return package.searchpath(modname, package.path) ~= nil
end

--- The description of a provider.
-- @tparam string name a provider's name
-- @treturn[1] table its description
-- @treturn[2] nil when no provider has that name
function M.get(name)
  if type(name) ~= "string" or not name:find("^[%a][%w_]*$") then return nil end
  local source = registered[name]
  if type(source) == "table" then return source end
  if type(source) == "string" then return require(source) end
  local modname = "audience.providers." .. name
  if not findable(modname) then return nil end
  return require(modname)
end

--- The names of every provider: the shipped folders first, then the registered ones.
-- A folder audience/providers/NAME/ elsewhere on package.path is found by `get` (and so
-- by the client, the webhooks and the command) without being listed here.
-- @treturn {string,...} names, in help order
function M.names()
  local out = {}
  for _, name in ipairs(SHIPPED) do
    if registered[name] == nil then out[#out + 1] = name end
  end
  for _, name in ipairs(registered_order) do out[#out + 1] = name end
  return out
end

return M
