-- What audience.read_csv and audience.read_jsonl share: a source given as a path or an
-- open handle, read one physical line at a time (memory stays flat whatever the file's
-- size), a UTF-8 byte order mark dropped from the first line, the line number kept for
-- messages, and the file closed once, by the reader, by a `for` loop that breaks (Lua
-- 5.4 closes the 4th value of a generic `for`; LuaJIT ignores it), or at the end.
local options = require "audience.options"

local M = {}

local BOM = "\239\187\191"

local Input = {}
Input.__index = Input

--- The next physical line with its line end ("\n" or "\r\n" kept), or nil at the end.
function Input:line()
  if self.done then return nil end
  local line = self.file:read("*L")
  if not line then
    self:close()
    return nil
  end
  self.lineno = self.lineno + 1
  if self.lineno == 1 and line:sub(1, 3) == BOM then line = line:sub(4) end
  return line
end

function Input:close()
  self.done = true
  if self.owned and io.type(self.file) == "file" then self.file:close() end
end

--- Closes the input and raises "audience.<fname>: <name>: line <n>: <message>".
function Input:fail(at, message)
  self:close()
  error(("audience.%s: %s: line %d: %s"):format(self.fname, self.name, at or self.lineno, message), 0)
end

--- The value a generic `for` closes when it ends or breaks.
function Input:closer()
  return setmetatable({}, { __close = function() self:close() end })
end

--- Opens `src` (a path or an open file handle) for the reader `fname`. Returns an input,
--- or nil and the message of a path that cannot be opened; anything else raises.
function M.open(fname, src)
  local file, owned, name
  if type(src) == "string" then
    local err
    file, err = io.open(src, "rb")
    if not file then return nil, err end
    owned, name = true, src
  elseif io.type(src) == "file" then
    file, owned, name = src, false, "(file handle)"
  else
    error(("audience: bad argument #1 to '%s' (source: path or open file handle expected, got %s)")
      :format(fname, options.describe(src)), 0)
  end
  return setmetatable({ file = file, owned = owned, name = name, fname = fname, lineno = 0, done = false }, Input)
end

return M
