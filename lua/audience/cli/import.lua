-- Bulk writes of `audience`: import (resumable through a checkpoint file), tag, untag
-- and sync, which read rows or emails from a file and count each row's outcome.
local audience = require "audience"
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local helpers = require "audience.helpers"
local cli_errors = require "audience.cli.errors"
local cli_args = require "audience.cli.args"
local cli_output = require "audience.cli.output"

local EXIT = cli_errors.EXIT
local usage = cli_errors.usage
local is_interrupt = cli_errors.is_interrupt
local rethrow_interrupt = cli_errors.rethrow_interrupt
local api_failure = cli_errors.api_failure
local format_of = cli_args.format_of
local emit_json = cli_output.emit_json
local Progress = cli_output.Progress

local M = {}

-- ===================================================================  import

local function open_rows(path, format)
  local reader = format == "csv" and audience.read_csv or audience.read_jsonl
  local rows, msg = reader(path)
  if not rows then usage("cannot read --file: " .. tostring(msg)) end
  return rows
end

-- The number of rows, for the progress display; nil when the file is large (a second
-- pass would cost too much) or unreadable (the import itself will say why).
local function count_rows(path, format)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  if not size or size > 64 * 1024 * 1024 then return nil end
  local n = 0
  local ok, err = pcall(function()
    for _ in open_rows(path, format) do n = n + 1 end
  end)
  if not ok then
    rethrow_interrupt(err)
    return nil
  end
  return n
end

local function basename(path)
  return path:match("([^/]+)$") or path
end

local function read_checkpoint(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local state = json.decode(text)
  if type(state) ~= "table" or type(state.row) ~= "number" or type(state.counts) ~= "table" then
    usage("checkpoint " .. path .. " is not readable; delete it to start over")
  end
  return state
end

-- Written to a temporary file and renamed: a crash leaves the old checkpoint or the new
-- one, never half of one.
local function save_checkpoint(path, state)
  local tmp = path .. ".tmp"
  local f = io.open(tmp, "wb")
  if not f then return false end
  f:write(jsonl.encode(state), "\n")
  f:close()
  return os.rename(tmp, path)
end

-- What a row's error means for the import: a row that failed, or a cause (auth, quota,
-- network) that would fail every row and so stops it. Row handlers return its verdict.
local function classify(err)
  rethrow_interrupt(err)
  if helpers.is_fatal(err) then return "fatal", err end
  return "failed", tostring(err)
end

local function import_summary(ctx, o, state, how)
  local c = state.counts
  local rows = c.created + c.existing + c.updated + c.failed
  if o.json then
    emit_json(ctx, { file = o.file, rows = rows, created = c.created, existing = c.existing, updated = c.updated,
      failed = c.failed, last_row = state.row, status = how })
  end
  ctx.err:write(("import %s: %s after row %d: %d created, %d existing, %d updated, %d failed\n")
    :format(o.file, how, state.row, c.created, c.existing, c.updated, c.failed))
end

local MAX_SHOWN_FAILURES = 100

