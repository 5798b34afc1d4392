-- Creamailer in the `audience` command: its resources and actions (subscribers belong
-- to a list, and are named by email), its environment, and imports in batches.
local cm_helpers = require "audience.providers.creamailer.helpers"

local ALL = "list get create update delete export"

local M = {}

M.order = { "lists", "subscribers", "suppressions" }
M.summary = { "lists subscribers suppressions   (subscribers need --list ID)" }

M.resources = {
  lists = { actions = ALL },
  subscribers = {
    actions = ALL .. " import sync", id = "EMAIL", scoped = true,
    create = function(r, list, body) return r:add(list, body) end,
    update = function(r, list, id, body)
      body.email = id
      return r:update(list, body)
    end,
    -- import and sync: a row is an entry of the API's batched import.
    import_batches = {
      size = 500,
      entry = cm_helpers.subscriber_entry,
      send = function(cm, list, batch, update)
        return cm.subscribers:import(list, batch, { update_existing = update })
      end,
    },
    sync = function(cm, list, source, opts) return cm:sync_list(list, source, opts) end,
  },
  suppressions = {
    actions = "list create delete export", id = "EMAIL",
    create = function(r, _, body)
      if type(body.email) ~= "string" then
        error({ usage = "suppressions create needs --data '{\"email\": \"...\", \"reason\": \"...\"}'" })
      end
      return r:add(body.email, body.reason)
    end,
    delete = function(r, _, id) return r:remove(id) end,
  },
}

M.env_help = "CREAMAILER_ACCESS_TOKEN and CREAMAILER_SHARED_SECRET (required), CREAMAILER_VERSION (1 or 2),\n"
  .. "  CREAMAILER_BASE_URL (with version 2, CREAMAILER_V2_BASE_URL is used when set)"
M.env_summary = { "CREAMAILER_ACCESS_TOKEN, CREAMAILER_SHARED_SECRET, CREAMAILER_VERSION (1 or 2),",
  "CREAMAILER_BASE_URL (CREAMAILER_V2_BASE_URL is used with version 2 when set)" }

M.notes = {
  subscribers = [[
Every action needs --list ID. Import sends batches of 500 (one request each, of the
account's 100 per hour); --update sets update_existing. sync reads the list once, then
imports only new and changed rows. A custom_fields cell holds a JSON object.]],
}

--- The constructor options of a run, from the environment (`env`) and the options.
function M.client_options(env, o)
  local opts = {
    access_token = env.required("CREAMAILER_ACCESS_TOKEN", "the Creamailer access token"),
    shared_secret = env.required("CREAMAILER_SHARED_SECRET", "the Creamailer shared secret"),
  }
  local version = env.value("CREAMAILER_VERSION") or "1"
  if version ~= "1" and version ~= "2" then env.usage("CREAMAILER_VERSION must be 1 or 2, not '" .. version .. "'") end
  opts.version = tonumber(version)
  opts.base_url = o["base-url"] or (version == "2" and env.value("CREAMAILER_V2_BASE_URL"))
    or env.value("CREAMAILER_BASE_URL")
  return opts
end

return M
