-- A busted helper for fuzz/make-json-corpus.sh: every response body the core's HTTP
-- handle receives while the specs run is written to $AUDIENCE_JSON_CORPUS, one file
-- per distinct body, named by its digest. Only the corpus script loads it.
local core = require "audience.core"

local dir = assert(os.getenv("AUDIENCE_JSON_CORPUS"), "AUDIENCE_JSON_CORPUS is not set")
local seen = {}

local function keep(body)
  if type(body) ~= "string" or body == "" or #body > 16384 then return end
  local name = core.sha256_hex(body):sub(1, 16)
  if seen[name] then return end
  seen[name] = true
  local f = assert(io.open(dir .. "/mock-" .. name, "wb"))
  f:write(body)
  f:close()
end

-- The methods table of the handle's metatable is shared by every handle.
local probe = core.http{}
local methods = getmetatable(probe).__index
probe:close()
local perform = methods.perform
methods.perform = function(self, ...)
  local status, body, headers, extra = perform(self, ...)
  if status then keep(body) end
  return status, body, headers, extra
end
