/* core.limiter_step: one run of the quota algorithm (ratelimit.c) on a
 * state blob held by the caller. The nginx shared-dict store keeps the
 * blob under its own short lock and swaps it with this, so it runs the
 * same arithmetic on the same serialized state as every other store. */
#include <math.h>
#include <string.h>

#include "lua_common.h"
#include "ratelimit.h"

static double opt_budget(lua_State *L, int arg, const char *name)
{
    if (lua_isnoneornil(L, arg))
        return NAN;
    double v = aud_l_check_finite(L, arg);
    if (!(v > 0))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be positive", name));
    return v;
}

void aud_l_check_step(lua_State *L, int arg, int now_optional, struct aud_rl_step *st)
{
    static const char *const ops[] = {"state", "configure", "acquire", "observe",
                                      "fail", "penalize", NULL};
    static const enum aud_rl_op op_of[] = {AUD_RL_STATE, AUD_RL_CONFIGURE,
                                           AUD_RL_ACQUIRE, AUD_RL_OBSERVE,
                                           AUD_RL_FAIL, AUD_RL_PENALIZE};
    enum aud_rl_op op = op_of[luaL_checkoption(L, arg, NULL, ops)];
    aud_rl_step_init(st, op, now_optional && lua_isnoneornil(L, arg + 1)
                                 ? NAN
                                 : aud_l_check_finite(L, arg + 1));
    st->budget_limit = opt_budget(L, arg + 2, "budget limit");
    st->budget_per = opt_budget(L, arg + 3, "budget per");
    if (isnan(st->budget_limit) != isnan(st->budget_per))
        luaL_argerror(L, arg + 3, "budget limit and per go together");
    switch (op) {
    case AUD_RL_ACQUIRE:
    case AUD_RL_FAIL:
        st->flag = lua_toboolean(L, arg + 4);
        break;
    case AUD_RL_OBSERVE:
        for (int i = 0; i < 3; i++)
            st->arg[i] = aud_l_opt_finite_or_nan(L, arg + 4 + i);
        break;
    case AUD_RL_PENALIZE:
        st->arg[0] = aud_l_check_finite(L, arg + 4);
        break;
    default:
        break;
    }
}

/* limiter_step(state, op, now, budget_limit, budget_per, ...)
 *   -> new_state [, result]; state may be nil (fresh), budget nil (none).
 *   "acquire", probe                   -> new_state, wait
 *   "observe", limit, remaining, reset -> new_state      (each may be nil)
 *   "fail", sent                       -> new_state
 *   "penalize", until                  -> new_state
 *   "configure"                        -> new_state
 *   "state"                            -> state, table */
static int l_limiter_step(lua_State *L)
{
    size_t len = 0;
    const char *blob = lua_isnil(L, 1) ? NULL : luaL_checklstring(L, 1, &len);
    struct aud_rl_step st;
    aud_l_check_step(L, 2, 0, &st);
    enum aud_rl_op op = st.op;
    struct aud_rl_state s;
    (void)aud_rl_decode((const unsigned char *)blob, len, &s);
    aud_rl_apply(&s, &st);
    if (op == AUD_RL_STATE) {
        lua_pushvalue(L, 1);
        aud_l_push_rl_state(L, &s, st.now);
        return 2;
    }
    unsigned char out[AUD_RL_BLOB_LEN];
    aud_rl_encode(&s, out);
    lua_pushlstring(L, (const char *)out, sizeof out);
    if (op == AUD_RL_ACQUIRE) {
        lua_pushnumber(L, (lua_Number)st.wait);
        return 2;
    }
    return 1;
}

void aud_l_open_rlstate(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"limiter_step", l_limiter_step},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
