/* Argument helpers and class registration shared by the Lua bindings. */
#include "lua_common.h"

#include <math.h>

#include "ratelimit.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "clock.h"

double aud_l_check_finite(lua_State *L, int arg)
{
    double v = (double)luaL_checknumber(L, arg);
    if (!isfinite(v))
        luaL_argerror(L, arg, "finite number expected");
    return v;
}

double aud_l_opt_finite_or_nan(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NAN : aud_l_check_finite(L, arg);
}

/* Every "now" parameter is optional so tests can drive time explicitly. */
double aud_l_opt_now(lua_State *L, int arg)
{
    if (!lua_isnoneornil(L, arg))
        return aud_l_check_finite(L, arg);
    double now;
    if (aud_clock_now(&now) != 0)
        luaL_error(L, "clock_gettime failed: %s", strerror(errno));
    return now;
}

/* luaL_checkinteger on LuaJIT silently truncates 2.5 to 2. */
long long aud_l_check_integer(lua_State *L, int arg)
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

long long aud_l_check_integer_named(lua_State *L, int arg, const char *name)
{
    if (lua_type(L, arg) != LUA_TNUMBER)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer, got %s", name,
                                              luaL_typename(L, arg)));
#if AUD_LUA54
    if (lua_isinteger(L, arg))
        return (long long)lua_tointeger(L, arg);
#endif
    double d = (double)lua_tonumber(L, arg);
    if (d != floor(d) || fabs(d) >= 9223372036854775808.0)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer", name));
    return (long long)d;
}

int aud_l_crypto_fail(lua_State *L, const char *err)
{
    return luaL_error(L, "%s", err);
}

const char *aud_l_check_string(lua_State *L, int arg, const char *name,
                               size_t *len)
{
    /* lua_type, not luaL_checklstring: 5 would pass as "5", and a
     * signature must cover exactly the bytes the caller holds. */
    if (lua_type(L, arg) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string, got %s",
                                              name, luaL_typename(L, arg)));
    return lua_tolstring(L, arg, len);
}

void aud_l_push_number_or_nil(lua_State *L, double v)
{
    if (isnan(v))
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)v);
}

/* Counts read as 100, not 100.0, when printed or logged on 5.4. */
void aud_l_push_count_or_nil(lua_State *L, double v)
{
#if AUD_LUA54
    if (v == floor(v) && fabs(v) <= AUD_EXACT_INT_LIMIT) {
        lua_pushinteger(L, (lua_Integer)v);
        return;
    }
#endif
    aud_l_push_number_or_nil(L, v);
}

void aud_l_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
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

static void set_field(lua_State *L, const char *name, double v, int count)
{
    if (!isnan(v)) {
        if (count)
            aud_l_push_count_or_nil(L, v);
        else
            lua_pushnumber(L, (lua_Number)v);
        lua_setfield(L, -2, name);
    }
}

void aud_l_push_rl_state(lua_State *L, const struct aud_rl_state *s, double now)
{
    lua_createtable(L, 0, 7);
    set_field(L, "limit", s->limit, 1);
    set_field(L, "remaining", s->remaining, 1);
    set_field(L, "reset_at", s->reset_at, 0);
    set_field(L, "blocked_until", s->blocked_until > now ? s->blocked_until : NAN, 0);
    set_field(L, "budget_limit", s->budget_limit, 1);
    set_field(L, "budget_per", s->budget_per, 0);
    set_field(L, "tokens", s->tokens, 0);
}

/* opts must be nil or a table whose keys are all in names: a misspelt
 * timeout silently ignored would be a hang waiting to happen. */
void aud_l_check_opts(lua_State *L, int arg, const char *const *names)
{
    if (lua_isnoneornil(L, arg))
        return;
    if (!lua_istable(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "opts must be a table, got %s",
                                              luaL_typename(L, arg)));
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        int known = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (const char *const *n = names; *n != NULL; n++)
                known = known || strcmp(lua_tostring(L, -2), *n) == 0;
        if (!known)
            luaL_argerror(L, arg,
                          lua_type(L, -2) == LUA_TSTRING
                              ? lua_pushfstring(L, "opts: unknown option '%s'",
                                                lua_tostring(L, -2))
                              : "opts: option names must be strings");
        lua_pop(L, 1);
    }
}

/* opts[name] as a number in [min, max], or def when absent. */
double aud_l_opt_field(lua_State *L, int arg, const char *name, double def,
                       double min, double max, int integer, const char *what)
{
    if (lua_isnoneornil(L, arg))
        return def;
    lua_getfield(L, arg, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    double v = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;
    if (!(v >= min && v <= max) || (integer && v != floor(v)))
        luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be %s", name, what));
    lua_pop(L, 1);
    return v;
}
