-- Creamailer signs every attempt: the signature covers the exact URL (with its query),
-- the exact body bytes and a timestamp, and that timestamp is read once and used both
-- in the signature and in its header, so a second boundary can never split them.
-- v1 signs with SHA-1, v2 with HMAC-SHA256 (core.sign_creamailer picks by version).
local core = require "audience.core"

return function(desc, o)
  local version = o.version or 1
  local token, secret = o[desc.token], o[desc.secret]
  local token_line = "X-Access-Token: " .. token
  return function(client, _, url, body, base)
    local timestamp = math.floor(client._now())
    local lines = {
      token_line,
      "X-Request-Signature: " .. core.sign_creamailer(version, secret, url, body or "", timestamp),
      ("X-Request-Timestamp: %d"):format(timestamp),
    }
    for i = 1, #base do lines[#lines + 1] = base[i] end
    return lines
  end, { "X-Access-Token", "X-Request-Signature" }, { token, secret }, token
end
