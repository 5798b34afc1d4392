-- The "ngx" transport: HTTP/1.1 on nginx's own non-blocking sockets (cosockets).
-- The request coroutine yields to nginx's event loop on every connect, send and
-- receive, so a worker carries as many calls in flight as it has connections.
-- The core's sans-I/O codec (core.http1_request / core.http1_parser) does the
-- HTTP; this file only moves bytes and maps failures to the curl transport's
-- kinds: "timeout", "network", "tls", "too_large", with `sent` false only when
-- the request provably never left.
--
-- What nginx decides, nginx decides: host names go through its `resolver`,
-- certificates are checked against `lua_ssl_trusted_certificate` (and
-- `lua_ssl_verify_depth`), idle connections wait in its per-worker pools.
local core = require "audience.core"

local M = {}

local DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT = 30, 10
local DEFAULT_POOL_SIZE, DEFAULT_IDLE = 64, 60
local READ_SIZE = 65536
-- A pooled connection the server has closed meanwhile fails before any byte of an
-- answer; such a request goes out once more on another connection, as libcurl does
-- (README, "Retries", says what that means for a POST).
local STALE_ATTEMPTS = 2

-- Phases where nginx lets a request yield on a socket or ngx.sleep.
local YIELDING_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local function check_phase(ngx)
  local phase = ngx.get_phase()
  if not YIELDING_PHASES[phase] then
    error(("audience: API calls cannot run in nginx's %s phase, which cannot wait for I/O; "
      .. "run them from a request handler (rewrite, access, content) or from a timer: "
      .. "ngx.timer.at(0, function() ... end)"):format(phase), 0)
  end
end

local function ms(seconds)
  local v = math.ceil(seconds * 1000)
  if v < 1 then return 1 end
  return v
end

-- "host:port" with IPv6 literals in brackets.
local function authority(host, port)
  if host:find(":", 1, true) then return "[" .. host .. "]:" .. port end
  return host .. ":" .. port
end

