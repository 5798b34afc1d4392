-- Runs Lua snippets inside a real nginx worker (Debian's nginx + lua-nginx-module,
-- LuaJIT, this tree's core) and hands their results back to the spec:
--
--   local ngx_run = require "support.ngx_run"
--   local box = ngx_run.start{ http = "lua_ssl_trusted_certificate /tmp/ca.pem;" }
--   local page, err = box:run([[
--     local sys = require("audience").systeme{ api_key = ARGS.key, base_url = ARGS.url }
--     return sys.tags:list()
--   ]], { key = "k", url = mock.url })
--   box:stop()   -- raises if a worker crashed meanwhile
--
-- The snippet runs in a content handler (it may do I/O, sleep, spawn light threads),
-- sees ARGS (a plain value) and returns plain values; tables come back as copies, and
-- values that cannot cross (functions, userdata such as audience.null) as "<type>".
-- A raised error is raised again here with the snippet's traceback.
local nginx = require "support.nginx"
local mockserver = require "support.mockserver"
local literal = require "support.lua_literal"

local M = {}

local Box = {}
Box.__index = Box

local unpack = table.unpack or _G.unpack

--- Runs code with ARGS = args; returns what it returned.
function Box:run(code, args, timeout)
  local source = "local ARGS = " .. literal(args) .. "\n" .. code
  local res, err = mockserver.request("POST", self.app.url .. "/__run",
    { body = source, timeout = timeout or 60, headers = { ["Content-Type"] = "text/plain" } })
  if not res then error("nginx did not answer the snippet: " .. tostring(err), 2) end
  if res.status ~= 200 then error(("snippet handler failed (%d): %s"):format(res.status, res.body), 2) end
  local packed = assert(load(res.body, "=results"))()
  if not packed.ok then error("snippet raised: " .. tostring(packed[1]), 2) end
  return unpack(packed, 1, packed.n)
end

--- Like run, but returns false and the message when the snippet raises.
function Box:try(code, args, timeout)
  local source = "local ARGS = " .. literal(args) .. "\n" .. code
  local res = assert(mockserver.request("POST", self.app.url .. "/__run",
    { body = source, timeout = timeout or 60, headers = { ["Content-Type"] = "text/plain" } }))
  local packed = assert(load(res.body, "=results"))()
  return packed.ok, unpack(packed, 1, packed.n)
end

function Box:error_log() return self.app:error_log() end

function Box:stop() return self.app:stop() end

--- opts: http, server, main (extra nginx.conf lines for each context), workers.
function M.start(opts)
  opts = opts or {}
  local box = setmetatable({}, Box)
  box.app = nginx.start{
    workers = opts.workers or 1,
    main = opts.main,
    http = "  lua_shared_dict audience_quota 1m;\n  client_body_buffer_size 1m;\n" .. (opts.http or ""),
    server = "    location = /__run { content_by_lua_block { require('openresty.runner').handle() } }\n"
      .. (opts.server or ""),
  }
  return box
end

return M
