-- client:parallel(calls, { concurrency = n }): many independent calls with at most n
-- requests in flight, on libcurl's multi interface.
--
-- Each call runs as a coroutine through the client's ordinary pipeline (quota, retries,
-- hooks, errors). The client is never changed: its lanes (a weak table, coroutine ->
-- transport) give the coroutines of a run a transport whose `perform` and `sleep` yield
-- to the scheduler below instead of blocking, while any other caller of the same client
-- (another coroutine, a nested run) keeps its own. A transfer is handed to the multi
-- handle, a wait becomes a wake-up time, and the scheduler resumes each coroutine when
-- its answer or its time has come.
local core = require "audience.core"
local options = require "audience.options"

local M = {}

local POLL_CAP = 1.0   -- seconds; the scheduler looks at its sleepers at least this often

local function check_args(calls, opts)
  if type(calls) ~= "table" then
    error("audience: bad argument #1 to 'parallel' (calls: list expected, got " .. options.describe(calls) .. ")", 0)
  end
  for i = 1, #calls do
    local c = calls[i]
    if type(c) ~= "function" and type(c) ~= "table" then
      error(("audience: bad argument #1 to 'parallel' (calls[%d]: function or request table expected, got %s)")
        :format(i, options.describe(c)), 0)
    end
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("audience: bad argument #2 to 'parallel' (opts: table or nil expected, got " .. type(opts) .. ")", 0)
  end
  opts = opts or {}
  options.check_call_options("parallel", opts, { concurrency = "positive_integer" })
  return opts.concurrency or 8
end

-- A request table is shorthand for client:request.
local function as_function(client, call)
  if type(call) == "function" then return call end
  return function()
    return client:request(call.method or call[1], call.path or call[2],
      { query = call.query, body = call.body, headers = call.headers, timeout = call.timeout,
        content_type = call.content_type, idempotency_key = call.idempotency_key })
  end
end

local YIELD_PERFORM, YIELD_SLEEP = {}, {}

local yielding_http = {
  perform = function(_, method, url, headers, body, timeout)
    return coroutine.yield(YIELD_PERFORM, method, url, headers, body, timeout)
  end,
  close = function() end,
}

local function yielding_sleep(seconds)
  coroutine.yield(YIELD_SLEEP, seconds)
end

local YIELDING = { http = yielding_http, sleep = yielding_sleep }

-- Inside nginx every call already yields to nginx's event loop (the ngx transport), so
-- `concurrency` light threads each take the next call until none is left.
local function run_in_nginx(client, calls, concurrency)
  local ngx = _G.ngx
  local results, next_call, n = {}, 1, #calls
  local function worker()
    while next_call <= n do
      local i = next_call
      next_call = next_call + 1
      local ok, value, err = pcall(as_function(client, calls[i]))
      results[i] = ok and { value = value, err = err } or { err = value }
    end
  end
  local threads = {}
  for t = 1, math.min(concurrency, n) do threads[t] = ngx.thread.spawn(worker) end
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
  return results
end

--- Runs `calls` (functions using `client`, or request tables) and returns one result per
--- call, in input order: { value = first return, err = second return or raised error }.
function M.run(client, calls, opts)
  local concurrency = check_args(calls, opts)
  local n = #calls
  local results = {}
  if n == 0 then return results end
  if client._transport_name == "ngx" then return run_in_nginx(client, calls, concurrency) end
  if client._transport_name == "dry-run" then
    -- Nothing is in flight long enough to overlap: the calls run one after another.
    for i = 1, n do
      local ok, value, err = pcall(as_function(client, calls[i]))
      results[i] = ok and { value = value, err = err } or { err = value }
    end
    return results
  end

  client._multi = client._multi or core.multi(client._transport_settings)
  local multi = client._multi
  client._lanes = client._lanes or setmetatable({}, { __mode = "k" })
  local lanes = client._lanes

  local next_call, running = 1, 0
  local by_transfer = {}   -- transfer id -> coroutine
  local sleepers = {}      -- { co =, wake = } (a handful: a plain list is fine)
  local index_of = {}      -- coroutine -> call index
  local next_id = 0

  -- Resumes `co` with the given values and files it by what it asks for next.
  local function step(co, ...)
    local ok, what, a, b, c, d, e = coroutine.resume(co, ...)
    if not ok then
      results[index_of[co]] = { err = what }
    elseif coroutine.status(co) == "dead" then
      results[index_of[co]] = { value = what, err = a }
    elseif what == YIELD_PERFORM then
      next_id = next_id + 1
      local added, add_err = pcall(multi.add, multi, next_id, a, b, c, d, e)
      if not added then
        -- The same failure a blocking perform would have raised, raised in the call.
        return step(co, nil, "network", tostring(add_err), false)
      end
      by_transfer[next_id] = co
      return
    elseif what == YIELD_SLEEP then
      sleepers[#sleepers + 1] = { co = co, wake = core.monotonic() + (a or 0) }
      return
    else
      -- Something else yielded (a user's own coroutine use): not ours to schedule.
      results[index_of[co]] = { err = "audience: a call inside parallel() yielded outside audience" }
    end
    running = running - 1
    index_of[co] = nil
    lanes[co] = nil
  end

  local function start_more()
    while running < concurrency and next_call <= n do
      local i = next_call
      next_call = next_call + 1
      local co = coroutine.create(as_function(client, calls[i]))
      lanes[co] = YIELDING
      index_of[co] = i
      running = running + 1
      step(co)
    end
  end

  local ok, failure = pcall(function()
    start_more()
    while running > 0 do
      local now = core.monotonic()
      local timeout = POLL_CAP
      for _, s in ipairs(sleepers) do timeout = math.min(timeout, math.max(0, s.wake - now)) end
      if multi:pending() > 0 then
        for _, r in ipairs(multi:poll(timeout)) do
          local co = by_transfer[r.id]
          by_transfer[r.id] = nil
          if r.status then
            step(co, r.status, r.body, r.headers, { elapsed = r.elapsed, sent = true })
          else
            step(co, nil, r.kind, r.message, r.sent)
          end
        end
      elseif timeout > 0 then
        core.sleep(timeout)
      end
      now = core.monotonic()
      local still = {}
      for _, s in ipairs(sleepers) do
        if s.wake <= now then step(s.co) else still[#still + 1] = s end
      end
      sleepers = still
      start_more()
    end
  end)

  if not ok then
    -- Leave no transfer behind for the next run to trip over.
    for id, co in pairs(by_transfer) do
      multi:cancel(id)
      lanes[co] = nil
    end
    error(failure, 0)
  end
  return results
end

return M
