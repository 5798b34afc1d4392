/* Lua bindings of audience.core: argument checking and conversion
 * between Lua values and the C modules; the logic lives in those. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "compat.h"
#include "clock.h"
#include "crypto.h"
#include "http.h"
#include "number.h"
#include "ratelimit.h"
#include "registry.h"
#include "retry.h"
#include "url.h"

#define AUD_VERSION "0.1.0"
#define HTTP_MT "audience.http"
#define LIMITER_MT "audience.limiter"

#define RANDOM_HEX_MAX 1024
#define INTEGERIZE_MAX_DEPTH 256
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)
/* Largest magnitude below which every integer is exact in a double. */
#define EXACT_INT_LIMIT 9007199254740992.0

LUALIB_API int luaopen_audience_core(lua_State *L);

/* ---- shared argument helpers ------------------------------------------ */

static double check_finite(lua_State *L, int arg)
{
    double v = (double)luaL_checknumber(L, arg);
    if (!isfinite(v))
        luaL_argerror(L, arg, "finite number expected");
    return v;
}

static double opt_finite_or_nan(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NAN : check_finite(L, arg);
}

/* Every "now" parameter is optional so tests can drive time explicitly. */
static double opt_now(lua_State *L, int arg)
{
    if (!lua_isnoneornil(L, arg))
        return check_finite(L, arg);
    double now;
    if (aud_clock_now(&now) != 0)
        luaL_error(L, "clock_gettime failed: %s", strerror(errno));
    return now;
}

/* luaL_checkinteger on LuaJIT silently truncates 2.5 to 2. */
static long long check_integer(lua_State *L, int arg)
{
#if AUD_LUA54
    return (long long)luaL_checkinteger(L, arg);
#else
    double v = (double)luaL_checknumber(L, arg);
    if (v != floor(v) || fabs(v) >= 9223372036854775808.0)
        luaL_argerror(L, arg, "number has no integer representation");
    return (long long)v;
#endif
}

static int crypto_fail(lua_State *L, const char *err)
{
    return luaL_error(L, "%s", err);
}

/* ---- clock -------------------------------------------------------------- */

static int l_now(lua_State *L)
{
    double t;
    if (aud_clock_now(&t) != 0)
        return luaL_error(L, "clock_gettime failed: %s", strerror(errno));
    lua_pushnumber(L, (lua_Number)t);
    return 1;
}

static int l_monotonic(lua_State *L)
{
    double t;
    if (aud_clock_monotonic(&t) != 0)
        return luaL_error(L, "clock_gettime failed: %s", strerror(errno));
    lua_pushnumber(L, (lua_Number)t);
    return 1;
}

static int l_sleep(lua_State *L)
{
    double s = (double)luaL_checknumber(L, 1);
    if (!(s >= 0) || !isfinite(s))
        return luaL_argerror(L, 1, "finite non-negative number expected");
    if (s > 0 && aud_clock_sleep(s) != 0)
        return luaL_error(L, "nanosleep failed: %s", strerror(errno));
    return 0;
}

/* ---- crypto ------------------------------------------------------------- */

static int l_random_hex(lua_State *L)
{
    long long n = check_integer(L, 1);
    if (n < 1 || n > RANDOM_HEX_MAX)
        return luaL_argerror(L, 1, "byte count must be in 1..1024");
    unsigned char bytes[RANDOM_HEX_MAX];
    char hex[2 * RANDOM_HEX_MAX];
    char err[300];
    if (aud_random_bytes(bytes, (size_t)n, err, sizeof err) != 0)
        return crypto_fail(L, err);
    aud_hex(bytes, (size_t)n, hex);
    lua_pushlstring(L, hex, 2 * (size_t)n);
    return 1;
}

static int l_random(lua_State *L)
{
    double r;
    char err[300];
    if (aud_random_unit(&r, err, sizeof err) != 0)
        return crypto_fail(L, err);
    lua_pushnumber(L, (lua_Number)r);
    return 1;
}

static int l_sha256_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char digest[AUD_SHA256_LEN];
    char hex[2 * AUD_SHA256_LEN];
    char err[300];
    if (aud_sha256(s, len, digest, err, sizeof err) != 0)
        return crypto_fail(L, err);
    aud_hex(digest, sizeof digest, hex);
    lua_pushlstring(L, hex, sizeof hex);
    return 1;
}

