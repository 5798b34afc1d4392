-- HTTPS from inside nginx on the ngx transport: certificates are checked against what
-- nginx trusts (lua_ssl_trusted_certificate), never against ca_file or the system
-- store. The CA and server certificates are made here with the openssl CLI in a temp
-- dir that is removed afterwards.
local mockserver = require "support.mockserver"
local ngx_run = require "support.ngx_run"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  if out:match("exit=(%d+)%s*$") ~= "0" then error("command failed: " .. cmd .. "\n" .. out, 2) end
  return out
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  assert(f:write(text))
  f:close()
end

local NEWKEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

local function server_cert(dir, name, cn, san)
  local key, csr, pem = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".csr", dir .. "/" .. name .. ".pem"
  write(dir .. "/" .. name .. ".ext", table.concat({
    "basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature",
    "extendedKeyUsage = serverAuth", "subjectAltName = " .. san,
  }, "\n") .. "\n")
  run(("openssl req -new %s -keyout %s -out %s -subj %s"):format(NEWKEY, quote(key), quote(csr), quote("/CN=" .. cn)))
  run(("openssl x509 -req -in %s -CA %s -CAkey %s -set_serial %d -days 2 -sha256 -extfile %s -out %s"):format(
    quote(csr), quote(dir .. "/ca.pem"), quote(dir .. "/ca.key"), math.random(1, 2 ^ 30),
    quote(dir .. "/" .. name .. ".ext"), quote(pem)))
  return { cert = pem, key = key }
end

local LIST = [[
  local sys = require("audience").systeme{ api_key = "test-key", base_url = ARGS.url, timeout = 5,
    retries = 0, verify_tls = ARGS.verify, proxy = ARGS.proxy }
  local page, err = sys.tags:list()
  if page then return "ok", #page.items end
  return err.kind, err.code, err.message
]]

describe("ngx transport over TLS", function()
  local dir, good, wrong, trusting, plain

  setup(function()
    dir = run("mktemp -d /tmp/audience-tls.XXXXXXXX"):match("^(%S+)")
    assert(dir and dir:match("^/tmp/audience%-tls%."), "mktemp gave no directory")
    run(("openssl req -x509 %s -keyout %s -out %s -days 2 -sha256 -subj %s -addext %s -addext %s"):format(
      NEWKEY, quote(dir .. "/ca.key"), quote(dir .. "/ca.pem"), quote("/CN=audience throwaway test CA"),
      quote("basicConstraints = critical, CA:TRUE"), quote("keyUsage = critical, keyCertSign, cRLSign")))
    -- nginx matches the requested name against the certificate's DNS names only, so a
    -- URL with an IP address needs that address among them too.
    good = mockserver.start("systeme", nil,
      { ssl = server_cert(dir, "server", "localhost", "DNS:localhost, DNS:127.0.0.1, IP:127.0.0.1") })
    wrong = mockserver.start("systeme", nil,
      { ssl = server_cert(dir, "wrong", "wrong.example", "DNS:wrong.example") })
    trusting = ngx_run.start{ http = ("  lua_ssl_trusted_certificate %s;\n  lua_ssl_verify_depth 2;\n")
      :format(dir .. "/ca.pem") }
    plain = ngx_run.start()
  end)

  teardown(function()
    if trusting then trusting:stop() end
    if plain then plain:stop() end
    if good then good:stop() end
    if wrong then wrong:stop() end
    if dir and dir:match("^/tmp/audience%-tls%.") then os.execute("rm -rf " .. quote(dir)) end
  end)

  it("works with an upstream trusted only through lua_ssl_trusted_certificate", function()
    assert.same({ "ok", 0 }, { trusting:run(LIST, { url = good.ssl_url }) })
    -- Twice: the second call rides the pooled TLS connection.
    assert.same({ "ok", 0 }, { trusting:run(LIST, { url = good.ssl_url }) })
  end)

  it("refuses the same upstream when nginx does not trust its CA, pointing at the directive", function()
    local kind, code, message = plain:run(LIST, { url = good.ssl_url })
    assert.equal("network", kind, message)
    assert.equal("tls", code, message)
    assert.matches("lua_ssl_trusted_certificate", message)
  end)

  it("refuses a certificate for another host name, even from the trusted CA", function()
    local kind, code = trusting:run(LIST, { url = wrong.ssl_url })
    assert.equal("network", kind)
    assert.equal("tls", code)
  end)

  it("tunnels through an http proxy with CONNECT, verifying the origin's certificate", function()
    local proxy = require("support.proxy").start{ user = "u", password = "sk-SECRET-proxy-tls" }
    local ok, failure = pcall(function()
      assert.same({ "ok", 0 }, { trusting:run(LIST, { url = good.ssl_url, proxy = proxy.url }) })
      assert.same({ ("CONNECT 127.0.0.1:%d auth=ok"):format(good.ssl_port) }, proxy:log())
      local kind, code = trusting:run(LIST, { url = wrong.ssl_url, proxy = proxy.url })
      assert.same({ "network", "tls" }, { kind, code })
      local bad = proxy.url:gsub("sk%-SECRET%-proxy%-tls", "nope")
      local k2, _, message = trusting:run(LIST, { url = good.ssl_url, proxy = bad })
      assert.equal("network", k2)
      assert.matches("CONNECT with status 407", message)
      assert.not_matches("nope", message)
    end)
    proxy:stop()
    assert(ok, failure)
  end)

  it("skips the checks with verify_tls = false, in a pool of its own", function()
    assert.same({ "ok", 0 }, { plain:run(LIST, { url = wrong.ssl_url, verify = false }) })
    local kind, code, message = plain:run(LIST, { url = wrong.ssl_url })
    assert.same({ "network", "tls" }, { kind, code }, message)
  end)
end)
