-- JSON lines: one JSON document per line, streamed both ways.
--
-- encode() is audience.json's encoder with object keys in sorted order (see json.lua).
local json = require "audience.json"
local input_open = require("audience.input").open

local M = {}

local SORTED = { sorted = true }

--- Compact JSON text of `v`, object keys sorted. Raises when `v` cannot be JSON.
function M.encode(v)
  local text, err = json.encode(v, SORTED)
  if not text then error("audience: value cannot be written as JSON: " .. err, 0) end
  return text
end

--- audience.read_jsonl(path_or_handle) -> iterator over (value, line). Blank lines are
--- skipped. Returns nil, message when the file cannot be opened; a line that is not JSON
--- raises an error naming the file and the line.
function M.reader(src)
  local input, err = input_open("read_jsonl", src)
  if not input then return nil, err end
  local function step()
    while true do
      local line = input:line()
      if not line then return nil end
      if line:find("%S") then
        local value, msg = json.decode(line)
        if value == nil then input:fail(nil, "invalid JSON: " .. msg) end
        return value, input.lineno
      end
    end
  end
  return step, nil, nil, input:closer()
end

return M
