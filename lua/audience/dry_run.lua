-- The "dry-run" transport: reads (GET, HEAD) go out through the real transport, so that
-- what a job would do can be worked out from real data; every write is shown instead of
-- sent, exactly as it would leave (method, URL, header lines, body bytes), with secrets
-- redacted, and answered as a success: the body sent comes back (or what the provider's
-- description says the answer to such a write looks like), a DELETE with 204. The
-- client spends no quota on a write it does not send (client.lua, _wait_for_quota).
local M = {}

local JSON = { ["content-type"] = "application/json" }
local NONE = {}

local function is_read(method)
  return method == "GET" or method == "HEAD"
end

--- settings.dry_run(request): called for each write with { method =, url =, headers =
--- { "Name: value", ... }, body = string or nil }; settings.dry_run_answer(method, url,
--- body) -> status, body for writes whose answer is not the body sent (optional);
--- settings.redact(text) -> text without secrets; settings.secret_headers = { lower-case
--- name = true }. `real` is the transport reads go through.
function M.new(settings, real)
  local show, answer, redact = settings.dry_run, settings.dry_run_answer, settings.redact
  local secret_headers = settings.secret_headers or NONE

  local function shown_headers(lines)
    local out = {}
    for i, line in ipairs(lines) do
      local name = line:match("^([^:]+):")
      out[i] = (name and secret_headers[name:lower()]) and (name .. ": [REDACTED]") or redact(line)
    end
    return out
  end

  local http = {}
  function http.perform(_, method, url, lines, body, timeout)
    if is_read(method) then return real.http:perform(method, url, lines, body, timeout) end
    show{ method = method, url = redact(url), headers = shown_headers(lines), body = body }
    if method == "DELETE" then return 204, "", NONE end
    local status, text = 200, body or ""
    if answer then
      local s, t = answer(method, url, body)
      if s then status, text = s, t or "" end
    end
    return status, text, text ~= "" and JSON or NONE
  end
  function http.close() return real.http:close() end

  return { name = "dry-run", http = http, sleep = real.sleep, now = real.now }
end

return M
