-- Cursor pagination over many pages, in both orders, in constant memory.
local audience = require "audience"
local mockserver = require "support.mockserver"

describe("systeme pagination", function()
  local m, sys

  setup(function()
    m = mockserver.start("systeme")
    m:seed("contacts", 1000)
    sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 10 }
  end)

  teardown(function()
    if sys then sys:close() end
    if m then m:stop() end
  end)

  for _, order in ipairs{ "asc", "desc" } do
    it("each walks 1,000 contacts in " .. order .. " order, each id exactly once", function()
      local seen, n, previous = {}, 0, nil
      for c in sys.contacts:each{ limit = 100, order = order } do
        assert.is_nil(seen[c.id], "id seen twice: " .. tostring(c.id))
        seen[c.id] = true
        n = n + 1
        if previous then
          if order == "asc" then assert.is_true(c.id > previous) else assert.is_true(c.id < previous) end
        end
        previous = c.id
      end
      assert.equal(1000, n)
      for id = 1, 1000 do assert.is_true(seen[id], "missing id " .. id) end
    end)
  end

  it("uses the largest page size when none is given", function()
    local before = m:stats().requests
    local n = 0
    for _ in sys.contacts:each() do n = n + 1 end
    assert.equal(1000, n)
    assert.equal(10, m:stats().requests - before)
  end)

  it("pages yields page tables with items, has_more and next", function()
    local pages, items = 0, 0
    for page in sys.contacts:pages{ limit = 50, order = "asc" } do
      pages = pages + 1
      items = items + #page.items
      assert.equal(pages < 20, page.has_more)
    end
    assert.equal(20, pages)
    assert.equal(1000, items)
  end)

  it("stops at max_items and asks only for what it needs", function()
    local before = m:stats().requests
    local n = 0
    for _ in sys.contacts:each{ max_items = 15 } do n = n + 1 end
    assert.equal(15, n)
    assert.equal(1, m:stats().requests - before)
    n = 0
    for _ in sys.contacts:each{ max_items = 250, limit = 100 } do n = n + 1 end
    assert.equal(250, n)
  end)

  it("holds only one page in memory however many it walks", function()
    collectgarbage("collect")
    local peak, n = 0, 0
    for _ in sys.contacts:each{ limit = 10 } do
      n = n + 1
      if n % 100 == 0 then
        collectgarbage("collect")
        peak = math.max(peak, collectgarbage("count"))
      end
    end
    collectgarbage("collect")
    local after = collectgarbage("count")
    assert.equal(1000, n)
    -- 1,000 contacts kept would be several hundred KiB; one page of 10 is a few KiB.
    assert.is_true(peak - after < 200, ("memory grew by %.0f KiB while iterating"):format(peak - after))
  end)

  it("raises the error from each when a page fails", function()
    m:fault{ match = "/api/contacts", times = 3, action = { status = 500 } }
    local ok, err = pcall(function()
      for _ in sys.contacts:each() do end
    end)
    assert.is_false(ok)
    assert.equal(audience.Error, getmetatable(err))
    assert.equal("server", err.kind)
  end)
end)