/* ---- url ---------------------------------------------------------------- */

static int l_urlencode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[3 * 512];
    for (size_t off = 0; off < len; off += 512) {
        size_t n = len - off < 512 ? len - off : 512;
        luaL_addlstring(&b, chunk, aud_url_encode(s + off, n, chunk));
    }
    luaL_pushresult(&b);
    return 1;
}

enum { NUMBER_TEXT = 32 };

static int query_scalar_ok(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
        return 1;
    case LUA_TNUMBER:
        return isfinite((double)lua_tonumber(L, idx)) ? 1 : -1;
    default:
        return 0;
    }
}

static int query_error(lua_State *L, int key, const char *got)
{
    return luaL_error(L,
                      "bad query parameter '%s' (string, number, boolean or "
                      "array expected, got %s)",
                      lua_tostring(L, key), got);
}

/* Entries a value expands to; raises on anything a query cannot hold. */
static size_t query_count(lua_State *L, int key, int val)
{
    int ok = query_scalar_ok(L, val);
    if (ok < 0)
        luaL_error(L, "bad query parameter '%s' (finite number expected, got %s)",
                   lua_tostring(L, key), lua_tostring(L, val));
    if (ok > 0)
        return 1;
    if (lua_type(L, val) != LUA_TTABLE)
        query_error(L, key, luaL_typename(L, val));

    size_t n = lua_rawlen(L, val), seen = 0;
    lua_pushnil(L);
    while (lua_next(L, val) != 0) {
        seen++;
        double k = lua_type(L, -2) == LUA_TNUMBER ? (double)lua_tonumber(L, -2) : 0;
        if (!(k >= 1 && k <= (double)n && k == floor(k)))
            query_error(L, key, "table with non-array keys");
        int elem = query_scalar_ok(L, -1);
        if (elem < 0)
            luaL_error(L, "bad query parameter '%s' (finite number expected, got %s)",
                       lua_tostring(L, key), lua_tostring(L, -1));
        if (elem == 0)
            query_error(L, key, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (seen != n) /* a border inside holes: not a proper sequence */
        query_error(L, key, "table with holes");
    return n;
}

/* Fills p from the scalar at idx; numbers are printed into text, which
 * must stay alive (it is a userdata on the stack) until the query is built. */
static void query_value(lua_State *L, int idx, struct aud_query_param *p,
                        char *text)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        p->value = lua_tolstring(L, idx, &p->value_len);
        break;
    case LUA_TBOOLEAN:
        p->value = lua_toboolean(L, idx) ? "true" : "false";
        p->value_len = strlen(p->value);
        break;
    default:
#if AUD_LUA54
        if (lua_isinteger(L, idx))
            p->value_len = aud_num_format_integer(
                (long long)lua_tointeger(L, idx), text, NUMBER_TEXT);
        else
#endif
            p->value_len = aud_num_format((double)lua_tonumber(L, idx), text,
                                          NUMBER_TEXT);
        p->value = text;
        break;
    }
}

static int l_build_query(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);

    /* Pass 1 validates and counts, so errors are raised before anything
     * is allocated. */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "bad query parameter key (string expected, got %s)",
                       luaL_typename(L, -2));
        count += query_count(L, lua_gettop(L) - 1, lua_gettop(L));
        lua_pop(L, 1);
    }
    if (count == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (count > SIZE_MAX / (sizeof(struct aud_query_param) + NUMBER_TEXT))
        return luaL_error(L, "query has too many parameters");

    /* Userdata rather than malloc: a memory error cannot leak them. */
    struct aud_query_param *params =
        aud_newuserdata(L, count * sizeof *params);
    char *text = aud_newuserdata(L, count * NUMBER_TEXT);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);
        if (lua_type(L, -1) == LUA_TTABLE) {
            size_t n = lua_rawlen(L, -1);
            for (size_t j = 1; j <= n; j++, i++) {
                lua_rawgeti(L, -1, (int)j);
                params[i].key = k;
                params[i].key_len = klen;
                params[i].seq = i;
                /* Array elements stay anchored by their table. */
                query_value(L, -1, &params[i], text + i * NUMBER_TEXT);
                lua_pop(L, 1);
            }
        } else {
            params[i].key = k;
            params[i].key_len = klen;
            params[i].seq = i;
            query_value(L, -1, &params[i], text + i * NUMBER_TEXT);
            i++;
        }
        lua_pop(L, 1);
    }

    aud_query_sort(params, count);
    size_t len = aud_query_len(params, count);
    if (len == SIZE_MAX)
        return luaL_error(L, "query too long");
    char *out = aud_newuserdata(L, len);
    lua_pushlstring(L, out, aud_query_write(params, count, out));
    return 1;
}

