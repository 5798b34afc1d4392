/* Lua binding of the sans-I/O HTTP/1.1 codec (http1.c), for transports
 * written in Lua over sockets they own:
 *   core.http1_request(method, target, host, headers, body, line...) -> bytes
 *     (each extra line, e.g. User-Agent, follows the headers table's)
 *   core.http1_parser(max_body) -> parser
 *   parser:reset(head, connect)
 *   parser:feed(bytes) / parser:eof() -> true (done), false (more), or
 *                                        nil, kind, message
 *   parser:response() -> status, body, headers, reusable
 *   parser:started() -> whether any byte arrived */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "http1.h"
#include "lua_common.h"
#include "lua_http.h"

#define PARSER_MT "audience.http1"

#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)

struct lparser {
    struct aud_http1 p;
    int live;
};

static const char *check_str(lua_State *L, int arg, const char *name, size_t *len)
{
    if (lua_type(L, arg) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string, got %s", name,
                                              luaL_typename(L, arg)));
    return lua_tolstring(L, arg, len);
}

static int no_space(const char *s, size_t n)
{
    return memchr(s, ' ', n) == NULL && memchr(s, '\t', n) == NULL;
}

static int l_request(lua_State *L)
{
    size_t len;
    struct aud_http1_request req;
    req.method = check_str(L, 1, "method", &len);
    if (!aud_http_valid_method(req.method, len))
        luaL_argerror(L, 1, "method must be an HTTP token");
    req.target = check_str(L, 2, "target", &req.target_len);
    if (!aud_http_valid_url(req.target, req.target_len) ||
        !no_space(req.target, req.target_len))
        luaL_argerror(L, 2, "target must be non-empty without spaces, CR, LF or NUL");
    req.host = check_str(L, 3, "host", &req.host_len);
    if (req.host_len == 0 || !aud_http_valid_header(req.host, req.host_len) ||
        !no_space(req.host, req.host_len))
        luaL_argerror(L, 3, "host must be non-empty without spaces, CR, LF or NUL");
    req.body = NULL;
    req.body_len = 0;
    if (!lua_isnoneornil(L, 5)) {
        req.body = check_str(L, 5, "body", &req.body_len);
        if (strcmp(req.method, "HEAD") == 0)
            luaL_argerror(L, 5, "a HEAD request cannot have a body");
    }
    int top = lua_gettop(L);
    size_t extra = top > 5 ? (size_t)(top - 5) : 0;
    size_t n = 0;
    if (!lua_isnoneornil(L, 4)) {
        if (!lua_istable(L, 4))
            luaL_argerror(L, 4, lua_pushfstring(L, "headers must be a table or nil, got %s",
                                                luaL_typename(L, 4)));
        n = lua_rawlen(L, 4);
    }
    if (n > SIZE_MAX / (sizeof(char *) + sizeof(size_t)) / 2 - extra)
        luaL_argerror(L, 4, "too many headers");
    size_t total = n + extra;
    /* One block anchored on the stack: the pointers, then the lengths. */
    char *block = aud_newuserdata(L, (total ? total : 1) * (sizeof(char *) + sizeof(size_t)));
    const char **lines = (const char **)(void *)block;
    size_t *lens = (size_t *)(void *)(block + (total ? total : 1) * sizeof(char *));
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 4, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, 4, lua_pushfstring(L, "headers[%d] must be a string, got %s",
                                                (int)i, luaL_typename(L, -1)));
        const char *s = lua_tolstring(L, -1, &lens[i - 1]);
        /* The message names the position only: header values carry keys. */
        if (!aud_http_valid_header(s, lens[i - 1]))
            luaL_argerror(L, 4, lua_pushfstring(L, "headers[%d] contains CR, LF or NUL", (int)i));
        lines[i - 1] = s; /* anchored by the headers table */
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < extra; i++) {
        int arg = 6 + (int)i;
        const char *s = check_str(L, arg, "header line", &lens[n + i]);
        if (!aud_http_valid_header(s, lens[n + i]))
            luaL_argerror(L, arg, "header line contains CR, LF or NUL");
        lines[n + i] = s; /* an argument: anchored until the call returns */
    }
    req.headers = lines;
    req.header_lens = lens;
    req.nheaders = total;

    struct aud_buf out;
    aud_buf_init(&out);
    if (aud_http1_write_request(&out, &req) != 0) {
        aud_buf_free(&out);
        return luaL_error(L, "out of memory");
    }
    lua_pushlstring(L, out.data, out.len);
    aud_buf_free(&out);
    return 1;
}

