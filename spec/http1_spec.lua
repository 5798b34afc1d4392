-- The core's sans-I/O HTTP/1.1 codec (core.http1_request / core.http1_parser), the
-- HTTP of the ngx transport: responses fed whole and byte by byte, framing, limits.
local core = require "audience.core"

-- Feeds `bytes` in pieces of `step` bytes (all at once when nil), then the end of input
-- when `close` is set. Returns the parser and the last result triple.
local function parse(bytes, opts)
  opts = opts or {}
  local p = core.http1_parser(opts.max_body)
  p:reset(opts.head, opts.connect)
  local step = opts.step or #bytes
  local r, kind, message = false, nil, nil
  local i = 1
  while i <= #bytes and r ~= nil do
    r, kind, message = p:feed(bytes:sub(i, i + step - 1))
    i = i + step
  end
  if r == false and opts.close then r, kind, message = p:eof() end
  return p, r, kind, message
end

local function response(bytes, opts)
  local p, r, kind, message = parse(bytes, opts)
  assert(r == true, ("response not complete: %s %s %s"):format(tostring(r), tostring(kind), tostring(message)))
  local status, body, headers, reusable = p:response()
  return { status = status, body = body, headers = headers, reusable = reusable }
end

describe("http1 codec", function()
  describe("requests", function()
    it("writes the request line, Host, the headers, a Content-Length and the body", function()
      local req = core.http1_request("POST", "/api/tags?x=1", "api.example:8443",
        { "Accept: application/json", "X-Key: k" }, '{"a":1}', "User-Agent: ua")
      assert.equal("POST /api/tags?x=1 HTTP/1.1\r\nHost: api.example:8443\r\nAccept: application/json\r\n"
        .. "X-Key: k\r\nUser-Agent: ua\r\nContent-Length: 7\r\n\r\n{\"a\":1}", req)
    end)

    it("gives a bodyless POST a zero length and a GET none", function()
      assert.matches("Content%-Length: 0\r\n\r\n$", core.http1_request("POST", "/", "h", {}))
      assert.not_matches("Content%-Length", core.http1_request("GET", "/", "h", {}))
    end)

    it("refuses injection, naming the argument but not the header", function()
      assert.error_matches(function() core.http1_request("GE T", "/", "h") end, "method must be an HTTP token")
      assert.error_matches(function() core.http1_request("GET", "/ x", "h") end, "target must be")
      assert.error_matches(function() core.http1_request("GET", "/", "h\r\nX: y") end, "host must be")
      local ok, err = pcall(core.http1_request, "GET", "/", "h", { "X-Key: sekrit\r\nEvil: 1" })
      assert.is_false(ok)
      assert.matches("headers%[1%] contains CR, LF or NUL", err)
      assert.not_matches("sekrit", err)
      assert.error_matches(function() core.http1_request("HEAD", "/", "h", nil, "x") end,
        "HEAD request cannot have a body")
      assert.error_matches(function() core.http1_request("GET", "/", "h", { 1 }) end, "headers%[1%] must be a string")
    end)
  end)

  describe("responses", function()
    local chunked = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n"

    it("reads a chunked body after an interim response, byte by byte as whole", function()
      for _, step in ipairs{ 1, 2, 7, 1000 } do
        local r = response(chunked, { step = step })
        assert.equal(201, r.status)
        assert.equal("hello world", r.body)
        assert.equal("1, 2", r.headers["x-a"])
        assert.is_nil(r.headers.trailer)
        assert.is_true(r.reusable)
      end
    end)

    it("reads a Content-Length body and keeps the connection", function()
      local r = response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nabc")
      assert.same({ status = 200, body = "abc", reusable = true,
        headers = { ["content-length"] = "3", ["content-type"] = "text/plain" } }, r)
    end)

    it("reads until close when nothing delimits the body, and never reuses it", function()
      local p, r = parse("HTTP/1.1 200 OK\r\n\r\nuntil the end", { step = 3 })
      assert.is_false(r)
      assert.is_true(p:eof())
      local status, body, _, reusable = p:response()
      assert.equal(200, status)
      assert.equal("until the end", body)
      assert.is_false(reusable)
    end)

    it("follows Connection: close and HTTP/1.0 keep-alive", function()
      assert.is_false(response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").reusable)
      assert.is_false(response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable)
      assert.is_true(response("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").reusable)
    end)

    it("has no body for HEAD, 204 and 304 whatever the headers say", function()
      local r = response("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", { head = true })
      assert.equal("", r.body)
      assert.equal("1000", r.headers["content-length"])
      assert.equal("", response("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").body)
      assert.equal("", response("HTTP/1.1 304 Not Modified\r\n\r\n").body)
    end)

    it("ends a CONNECT answer with its headers", function()
      local r = response("HTTP/1.1 200 Connection established\r\n\r\n", { connect = true })
      assert.equal(200, r.status)
      assert.is_false(r.reusable)
    end)

    it("does not reuse a connection that sent more than the response", function()
      assert.is_false(response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1").reusable)
    end)

    it("is too_large past max_body, by length or by chunks", function()
      local _, r, kind, message = parse("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", { max_body = 10 })
      assert.same({ nil, "too_large" }, { r, kind })
      assert.matches("max_body %(10 bytes%)", message)
      _, r, kind = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n",
        { max_body = 10, step = 1 })
      assert.same({ nil, "too_large" }, { r, kind })
      _, r, kind = parse("HTTP/1.1 200 OK\r\n\r\n" .. ("x"):rep(11), { max_body = 10 })
      assert.same({ nil, "too_large" }, { r, kind })
    end)

    it("is too_large past 256 KiB of headers", function()
      local big = "HTTP/1.1 200 OK\r\n" .. ("X-Pad: " .. ("p"):rep(1000) .. "\r\n"):rep(300)
      local _, r, kind, message = parse(big, { step = 4096 })
      assert.same({ nil, "too_large" }, { r, kind })
      assert.matches("headers exceed", message)
    end)

    it("calls a truncated response a network error, naming whether anything came", function()
      local _, r, kind, message = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", { close = true })
      assert.same({ nil, "network" }, { r, kind })
      assert.matches("before the response was complete", message)
      local p = core.http1_parser()
      assert.is_false(p:started())
      local _, k2, m2 = p:eof()
      assert.equal("network", k2)
      assert.matches("before any response", m2)
    end)

    it("refuses malformed framing without echoing the bytes", function()
      local cases = {
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "SMTP ready\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-secret\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
      }
      for _, bytes in ipairs(cases) do
        local _, r, kind, message = parse(bytes)
        assert.is_nil(r, bytes)
        assert.equal("network", kind)
        assert.not_matches("secret", message)
      end
    end)

    it("is reusable after reset and refuses a response() before completion", function()
      local p = core.http1_parser()
      assert.is_false(p:feed("HTTP/1.1 200 OK\r\n"))
      assert.error_matches(function() p:response() end, "no complete response")
      p:reset(false, false)
      assert.is_true(p:feed("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"))
      assert.equal(404, (p:response()))
      assert.error_matches(function() p:feed(1) end, "data must be a string")
      assert.error_matches(function() core.http1_parser(0) end, "max_body must be a positive integer")
    end)
  end)
end)
