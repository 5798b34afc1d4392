-- Digests and MACs computed by the openssl command line tool: the reference the core's
-- own signing is checked against. Data goes through a temporary file, so that NUL bytes
-- reach openssl intact.
--
--   local digests = require "support.digests"
--   digests.sha1_hex(data)  digests.hmac_sha256_hex(key, data)  digests.hmac_sha256_base64(key, data)
local files = require "support.files"

local M = {}

local function with_file(data, fn)
  local path = os.tmpname()
  files.write(path, data)
  local ok, out = pcall(fn, files.quote(path))
  os.remove(path)
  if not ok then error(out, 0) end
  return out
end

local function openssl_hex(data, args)
  local out = with_file(data, function(path) return files.capture("openssl dgst " .. args .. " < " .. path) end)
  return assert(out:match("= (%x+)%s*$"), "unexpected openssl output: " .. out):lower()
end

function M.sha1_hex(data)
  return openssl_hex(data, "-sha1")
end

-- The key goes as hex, so that any bytes (NUL included) can be a key.
local function hexkey(key)
  return "-sha256 -mac HMAC -macopt hexkey:" .. key:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
end

function M.hmac_sha256_hex(key, data)
  return openssl_hex(data, hexkey(key))
end

function M.hmac_sha256_base64(key, data)
  local out = with_file(data, function(path)
    return files.capture("openssl dgst " .. hexkey(key) .. " -binary < " .. path
      .. " | openssl base64 -A")
  end)
  out = out:gsub("%s+$", "")
  assert(#out == 44, "unexpected openssl output: " .. out)
  return out
end

return M
