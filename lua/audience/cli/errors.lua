-- How a run of the `audience` command fails: its exit codes and the message each failure
-- ends with, kept together so that every action ends the same way for the same cause.
local Error = require "audience.error"

local M = {}

M.EXIT = { ok = 0, failure = 1, usage = 2, api = 3, partial = 4, interrupted = 130 }
local EXIT = M.EXIT

function M.usage(msg) error({ usage = msg }, 0) end

local function is_interrupt(e)
  return tostring(e):find("interrupted!", 1, true) ~= nil
end

local function rethrow_interrupt(e)
  if is_interrupt(e) then error(e, 0) end
end

local function api_failure(ctx, err)
  ctx.err:write("audience: ", tostring(err), "\n")
  return EXIT.api
end

--- The exit code of a run that raised `e`, once stderr says why.
function M.report(ctx, e)
  if is_interrupt(e) then
    ctx.err:write("\naudience: interrupted\n")
    return EXIT.interrupted
  end
  if type(e) == "table" and e.usage then
    ctx.err:write("audience: ", e.usage, "\n(audience --help for usage)\n")
    return EXIT.usage
  end
  if Error.is(e) then return api_failure(ctx, e) end
  -- The module raises "audience...: bad argument/option" for misuse, which here can
  -- only come from what was typed (--param, --data).
  if type(e) == "string" and e:find("^audience") then
    ctx.err:write(e, "\n")
    return EXIT.usage
  end
  ctx.err:write("audience: internal error: ", tostring(e), "\n")
  return EXIT.failure
end

M.is_interrupt = is_interrupt
M.rethrow_interrupt = rethrow_interrupt
M.api_failure = api_failure

return M