/* ---- retry -------------------------------------------------------------- */

static int l_parse_retry_after(lua_State *L)
{
    double now = opt_now(L, 2);
    double wait;
    switch (lua_type(L, 1)) {
    case LUA_TNONE:
    case LUA_TNIL:
        lua_pushnil(L);
        return 1;
    case LUA_TNUMBER:
        wait = (double)lua_tonumber(L, 1);
        if (!(wait >= 0))
            lua_pushnil(L);
        else
            lua_pushnumber(L, wait > AUD_RETRY_AFTER_MAX ? AUD_RETRY_AFTER_MAX
                                                         : (lua_Number)wait);
        return 1;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        if (aud_retry_after_parse(s, len, now, &wait))
            lua_pushnumber(L, (lua_Number)wait);
        else
            lua_pushnil(L);
        return 1;
    }
    default:
        return luaL_argerror(L, 1, lua_pushfstring(L, "string expected, got %s",
                                                   luaL_typename(L, 1)));
    }
}

static int l_backoff(lua_State *L)
{
    long long attempt = check_integer(L, 1);
    double base = check_finite(L, 2);
    double max = check_finite(L, 3);
    if (attempt < 1)
        return luaL_argerror(L, 1, "attempt must be >= 1");
    if (base < 0)
        return luaL_argerror(L, 2, "base must be >= 0");
    if (max < 0)
        return luaL_argerror(L, 3, "max must be >= 0");
    double r;
    if (lua_isnoneornil(L, 4)) {
        char err[300];
        if (aud_random_unit(&r, err, sizeof err) != 0)
            return crypto_fail(L, err);
    } else {
        r = check_finite(L, 4);
        if (r < 0 || r > 1)
            return luaL_argerror(L, 4, "r must be in [0, 1)");
    }
    lua_pushnumber(L, (lua_Number)aud_backoff(attempt, base, max, r));
    return 1;
}

/* ---- integerize ----------------------------------------------------------- */

#if AUD_LUA54
static int integral_double(lua_Number n)
{
    return n == floor(n) && fabs(n) <= EXACT_INT_LIMIT;
}

/* seen makes shared subtables and cycles cost one visit each; the depth
 * bound keeps the C stack small whatever the input. */
static void integerize_table(lua_State *L, int t, int seen, int depth)
{
    if (depth >= INTEGERIZE_MAX_DEPTH)
        return;
    lua_pushvalue(L, t);
    lua_rawget(L, seen);
    int visited = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (visited)
        return;
    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);

    luaL_checkstack(L, 4, "integerize: nesting too deep");
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            if (integral_double(n)) {
                /* Overwriting an existing field is allowed during next. */
                lua_pushvalue(L, -2);
                lua_pushinteger(L, (lua_Integer)n);
                lua_rawset(L, t);
            }
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            integerize_table(L, lua_gettop(L), seen, depth + 1);
        }
        lua_pop(L, 1);
    }
}
#endif

static int l_integerize(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
#if AUD_LUA54
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_newtable(L);
        integerize_table(L, 1, 2, 0);
        lua_settop(L, 1);
    } else if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1) &&
               integral_double(lua_tonumber(L, 1))) {
        lua_pushinteger(L, (lua_Integer)lua_tonumber(L, 1));
    }
#endif
    return 1;
}

/* ---- rate-limit headers -------------------------------------------------- */

/* headers[names[field]] as a non-negative number, or NaN. */
static double rate_header(lua_State *L, const char *field)
{
    lua_getfield(L, 2, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NAN;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "names.%s must be a string, got %s",
                                            field, luaL_typename(L, -1)));
    lua_gettable(L, 1); /* gettable: a case-folding __index keeps working */
    double v = NAN;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (!aud_num_parse_decimal(s, len, &v) || !isfinite(v))
            v = NAN;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        v = (double)lua_tonumber(L, -1);
        if (!(v >= 0) || !isfinite(v))
            v = NAN;
    }
    lua_pop(L, 1);
    return v;
}

