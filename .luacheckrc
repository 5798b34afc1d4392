std = "max"
max_line_length = 120
files["spec/"] = { std = "+busted" }
-- Code that runs inside nginx, where lua-nginx-module provides `ngx`.
files["spec/mock/"] = { globals = { "ngx" } }
files["spec/openresty/"] = { globals = { "ngx" } }
files["examples/openresty/"] = { globals = { "ngx" } }
exclude_files = { "build/" }
