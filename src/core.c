/* audience.core: assembles the module from the binding files (lua_*.c).
 * Each of those checks and converts Lua values for one concern; the logic
 * lives in the plain C modules they call. */
#include "lua_common.h"

LUALIB_API int luaopen_audience_core(lua_State *L);

LUALIB_API int luaopen_audience_core(lua_State *L)
{
    lua_newtable(L);
    aud_l_open_http(L); /* first: it initialises libcurl */
    aud_l_open_http1(L);
    aud_l_open_multi(L);
    aud_l_open_store(L);
    aud_l_open_util(L);
    aud_l_open_query(L);
    aud_l_open_sign(L);
    aud_l_open_rlstate(L);
    aud_l_open_json(L);
    aud_l_open_redis(L);
    lua_pushliteral(L, AUD_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