static void push_number_or_nil(lua_State *L, double v)
{
    if (isnan(v))
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)v);
}

/* Counts read as 100, not 100.0, when printed or logged on 5.4. */
static void push_count_or_nil(lua_State *L, double v)
{
#if AUD_LUA54
    if (v == floor(v) && fabs(v) <= EXACT_INT_LIMIT) {
        lua_pushinteger(L, (lua_Integer)v);
        return;
    }
#endif
    push_number_or_nil(L, v);
}

static int l_parse_rate_headers(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    double now = opt_now(L, 3);
    lua_settop(L, 2);

    static const char *const styles[] = {"auto", "epoch", "delta", NULL};
    static const enum aud_rl_reset_style style_of[] = {
        AUD_RL_RESET_AUTO, AUD_RL_RESET_EPOCH, AUD_RL_RESET_DELTA};
    enum aud_rl_reset_style style = AUD_RL_RESET_AUTO;
    lua_getfield(L, 2, "reset_style");
    if (!lua_isnil(L, -1)) {
        const char *s = lua_tostring(L, -1);
        int found = -1;
        for (int i = 0; s != NULL && styles[i] != NULL; i++)
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(s, styles[i]) == 0)
                found = i;
        if (found < 0)
            return luaL_argerror(L, 2, "names.reset_style must be \"auto\", "
                                       "\"epoch\" or \"delta\"");
        style = style_of[found];
    }
    lua_pop(L, 1);

    double limit = rate_header(L, "limit");
    double remaining = rate_header(L, "remaining");
    double reset = rate_header(L, "reset");
    if (!isnan(reset))
        reset = aud_rl_reset_at(reset, style, now);
    push_count_or_nil(L, limit);
    push_count_or_nil(L, remaining);
    push_number_or_nil(L, reset);
    return 3;
}

/* ---- http ------------------------------------------------------------------ */

struct lhttp {
    struct aud_http *h; /* NULL once closed */
};

static int bad_option(lua_State *L, const char *name, const char *expected)
{
    return luaL_error(L, "bad option '%s' (%s expected, got %s)", name,
                      expected, luaL_typename(L, -1));
}

/* Leaves opts[name] on the stack; 0 when it is nil. */
static int get_option(lua_State *L, const char *name, int type,
                      const char *expected)
{
    if (lua_isnoneornil(L, 1)) {
        lua_pushnil(L);
        return 0;
    }
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1))
        return 0;
    if (lua_type(L, -1) != type)
        bad_option(L, name, expected);
    return 1;
}

