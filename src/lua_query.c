/* Lua bindings of url.c: core.urlencode and core.build_query, which turns
 * a Lua table into the deterministic query string that gets signed. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lua_common.h"
#include "number.h"
#include "url.h"

static int l_urlencode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[3 * 512];
    for (size_t off = 0; off < len; off += 512) {
        size_t n = len - off < 512 ? len - off : 512;
        luaL_addlstring(&b, chunk, aud_url_encode(s + off, n, chunk));
    }
    luaL_pushresult(&b);
    return 1;
}

/* As resource.lua's segment_problem and MAX_SEGMENT say: an id goes into
 * one path segment, so it may not climb out of it. */
#define MAX_SEGMENT 4096

/* core.id_segment(v) -> the path segment of an id, or nil when v is not
 * one (the caller then raises the error that names the argument): an
 * integral number below 2^53 in magnitude as digits, or a non-empty
 * string of at most 4096 bytes, not "." or "..", without '/' or '\',
 * percent-encoded. */
static int l_id_segment(lua_State *L)
{
    int t = lua_type(L, 1);
    if (t == LUA_TNUMBER) {
        char text[32];
        size_t n = 0;
#if AUD_LUA54
        if (lua_isinteger(L, 1)) {
            lua_Integer i = lua_tointeger(L, 1);
            if (i > -(lua_Integer)AUD_EXACT_INT_LIMIT && i < (lua_Integer)AUD_EXACT_INT_LIMIT)
                n = aud_num_format_integer((long long)i, text, sizeof text);
        } else
#endif
        {
            double d = (double)lua_tonumber(L, 1);
            if (d == floor(d) && fabs(d) < AUD_EXACT_INT_LIMIT)
                n = aud_num_format_integer((long long)d, text, sizeof text);
        }
        if (n == 0)
            return 0;
        lua_pushlstring(L, text, n);
        return 1;
    }
    if (t != LUA_TSTRING)
        return 0;
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (len == 0 || len > MAX_SEGMENT || (len == 1 && s[0] == '.') ||
        (len == 2 && s[0] == '.' && s[1] == '.') || memchr(s, '/', len) != NULL ||
        memchr(s, '\\', len) != NULL)
        return 0;
    if (aud_url_encoded_len(s, len) == len) {
        lua_settop(L, 1);
        return 1;
    }
    char out[3 * MAX_SEGMENT];
    lua_pushlstring(L, out, aud_url_encode(s, len, out));
    return 1;
}

enum { NUMBER_TEXT = 32 };

static int query_scalar_ok(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TBOOLEAN:
        return 1;
    case LUA_TNUMBER:
        return isfinite((double)lua_tonumber(L, idx)) ? 1 : -1;
    default:
        return 0;
    }
}

static int query_error(lua_State *L, int key, const char *got)
{
    return luaL_error(L,
                      "bad query parameter '%s' (string, number, boolean or "
                      "array expected, got %s)",
                      lua_tostring(L, key), got);
}

/* Entries a value expands to; raises on anything a query cannot hold. */
static size_t query_count(lua_State *L, int key, int val)
{
    int ok = query_scalar_ok(L, val);
    if (ok < 0)
        luaL_error(L, "bad query parameter '%s' (finite number expected, got %s)",
                   lua_tostring(L, key), lua_tostring(L, val));
    if (ok > 0)
        return 1;
    if (lua_type(L, val) != LUA_TTABLE)
        query_error(L, key, luaL_typename(L, val));

    size_t n = lua_rawlen(L, val), seen = 0;
    lua_pushnil(L);
    while (lua_next(L, val) != 0) {
        seen++;
        double k = lua_type(L, -2) == LUA_TNUMBER ? (double)lua_tonumber(L, -2) : 0;
        if (!(k >= 1 && k <= (double)n && k == floor(k)))
            query_error(L, key, "table with non-array keys");
        int elem = query_scalar_ok(L, -1);
        if (elem < 0)
            luaL_error(L, "bad query parameter '%s' (finite number expected, got %s)",
                       lua_tostring(L, key), lua_tostring(L, -1));
        if (elem == 0)
            query_error(L, key, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (seen != n) /* a border inside holes: not a proper sequence */
        query_error(L, key, "table with holes");
    return n;
}

/* Fills p from the scalar at idx; numbers are printed into text, which
 * must stay alive (it is a userdata on the stack) until the query is built. */
static void query_value(lua_State *L, int idx, struct aud_query_param *p,
                        char *text)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        p->value = lua_tolstring(L, idx, &p->value_len);
        break;
    case LUA_TBOOLEAN:
        p->value = lua_toboolean(L, idx) ? "true" : "false";
        p->value_len = strlen(p->value);
        break;
    default:
#if AUD_LUA54
        if (lua_isinteger(L, idx))
            p->value_len = aud_num_format_integer(
                (long long)lua_tointeger(L, idx), text, NUMBER_TEXT);
        else
#endif
            p->value_len = aud_num_format((double)lua_tonumber(L, idx), text,
                                          NUMBER_TEXT);
        p->value = text;
        break;
    }
}

static int l_build_query(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);

    /* Pass 1 validates and counts, so errors are raised before anything
     * is allocated. */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "bad query parameter key (string expected, got %s)",
                       luaL_typename(L, -2));
        count += query_count(L, lua_gettop(L) - 1, lua_gettop(L));
        lua_pop(L, 1);
    }
    if (count == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (count > SIZE_MAX / (sizeof(struct aud_query_param) + NUMBER_TEXT))
        return luaL_error(L, "query has too many parameters");

    /* Userdata rather than malloc: a memory error cannot leak them. */
    struct aud_query_param *params =
        aud_newuserdata(L, count * sizeof *params);
    char *text = aud_newuserdata(L, count * NUMBER_TEXT);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);
        if (lua_type(L, -1) == LUA_TTABLE) {
            size_t n = lua_rawlen(L, -1);
            for (size_t j = 1; j <= n; j++, i++) {
                lua_rawgeti(L, -1, (int)j);
                params[i].key = k;
                params[i].key_len = klen;
                params[i].seq = i;
                /* Array elements stay anchored by their table. */
                query_value(L, -1, &params[i], text + i * NUMBER_TEXT);
                lua_pop(L, 1);
            }
        } else {
            params[i].key = k;
            params[i].key_len = klen;
            params[i].seq = i;
            query_value(L, -1, &params[i], text + i * NUMBER_TEXT);
            i++;
        }
        lua_pop(L, 1);
    }

    aud_query_sort(params, count);
    size_t len = aud_query_len(params, count);
    if (len == SIZE_MAX)
        return luaL_error(L, "query too long");
    char *out = aud_newuserdata(L, len);
    lua_pushlstring(L, out, aud_query_write(params, count, out));
    return 1;
}

void aud_l_open_query(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"urlencode", l_urlencode},
        {"build_query", l_build_query},
        {"id_segment", l_id_segment},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
