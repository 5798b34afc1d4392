/* core.limiter_step: the limiter's state machine (ratelimit.c) applied to a
 * state held by the caller as an opaque string. Stores that live outside
 * this process's memory and outside C (an nginx lua_shared_dict) keep the
 * string and their own lock, and still run the one algorithm. */
#include <math.h>
#include <string.h>

#include "lua_common.h"
#include "ratelimit.h"

/* Bumped when struct aud_rl_state changes, so a stale string from an older
 * build is treated as fresh state instead of being misread. */
static const char STATE_MAGIC[4] = {'A', 'R', 'L', '3'};

static void load_state(lua_State *L, int arg, struct aud_rl_state *s)
{
    size_t len = 0;
    const char *blob = lua_isnil(L, arg) ? NULL : luaL_checklstring(L, arg, &len);
    if (blob != NULL && len == sizeof STATE_MAGIC + sizeof *s &&
        memcmp(blob, STATE_MAGIC, sizeof STATE_MAGIC) == 0)
        memcpy(s, blob + sizeof STATE_MAGIC, sizeof *s);
    else
        aud_rl_init(s);
}

static void push_state_blob(lua_State *L, const struct aud_rl_state *s)
{
    char blob[sizeof STATE_MAGIC + sizeof *s];
    memcpy(blob, STATE_MAGIC, sizeof STATE_MAGIC);
    memcpy(blob + sizeof STATE_MAGIC, s, sizeof *s);
    lua_pushlstring(L, blob, sizeof blob);
}

static double check_positive(lua_State *L, int arg, const char *name)
{
    double v = aud_l_check_finite(L, arg);
    if (!(v > 0))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be positive", name));
    return v;
}

/* limiter_step(state, op, now, ...) -> new_state [, result]
 *   "acquire", probe                   -> new_state, wait
 *   "observe", limit, remaining, reset -> new_state      (each may be nil)
 *   "penalize", until                  -> new_state
 *   "configure", limit, per            -> new_state
 *   "state"                            -> new_state, table */
static int l_limiter_step(lua_State *L)
{
    struct aud_rl_state s;
    const char *op = luaL_checkstring(L, 2);
    double now = aud_l_check_finite(L, 3);
    load_state(L, 1, &s);

    if (strcmp(op, "acquire") == 0) {
        double wait = aud_rl_acquire(&s, now, lua_toboolean(L, 4));
        push_state_blob(L, &s);
        lua_pushnumber(L, (lua_Number)wait);
        return 2;
    }
    if (strcmp(op, "observe") == 0) {
        double limit = aud_l_opt_finite_or_nan(L, 4);
        double remaining = aud_l_opt_finite_or_nan(L, 5);
        double reset_at = aud_l_opt_finite_or_nan(L, 6);
        aud_rl_observe(&s, limit, remaining, reset_at, now);
        push_state_blob(L, &s);
        return 1;
    }
    if (strcmp(op, "penalize") == 0) {
        aud_rl_penalize(&s, aud_l_check_finite(L, 4));
        push_state_blob(L, &s);
        return 1;
    }
    if (strcmp(op, "configure") == 0) {
        double limit = check_positive(L, 4, "limit");
        double per = check_positive(L, 5, "per");
        aud_rl_configure(&s, limit, per, now);
        push_state_blob(L, &s);
        return 1;
    }
    if (strcmp(op, "state") == 0) {
        aud_rl_advance(&s, now);
        push_state_blob(L, &s);
        aud_l_push_rl_state(L, &s, now);
        return 2;
    }
    return luaL_argerror(L, 2, lua_pushfstring(L, "unknown operation '%s'", op));
}

void aud_l_open_rlstate(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"limiter_step", l_limiter_step},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