static double positive_option(lua_State *L, const char *name, double dflt)
{
    double v = dflt;
    if (get_option(L, name, LUA_TNUMBER, "number")) {
        v = (double)lua_tonumber(L, -1);
        if (!(v > 0) || !isfinite(v))
            luaL_error(L, "bad option '%s' (positive number expected, got %s)",
                       name, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

/* The string stays on the stack (the caller's slot) so the pointer lives
 * until aud_http_new has copied it. */
static const char *string_option(lua_State *L, const char *name, int header)
{
    if (!get_option(L, name, LUA_TSTRING, "string"))
        return NULL;
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (header ? !aud_http_valid_header(s, len) : memchr(s, '\0', len) != NULL)
        luaL_error(L, "bad option '%s' (string without %s expected)", name,
                   header ? "CR, LF or NUL" : "NUL bytes");
    return s;
}

static size_t max_body_option(lua_State *L)
{
    size_t v = DEFAULT_MAX_BODY;
    if (get_option(L, "max_body", LUA_TNUMBER, "integer")) {
        double d = (double)lua_tonumber(L, -1);
        int integral = d == floor(d);
#if AUD_LUA54
        if (lua_isinteger(L, -1)) {
            lua_Integer i = lua_tointeger(L, -1);
            if (i < 1)
                integral = 0;
            else
                d = (double)i;
        }
#endif
        if (!integral || !(d >= 1) || d > EXACT_INT_LIMIT || d > (double)SIZE_MAX)
            luaL_error(L, "bad option 'max_body' (positive integer expected, got %s)",
                       lua_tostring(L, -1));
        v = (size_t)d;
    }
    lua_pop(L, 1);
    return v;
}

/* "audience/0.1.0 Lua/5.4.6 libcurl/7.88.1" or "... LuaJIT/2.1.0-beta3 ..." */
static const char *push_default_user_agent(lua_State *L)
{
    const char *lua = LUA_VERSION;
#if LUA_VERSION_NUM >= 502
    lua = LUA_RELEASE;
#else
    lua_getglobal(L, "jit");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "version");
        if (lua_type(L, -1) == LUA_TSTRING)
            lua = lua_tostring(L, -1); /* anchored by the jit table */
        lua_pop(L, 1);
    }
#endif
    luaL_gsub(L, lua, " ", "/");
    lua_pushfstring(L, "audience/" AUD_VERSION " %s libcurl/%s",
                    lua_tostring(L, -1), aud_http_curl_version());
    return lua_tostring(L, -1);
}

static int l_http(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);

    struct aud_http_config cfg;
    cfg.timeout = positive_option(L, "timeout", DEFAULT_TIMEOUT);
    cfg.connect_timeout =
        positive_option(L, "connect_timeout", DEFAULT_CONNECT_TIMEOUT);
    cfg.verify_tls = 1;
    if (get_option(L, "verify_tls", LUA_TBOOLEAN, "boolean"))
        cfg.verify_tls = lua_toboolean(L, -1);
    lua_pop(L, 1);
    cfg.max_body = max_body_option(L);
    cfg.ca_file = string_option(L, "ca_file", 0);
    cfg.proxy = string_option(L, "proxy", 0);
    cfg.user_agent = string_option(L, "user_agent", 1);
    if (cfg.user_agent == NULL)
        cfg.user_agent = push_default_user_agent(L);

    struct lhttp *u = aud_newuserdata(L, sizeof *u);
    u->h = NULL;
    luaL_setmetatable(L, HTTP_MT);
    char err[128];
    u->h = aud_http_new(&cfg, err, sizeof err);
    if (u->h == NULL)
        return luaL_error(L, "%s", err);
    return 1;
}

static struct aud_http *check_http(lua_State *L)
{
    struct lhttp *u = luaL_checkudata(L, 1, HTTP_MT);
    if (u->h == NULL)
        luaL_error(L, "http handle is closed");
    return u->h;
}

/* Collects headers[i] as C strings; the table on the stack anchors them. */
static const char **check_header_lines(lua_State *L, int arg, size_t *count)
{
    *count = 0;
    if (lua_isnoneornil(L, arg))
        return NULL;
    luaL_checktype(L, arg, LUA_TTABLE);
    size_t n = lua_rawlen(L, arg);
    if (n > SIZE_MAX / sizeof(char *))
        luaL_argerror(L, arg, "too many headers");
    const char **lines = aud_newuserdata(L, (n ? n : 1) * sizeof *lines);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, arg, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "headers[%d] must be a string, got %s",
                                                  (int)i, luaL_typename(L, -1)));
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        /* The message names the position only: header values carry keys. */
        if (!aud_http_valid_header(s, len))
            luaL_argerror(L, arg, lua_pushfstring(L, "headers[%d] contains CR, LF or NUL",
                                                  (int)i));
        lines[i - 1] = s;
        lua_pop(L, 1);
    }
    *count = n;
    return lines;
}

static void push_headers(lua_State *L, const struct aud_headers *hs)
{
    lua_createtable(L, 0, (int)(hs->count < 1024 ? hs->count : 1024));
    for (size_t i = 0; i < hs->count; i++) {
        const struct aud_header *hd = &hs->items[i];
        lua_pushlstring(L, hd->name, hd->name_len);
        lua_pushlstring(L, hd->value.data ? hd->value.data : "", hd->value.len);
        lua_rawset(L, -3);
    }
}

