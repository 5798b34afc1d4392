/* Internal to the Lua bindings: the parts of lua_http.c that lua_multi.c
 * reuses, so core.multi takes the same options and requests as core.http
 * and refuses the same bad input with the same messages. */
#ifndef AUD_LUA_HTTP_H
#define AUD_LUA_HTTP_H

#include "compat.h"
#include "http.h"

/* Reads the transport options of the table (or nil) at index 1 into cfg,
 * raising "bad option ..." by name. Sets the stack top to 1 and then
 * pushes the strings cfg points at: they stay valid while those slots
 * stay on the stack. */
void aud_l_http_config(lua_State *L, struct aud_http_config *cfg);
/* Header lines of a request that fit in the caller's room (see below). */
#define AUD_HTTP_INLINE_LINES 32

/* Reads method, url, headers, body and timeout from arguments arg to
 * arg + 4, refusing injection and naming the argument on any error
 * (never echoing a header). Sets the stack top to arg + 4 and pushes one
 * value: the userdata holding the header line pointers, or nil when they
 * fit in `room` (AUD_HTTP_INLINE_LINES pointers that must live as long as
 * req). The strings themselves stay anchored by the arguments. */
void aud_l_http_request(lua_State *L, int arg, struct aud_http_request *req,
                        const char **room);
/* A table of lower-cased name -> joined value. */
void aud_l_push_http_headers(lua_State *L, const struct aud_headers *hs);

#endif
