-- Paging styles: how to ask for a page and how to read one. A provider's description
-- names its style (`paging.style`) and the fields it uses; resource.lua calls
--   first(cfg, params, iterating) -> query for the first page
--   read(cfg, body, query) -> items, has_more, total, next_query  (or nil, reason)
local type, pairs, next = type, pairs, next

local M = {}

local function copy(t)
  local out = {}
  if t then for k, v in pairs(t) do out[k] = v end end
  return out
end

-- An iterator asks for the largest page, or for no more than max_items needs.
local function iterating_size(cfg, params)
  if params.max_items and params.max_items < cfg.max then
    return math.max(cfg.min or 1, params.max_items)
  end
  return cfg.max
end

local function without_max_items(params)
  local q = copy(params)
  q.max_items = nil
  return q
end

-- Cursors: the next page starts after the last item's id. The query of a page is only
-- read: a single page asked for with no params goes out with the (empty) params table.
M.cursor = {
  first = function(cfg, params, iterating)
    if not iterating and next(params) == nil then return params end
    local q = without_max_items(params)
    if iterating and q[cfg.size] == nil then q[cfg.size] = iterating_size(cfg, params) end
    return q
  end,
  read = function(cfg, body, query)
    local items = body[cfg.items]
    if type(items) ~= "table" then return nil, "response has no '" .. cfg.items .. "' list" end
    local has_more = body[cfg.more] == true and #items > 0
    local nxt
    if has_more then
      local last = items[#items]
      local cursor = type(last) == "table" and last[cfg.id]
      if cursor == nil then return nil, "last item has no '" .. cfg.id .. "' to continue from" end
      if cursor == query[cfg.cursor] then return nil, "pagination did not advance" end
      nxt = copy(query)
      nxt[cfg.cursor] = cursor
    end
    return items, has_more, nil, nxt
  end,
}

-- Numbered pages (page/per_page, page/pagesize), 0- or 1-based. With a meta object the
-- API says how many pages there are; without one, a full page means there may be more.
M.page = {
  first = function(cfg, params, iterating)
    local q = without_max_items(params)
    if q[cfg.page] == nil then q[cfg.page] = cfg.first end
    if q[cfg.size] == nil then q[cfg.size] = iterating and iterating_size(cfg, params) or cfg.default end
    return q
  end,
  read = function(cfg, body, query)
    local items = body
    if cfg.items then items = type(body) == "table" and body[cfg.items] or nil end
    if type(items) ~= "table" then return nil, "response has no list of items" end
    local page = tonumber(query[cfg.page])
    if not page then return nil, "page number is not a number" end
    local has_more, total
    if cfg.meta then
      local meta = body[cfg.meta]
      if type(meta) ~= "table" then return nil, "response has no '" .. cfg.meta .. "'" end
      local current = tonumber(meta[cfg.current]) or page
      local last = tonumber(meta[cfg.last])
      has_more = last ~= nil and current < last
      total = tonumber(meta[cfg.total])
    else
      has_more = #items >= (tonumber(query[cfg.size]) or math.huge)
    end
    has_more = has_more and #items > 0
    local nxt
    if has_more then
      nxt = copy(query)
      nxt[cfg.page] = page + 1
    end
    return items, has_more, total, nxt
  end,
}

-- One answer holds the whole collection.
M.none = {
  first = function(_, params) return without_max_items(params) end,
  read = function(cfg, body)
    local items = body
    if cfg and cfg.items and type(body) == "table" and body[cfg.items] ~= nil then
      items = body[cfg.items]
    end
    if type(items) ~= "table" then return nil, "response is not a list" end
    return items, false, nil, nil
  end,
}

return M
