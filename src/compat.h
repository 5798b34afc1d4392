/* One source for Lua 5.4 and LuaJIT 2.1 (Lua 5.1 API). The 5.1 branch
 * also covers plain PUC Lua 5.1, whose lauxlib lacks what LuaJIT added. */
#ifndef AUD_COMPAT_H
#define AUD_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

/* Whether numbers have an integer subtype (5.3+), which decides what the
 * JSON decoder pushes and how query numbers are printed. */
#if LUA_VERSION_NUM >= 503
#define AUD_LUA54 1
#else
#define AUD_LUA54 0
#endif

#if LUA_VERSION_NUM >= 504
/* No user values: saves a slot per object. */
#define aud_newuserdata(L, size) lua_newuserdatauv((L), (size), 0)
#else
#define aud_newuserdata(L, size) lua_newuserdata((L), (size))
#endif

#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline int aud_compat_absindex(lua_State *L, int i)
{
    return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex aud_compat_absindex

static inline void aud_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        for (int i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#undef luaL_setfuncs
#define luaL_setfuncs aud_compat_setfuncs

#undef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))

static inline void *aud_compat_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}
#undef luaL_testudata
#define luaL_testudata aud_compat_testudata

static inline void aud_compat_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#undef luaL_setmetatable
#define luaL_setmetatable aud_compat_setmetatable

#endif /* LUA_VERSION_NUM == 501 */

#endif
