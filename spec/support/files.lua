-- Files and shell words for specs, benchmarks and their support modules: one copy of
-- what each of them used to carry.
--
--   local files = require "support.files"
--   files.read(path) -> contents | nil;  files.write(path, data) -> path
--   files.quote(s) -> s as one POSIX shell word;  files.capture(cmd) -> its stdout
--   files.tmpdir(prefix) -> a new directory under /tmp;  files.remove_tree(path)
local M = {}

--- The whole file, or nil when it cannot be opened.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Writes `data` to `path` (created or truncated); raises when it cannot. Returns path.
function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
  return path
end

--- The whole output of a shell command (popen), or nil when it cannot start.
function M.capture(cmd)
  local p = io.popen(cmd, "r")
  if not p then return nil end
  local out = p:read("*a")
  p:close()
  return out
end

--- `s` quoted for sh: any byte but NUL stays literal.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- A new, empty directory (mktemp -d) whose name starts with `prefix`.
function M.tmpdir(prefix)
  local p = assert(io.popen("mktemp -d " .. M.quote("/tmp/" .. (prefix or "audience") .. ".XXXXXX")))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir
end

--- Removes a directory made by tmpdir, with everything in it.
function M.remove_tree(path)
  assert(type(path) == "string" and path:find("^/tmp/"), "remove_tree: only under /tmp")
  os.execute("rm -rf " .. M.quote(path))
end

return M
