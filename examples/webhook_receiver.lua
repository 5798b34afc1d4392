-- A webhook receiver as a CGI program: the web server passes the raw body on stdin and
-- the request headers as HTTP_* variables. It answers 204 for a delivery whose
-- signature matches, and 401 otherwise.
--   WEBHOOK_PROVIDER=systeme|subscribeflow WEBHOOK_SECRET=... (set by the web server)
-- The signature covers the raw bytes: verify them before decoding anything.
local audience = require "audience"
local cjson = require "cjson"

local provider = os.getenv("WEBHOOK_PROVIDER") or "systeme"
local secret = os.getenv("WEBHOOK_SECRET") or error("set WEBHOOK_SECRET")

local length = tonumber(os.getenv("CONTENT_LENGTH") or "")
local body = (length and io.read(length) or io.read("a")) or ""

local headers = {}
for _, name in ipairs{ "X-Webhook-Signature", "X-SubscribeFlow-Signature", "X-Webhook-Message-Id" } do
  local value = os.getenv("HTTP_" .. name:upper():gsub("-", "_"))
  if value then headers[name] = value end
end

local ok, err = audience.webhooks.verify(provider, body, headers, secret)
if not ok then
  io.write("Status: 401 Unauthorized\r\nContent-Type: text/plain\r\n\r\n", err.code, "\n")
  io.stderr:write("rejected delivery: ", tostring(err), "\n")
  os.exit(0)
end

local event = cjson.decode(body)
-- Systeme.io may deliver twice; X-Webhook-Message-Id tells the copies apart.
io.stderr:write(("accepted %s delivery %s: %s\n"):format(provider,
  headers["X-Webhook-Message-Id"] or "-", tostring(event.type or event.event)))
io.write("Status: 204 No Content\r\n\r\n")
