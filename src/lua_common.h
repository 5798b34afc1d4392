/* Internal to the Lua bindings: argument helpers shared by the lua_*.c
 * files, and the function each of them exports to add its part of the
 * audience.core module. Nothing here is part of the module's API. */
#ifndef AUD_LUA_COMMON_H
#define AUD_LUA_COMMON_H

#include <stddef.h>

#include "compat.h"

#define AUD_VERSION "0.1.0"
/* Largest magnitude below which every integer is exact in a double. */
#define AUD_EXACT_INT_LIMIT 9007199254740992.0

/* ---- argument helpers (each raises a Lua error naming the argument) ---- */

double aud_l_check_finite(lua_State *L, int arg);
/* NaN when the argument is absent or nil. */
double aud_l_opt_finite_or_nan(lua_State *L, int arg);
/* The argument, or the wall clock when it is absent or nil. */
double aud_l_opt_now(lua_State *L, int arg);
/* Rejects non-integral numbers on LuaJIT too, where luaL_checkinteger
 * would truncate them. */
long long aud_l_check_integer(lua_State *L, int arg);
/* An integer, without string coercion, for the argument called name:
 * "NAME must be an integer, got string". */
long long aud_l_check_integer_named(lua_State *L, int arg, const char *name);
/* A string (no number coercion) for the argument called name; the message
 * names it: "bad argument #2 to 'f' (secret must be a string, got nil)". */
const char *aud_l_check_string(lua_State *L, int arg, const char *name,
                               size_t *len);
/* opts at arg must be nil or a table whose keys are all in names (a NULL-
 * terminated list): a misspelt timeout silently ignored would be a hang
 * waiting to happen. */
void aud_l_check_opts(lua_State *L, int arg, const char *const *names);
/* opts[name] as a number in [min, max] (whole when integer is set), or def
 * when opts or the field is absent; raises "opts.NAME must be WHAT". */
double aud_l_opt_field(lua_State *L, int arg, const char *name, double def,
                       double min, double max, int integer, const char *what);
/* Raises err, a message from crypto.c that never holds key material. */
int aud_l_crypto_fail(lua_State *L, const char *err);

void aud_l_push_number_or_nil(lua_State *L, double v);
/* As an integer on 5.4 when integral, so counts print as 100, not 100.0. */
void aud_l_push_count_or_nil(lua_State *L, double v);

/* Registers metatable name with methods as __index, close as __gc (and
 * __close on 5.4) and tostring as __tostring. */
void aud_l_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction close, lua_CFunction tostring);

/* ---- module parts: each adds its functions to the table on top ------- */

struct aud_rl_state;
/* Pushes the limiter state table of lim:state() (unknown fields absent), for
 * every store: the memory, file and Redis limiters and core.limiter_step. */
/* Reads a quota step from the stack at arg: op, now (nil allowed when
 * now_optional: NaN, the store reads the clock), budget limit and per
 * (both nil or both positive), then the op's arguments. Raises. */
struct aud_rl_step;
void aud_l_check_step(lua_State *L, int arg, int now_optional, struct aud_rl_step *st);
void aud_l_push_rl_state(lua_State *L, const struct aud_rl_state *s, double now);

/* audience.http userdata and curl_version; initialises libcurl first,
 * so it must be the first part opened. */
void aud_l_open_http(lua_State *L);
/* http1_request and http1_parser: the sans-I/O HTTP/1.1 codec. */
void aud_l_open_http1(lua_State *L);
/* audience.multi userdata (parallel requests); after aud_l_open_http. */
void aud_l_open_multi(lua_State *L);
/* audience.limiter userdata. */
/* limiter_file and limiter_redis: the limiter over a shared store. */
void aud_l_open_store(lua_State *L);
/* Clock, randomness, Retry-After and backoff, rate headers. */
void aud_l_open_util(lua_State *L);
/* urlencode and build_query. */
void aud_l_open_query(lua_State *L);
/* Digests, HMAC, request signing and webhook signatures. */
void aud_l_open_sign(lua_State *L);
/* core.limiter_step: the limiter over a caller-held state string. */
void aud_l_open_rlstate(lua_State *L);
/* core.json_decoder and core.json_number. */
void aud_l_open_json(lua_State *L);
/* core.redis_codec and core.redis_quota (lua_redis.c). */
void aud_l_open_redis(lua_State *L);

#endif
