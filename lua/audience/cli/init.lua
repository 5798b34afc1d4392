-- The `audience` command: list, read, write, export and import audiences from a shell.
--
--   audience <provider> <resource> <action> [args] [options]
--
-- bin/audience only calls main(arg); everything is in lua/audience/cli/ so that it can
-- be tested and checked like the rest of the module. Credentials come only from the
-- environment, so they never show in `ps` or in shell history. Results go to stdout;
-- progress, notes and errors go to stderr, so that `audience ... --json | jq` and
-- `> out.csv` stay clean.
--
-- This file dispatches a command and runs the simple actions (list, get, create, update,
-- delete, export); help.lua says what there is, args.lua reads the options,
-- client.lua builds the client, output.lua writes, import.lua does the bulk
-- writes and errors.lua turns failures into exit codes.
local audience = require "audience"
local Error = require "audience.error"
local core = require "audience.core"
local cli_errors = require "audience.cli.errors"
local cli_help = require "audience.cli.help"
local cli_args = require "audience.cli.args"
local cli_output = require "audience.cli.output"
local cli_client = require "audience.cli.client"
local cli_import = require "audience.cli.import"

local usage = cli_errors.usage
local rethrow_interrupt = cli_errors.rethrow_interrupt
local api_failure = cli_errors.api_failure
local params_of = cli_args.params_of
local positive_integer = cli_args.positive_integer
local split_list = cli_args.split_list
local read_data = cli_args.read_data
local format_of = cli_args.format_of
local emit_json = cli_output.emit_json
local show_item = cli_output.show_item
local table_printer = cli_output.table_printer
local Progress = cli_output.Progress

local M = {}

M.EXIT = cli_errors.EXIT
local EXIT = M.EXIT

M.parse = cli_args.parse

-- ===================================================================  simple actions

local function scoped(r, list, method, ...)
  if list ~= nil then return r[method](r, list, ...) end
  return r[method](r, ...)
end

-- A resource whose items are nested may show as flat rows (spec.rows): a transform
-- and the columns a table shows.
local function display_rows(spec)
  if spec.rows then return spec.rows.transform, spec.rows.display end
end

local function do_list(ctx, o, r, spec, list)
  local params = params_of(o)
  local limit = positive_integer(o, "limit") or 50
  if not o.all then params.max_items = limit end
  local transform, columns = display_rows(spec)
  if o.columns then columns = split_list(o.columns) end
  local printer = not o.json and table_printer(ctx, columns)
  local count = 0
  for item in scoped(r, list, "each", params) do
    count = count + 1
    if o.json then
      emit_json(ctx, item)
    else
      printer.add(transform and transform(item) or item)
    end
  end
  if printer then printer.finish() end
  if not o.all and count >= limit then
    ctx.err:write(("(the first %d; --limit N for more, --all for every one)\n"):format(limit))
  end
  return EXIT.ok
end

local function do_get(ctx, o, r, spec, list, id)
  local item, err
  if spec.get then item, err = spec.get(r, list, id) else item, err = scoped(r, list, "get", id) end
  if item == nil then return api_failure(ctx, err) end
  show_item(ctx, o, item)
  return EXIT.ok
end

local function do_write(ctx, o, r, spec, list, action, id)
  local result, err
  if action == "create" then
    local body = read_data(o)
    if spec.create then
      result, err = spec.create(r, list, body)
    else
      result, err = scoped(r, list, "create", body)
    end
  elseif action == "update" then
    local body = read_data(o)
    if spec.update then
      result, err = spec.update(r, list, id, body)
    else
      result, err = scoped(r, list, "update", id, body)
    end
  else
    if spec.delete then result, err = spec.delete(r, list, id) else result, err = scoped(r, list, "delete", id) end
  end
  if result == nil then return api_failure(ctx, err) end
  if o["dry-run"] then return EXIT.ok end
  if result == true then
    if o.json then
      emit_json(ctx, { ok = true, action = action, id = id })
    else
      local past = { create = "created", update = "updated", delete = "deleted" }
      ctx.out:write(past[action], id and (" " .. id) or "", "\n")
    end
  else
    show_item(ctx, o, result)
  end
  return EXIT.ok
end