static int l_http_perform(lua_State *L)
{
    struct aud_http *h = check_http(L);
    struct aud_http_request req;
    size_t len;

    req.method = luaL_checklstring(L, 2, &len);
    if (!aud_http_valid_method(req.method, len))
        return luaL_argerror(L, 2, "method must be an HTTP token");
    req.url = luaL_checklstring(L, 3, &len);
    if (!aud_http_valid_url(req.url, len))
        return luaL_argerror(L, 3, "url must be non-empty without CR, LF or NUL");
    req.body = NULL;
    req.body_len = 0;
    if (!lua_isnoneornil(L, 5)) {
        if (lua_type(L, 5) != LUA_TSTRING)
            return luaL_argerror(L, 5, lua_pushfstring(L, "body must be a string or nil, got %s",
                                                       luaL_typename(L, 5)));
        req.body = lua_tolstring(L, 5, &req.body_len);
        if (strcmp(req.method, "HEAD") == 0)
            return luaL_argerror(L, 5, "a HEAD request cannot have a body");
    }
    req.timeout = 0;
    if (!lua_isnoneornil(L, 6)) {
        req.timeout = (double)luaL_checknumber(L, 6);
        if (!(req.timeout > 0) || !isfinite(req.timeout))
            return luaL_argerror(L, 6, "timeout must be a positive number");
    }
    lua_settop(L, 6);
    req.headers = check_header_lines(L, 4, &req.nheaders);

    struct aud_http_response res;
    if (aud_http_perform(h, &req, &res) != AUD_HTTP_OK) {
        lua_pushnil(L);
        lua_pushstring(L, aud_http_outcome_name(res.outcome));
        lua_pushstring(L, res.message);
        lua_pushboolean(L, res.sent);
        return 4;
    }
    lua_pushinteger(L, (lua_Integer)res.status);
    lua_pushlstring(L, res.body, res.body_len);
    push_headers(L, res.headers);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, (lua_Number)res.elapsed);
    lua_setfield(L, -2, "elapsed");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sent");
    aud_http_clear(h);
    return 4;
}

static int l_http_close(lua_State *L)
{
    struct lhttp *u = luaL_checkudata(L, 1, HTTP_MT);
    aud_http_free(u->h);
    u->h = NULL;
    return 0;
}

static int l_http_tostring(lua_State *L)
{
    struct lhttp *u = luaL_checkudata(L, 1, HTTP_MT);
    if (u->h == NULL)
        lua_pushliteral(L, "audience.http (closed)");
    else
        lua_pushfstring(L, "audience.http (%p)", (void *)u);
    return 1;
}

/* ---- limiter ----------------------------------------------------------------- */

struct llimiter {
    struct aud_rl_entry *e; /* NULL once closed */
};

static int l_limiter(lua_State *L)
{
    size_t len;
    const char *account = luaL_checklstring(L, 1, &len);
    struct llimiter *u = aud_newuserdata(L, sizeof *u);
    u->e = NULL;
    luaL_setmetatable(L, LIMITER_MT);
    u->e = aud_registry_acquire(account, len);
    if (u->e == NULL)
        return luaL_error(L, "out of memory");
    return 1;
}

static struct aud_rl_entry *check_limiter(lua_State *L)
{
    struct llimiter *u = luaL_checkudata(L, 1, LIMITER_MT);
    if (u->e == NULL)
        luaL_error(L, "limiter is closed");
    return u->e;
}

static double check_positive(lua_State *L, int arg, const char *name)
{
    double v = check_finite(L, arg);
    if (!(v > 0))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be positive", name));
    return v;
}

/* Arguments are all checked before locking: a Lua error must never
 * unwind past a held mutex. */
static int l_limiter_configure(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double limit = check_positive(L, 2, "limit");
    double per = check_positive(L, 3, "per");
    double now = opt_now(L, 4);
    aud_rl_configure(aud_registry_lock(e), limit, per, now);
    aud_registry_unlock(e);
    return 0;
}

static int l_limiter_acquire(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double now = opt_now(L, 2);
    double wait = aud_rl_acquire(aud_registry_lock(e), now);
    aud_registry_unlock(e);
    lua_pushnumber(L, (lua_Number)wait);
    return 1;
}

static int l_limiter_observe(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double limit = opt_finite_or_nan(L, 2);
    double remaining = opt_finite_or_nan(L, 3);
    double reset_at = opt_finite_or_nan(L, 4);
    double now = opt_now(L, 5);
    aud_rl_observe(aud_registry_lock(e), limit, remaining, reset_at, now);
    aud_registry_unlock(e);
    return 0;
}

