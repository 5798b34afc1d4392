-- Every ```lua block of README.md and docs/*.md runs, so the documentation can never
-- drift from the API it shows. The three mocks run side by side and every block sees
-- all their base URLs and credentials in the environment (the variables that
-- scripts/with-mock.lua sets); each block gets freshly reset and seeded mocks and a
-- directory of its own. A block must exit with status 0: blocks check what they
-- show with assert.
--
-- First-line markers:
--   -- inside nginx          the block runs in a content handler of a real nginx
--                            worker (spec/support/ngx_run.lua), with the same variables
--                            exported through nginx's `env` directive
--   -- not run: <reason>     not run; counted and reported, never silent
-- Every ```nginx block is a whole http { } context and passes `nginx -t`; other
-- languages than lua, nginx, sh and json are refused. Relative Markdown links of every
-- page must point at an existing file or folder.
local mockserver = require "support.mockserver"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The exit status travels in the output: under LuaJIT io.popen():close() says nothing.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__status=$?\""))
  local out = p:read("a")
  p:close()
  local body, status = out:match("^(.-)__status=(%d+)%s*$")
  return tonumber(status) == 0, body or out
end

local ROOT = (mockserver.spec_dir:gsub("/spec$", ""))
local LUA = rawget(_G, "jit") and "luajit" or "lua5.4"
local BUILD = rawget(_G, "jit") and "build/luajit" or "build/lua5.4"

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path) return (os.rename(path, path)) ~= nil end

