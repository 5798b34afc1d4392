/* Lua binding of the audience.multi userdata (core.multi): many requests
 * in flight on one libcurl multi handle. The transfers live in multi.c;
 * options and requests are read by the same code as core.http's. */
#include <math.h>
#include <stdio.h>

#include "lua_common.h"
#include "lua_http.h"
#include "multi.h"

#define MULTI_MT "audience.multi"

#define DEFAULT_MAX_CONNECTIONS 8L

struct lmulti {
    struct aud_multi *m; /* NULL once closed */
};

static long max_connections_option(lua_State *L)
{
    long v = DEFAULT_MAX_CONNECTIONS;
    if (lua_isnoneornil(L, 1))
        return v;
    lua_getfield(L, 1, "max_connections");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "bad option 'max_connections' (integer expected, got %s)",
                       luaL_typename(L, -1));
        double d = (double)lua_tonumber(L, -1);
        if (d != floor(d) || d < 1 || d > (double)AUD_MULTI_MAX_CONNECTIONS)
            luaL_error(L, "bad option 'max_connections' (integer in 1..%d expected, got %s)",
                       (int)AUD_MULTI_MAX_CONNECTIONS, lua_tostring(L, -1));
        v = (long)d;
    }
    lua_pop(L, 1);
    return v;
}

static int l_multi(lua_State *L)
{
    struct aud_http_config cfg;
    aud_l_http_config(L, &cfg); /* checks opts is a table or nil */
    long max_connections = max_connections_option(L);

    struct lmulti *u = aud_newuserdata(L, sizeof *u);
    u->m = NULL;
    luaL_setmetatable(L, MULTI_MT);
    char err[128];
    u->m = aud_multi_new(&cfg, max_connections, err, sizeof err);
    if (u->m == NULL)
        return luaL_error(L, "%s", err);
    return 1;
}

static struct aud_multi *check_multi(lua_State *L)
{
    struct lmulti *u = luaL_checkudata(L, 1, MULTI_MT);
    if (u->m == NULL)
        luaL_error(L, "multi handle is closed");
    return u->m;
}

/* lua_Integer is 64-bit on 5.4 and on 64-bit LuaJIT, so ids round-trip. */
static long long check_id(lua_State *L, int arg)
{
    return aud_l_check_integer_named(L, arg, "id");
}

static int l_multi_add(lua_State *L)
{
    struct aud_multi *m = check_multi(L);
    long long id = check_id(L, 2);
    struct aud_http_request req;
    const char *room[AUD_HTTP_INLINE_LINES];
    aud_l_http_request(L, 3, &req, room);

    char err[128];
    switch (aud_multi_add(m, id, &req, err, sizeof err)) {
    case AUD_MULTI_ADDED:
        lua_pushboolean(L, 1);
        return 1;
    case AUD_MULTI_DUPLICATE:
        snprintf(err, sizeof err, "id %lld is already in flight", id);
        return luaL_argerror(L, 2, err);
    case AUD_MULTI_ERROR:
    default:
        return luaL_error(L, "%s", err);
    }
}

static void push_result(lua_State *L, long long id,
                        const struct aud_http_response *res)
{
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
    if (res->outcome == AUD_HTTP_OK) {
        lua_pushinteger(L, (lua_Integer)res->status);
        lua_setfield(L, -2, "status");
        lua_pushlstring(L, res->body, res->body_len);
        lua_setfield(L, -2, "body");
        aud_l_push_http_headers(L, res->headers);
        lua_setfield(L, -2, "headers");
    } else {
        lua_pushstring(L, aud_http_outcome_name(res->outcome));
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, res->message);
        lua_setfield(L, -2, "message");
        lua_pushboolean(L, res->sent);
        lua_setfield(L, -2, "sent");
    }
    lua_pushnumber(L, (lua_Number)res->elapsed);
    lua_setfield(L, -2, "elapsed");
}

static int l_multi_poll(lua_State *L)
{
    struct aud_multi *m = check_multi(L);
    double timeout = 0;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TNUMBER)
            return luaL_argerror(L, 2, lua_pushfstring(L, "timeout must be a number, got %s",
                                                       luaL_typename(L, 2)));
        timeout = (double)lua_tonumber(L, 2);
        if (!(timeout >= 0) || !isfinite(timeout))
            return luaL_argerror(L, 2, "timeout must be a finite number >= 0");
    }
    char err[128];
    if (aud_multi_poll(m, timeout, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);

    lua_newtable(L);
    int n = 0;
    long long id;
    const struct aud_http_response *res;
    /* Each transfer is dropped only once its table is in the array: if
     * building one raises (memory), the rest come with the next poll. */
    while ((res = aud_multi_peek(m, &id)) != NULL) {
        push_result(L, id, res);
        lua_rawseti(L, -2, ++n);
        aud_multi_pop(m);
    }
    return 1;
}

static int l_multi_pending(lua_State *L)
{
    struct aud_multi *m = check_multi(L);
    lua_pushinteger(L, (lua_Integer)aud_multi_pending(m));
    return 1;
}

static int l_multi_cancel(lua_State *L)
{
    struct aud_multi *m = check_multi(L);
    long long id = check_id(L, 2);
    char err[128];
    int rc = aud_multi_cancel(m, id, err, sizeof err);
    if (rc < 0)
        return luaL_error(L, "%s", err);
    lua_pushboolean(L, rc);
    return 1;
}

static int l_multi_close(lua_State *L)
{
    struct lmulti *u = luaL_checkudata(L, 1, MULTI_MT);
    aud_multi_free(u->m);
    u->m = NULL;
    return 0;
}

static int l_multi_tostring(lua_State *L)
{
    struct lmulti *u = luaL_checkudata(L, 1, MULTI_MT);
    if (u->m == NULL)
        lua_pushliteral(L, "audience.multi (closed)");
    else
        lua_pushfstring(L, "audience.multi (%p)", (void *)u);
    return 1;
}

void aud_l_open_multi(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", l_multi_add},
        {"poll", l_multi_poll},
        {"pending", l_multi_pending},
        {"cancel", l_multi_cancel},
        {"close", l_multi_close},
        {NULL, NULL},
    };
    aud_l_new_class(L, MULTI_MT, methods, l_multi_close, l_multi_tostring);
    lua_pushcfunction(L, l_multi);
    lua_setfield(L, -2, "multi");
}
