/* Lua binding of the audience.http userdata (one libcurl handle per
 * client) and core.http / core.curl_version. The transfer lives in http.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "lua_common.h"
#include "lua_http.h"

#define HTTP_MT "audience.http"

#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)

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
        if (!integral || !(d >= 1) || d > AUD_EXACT_INT_LIMIT || d > (double)SIZE_MAX)
            luaL_error(L, "bad option 'max_body' (positive integer expected, got %s)",
                       lua_tostring(L, -1));
        v = (size_t)d;
    }
    lua_pop(L, 1);
    return v;
}

void aud_l_http_config(lua_State *L, struct aud_http_config *cfg_out)
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
    /* The client always names itself; a bare core.http says only what it is. */
    cfg.user_agent = string_option(L, "user_agent", 1);
    if (cfg.user_agent == NULL)
        cfg.user_agent = "audience/" AUD_VERSION;
    *cfg_out = cfg;
}

static int l_http(lua_State *L)
{
    struct aud_http_config cfg;
    aud_l_http_config(L, &cfg);

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

/* Collects headers[i] as C strings; the table on the stack anchors them.
 * Up to AUD_HTTP_INLINE_LINES fit in `room` (the caller's stack), more go
 * to a userdata. */
static const char **check_header_lines(lua_State *L, int arg, size_t *count,
                                       const char **room)
{
    *count = 0;
    if (lua_isnoneornil(L, arg))
        return NULL;
    if (!lua_istable(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "headers must be a table or nil, got %s",
                                              luaL_typename(L, arg)));
    size_t n = lua_rawlen(L, arg);
    if (n > SIZE_MAX / sizeof(char *))
        luaL_argerror(L, arg, "too many headers");
    const char **lines = room;
    if (n <= AUD_HTTP_INLINE_LINES)
        lua_pushnil(L); /* the same stack shape either way */
    else
        lines = aud_newuserdata(L, n * sizeof *lines);
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

void aud_l_push_http_headers(lua_State *L, const struct aud_headers *hs)
{
    lua_createtable(L, 0, (int)(hs->count < 1024 ? hs->count : 1024));
    for (size_t i = 0; i < hs->count; i++) {
        const struct aud_header *hd = &hs->items[i];
        lua_pushlstring(L, hd->name, hd->name_len);
        lua_pushlstring(L, hd->value.data ? hd->value.data : "", hd->value.len);
        lua_rawset(L, -3);
    }
}

/* A string or a number, as luaL_checklstring takes, with a message that
 * names the argument. */
static const char *check_lstring(lua_State *L, int arg, const char *name,
                                 size_t *len)
{
    if (!lua_isstring(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string, got %s",
                                              name, luaL_typename(L, arg)));
    return lua_tolstring(L, arg, len);
}

void aud_l_http_request(lua_State *L, int arg, struct aud_http_request *req,
                        const char **room)
{
    size_t len;
    req->method = check_lstring(L, arg, "method", &len);
    if (!aud_http_valid_method(req->method, len))
        luaL_argerror(L, arg, "method must be an HTTP token");
    req->url = check_lstring(L, arg + 1, "url", &len);
    if (!aud_http_valid_url(req->url, len))
        luaL_argerror(L, arg + 1, "url must be non-empty without CR, LF or NUL");
    req->body = NULL;
    req->body_len = 0;
    if (!lua_isnoneornil(L, arg + 3)) {
        if (lua_type(L, arg + 3) != LUA_TSTRING)
            luaL_argerror(L, arg + 3, lua_pushfstring(L, "body must be a string or nil, got %s",
                                                      luaL_typename(L, arg + 3)));
        req->body = lua_tolstring(L, arg + 3, &req->body_len);
        if (strcmp(req->method, "HEAD") == 0)
            luaL_argerror(L, arg + 3, "a HEAD request cannot have a body");
    }
    req->timeout = 0;
    if (!lua_isnoneornil(L, arg + 4)) {
        if (!lua_isnumber(L, arg + 4))
            luaL_argerror(L, arg + 4, lua_pushfstring(L, "timeout must be a number or nil, got %s",
                                                      luaL_typename(L, arg + 4)));
        req->timeout = (double)lua_tonumber(L, arg + 4);
        if (!(req->timeout > 0) || !isfinite(req->timeout))
            luaL_argerror(L, arg + 4, "timeout must be a positive number");
    }
    lua_settop(L, arg + 4);
    req->headers = check_header_lines(L, arg + 2, &req->nheaders, room);
}

static int l_http_perform(lua_State *L)
{
    struct aud_http *h = check_http(L);
    struct aud_http_request req;
    const char *room[AUD_HTTP_INLINE_LINES];
    aud_l_http_request(L, 2, &req, room);

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
    aud_l_push_http_headers(L, res.headers);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, (lua_Number)res.elapsed);
    lua_setfield(L, -2, "elapsed");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sent");
    aud_http_clear(h);
    return 4;
}

/* core.headers_clean(headers, forms) -> true when every value of the
 * response header table is a string holding none of the strings of forms
 * (the client's secrets): the client then hands the table on as it is,
 * and scrubs a copy otherwise. */
static int l_headers_clean(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t nforms = lua_rawlen(L, 2);
    lua_settop(L, 2);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pushboolean(L, 0);
            return 1;
        }
        size_t n;
        const char *v = lua_tolstring(L, -1, &n);
        for (size_t i = 1; i <= nforms; i++) {
            lua_rawgeti(L, 2, (int)i);
            size_t m;
            const char *form = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &m) : NULL;
            int found = form == NULL || aud_headers_value_contains(v, n, form, m);
            lua_pop(L, 1);
            if (found) {
                lua_pushboolean(L, 0);
                return 1;
            }
        }
        lua_pop(L, 1);
    }
    lua_pushboolean(L, 1);
    return 1;
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

void aud_l_open_http(lua_State *L)
{
    CURLcode rc = aud_http_global_init();
    if (rc != CURLE_OK)
        luaL_error(L, "curl_global_init failed: %s", curl_easy_strerror(rc));

    static const luaL_Reg methods[] = {
        {"perform", l_http_perform},
        {"close", l_http_close},
        {NULL, NULL},
    };
    aud_l_new_class(L, HTTP_MT, methods, l_http_close, l_http_tostring);

    static const luaL_Reg functions[] = {
        {"curl_version", l_curl_version},
        {"http", l_http},
        {"headers_clean", l_headers_clean},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
