-- TLS certificate checks through the real client, against the Systeme.io mock served
-- over HTTPS. The CA and the server certificates are made here with the openssl CLI,
-- in a temp dir that is removed afterwards, so no key material lives in the repository.
local audience = require "audience"
local mockserver = require "support.mockserver"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command; on failure raises with its output, which tells what openssl
-- disliked far better than an exit code.
local function run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  local code = out:match("exit=(%d+)%s*$")
  if code ~= "0" then error("command failed: " .. cmd .. "\n" .. out, 2) end
  return out
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  assert(f:write(text))
  f:close()
end

-- EC P-256 keys: an RSA key takes far longer to generate, above all under valgrind.
local NEWKEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

-- A server certificate for the given SANs, signed by the CA in dir.
local function server_cert(dir, name, cn, san)
  local key, csr, pem = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".csr", dir .. "/" .. name .. ".pem"
  local ext = dir .. "/" .. name .. ".ext"
  write(ext, table.concat({
    "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature",
    "extendedKeyUsage = serverAuth",
    "subjectAltName = " .. san,
  }, "\n") .. "\n")
  run(("openssl req -new %s -keyout %s -out %s -subj %s"):format(NEWKEY, quote(key), quote(csr), quote("/CN=" .. cn)))
  run(("openssl x509 -req -in %s -CA %s -CAkey %s -set_serial %d -days 2 -sha256 -extfile %s -out %s"):format(
    quote(csr), quote(dir .. "/ca.pem"), quote(dir .. "/ca.key"), math.random(1, 2 ^ 30), quote(ext), quote(pem)))
  return { cert = pem, key = key }
end

describe("TLS", function()
  local dir, ca, good, wrong

  setup(function()
    dir = run("mktemp -d /tmp/audience-tls.XXXXXXXX"):match("^(%S+)")
    assert(dir and dir:match("^/tmp/audience%-tls%."), "mktemp gave no directory")
    run(("openssl req -x509 %s -keyout %s -out %s -days 2 -sha256 -subj %s"
      .. " -addext %s -addext %s"):format(NEWKEY, quote(dir .. "/ca.key"), quote(dir .. "/ca.pem"),
      quote("/CN=audience throwaway test CA"), quote("basicConstraints = critical, CA:TRUE"),
      quote("keyUsage = critical, keyCertSign, cRLSign")))
    ca = dir .. "/ca.pem"
    good = mockserver.start("systeme", nil,
      { ssl = server_cert(dir, "server", "localhost", "DNS:localhost, IP:127.0.0.1") })
    wrong = mockserver.start("systeme", nil,
      { ssl = server_cert(dir, "wrong", "wrong.example", "DNS:wrong.example") })
  end)

  teardown(function()
    if good then good:stop() end
    if wrong then wrong:stop() end
    if dir and dir:match("^/tmp/audience%-tls%.") then os.execute("rm -rf " .. quote(dir)) end
  end)

  local function list(server, opts)
    -- No retries: a TLS failure is never retried anyway, and a success needs one try.
    local o = { api_key = "test-key", base_url = server.ssl_url, timeout = 5, retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local sys = audience.systeme(o)
    local page, err = sys.contacts:list{ limit = 10 }
    sys:close()
    return page, err
  end

  it("serves the mock over https on 127.0.0.1", function()
    assert.matches("^https://127%.0%.0%.1:%d+/", good.ssl_url)
  end)

  it("refuses a certificate from a CA that is not trusted (verify_tls defaults to on)", function()
    local page, err = list(good)
    assert.is_nil(page)
    assert.equal("network", err.kind)
    assert.equal("tls", err.code)
    assert.is_nil(err.status)
  end)

  it("accepts the same certificate with ca_file naming its CA", function()
    local page, err = list(good, { ca_file = ca })
    assert.is_nil(err)
    assert.same({}, page.items)
  end)

  it("refuses a certificate for another host name, even from the trusted CA", function()
    local page, err = list(wrong, { ca_file = ca })
    assert.is_nil(page)
    assert.equal("network", err.kind)
    assert.equal("tls", err.code)
  end)

  it("refuses a ca_file that does not exist as a TLS failure", function()
    local page, err = list(good, { ca_file = dir .. "/missing.pem" })
    assert.is_nil(page)
    assert.equal("network", err.kind)
    assert.equal("tls", err.code)
  end)

  it("skips every check with verify_tls = false", function()
    local page, err = list(good, { verify_tls = false })
    assert.is_nil(err)
    assert.same({}, page.items)
    page, err = list(wrong, { verify_tls = false })
    assert.is_nil(err)
    assert.same({}, page.items)
  end)
end)