-- scheme://[userinfo@]host[:port] -> { host, port, tls, host_header }
local function parse_origin(scheme, auth)
  auth = auth:gsub("^.*@", "")
  local host, port
  if auth:sub(1, 1) == "[" then
    host, port = auth:match("^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = auth:match("^([^:]+):?(%d*)$")
  end
  if not host or host == "" then return nil end
  local default = scheme == "https" and 443 or 80
  port = tonumber(port) or default
  if port < 1 or port > 65535 then return nil end
  local shown = host:find(":", 1, true) and ("[" .. host .. "]") or host
  return {
    scheme = scheme, host = host, port = port, tls = scheme == "https",
    host_header = port == default and shown or (shown .. ":" .. port),
  }
end

local function parse_proxy(proxy)
  local ngx = _G.ngx
  local scheme, rest = proxy:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then scheme, rest = "http", proxy end
  if scheme:lower() ~= "http" then
    error("audience: inside nginx only http:// proxies are supported (proxy = \"" .. scheme .. "://...\")", 0)
  end
  local auth = rest:match("^([^/?#]*)")
  local userinfo = auth:match("^(.*)@")
  local origin = parse_origin("http", auth)
  if not origin then error("audience: bad option 'proxy' (not a proxy URL)", 0) end
  if userinfo then
    local user, pass = userinfo:match("^([^:]*):?(.*)$")
    origin.authorization = "Proxy-Authorization: Basic "
      .. ngx.encode_base64(ngx.unescape_uri(user) .. ":" .. ngx.unescape_uri(pass))
  end
  -- The pool name must tell proxies apart without spelling out their credentials.
  origin.key = core.sha256_hex(proxy):sub(1, 16)
  return origin
end

local Transport = {}
Transport.__index = Transport

-- The origin part of a URL, parsed once per distinct origin; the rest is the target.
-- Both are kept per URL too: a client sends the same few URLs (a list, a ping) again
-- and again, and a table lookup is cheaper than the pattern matches.
function Transport:origin(url)
  local known = self.url_origin[url]
  if known then return known, self.url_target[url] end
  local o, target = self:split(url)
  if o then
    if self.url_count >= 256 then self.url_origin, self.url_target, self.url_count = {}, {}, 0 end
    self.url_origin[url], self.url_target[url] = o, target
    self.url_count = self.url_count + 1
  end
  return o, target
end

function Transport:split(url)
  local sep = url:find("://", 1, true)
  if not sep then return nil end
  local stop = url:find("[/?#]", sep + 3)
  local key = stop and url:sub(1, stop - 1) or url
  local o = self.origins[key]
  if not o then
    local scheme = key:sub(1, sep - 1):lower()
    if scheme ~= "http" and scheme ~= "https" then return nil end
    o = parse_origin(scheme, key:sub(sep + 3))
    if not o then return nil end
    local via = self.proxy
    o.pool = table.concat({ scheme, o.host, o.port, self.verify and "v" or "n",
      via and via.key or "-" }, "|")
    o.connect_opts = { pool = o.pool, pool_size = self.pool_size }
    if self.origin_count >= 256 then self.origins, self.origin_count = {}, 0 end
    self.origins[key] = o
    self.origin_count = self.origin_count + 1
  end
  if not stop then return o, "/" end
  local target = url:sub(stop)
  local hash = target:find("#", 1, true)
  if hash then target = target:sub(1, hash - 1) end
  if target == "" then target = "/" elseif target:byte(1) == 63 then target = "/" .. target end -- "?"
  return o, target
end

function Transport:parser()
  local list = self.parsers
  local n = #list
  if n > 0 then
    local p = list[n]
    list[n] = nil
    return p
  end
  return core.http1_parser(self.max_body)
end

function Transport:release(p)
  local list = self.parsers
  if #list < 64 then list[#list + 1] = p end
end

-- Reads one response into parser p. Returns true, or nil, kind, message. The read
-- timeout set at connect covers the first read; later ones get what is left.
local function read_response(sock, p, deadline, now, connect_ms)
  local first = true
  while true do
    if not first then
      local left = deadline - now()
      if left <= 0 then return nil, "timeout", "no complete response before the timeout" end
      sock:settimeouts(connect_ms, ms(left), ms(left))
    end
    first = false
    local data, err = sock:receiveany(READ_SIZE)
    local done, kind, message
    if data then
      done, kind, message = p:feed(data)
    elseif err == "closed" then
      done, kind, message = p:eof()
    elseif err == "timeout" then
      return nil, "timeout", "no complete response before the timeout"
    else
      return nil, "network", "receive failed: " .. tostring(err)
    end
    if done then return true end
    if done == nil then return nil, kind, message end
  end
end

local function no_resolver(host)
  error(("audience: nginx cannot resolve %q: add a `resolver` directive to nginx.conf "
    .. "(e.g. `resolver 127.0.0.53 ipv6=off;`, or your network's DNS server)"):format(host), 0)
end

-- A CONNECT tunnel through the proxy to o. Returns true, or nil, kind, message.
function Transport:tunnel(sock, o, deadline)
  local via = self.proxy
  local target = authority(o.host, o.port)
  local req = core.http1_request("CONNECT", target, target, nil, nil, self.ua,
    via.authorization)
  local sent, err = sock:send(req)
  if not sent then return nil, "network", "proxy send failed: " .. tostring(err) end
  local p = self:parser()
  p:reset(false, true)
  local ok, kind, message = read_response(sock, p, deadline, self.now, self.connect_ms)
  local status = ok and p:response()
  self:release(p)
  if not ok then return nil, kind, "proxy CONNECT failed: " .. message end
  if status < 200 or status > 299 then
    return nil, "network", ("proxy %s answered CONNECT with status %d")
      :format(authority(via.host, via.port), status)
  end
  return true
end

-- A connected (and, for https, handshaken) socket for o, and whether it came from
-- the pool. nil, kind, message, false on failure: nothing was sent yet.
function Transport:connect(o, deadline)
  local ngx = self.ngx
  local sock = ngx.socket.tcp()
  local left = math.max(deadline - self.now(), 0.001)
  sock:settimeouts(math.min(self.connect_ms, ms(left)), ms(left), ms(left))
  local via = self.proxy
  local host, port = o.host, o.port
  if via then host, port = via.host, via.port end
  local ok, err = sock:connect(host, port, o.connect_opts)
  if not ok then
    err = tostring(err)
    if err:find("no resolver defined", 1, true) then no_resolver(host) end
    if err == "timeout" then
      return nil, "timeout", ("connecting to %s timed out"):format(authority(host, port))
    end
    return nil, "network", ("cannot connect to %s: %s"):format(authority(host, port), err)
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if reused then return sock, true end
  if via and o.tls then
    local tunnelled, kind, message = self:tunnel(sock, o, deadline)
    if not tunnelled then
      sock:close()
      return nil, kind, message
    end
  end
  if o.tls then
    local done, herr = sock:sslhandshake(false, o.host, self.verify)
    -- lua-resty-core 0.1.25: a handshake that completes at once reports success even
    -- when verification failed, having closed the socket; the closed socket tells.
    if done and select(2, sock:getreusedtimes()) == "closed" then
      done, herr = nil, "certificate verification failed"
    end
    if not done then
      sock:close()
      local message = ("TLS handshake with %s failed: %s"):format(authority(o.host, o.port), tostring(herr))
      local why = tostring(herr)
      if self.verify and (why:find("certificate", 1, true) or why:find("verify", 1, true)) then
        message = message .. " (inside nginx the trusted CAs are those of lua_ssl_trusted_certificate)"
      end
      if herr == "timeout" then return nil, "timeout", message end
      return nil, "tls", message
    end
  end
  return sock, false
end

-- One attempt on one connection: status, body, headers, info; or nil, kind, message,
-- sent, stale (a pooled connection that died before answering).
function Transport:exchange(o, target, method, headers, body, deadline)
  local sock, reused_or_kind, message = self:connect(o, deadline)
  if not sock then return nil, reused_or_kind, message, false end
  local reused = reused_or_kind
  local via = self.proxy
  local req
  if via and not o.tls then
    req = core.http1_request(method, o.scheme .. "://" .. o.host_header .. target, o.host_header,
      headers, body, self.ua, via.authorization)
  else
    req = core.http1_request(method, target, o.host_header, headers, body, self.ua)
  end
  local sent, err = sock:send(req)
  if not sent then
    sock:close()
    if err == "timeout" then return nil, "timeout", "sending the request timed out", true end
    return nil, "network", "send failed: " .. tostring(err), true, reused
  end
  local p = self:parser()
  p:reset(method == "HEAD", false)
  local ok, kind, rmessage = read_response(sock, p, deadline, self.now, self.connect_ms)
  if not ok then
    local stale = reused and kind == "network" and not p:started()
    self:release(p)
    sock:close()
    return nil, kind, rmessage, true, stale
  end
  local status, rbody, rheaders, reusable = p:response()
  self:release(p)
  if reusable then
    local kept = sock:setkeepalive(self.idle_ms, self.pool_size)
    if not kept then sock:close() end
  else
    sock:close()
  end
  return status, rbody, rheaders
end

function Transport:perform(method, url, headers, body, timeout)
  check_phase(self.ngx)
  local started = self.now()
  local deadline = started + (timeout or self.timeout)
  local o, target = self:origin(url)
  if not o then
    return nil, "network", "unsupported URL (http:// or https:// with a host expected)", false
  end
  for _ = 1, STALE_ATTEMPTS do
    local status, rbody, rheaders, sent, stale = self:exchange(o, target, method, headers, body, deadline)
    if status then
      return status, rbody, rheaders, { elapsed = self.now() - started, sent = true }
    end
    if not stale then return nil, rbody, rheaders, sent end
  end
  return nil, "network", "every pooled connection closed before answering", true
end

function Transport.close() end

--- settings: the client's transport settings (see client.lua).
function M.new(settings)
  local ngx = _G.ngx
  if settings.ca_file ~= nil then
    error("audience: ca_file is not used inside nginx, which checks certificates against "
      .. "lua_ssl_trusted_certificate: set that directive (and lua_ssl_verify_depth) in nginx.conf "
      .. "instead", 0)
  end
  if type(ngx.socket) ~= "table" or type(ngx.socket.tcp) ~= "function" then
    error("audience: this nginx Lua module has no ngx.socket.tcp", 0)
  end
  -- The event loop's cached clock, updated on every wake-up, serves deadlines and the
  -- quota alike: ngx.update_time formats nginx's five time strings, which would cost
  -- a call more than the rest of the transport's own work.
  local now = ngx.now
  local self = setmetatable({
    ngx = ngx, now = now,
    timeout = settings.timeout or DEFAULT_TIMEOUT,
    connect_ms = ms(settings.connect_timeout or DEFAULT_CONNECT_TIMEOUT),
    verify = settings.verify_tls ~= false,
    max_body = settings.max_body,
    pool_size = settings.keepalive_pool or DEFAULT_POOL_SIZE,
    idle_ms = ms(settings.keepalive_timeout or DEFAULT_IDLE),
    proxy = settings.proxy and parse_proxy(settings.proxy) or nil,
    ua = "User-Agent: " .. settings.user_agent,
    origins = {}, origin_count = 0, parsers = {}, url_origin = {}, url_target = {}, url_count = 0,
  }, Transport)
  return {
    name = "ngx",
    http = self,
    sleep = function(seconds)
      check_phase(ngx)
      ngx.sleep(seconds)
    end,
    now = now,
  }
end

return M