local function do_export(ctx, o, r, spec, list)
  local format = format_of(o, o.output, "csv")
  local params = params_of(o)
  -- Parameters an export goes with unless told otherwise (say, oldest first, so that
  -- items added during a long export come last, not lost).
  for k, v in pairs(spec.rows and spec.rows.export_params or {}) do
    if params[k] == nil then params[k] = v end
  end
  local limit = positive_integer(o, "limit")
  local transform, columns
  if format == "csv" and spec.rows then
    transform, columns = spec.rows.transform, spec.rows.columns
  end
  if o.columns then columns = split_list(o.columns) end

  local out = ctx.out
  if o.output then
    local f, msg = io.open(o.output, "wb")
    if not f then usage("cannot write --output: " .. msg) end
    out = f
  end
  local progress = Progress.new(ctx, "export", nil)
  -- A bar redrawn over rows printed to the same terminal would garble both.
  if not o.output and progress.mode == "bar" and ctx.stdout_is_tty() then progress.mode = "none" end
  local pages = scoped(r, list, "pages", params)
  local page, i, given = nil, 0, 0
  -- Items page by page, so that the first page's total (when the API gives one) can
  -- feed the progress display.
  local function next_item()
    if limit and given >= limit then return nil end
    for _ = 1, math.huge do
      if page then
        i = i + 1
        local item = page.items[i]
        if item ~= nil then
          given = given + 1
          progress:add(1)
          return item
        end
      end
      page, i = pages(), 0
      if page == nil then return nil end
      if page.total and not progress.total then progress.total = limit and math.min(limit, page.total) or page.total end
    end
  end
  local n, err = audience.export(next_item, out, format, { transform = transform, columns = columns })
  progress:finish()
  if out ~= ctx.out then out:close() end
  if not n then
    if Error.is(err) then
      rethrow_interrupt(err)
      return api_failure(ctx, err)
    end
    ctx.err:write("audience: cannot write the export: ", tostring(err), "\n")
    return EXIT.failure
  end
  if o.output then ctx.err:write(("exported %d items to %s\n"):format(n, o.output)) end
  return EXIT.ok
end

-- ===================================================================  main

local function dispatch(ctx, argv)
  local o = M.parse(argv)
  local pos = o.positional
  local provider, resource_name, action = pos[1], pos[2], pos[3]

  if not provider then
    if o.help then
      ctx.out:write(cli_help.top_help())
      return EXIT.ok
    end
    usage("which provider? " .. cli_help.either(cli_help.names(), "or"))
  end
  local cmd = cli_help.command_of(provider)
  if not cmd then
    usage("unknown provider '" .. provider .. "' (" .. cli_help.either(cli_help.names(), "or") .. ")")
  end
  if not resource_name then
    if o.help then
      ctx.out:write(cli_help.provider_help(provider))
      return EXIT.ok
    end
    usage("which resource? " .. table.concat(cmd.order, ", "))
  end
  local spec = cmd.resources[resource_name]
  if not spec then
    usage(("unknown resource '%s' for %s (%s)"):format(resource_name, provider, table.concat(cmd.order, ", ")))
  end
  if o.help then
    ctx.out:write(cli_help.resource_help(provider, resource_name))
    return EXIT.ok
  end
  if not action then usage("which action? " .. spec.actions) end
  if not cli_help.has_action(spec, action) then
    usage(("%s %s has no action '%s' (%s)"):format(provider, resource_name, action, spec.actions))
  end
  cli_args.check_options(o, action)
  local list
  if spec.scoped then
    list = o.list
    if not list then usage(provider .. " " .. resource_name .. " needs --list ID") end
  elseif o.list then
    usage("--list applies to " .. cli_help.scoped_resources() .. " only")
  end

  local args = {}
  for i = 4, #pos do args[#args + 1] = pos[i] end
  local id
  if action == "get" or action == "update" or action == "delete" then
    id = args[1]
    if not id or args[2] then usage(action .. " takes exactly one " .. (spec.id or "ID")) end
  elseif action ~= "tag" and action ~= "untag" and #args > 0 then
    usage(action .. " takes no argument '" .. args[1] .. "'")
  end

  local client = cli_client.make_client(ctx, provider, o)
  local r = client[resource_name]

  if action == "list" then return do_list(ctx, o, r, spec, list)
  elseif action == "get" then return do_get(ctx, o, r, spec, list, id)
  elseif action == "create" or action == "update" or action == "delete" then
    return do_write(ctx, o, r, spec, list, action, id)
  elseif action == "export" then return do_export(ctx, o, r, spec, list)
  elseif action == "import" then return cli_import.do_import(ctx, o, client, spec, list)
  elseif action == "tag" or action == "untag" then
    return cli_import.do_tag(ctx, o, client, spec, action == "tag", args)
  end
  return cli_import.do_sync(ctx, o, client, spec, list)
end

local isatty = core.isatty

--- Runs the command; returns the exit code. `ctx` (for tests) may give out, err,
--- getenv, progress ("bar", "plain" or "none") and stdout_is_tty.
function M.run(argv, ctx)
  ctx = ctx or {}
  ctx.out = ctx.out or io.stdout
  ctx.err = ctx.err or io.stderr
  ctx.getenv = ctx.getenv or os.getenv
  for _, a in ipairs(argv) do
    if a == "--no-progress" then ctx.progress = "none" end
  end
  ctx.progress = ctx.progress or (isatty(2) and "bar" or "plain")
  ctx.stdout_is_tty = ctx.stdout_is_tty or function() return isatty(1) end

  local ok, result = pcall(dispatch, ctx, argv)
  if ok then return result end
  return cli_errors.report(ctx, result)
end

--- bin/audience: runs the command with the process's arguments and exits with its code.
function M.main(argv)
  local args = {}
  for i = 1, #(argv or {}) do args[i] = argv[i] end
  local code = M.run(args)
  io.stdout:flush()
  io.stderr:flush()
  os.exit(code)
end

return M
