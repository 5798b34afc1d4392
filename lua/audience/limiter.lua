-- Chooses where an account's quota state lives. Every store hands back an object with
-- the same four methods as the C core's in-memory limiter:
--   acquire(now) -> wait    observe(limit, remaining, reset_at, now)
--   penalize(until)         state(now) -> { limit, remaining, reset_at, ... }
local core = require "audience.core"

local M = {}

--- `key` already names the provider and the account; it never contains a credential.
function M.new(key, settings)
  local store = settings.store or "memory"
  local limiter
  if store == "memory" then
    limiter = core.limiter(key)
  else
    error(("audience: rate_limit.store '%s' is not supported (use \"memory\")"):format(store), 0)
  end
  if settings.limit then
    limiter:configure(settings.limit, settings.per)
  end
  return limiter
end

return M