local function pages()
  local list = { "README.md", "bench/README.md" }
  local ok, out = sh("cd " .. sh_quote(ROOT) .. " && ls docs/*.md")
  assert(ok, out)
  for name in out:gmatch("[^\n]+") do list[#list + 1] = name end
  return list
end

-- Fenced blocks, also indented ones (inside list items): { page, line, lang, code }.
local function blocks_of(page)
  local found, open = {}, nil
  local n = 0
  for line in (read_file(ROOT .. "/" .. page) .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if open then
      if line:match("^%s*```%s*$") then
        found[#found + 1] = { page = page, line = open.line, lang = open.lang, code = table.concat(open.lines, "\n") }
        open = nil
      else
        open.lines[#open.lines + 1] = line:sub(#open.indent + 1)
      end
    else
      local indent, lang = line:match("^(%s*)```(%S*)%s*$")
      if indent then open = { line = n, lang = lang, indent = indent, lines = {} } end
    end
  end
  assert(not open, page .. ": a block opened on line " .. (open and open.line or 0) .. " is never closed")
  return found
end

-- The anchors GitHub makes of a page's headings: lower case, punctuation dropped,
-- spaces as hyphens.
local function anchors(file)
  local set = {}
  for heading in read_file(file):gmatch("\n#+ ([^\n]+)") do
    set[(heading:lower():gsub("[^%w%s_-]", ""):gsub("%s", "-"))] = true
  end
  return set
end

local MOCKS = {
  systeme = { config = { accounts = { demo = { keys = { "test-key", "test-key-2" } } } }, seed = "contacts" },
  creamailer = { config = { accounts = { demo = { token = "test-token", secret = "test-secret" },
    reader = { token = "read-token", secret = "read-secret", access = "read" } } } },
  subscribeflow = { config = { accounts = { demo = { keys = { "sf_live_test" } } } }, seed = "subscribers" },
}

local function environment(m)
  return {
    SYSTEME_BASE_URL = m.systeme.url, SYSTEME_API_KEY = "test-key",
    SYSTEME_API_KEY_2 = "test-key-2",   -- a second key of the same account
    CREAMAILER_BASE_URL = m.creamailer.url, CREAMAILER_V2_BASE_URL = m.creamailer.root .. "/v2/api",
    CREAMAILER_ACCESS_TOKEN = "test-token", CREAMAILER_SHARED_SECRET = "test-secret",
    -- a key that may only read, for the forbidden kind
    CREAMAILER_READ_ACCESS_TOKEN = "read-token", CREAMAILER_READ_SHARED_SECRET = "read-secret",
    SUBSCRIBEFLOW_BASE_URL = m.subscribeflow.url, SUBSCRIBEFLOW_API_KEY = "sf_live_test",
    MAGIC_LINK_TOKEN = "pref-token-1",   -- seeded below: a preferences link's token
  }
end

local all, lua_blocks = {}, {}
for _, page in ipairs(pages()) do
  for _, b in ipairs(blocks_of(page)) do
    all[#all + 1] = b
    if b.lang == "lua" then lua_blocks[#lua_blocks + 1] = b end
  end
end

describe("docs", function()
  local mocks, env, box, tmp = {}, nil, nil, nil
  local counts = { run = 0, nginx = 0, not_run = 0 }

  setup(function()
    for name, m in pairs(MOCKS) do mocks[name] = mockserver.start(name, m.config) end
    env = environment(mocks)
    local ok, out = sh("mktemp -d")
    assert(ok, out)
    tmp = out:match("[^\n]+")
  end)

  teardown(function()
    if box then box:stop() end
    for _, m in pairs(mocks) do m:stop() end
    if tmp then sh("rm -rf " .. sh_quote(tmp)) end
    print(("\ndocs: %d Lua blocks ran (%d of them inside nginx), %d marked not run")
      :format(counts.run, counts.nginx, counts.not_run))
  end)

  before_each(function()
    for name, m in pairs(MOCKS) do
      mocks[name]:reset(m.config)
      if m.seed then mocks[name]:seed(m.seed, 25) end
    end
    mocks.subscribeflow:seed("preferences", { { token = "pref-token-1", email = "reader@example.com" } })
  end)

  it("has its pages", function()
    for _, page in ipairs{ "systeme", "creamailer", "subscribeflow", "webhooks", "openresty", "command",
        "quotas", "errors-and-retries", "json", "creamailer-sdk", "development" } do
      assert.is_true(exists(ROOT .. "/docs/" .. page .. ".md"), "docs/" .. page .. ".md is missing")
    end
    local _, lines = read_file(ROOT .. "/README.md"):gsub("\n", "")
    assert.is_true(lines <= 300, "README.md has " .. lines .. " lines")
    assert.is_true(#lua_blocks >= 20, "only " .. #lua_blocks .. " Lua blocks found")
  end)

  it("gives every fenced block a known language, so that no Lua block hides", function()
    local known = { lua = true, sh = true, nginx = true, json = true, [""] = true }
    for _, b in ipairs(all) do
      assert.is_true(known[b.lang] == true, ("%s:%d: block of unknown language '%s'"):format(b.page, b.line, b.lang))
    end
  end)

  it("has nginx blocks that pass nginx -t", function()
    local checked = 0
    for i, b in ipairs(all) do
      if b.lang == "nginx" then
        local name = ("%s:%d"):format(b.page, b.line)
        assert.is_truthy(b.code:match("^http {"), name .. ": an nginx block is a whole http { } context")
        local dir = ("%s/nginx%d"):format(tmp, i)
        assert(sh("mkdir -p " .. sh_quote(dir)))
        local f = assert(io.open(dir .. "/nginx.conf", "wb"))
        f:write("load_module /usr/lib/nginx/modules/ndk_http_module.so;\n",
          "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n",
          "pid nginx.pid;\nevents {}\n", b.code, "\n")
        f:close()
        local ok, out = sh(('"$(command -v nginx || echo /usr/sbin/nginx)" -t -p %s/ -c nginx.conf -e %s/error.log')
          :format(sh_quote(dir), sh_quote(dir)))
        assert.is_true(ok, name .. ": nginx -t failed:\n" .. out)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 2, "the README and docs/openresty.md show an nginx configuration")
  end)

  it("has only relative links that resolve", function()
    local seen = {}
    for _, page in ipairs(pages()) do
      local dir = page:match("^(.*)/[^/]*$") or "."
      local text = read_file(ROOT .. "/" .. page)
      for target in text:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^%a[%w+.-]*:") and not target:match("^#") then
          local path, anchor = target:match("^([^#]*)#?(.*)$")
          local file = path == "" and ROOT .. "/" .. page or ROOT .. "/" .. dir .. "/" .. path
          seen[#seen + 1] = target
          assert.is_true(exists(file), page .. ": link to " .. target .. " is broken")
          if anchor ~= "" then
            assert.is_true(anchors(file)[anchor] == true, page .. ": no heading for #" .. anchor .. " in " .. path)
          end
        end
      end
    end
    assert.is_true(#seen > 10, "the pages should link to each other")
  end)

  for i, b in ipairs(lua_blocks) do
    local first = b.code:match("^[^\n]*")
    local reason = first:match("^%-%- not run:%s*(.*)$")
    local in_nginx = first:match("^%-%- inside nginx") ~= nil
    local name = ("%s:%d"):format(b.page, b.line)
    if reason then
      it(name .. " (not run: " .. reason .. ")", function()
        assert.is_true(#reason >= 10, name .. ": a not-run block must say why")
        counts.not_run = counts.not_run + 1
      end)
    elseif in_nginx then
      it(name .. " inside nginx", function()
        if not box then
          local ngx_run = require "support.ngx_run"
          local lines = {}
          for k, v in pairs(env) do lines[#lines + 1] = ("env %s=%s;"):format(k, v) end
          table.sort(lines)
          box = ngx_run.start{ main = table.concat(lines, "\n") }
        end
        -- What the block prints with ngx.say/ngx.print is collected and handed back, as
        -- the runner answers the spec with the block's results.
        local said = box:run(table.concat({
          "local out, say, print_ = {}, ngx.say, ngx.print",
          "ngx.say = function(...) out[#out + 1] = table.concat({ ... }) .. '\\n' return 1 end",
          "ngx.print = function(...) out[#out + 1] = table.concat({ ... }) return 1 end",
          "local ok, err = pcall(function()", b.code, "end)",
          "ngx.say, ngx.print = say, print_",
          "if not ok then error(err, 0) end",
          "return table.concat(out)" }, "\n"))
        assert.is_string(said)
        counts.run, counts.nginx = counts.run + 1, counts.nginx + 1
      end)
    else
      it(name, function()
        local dir = ("%s/block%d"):format(tmp, i)
        local file = dir .. "/block.lua"
        assert(sh("mkdir -p " .. sh_quote(dir)))
        local f = assert(io.open(file, "wb"))
        f:write(b.code, "\n")
        f:close()
        local vars = { ("LUA_PATH=%s"):format(sh_quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;")),
          ("LUA_CPATH=%s"):format(sh_quote(ROOT .. "/" .. BUILD .. "/?.so;;")),
          ("PATH=%s"):format(sh_quote(ROOT .. "/bin:" .. (os.getenv("PATH") or ""))) }
        for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. sh_quote(v) end
        local ok, out = sh(("cd %s && env %s %s block.lua"):format(sh_quote(dir), table.concat(vars, " "), LUA))
        assert.is_true(ok, name .. " failed:\n" .. out)
        counts.run = counts.run + 1
      end)
    end
  end
end)
