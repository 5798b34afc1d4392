-- CSV (RFC 4180) and JSON lines: round trips of awkward values, malformed input, and
-- reading in constant memory.
local audience = require "audience"

local dir

local function write(name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local function read_all(path, opts)
  local rows = {}
  for row in assert(audience.read_csv(path, opts)) do rows[#rows + 1] = row end
  return rows
end

setup(function()
  dir = assert(io.popen("mktemp -d /tmp/audience-csv.XXXXXX")):read("l")
end)
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

describe("audience.read_csv", function()
  it("reads quoted commas, doubled quotes, CR and LF inside quotes, UTF-8, CRLF and LF ends", function()
    local path = write("a.csv", 'name,note,city\r\n'
      .. '"Smith, J","said ""hi""",Zürich\r\n'
      .. '"two\r\nlines","one\nline",\n'
      .. 'plain,,"東京"\n'
      .. '"","",last')
    assert.same({
      { name = "Smith, J", note = 'said "hi"', city = "Zürich" },
      { name = "two\r\nlines", note = "one\nline", city = "" },
      { name = "plain", note = "", city = "東京" },
      { name = "", note = "", city = "last" },
    }, read_all(path))
  end)

  it("skips a UTF-8 BOM and blank lines, and gives plain lists with header = false", function()
    local path = write("b.csv", "\239\187\191email,n\r\n\r\na@x,1\n\nb@x,2\n")
    assert.same({ { email = "a@x", n = "1" }, { email = "b@x", n = "2" } }, read_all(path))
    assert.same({ { "email", "n" }, { "a@x", "1" }, { "b@x", "2" } }, read_all(path, { header = false }))
  end)

  it("gives the line each record starts on, and reads from an open handle", function()
    local path = write("c.csv", 'a,b\n1,"x\ny"\n2,z\n')
    local f = assert(io.open(path, "rb"))
    local lines = {}
    for row, line in audience.read_csv(f) do lines[#lines + 1] = row.a .. "@" .. line end
    assert.same({ "1@2", "2@4" }, lines)
    assert.equal("file", io.type(f))   -- a caller's handle is left open
    f:close()
  end)

  it("raises an error naming the line for malformed input", function()
    local path = write("bad1.csv", 'a,b\n1,2\n3,"never closed\n4,5\n')
    assert.has_error(function() read_all(path) end, "audience.read_csv: " .. path
      .. ": line 3: unterminated quoted field (no closing quote before the end of the file)")
    path = write("bad2.csv", 'a,b\n"x"y,2\n')
    assert.has_error(function() read_all(path) end,
      "audience.read_csv: " .. path .. ": line 2: unexpected character after a closing quote")
    path = write("bad3.csv", 'a,b\n1,2,3\n')
    assert.has_error(function() read_all(path) end,
      "audience.read_csv: " .. path .. ": line 2: 3 fields, but the header has 2")
  end)

  it("returns nil, message for a missing file and raises on a wrong argument", function()
    local it, msg = audience.read_csv(dir .. "/missing.csv")
    assert.is_nil(it)
    assert.matches("missing%.csv", msg)
    assert.has_error(function() audience.read_csv(42) end,
      "audience: bad argument #1 to 'read_csv' (source: path or open file handle expected, got number)")
    assert.has_error(function() audience.read_csv(dir, { headers = true }) end,
      "audience: unknown option 'headers' in call to 'read_csv'")
  end)

  it("round-trips awkward values through audience.export", function()
    local awkward = { "", " padded ", "comma, inside", 'quote " inside', '""', "cr\rlf\r\nlf\nend",
      "Ünïcödé ✓ 😀", "trailing,", ",leading", "\"", "a\"\"b", "x\n" }
    local items = {}
    for i, v in ipairs(awkward) do items[i] = { id = i, email = "e" .. i .. "@x", value = v } end
    assert.equal(#items, audience.export(items, dir .. "/rt.csv", "csv"))
    local back = read_all(dir .. "/rt.csv")
    assert.equal(#items, #back)
    for i, row in ipairs(back) do
      assert.equal(tostring(i), row.id)
      assert.equal(awkward[i], row.value)
    end
    -- LF line ends too
    assert(audience.export(items, dir .. "/rt-lf.csv", "csv", { line_end = "\n" }))
    for i, row in ipairs(read_all(dir .. "/rt-lf.csv")) do assert.equal(awkward[i], row.value) end
  end)

  it("streams a million rows in constant memory", function()
    local path = dir .. "/big.csv"
    local f = assert(io.open(path, "wb"))
    f:write("id,email,name\n")
    local chunk = {}
    for i = 1, 1000000 do
      chunk[#chunk + 1] = ('%d,user%d@example.com,"Name, %d"\n'):format(i, i, i)
      if #chunk == 5000 then
        f:write(table.concat(chunk))
        chunk = {}
      end
    end
    f:write(table.concat(chunk))
    f:close()
    chunk = nil   -- luacheck: ignore 311

    collectgarbage()
    collectgarbage()
    local base = collectgarbage("count")
    local peak, n, last = base, 0, nil
    for row in audience.read_csv(path) do
      n = n + 1
      last = row
      if n % 100000 == 0 then peak = math.max(peak, collectgarbage("count")) end
    end
    assert.equal(1000000, n)
    assert.equal("Name, 1000000", last.name)
    -- A million rows kept would be hundreds of MB; a stream stays within a few.
    assert.is_true(peak - base < 8 * 1024, ("memory grew by %.0f KB"):format(peak - base))
    collectgarbage()
    assert.is_true(collectgarbage("count") - base < 1024)
    os.remove(path)
  end)
end)

describe("audience.read_jsonl", function()
  it("reads one value per line, skipping blank lines, and names the line of bad JSON", function()
    local path = write("a.jsonl", '{"id":1,"tags":["a"]}\n\n{"id":2,"email":"b@x"}\r\n')
    local values, lines = {}, {}
    for v, line in audience.read_jsonl(path) do
      values[#values + 1] = v
      lines[#lines + 1] = line
    end
    assert.same({ { id = 1, tags = { "a" } }, { id = 2, email = "b@x" } }, values)
    assert.same({ 1, 3 }, lines)
    if math.type then assert.equal("integer", math.type(values[1].id)) end

    path = write("bad.jsonl", '{"id":1}\n{"id":\n')
    assert.has_error(function() for _ in audience.read_jsonl(path) do end end)
    local ok, err = pcall(function() for _ in audience.read_jsonl(path) do end end)
    assert.is_false(ok)
    assert.matches("^audience%.read_jsonl: .*bad%.jsonl: line 2: invalid JSON", err)
  end)

  it("round-trips through audience.export with sorted keys", function()
    local items = { { z = 1, a = { y = true, b = "x\ny" }, email = "ü@x" }, { id = 2 } }
    assert(audience.export(items, dir .. "/rt.jsonl", "jsonl"))
    local f = assert(io.open(dir .. "/rt.jsonl", "rb"))
    assert.equal('{"a":{"b":"x\\ny","y":true},"email":"ü@x","z":1}', f:read("l"))
    f:close()
    local back = {}
    for v in audience.read_jsonl(dir .. "/rt.jsonl") do back[#back + 1] = v end
    assert.same(items, back)
  end)
end)