static int l_limiter_penalize(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double until = check_finite(L, 2);
    aud_rl_penalize(aud_registry_lock(e), until);
    aud_registry_unlock(e);
    return 0;
}

static void set_field(lua_State *L, const char *name, double v, int count)
{
    if (!isnan(v)) {
        if (count)
            push_count_or_nil(L, v);
        else
            lua_pushnumber(L, (lua_Number)v);
        lua_setfield(L, -2, name);
    }
}

static int l_limiter_state(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double now = opt_now(L, 2);
    /* A copy is advanced, so looking does not change the state. */
    struct aud_rl_state s = *aud_registry_lock(e);
    aud_registry_unlock(e);
    aud_rl_advance(&s, now);
    lua_createtable(L, 0, 7);
    set_field(L, "limit", s.limit, 1);
    set_field(L, "remaining", s.remaining, 1);
    set_field(L, "reset_at", s.reset_at, 0);
    set_field(L, "blocked_until", s.blocked_until > now ? s.blocked_until : NAN, 0);
    set_field(L, "budget_limit", s.budget_limit, 1);
    set_field(L, "budget_per", s.budget_per, 0);
    set_field(L, "tokens", s.tokens, 0);
    return 1;
}

static int l_limiter_close(lua_State *L)
{
    struct llimiter *u = luaL_checkudata(L, 1, LIMITER_MT);
    if (u->e != NULL) {
        aud_registry_release(u->e);
        u->e = NULL;
    }
    return 0;
}

static int l_limiter_tostring(lua_State *L)
{
    struct llimiter *u = luaL_checkudata(L, 1, LIMITER_MT);
    if (u->e == NULL)
        lua_pushliteral(L, "audience.limiter (closed)");
    else
        lua_pushfstring(L, "audience.limiter (%p)", (void *)u->e);
    return 1;
}

/* ---- module ------------------------------------------------------------------- */

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction close, lua_CFunction tostring)
{
    luaL_newmetatable(L, name);
    lua_newtable(L); /* luaL_newlib needs an array, not a pointer */
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
#endif
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* Built from curl_version_info() because curl_version() makes Debian's libcurl
 * initialise OpenLDAP/SASL globals that are never freed (valgrind flags them). */
static int l_curl_version(lua_State *L)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (v == NULL) {
        lua_pushstring(L, "libcurl/" LIBCURL_VERSION);
        return 1;
    }
    lua_pushfstring(L, "libcurl/%s%s%s%s%s", v->version,
                    v->ssl_version ? " " : "", v->ssl_version ? v->ssl_version : "",
                    v->libz_version ? " zlib/" : "", v->libz_version ? v->libz_version : "");
    return 1;
}

LUALIB_API int luaopen_audience_core(lua_State *L)
{
    CURLcode rc = aud_http_global_init();
    if (rc != CURLE_OK)
        return luaL_error(L, "curl_global_init failed: %s", curl_easy_strerror(rc));

    static const luaL_Reg http_methods[] = {
        {"perform", l_http_perform},
        {"close", l_http_close},
        {NULL, NULL},
    };
    static const luaL_Reg limiter_methods[] = {
        {"configure", l_limiter_configure},
        {"acquire", l_limiter_acquire},
        {"observe", l_limiter_observe},
        {"penalize", l_limiter_penalize},
        {"state", l_limiter_state},
        {"close", l_limiter_close},
        {NULL, NULL},
    };
    new_class(L, HTTP_MT, http_methods, l_http_close, l_http_tostring);
    new_class(L, LIMITER_MT, limiter_methods, l_limiter_close, l_limiter_tostring);

    static const luaL_Reg functions[] = {
        {"curl_version", l_curl_version},
        {"now", l_now},
        {"monotonic", l_monotonic},
        {"sleep", l_sleep},
        {"random_hex", l_random_hex},
        {"random", l_random},
        {"sha256_hex", l_sha256_hex},
        {"urlencode", l_urlencode},
        {"build_query", l_build_query},
        {"parse_retry_after", l_parse_retry_after},
        {"backoff", l_backoff},
        {"integerize", l_integerize},
        {"parse_rate_headers", l_parse_rate_headers},
        {"http", l_http},
        {"limiter", l_limiter},
        {NULL, NULL},
    };
    luaL_newlib(L, functions);
    lua_pushliteral(L, AUD_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
