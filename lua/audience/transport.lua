-- Where requests go out. A transport is three things the client pipeline needs:
-- `http:perform(method, url, header_lines, body, timeout)` with the C core's results,
-- `sleep(seconds)` and `now()` (epoch seconds).
--
-- "curl": the core's libcurl handle, blocking the caller.
-- "ngx":  inside nginx. A blocking call would stall every request of the worker, so the
--         libcurl call runs in an nginx thread pool (ngx.run_worker_thread) while the
--         request's coroutine yields; waits use ngx.sleep.
local core = require "audience.core"

local M = {}

-- Phases where nginx lets a request yield (run_worker_thread, ngx.sleep).
local YIELDING_PHASES = { rewrite = true, access = true, content = true, timer = true }

local function in_nginx()
  return rawget(_G, "ngx") ~= nil and type(_G.ngx.get_phase) == "function"
end

local function check_phase(ngx)
  local phase = ngx.get_phase()
  if not YIELDING_PHASES[phase] then
    error(("audience: API calls cannot run in nginx's %s phase, which cannot wait for I/O; "
      .. "run them from a request handler (rewrite, access, content) or from a timer: "
      .. "ngx.timer.at(0, function() ... end)"):format(phase), 0)
  end
end

local function ngx_transport(settings, pool)
  local ngx = _G.ngx
  if type(ngx.run_worker_thread) ~= "function" then
    error("audience: this nginx Lua module has no ngx.run_worker_thread (lua-nginx-module 0.10.22 "
      .. "or later is needed); pass transport = \"curl\" to block the worker instead", 0)
  end
  -- What the worker thread needs to build (and find again) its libcurl handle.
  local key = {}
  for _, name in ipairs{ "timeout", "connect_timeout", "verify_tls", "ca_file", "proxy", "user_agent", "max_body" } do
    key[#key + 1] = tostring(settings[name])
  end
  local thread_settings = { key = table.concat(key, "\0"), options = settings }

  local http = {}
  function http.perform(_, method, url, headers, body, timeout)
    check_phase(ngx)
    local ok, status, rbody, rheaders, info = ngx.run_worker_thread(pool, "audience.ngx_thread", "perform",
      thread_settings, method, url, headers, body, timeout)
    if not ok then
      if tostring(status):find("thread pool", 1, true) then
        error(("audience: nginx has no thread pool '%s': add `thread_pool %s threads=16;` to the main "
          .. "context of nginx.conf, or pass thread_pool = \"name\""):format(pool, pool), 0)
      end
      return nil, "network", "worker thread failed: " .. tostring(status), false
    end
    return status, rbody, rheaders, info
  end
  function http.close() end

  return {
    name = "ngx",
    http = http,
    sleep = function(seconds)
      check_phase(ngx)
      ngx.sleep(seconds)
    end,
    now = function()
      ngx.update_time()
      return ngx.now()
    end,
  }
end

--- name: "curl", "ngx" or nil (ngx inside nginx, else curl). pool: nginx thread pool.
function M.new(name, settings, pool)
  if name == nil then name = in_nginx() and "ngx" or "curl" end
  if name == "ngx" then
    if not in_nginx() then
      error("audience: transport \"ngx\" needs to run inside nginx (OpenResty / lua-nginx-module)", 0)
    end
    return ngx_transport(settings, pool or "audience")
  end
  return { name = "curl", http = core.http(settings), sleep = core.sleep, now = core.now }
end

return M