static size_t check_max_body(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return DEFAULT_MAX_BODY;
    if (lua_type(L, arg) != LUA_TNUMBER)
        luaL_argerror(L, arg, lua_pushfstring(L, "max_body must be a number, got %s",
                                              luaL_typename(L, arg)));
    double d = (double)lua_tonumber(L, arg);
    if (!(d >= 1) || d != floor(d) || d > AUD_EXACT_INT_LIMIT || d > (double)SIZE_MAX)
        luaL_argerror(L, arg, "max_body must be a positive integer");
    return (size_t)d;
}

static int l_parser(lua_State *L)
{
    size_t max_body = check_max_body(L, 1);
    struct lparser *u = aud_newuserdata(L, sizeof *u);
    u->live = 0;
    luaL_setmetatable(L, PARSER_MT);
    aud_http1_init(&u->p, 0, 0, max_body);
    u->live = 1;
    return 1;
}

static struct lparser *check_parser(lua_State *L)
{
    struct lparser *u = luaL_checkudata(L, 1, PARSER_MT);
    if (!u->live)
        luaL_error(L, "http1 parser is closed");
    return u;
}

static int l_reset(lua_State *L)
{
    struct lparser *u = check_parser(L);
    aud_http1_reset(&u->p, lua_toboolean(L, 2), lua_toboolean(L, 3));
    return 0;
}

static int push_result(lua_State *L, struct lparser *u, enum aud_http1_result r)
{
    if (r == AUD_HTTP1_ERROR) {
        lua_pushnil(L);
        lua_pushstring(L, aud_http_outcome_name(u->p.kind));
        lua_pushstring(L, u->p.message);
        return 3;
    }
    lua_pushboolean(L, r == AUD_HTTP1_DONE);
    return 1;
}

static int l_feed(lua_State *L)
{
    struct lparser *u = check_parser(L);
    size_t len;
    const char *data = check_str(L, 2, "data", &len);
    return push_result(L, u, aud_http1_feed(&u->p, data, len));
}

static int l_eof(lua_State *L)
{
    struct lparser *u = check_parser(L);
    return push_result(L, u, aud_http1_eof(&u->p));
}

static int l_started(lua_State *L)
{
    struct lparser *u = check_parser(L);
    lua_pushboolean(L, u->p.started);
    return 1;
}

static int l_response(lua_State *L)
{
    struct lparser *u = check_parser(L);
    if (!aud_http1_done(&u->p))
        return luaL_error(L, "http1 parser has no complete response");
    lua_pushinteger(L, (lua_Integer)u->p.status);
    lua_pushlstring(L, u->p.body.data ? u->p.body.data : "", u->p.body.len);
    aud_l_push_http_headers(L, &u->p.headers);
    lua_pushboolean(L, aud_http1_reusable(&u->p));
    return 4;
}

static int l_close(lua_State *L)
{
    struct lparser *u = luaL_checkudata(L, 1, PARSER_MT);
    if (u->live)
        aud_http1_free(&u->p);
    u->live = 0;
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct lparser *u = luaL_checkudata(L, 1, PARSER_MT);
    lua_pushfstring(L, "audience.http1 (%p)", (void *)u);
    return 1;
}

void aud_l_open_http1(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"reset", l_reset},
        {"feed", l_feed},
        {"eof", l_eof},
        {"started", l_started},
        {"response", l_response},
        {"close", l_close},
        {NULL, NULL},
    };
    aud_l_new_class(L, PARSER_MT, methods, l_close, l_tostring);

    static const luaL_Reg functions[] = {
        {"http1_request", l_request},
        {"http1_parser", l_parser},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