local function do_import(ctx, o, client, spec, list)
  if not o.file then usage("import needs --file FILE") end
  local format = format_of(o, o.file, "csv")
  local dry = o["dry-run"]
  local cp_path = o.checkpoint or (o.file .. ".checkpoint")
  local state = { file = basename(o.file), row = 0, counts = { created = 0, existing = 0, updated = 0, failed = 0 } }
  if not dry then
    local saved = read_checkpoint(cp_path)
    if saved and not o.resume then
      usage(("%s exists (an earlier run stopped after row %d): pass --resume to go on from there, "
        .. "or delete it to start over"):format(cp_path, saved.row))
    elseif saved then
      if saved.file ~= state.file then
        usage(cp_path .. " belongs to " .. tostring(saved.file) .. ", not " .. o.file)
      end
      state = saved
      for _, k in ipairs{ "created", "existing", "updated", "failed" } do state.counts[k] = state.counts[k] or 0 end
    elseif o.resume then
      ctx.err:write("no checkpoint at ", cp_path, ": starting at the first row\n")
    end
  end
  local rows = open_rows(o.file, format)
  local total = count_rows(o.file, format)
  local progress = Progress.new(ctx, "import", total and math.max(0, total - state.row))
  local shown = 0
  local function failed(n, reason)
    state.counts.failed = state.counts.failed + 1
    shown = shown + 1
    if shown <= MAX_SHOWN_FAILURES then
      progress:log(("row %s: %s"):format(n, reason))
    elseif shown == MAX_SHOWN_FAILURES + 1 then
      progress:log("(more failed rows are not shown; the summary counts them)")
    end
  end
  local function done_through(n)
    state.row = n
    if not dry then save_checkpoint(cp_path, state) end
  end

  -- The provider's command description says how rows go: in batches of one request
  -- each (import_batches: size, entry(row), send(client, list, batch, update)), or one
  -- at a time (import_rows(client, o, classify) -> a handler giving each row's outcome:
  -- "created", "existing", "updated", "failed" with a reason, or "fatal" with the error).
  local fatal
  local loop
  if spec.import_batches then
    local batches = spec.import_batches
    local update = o.update == true
    loop = function()
      local batch, emails, last = {}, {}, nil
      local function flush()
        if #batch == 0 then return true end
        local report, err = batches.send(client, list, batch, update)
        if err then
          rethrow_interrupt(err)
          fatal = err
          return false
        end
        state.counts.created = state.counts.created + report.added
        state.counts.updated = state.counts.updated + report.updated
        for _, f in ipairs(report.failed) do
          local reason = tostring(f.reason)
          if not update and reason:lower():find("already", 1, true) then
            state.counts.existing = state.counts.existing + 1
          else
            failed(emails[tostring(f.email):lower()] or "?", tostring(f.email) .. ": " .. reason)
          end
        end
        done_through(last)
        progress:add(#batch)
        batch, emails = {}, {}
        return true
      end
      local n = 0
      for row in rows do
        n = n + 1
        if n > state.row then
          local entry = batches.entry(row)
          batch[#batch + 1] = entry
          last = n
          if type(entry.email) == "string" then emails[entry.email:lower()] = n end
          if #batch >= batches.size and not flush() then return end
        end
      end
      flush()
    end
  else
    local handle = spec.import_rows(client, o, classify)
    loop = function()
      local n = 0
      for row in rows do
        n = n + 1
        if n > state.row then
          local outcome, detail = handle(row, n)
          if outcome == "fatal" then
            fatal = detail
            return
          elseif outcome == "failed" then
            failed(n, detail)
          else
            state.counts[outcome] = state.counts[outcome] + 1
          end
          done_through(n)
          progress:add(1)
        end
      end
    end
  end

  local ok, err = pcall(loop)
  progress:finish()
  if not ok then
    if is_interrupt(err) then
      if not dry then save_checkpoint(cp_path, state) end
      import_summary(ctx, o, state, "interrupted")
      ctx.err:write("resume with the same command and --resume\n")
      return EXIT.interrupted
    end
    if type(err) == "string" and err:find("^audience%.read_") then
      if not dry then save_checkpoint(cp_path, state) end
      ctx.err:write("audience: ", err, "\n")
      import_summary(ctx, o, state, "stopped")
      return EXIT.usage
    end
    error(err, 0)
  end
  if fatal then
    if not dry then save_checkpoint(cp_path, state) end
    ctx.err:write("audience: ", tostring(fatal), "\n")
    import_summary(ctx, o, state, "stopped")
    ctx.err:write("fix the cause, then resume with the same command and --resume\n")
    return EXIT.api
  end
  if not dry then os.remove(cp_path) end
  import_summary(ctx, o, state, dry and "dry run, nothing sent" or "done")
  return state.counts.failed > 0 and EXIT.partial or EXIT.ok
end

-- ===================================================================  tag, untag, sync

-- Emails from positionals, or from a file: a CSV with an "email" column, or a plain
-- list with one address per line (no header).
local function email_source(o, positional)
  if not o.file then
    if #positional == 0 then usage("give the emails as arguments or --file FILE") end
    return positional, #positional
  end
  local format = format_of(o, o.file, "csv")
  if format == "jsonl" then
    local rows = open_rows(o.file, "jsonl")
    return function()
      local row = rows()
      return row and row.email
    end
  end
  local rows, msg = audience.read_csv(o.file, { header = false })
  if not rows then usage("cannot read --file: " .. tostring(msg)) end
  local column, pending
  local first = rows()
  if first then
    for i, cell in ipairs(first) do
      if cell:lower() == "email" then column = i end
    end
    if not column then column, pending = 1, first[1] end
  end
  return function()
    if pending then
      local e = pending
      pending = nil
      return e
    end
    local cells = first and rows()
    return cells and cells[column]
  end
end

-- The items of a list or iterator, counted on the progress display as they are taken.
local function ticking(items, progress)
  local i = 0
  return function()
    local item
    if type(items) == "table" then
      i = i + 1
      item = items[i]
    else
      item = items()
    end
    if item ~= nil then progress:add(1) end
    return item
  end
end

local function do_tag(ctx, o, client, spec, adding, positional)
  if #o.tag == 0 then usage((adding and "tag" or "untag") .. " needs --tag NAME") end
  local emails = email_source(o, positional)
  if o["dry-run"] then
    local list = {}
    if type(emails) == "table" then list = emails else for e in emails do list[#list + 1] = e end end
    local plan = { dry_run = true, action = adding and "tag" or "untag", tags = o.tag, emails = list }
    if o.json then emit_json(ctx, plan) else
      ctx.out:write(("DRY RUN %s %s: %d contacts: %s\n"):format(plan.action, table.concat(o.tag, ", "), #list,
        table.concat(list, ", ")))
    end
    return EXIT.ok
  end
  local progress = Progress.new(ctx, adding and "tag" or "untag", type(emails) == "table" and #emails or nil)
  local report, err = spec.retag(client, adding, ticking(emails, progress), o.tag)
  progress:finish()
  if err then rethrow_interrupt(err) end
  for _, f in ipairs(report.failed) do ctx.err:write(("failed: %s: %s\n"):format(tostring(f.email), f.reason)) end
  for _, e in ipairs(report.not_found) do ctx.err:write("not found: ", e, "\n") end
  if o.json then
    emit_json(ctx, { done = report.done, failed = report.failed, not_found = report.not_found })
  else
    ctx.out:write(("%s: %d done, %d not found, %d failed\n"):format(adding and "tag" or "untag", report.done,
      #report.not_found, #report.failed))
  end
  if err then return api_failure(ctx, err) end
  return (#report.failed > 0 or #report.not_found > 0) and EXIT.partial or EXIT.ok
end

local function do_sync(ctx, o, client, spec, list)
  if not o.file then usage("sync needs --file FILE") end
  local format = format_of(o, o.file, "csv")
  if o["dry-run"] then
    local msg = ("DRY RUN sync %s into list %s: reads the list, then imports the new%s rows\n")
      :format(o.file, list, o["no-update"] and "" or " and changed")
    ctx.out:write(msg)
    return EXIT.ok
  end
  local rows = open_rows(o.file, format)
  local progress = Progress.new(ctx, "sync", count_rows(o.file, format))
  local source = ticking(function()
    local row = rows()
    return row and spec.import_batches.entry(row)
  end, progress)
  local report, err = spec.sync(client, list, source, { key = o.key, update = not o["no-update"] })
  progress:finish()
  if not report then
    rethrow_interrupt(err)
    return api_failure(ctx, err)
  end
  for _, f in ipairs(report.failed) do ctx.err:write(("failed: %s: %s\n"):format(tostring(f.email), f.reason)) end
  if o.json then
    emit_json(ctx, { added = report.added, updated = report.updated, unchanged = report.unchanged,
      failed = report.failed })
  else
    ctx.out:write(("sync: %d added, %d updated, %d unchanged, %d failed\n"):format(report.added, report.updated,
      report.unchanged, #report.failed))
  end
  if err then
    rethrow_interrupt(err)
    return api_failure(ctx, err)
  end
  return #report.failed > 0 and EXIT.partial or EXIT.ok
end

M.do_import = do_import
M.do_tag = do_tag
M.do_sync = do_sync

return M
