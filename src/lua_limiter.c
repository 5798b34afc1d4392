/* Lua binding of the audience.limiter userdata: a handle on the shared
 * per-account rate-limit state in registry.c / ratelimit.c. */
#include <math.h>

#include "lua_common.h"
#include "ratelimit.h"
#include "registry.h"

#define LIMITER_MT "audience.limiter"

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
    double v = aud_l_check_finite(L, arg);
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
    double now = aud_l_opt_now(L, 4);
    aud_rl_configure(aud_registry_lock(e), limit, per, now);
    aud_registry_unlock(e);
    return 0;
}

static int l_limiter_acquire(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double now = aud_l_opt_now(L, 2);
    int probe = lua_toboolean(L, 3);
    double wait = aud_rl_acquire(aud_registry_lock(e), now, probe);
    aud_registry_unlock(e);
    lua_pushnumber(L, (lua_Number)wait);
    return 1;
}

static int l_limiter_observe(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double limit = aud_l_opt_finite_or_nan(L, 2);
    double remaining = aud_l_opt_finite_or_nan(L, 3);
    double reset_at = aud_l_opt_finite_or_nan(L, 4);
    double now = aud_l_opt_now(L, 5);
    aud_rl_observe(aud_registry_lock(e), limit, remaining, reset_at, now);
    aud_registry_unlock(e);
    return 0;
}

static int l_limiter_penalize(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double until = aud_l_check_finite(L, 2);
    aud_rl_penalize(aud_registry_lock(e), until);
    aud_registry_unlock(e);
    return 0;
}

static int l_limiter_state(lua_State *L)
{
    struct aud_rl_entry *e = check_limiter(L);
    double now = aud_l_opt_now(L, 2);
    /* A copy is advanced, so looking does not change the state. */
    struct aud_rl_state s = *aud_registry_lock(e);
    aud_registry_unlock(e);
    aud_rl_advance(&s, now);
    aud_l_push_rl_state(L, &s, now);
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

void aud_l_open_limiter(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"configure", l_limiter_configure},
        {"acquire", l_limiter_acquire},
        {"observe", l_limiter_observe},
        {"penalize", l_limiter_penalize},
        {"state", l_limiter_state},
        {"close", l_limiter_close},
        {NULL, NULL},
    };
    aud_l_new_class(L, LIMITER_MT, methods, l_limiter_close, l_limiter_tostring);

    static const luaL_Reg functions[] = {
        {"limiter", l_limiter},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
