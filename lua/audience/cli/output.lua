-- What `audience` writes for people and scripts: item and table display, JSON lines on
-- stdout, and the progress display on stderr.
local core = require "audience.core"
local jsonl = require "audience.jsonl"
local csv = require "audience.csv"
local helpers = require "audience.helpers"

local M = {}

-- ===================================================================  output

-- Display width of UTF-8 text, approximately: one column per character.
local function ulen(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function utrunc(s, width)
  if ulen(s) <= width then return s end
  local out, n = {}, 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if n >= width - 1 then break end
    n = n + 1
    out[n] = ch
  end
  return table.concat(out) .. "…"
end

local function display(v, width)
  local s = csv.cell_text(v):gsub("[%c]", " ")
  return utrunc(s, width)
end

local function pad(s, width)
  local n = ulen(s)
  if n >= width then return s end
  return s .. (" "):rep(width - n)
end

local function emit_json(ctx, v)
  ctx.out:write(jsonl.encode(v), "\n")
end

local function show_item(ctx, o, item)
  if o.json then return emit_json(ctx, item) end
  if type(item) ~= "table" then
    ctx.out:write(tostring(item), "\n")
    return
  end
  local keys = helpers.default_columns(item)
  local width = 0
  for _, k in ipairs(keys) do width = math.max(width, #k) end
  for _, k in ipairs(keys) do
    ctx.out:write(pad(k, width), "  ", display(item[k], 200), "\n")
  end
end

-- Aligned columns for people. Widths come from the first rows, so output streams: later
-- rows are cut to fit.
local function table_printer(ctx, columns)
  local block, widths = {}, nil
  local MAX = 32
  local function flush()
    if not columns then return end
    if not widths then
      widths = {}
      for i, c in ipairs(columns) do widths[i] = math.min(MAX, ulen(c)) end
      for _, cells in ipairs(block) do
        for i, s in ipairs(cells) do widths[i] = math.max(widths[i], math.min(MAX, ulen(s))) end
      end
      local head = {}
      for i, c in ipairs(columns) do head[i] = pad(utrunc(c, widths[i]), widths[i]) end
      ctx.out:write((table.concat(head, "  "):gsub("%s+$", "")), "\n")
    end
    for _, cells in ipairs(block) do
      local line = {}
      for i, s in ipairs(cells) do line[i] = pad(utrunc(s, widths[i]), widths[i]) end
      ctx.out:write((table.concat(line, "  "):gsub("%s+$", "")), "\n")
    end
    block = {}
  end
  return {
    add = function(row)
      columns = columns or helpers.default_columns(row)
      local cells = {}
      for i, c in ipairs(columns) do cells[i] = display(row[c], MAX) end
      block[#block + 1] = cells
      if #block >= 100 then flush() end
    end,
    finish = flush,
  }
end

-- ===================================================================  progress

local Progress = {}
Progress.__index = Progress

local PLAIN_EVERY, PLAIN_INTERVAL, BAR_INTERVAL = 1000, 5, 0.1

local function duration(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%dh%02dm"):format(math.floor(s / 3600), math.floor(s % 3600 / 60)) end
  if s >= 60 then return ("%dm%02ds"):format(math.floor(s / 60), s % 60) end
  return s .. "s"
end

--- Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise
--- (every 1,000 items or 5 seconds), nothing with --no-progress.
function Progress.new(ctx, label, total)
  local now = core.monotonic()
  local p = setmetatable({ out = ctx.err, mode = ctx.progress, label = label, total = total, count = 0,
    started = now, drawn = nil, width = 0, line_count = 0, line_time = now, ctx = ctx }, Progress)
  -- The client tells about quota waits through ctx (cli_client.lua): the line says so.
  ctx.quota_wait = function(seconds) p:waiting(seconds) end
  return p
end

--- The account's quota is used up: the line shows the wait until it ends.
function Progress:waiting(seconds)
  local now = core.monotonic()
  self.wait_until = now + seconds
  if self.mode == "bar" then self:draw(now)
  elseif self.mode == "plain" then self:plain(now) end
end

function Progress:text(now, bar)
  local elapsed = now - self.started
  local rate = elapsed > 0 and self.count / elapsed or 0
  local parts = { self.label, " " }
  local total = self.total
  if total and total > 0 then
    local frac = math.min(1, self.count / total)
    parts[#parts + 1] = ("%d/%d"):format(self.count, total)
    if bar then
      local filled = math.floor(frac * 20)
      parts[#parts + 1] = " [" .. ("#"):rep(filled) .. ("-"):rep(20 - filled) .. "]"
    end
    parts[#parts + 1] = (" %d%%"):format(math.floor(frac * 100))
  else
    parts[#parts + 1] = ("%d"):format(self.count)
  end
  parts[#parts + 1] = (", %.0f/s"):format(rate)
  if total and total > 0 then
    local left = total - self.count
    parts[#parts + 1] = ", ETA " .. ((rate > 0 and left >= 0) and duration(left / rate) or "--")
  end
  if self.wait_until and now < self.wait_until then
    parts[#parts + 1] = (", waiting for quota, %d s"):format(math.ceil(self.wait_until - now))
  end
  return table.concat(parts)
end

function Progress:draw(now)
  local s = self:text(now, true)
  local n = ulen(s)
  self.out:write("\r", s, n < self.width and (" "):rep(self.width - n) or "")
  self.out:flush()
  self.width, self.drawn = n, now
end

function Progress:plain(now)
  self.out:write(self:text(now, false), "\n")
  self.line_count, self.line_time = self.count, now
end

function Progress:add(n)
  self.count = self.count + (n or 1)
  if self.mode == "none" then return end
  local now = core.monotonic()
  if self.mode == "bar" then
    if not self.drawn or now - self.drawn >= BAR_INTERVAL then self:draw(now) end
  elseif math.floor(self.count / PLAIN_EVERY) > math.floor(self.line_count / PLAIN_EVERY)
    or now - self.line_time >= PLAIN_INTERVAL then
    -- On round numbers (1000, 2000...), and at least every few seconds when it is slow.
    self:plain(now)
  end
end

--- Writes a message line to stderr without garbling the bar.
function Progress:log(msg)
  if self.mode == "bar" and self.drawn then
    self.out:write("\r", (" "):rep(self.width), "\r")
    self.drawn, self.width = nil, 0
  end
  self.out:write(msg, "\n")
end

function Progress:finish()
  if self.finished then return end
  self.finished = true
  self.wait_until = nil
  if self.ctx.quota_wait then self.ctx.quota_wait = nil end
  local now = core.monotonic()
  if self.mode == "bar" and (self.drawn or self.count > 0) then
    self:draw(now)
    self.out:write("\n")
  elseif self.mode == "plain" and self.count ~= self.line_count
    and (self.line_count > 0 or now - self.started >= 1) then
    -- A short run ends with its result alone; a long one with where it got to.
    self:plain(now)
  end
end

M.emit_json = emit_json
M.show_item = show_item
M.table_printer = table_printer
M.Progress = Progress

return M
