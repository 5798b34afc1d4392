/* Lua bindings of the small stateless helpers: clocks, randomness,
 * Retry-After and backoff, and the rate-limit headers. The logic lives in clock.c, crypto.c, retry.c,
 * number.c and ratelimit.c. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "encoding.h"
#include "lua_common.h"
#include "number.h"
#include "ratelimit.h"
#include "retry.h"

#define RANDOM_HEX_MAX 1024

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

/* ---- terminal ----------------------------------------------------------- */

/* The command asks whether stderr is a terminal before drawing a progress
 * bar; a shell started for `test -t` would cost a fork per run. */
static int l_isatty(lua_State *L)
{
    long long fd = aud_l_check_integer(L, 1);
    if (fd < 0 || fd > 1023)
        return luaL_argerror(L, 1, "file descriptor must be in 0..1023");
    lua_pushboolean(L, isatty((int)fd) == 1);
    return 1;
}

/* ---- randomness --------------------------------------------------------- */

static int l_random_hex(lua_State *L)
{
    long long n = aud_l_check_integer(L, 1);
    if (n < 1 || n > RANDOM_HEX_MAX)
        return luaL_argerror(L, 1, "byte count must be in 1..1024");
    unsigned char bytes[RANDOM_HEX_MAX];
    char hex[2 * RANDOM_HEX_MAX];
    char err[300];
    if (aud_random_bytes(bytes, (size_t)n, err, sizeof err) != 0)
        return aud_l_crypto_fail(L, err);
    aud_hex(bytes, (size_t)n, hex);
    lua_pushlstring(L, hex, 2 * (size_t)n);
    return 1;
}

/* ---- retry -------------------------------------------------------------- */

static int l_parse_retry_after(lua_State *L)
{
    double now = aud_l_opt_now(L, 2);
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
    long long attempt = aud_l_check_integer(L, 1);
    double base = aud_l_check_finite(L, 2);
    double max = aud_l_check_finite(L, 3);
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
            return aud_l_crypto_fail(L, err);
    } else {
        r = aud_l_check_finite(L, 4);
        if (r < 0 || r > 1)
            return luaL_argerror(L, 4, "r must be in [0, 1)");
    }
    lua_pushnumber(L, (lua_Number)aud_backoff(attempt, base, max, r));
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

static int l_parse_rate_headers(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    double now = aud_l_opt_now(L, 3);
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
    aud_l_push_count_or_nil(L, limit);
    aud_l_push_count_or_nil(L, remaining);
    aud_l_push_number_or_nil(L, reset);
    return 3;
}

void aud_l_open_util(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"now", l_now},
        {"monotonic", l_monotonic},
        {"sleep", l_sleep},
        {"isatty", l_isatty},
        {"random_hex", l_random_hex},
        {"parse_retry_after", l_parse_retry_after},
        {"backoff", l_backoff},
        {"parse_rate_headers", l_parse_rate_headers},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
