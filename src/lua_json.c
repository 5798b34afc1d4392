/* Lua binding of json.c: core.json_decoder builds a decode function that
 * turns JSON text straight into Lua values, and core.json_number writes a
 * number as JSON whatever LC_NUMERIC says (for the encoder in json.lua).
 *
 * Values wait on the Lua stack until their container closes, so each
 * table is created once at its final size (no rehash while it fills) and
 * the members go in in document order (a repeated key keeps its last
 * value). A container with more than CHUNK values moves them into its
 * table CHUNK at a time, which bounds the stack at depth × CHUNK slots,
 * well inside LuaJIT's limit. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "lua_common.h"
#include "number.h"

#define CHUNK 64
/* Free stack slots are made sure of every STEP values, not a chunk's worth
 * per container up front: a small text then needs a small Lua stack, which
 * matters inside nginx, where a request's coroutine stack is cleared in
 * full when the request ends. Between two checks a container gains at most
 * STEP slots, plus two that flush_object and the key cache use briefly. */
#define STEP 8
#define HEADROOM (2 * STEP + 4)
/* Key cache: on a long text (a page of records) the same few keys come
 * back in every object, and pushing one from a stack slot is much cheaper
 * than interning its bytes again. Short texts skip it: setting the slots
 * up would cost more than it saves. */
#define KEY_SLOTS 128
#define KEY_MAX_LEN 40
#define KEY_CACHE_FROM 4096
#define DEFAULT_MAX_DEPTH 200
#define DEFAULT_MAX_BYTES ((lua_Integer)1 << 30)
#define MIN_SCRATCH 256

/* Upvalues of the decode closure. */
enum { UP_NULL = 1, UP_MARKS, UP_MAX_DEPTH, UP_MAX_BYTES };
/* Fixed slots of the decode call: the text, then these. */
enum { SLOT_NULL = 2, SLOT_MARKS, SLOT_SCRATCH, SLOT_FIRST_VALUE };

struct frame {
    int base; /* the slot that becomes the table; pending values follow */
    int is_object;
    int made;
    lua_Integer stored; /* array items already moved into the table */
};

struct cached_key {
    const char *bytes; /* of the string in its stack slot; NULL: empty */
    size_t len;
};

struct builder {
    lua_State *L;
    int depth;
    int mark_arrays;
    char *scratch;
    size_t scratch_cap;
    int key_base; /* first cache slot, or 0 when the cache is off */
    struct cached_key keys[KEY_SLOTS];
    struct frame frames[AUD_JSON_DEPTH_CAP + 1];
};

static void flush_array(struct builder *b, struct frame *f)
{
    lua_State *L = b->L;
    int k = lua_gettop(L) - f->base;
    if (!f->made) {
        lua_createtable(L, k, 0);
        lua_replace(L, f->base);
        f->made = 1;
    }
    /* lua_rawseti pops the top, so the last pending item goes first. */
    for (int i = k; i >= 1; i--)
        lua_rawseti(L, f->base, f->stored + i);
    f->stored += k;
}

static void flush_object(struct builder *b, struct frame *f)
{
    lua_State *L = b->L;
    int k = (lua_gettop(L) - f->base) / 2;
    if (!f->made) {
        lua_createtable(L, 0, k);
        lua_replace(L, f->base);
        f->made = 1;
    }
    for (int i = 0; i < k; i++) {
        lua_pushvalue(L, f->base + 1 + 2 * i);
        lua_pushvalue(L, f->base + 2 + 2 * i);
        lua_rawset(L, f->base);
    }
    lua_settop(L, f->base);
}

/* A value was pushed: the container it belongs to may have a chunk full. */
static const char *added(struct builder *b)
{
    if (b->depth == 0)
        return NULL;
    struct frame *f = &b->frames[b->depth];
    int pending = lua_gettop(b->L) - f->base;
    if (f->is_object) {
        if (pending >= 2 * CHUNK) {
            flush_object(b, f);
            return NULL;
        }
    } else if (pending >= CHUNK) {
        flush_array(b, f);
        return NULL;
    }
    if (pending % STEP == 0 && !lua_checkstack(b->L, HEADROOM))
        return "nesting too deep for the Lua stack";
    return NULL;
}

static const char *open_container(struct builder *b, int is_object)
{
    /* The parser's depth limit keeps depth within the frames. */
    if (!lua_checkstack(b->L, HEADROOM))
        return "nesting too deep for the Lua stack";
    lua_pushnil(b->L);
    struct frame *f = &b->frames[++b->depth];
    f->base = lua_gettop(b->L);
    f->is_object = is_object;
    f->made = 0;
    f->stored = 0;
    return NULL;
}

static const char *close_container(struct builder *b)
{
    lua_State *L = b->L;
    struct frame *f = &b->frames[b->depth];
    if (f->is_object)
        flush_object(b, f);
    else
        flush_array(b, f);
    if (!f->is_object && b->mark_arrays) {
        lua_pushvalue(L, SLOT_MARKS);
        lua_setmetatable(L, f->base);
    }
    b->depth--;
    return added(b);
}

static const char *on_begin_object(void *ud)
{
    return open_container(ud, 1);
}

static const char *on_begin_array(void *ud)
{
    return open_container(ud, 0);
}

static const char *on_end(void *ud, size_t n)
{
    (void)n;
    return close_container(ud);
}

static void push_string(struct builder *b, const char *raw, size_t len, int escaped)
{
    if (!escaped) {
        lua_pushlstring(b->L, raw, len);
        return;
    }
    if (len > b->scratch_cap) {
        size_t cap = len < MIN_SCRATCH ? MIN_SCRATCH : len;
        b->scratch = aud_newuserdata(b->L, cap);
        b->scratch_cap = cap;
        lua_replace(b->L, SLOT_SCRATCH);
    }
    lua_pushlstring(b->L, b->scratch, aud_json_unescape(raw, len, b->scratch));
}

static unsigned key_slot(const char *raw, size_t len)
{
    unsigned h = (unsigned)len * 31u + (unsigned char)raw[0] * 7u +
                 (unsigned char)raw[len - 1] * 13u + (unsigned char)raw[len / 2];
    return h % KEY_SLOTS;
}

static const char *on_key(void *ud, const char *raw, size_t len, int escaped)
{
    struct builder *b = ud;
    if (b->key_base == 0 || escaped || len == 0 || len > KEY_MAX_LEN) {
        push_string(b, raw, len, escaped);
        return NULL;
    }
    unsigned i = key_slot(raw, len);
    struct cached_key *k = &b->keys[i];
    if (k->bytes != NULL && k->len == len && memcmp(k->bytes, raw, len) == 0) {
        lua_pushvalue(b->L, b->key_base + (int)i);
        return NULL;
    }
    lua_pushlstring(b->L, raw, len);
    lua_pushvalue(b->L, -1);
    lua_replace(b->L, b->key_base + (int)i);
    k->bytes = lua_tostring(b->L, -1); /* anchored by the slot */
    k->len = len;
    return NULL;
}

static const char *on_string(void *ud, const char *raw, size_t len, int escaped)
{
    push_string(ud, raw, len, escaped);
    return added(ud);
}

static const char *on_integer(void *ud, long long v)
{
    struct builder *b = ud;
#if AUD_LUA54
    lua_pushinteger(b->L, (lua_Integer)v);
#else
    lua_pushnumber(b->L, (lua_Number)v);
#endif
    return added(b);
}

static const char *on_number(void *ud, double v)
{
    struct builder *b = ud;
    lua_pushnumber(b->L, (lua_Number)v);
    return added(b);
}

static const char *on_boolean(void *ud, int v)
{
    struct builder *b = ud;
    lua_pushboolean(b->L, v);
    return added(b);
}

static const char *on_null(void *ud)
{
    struct builder *b = ud;
    lua_pushvalue(b->L, SLOT_NULL);
    return added(b);
}

static const struct aud_json_sink lua_sink = {
    on_begin_object, on_end, on_begin_array, on_end, on_key,
    on_string,       on_integer, on_number,  on_boolean, on_null,
};

/* decode(text) -> value, or nil and "invalid JSON at byte N: why". */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(UP_NULL));
    lua_pushvalue(L, lua_upvalueindex(UP_MARKS));
    lua_pushnil(L); /* SLOT_SCRATCH */
    luaL_checkstack(L, HEADROOM, "json decode");

    struct builder b;
    b.L = L;
    b.depth = 0;
    b.mark_arrays = lua_istable(L, SLOT_MARKS);
    b.scratch = NULL;
    b.scratch_cap = 0;
    b.key_base = 0;
    if (len >= KEY_CACHE_FROM) {
        luaL_checkstack(L, KEY_SLOTS, "json decode");
        b.key_base = SLOT_FIRST_VALUE;
        lua_settop(L, SLOT_FIRST_VALUE + KEY_SLOTS - 1);
        memset(b.keys, 0, sizeof b.keys);
    }
    struct aud_json_limits lim;
    lim.max_depth = (size_t)lua_tointeger(L, lua_upvalueindex(UP_MAX_DEPTH));
    lim.max_bytes = (size_t)lua_tointeger(L, lua_upvalueindex(UP_MAX_BYTES));
    struct aud_json_error err;
    if (aud_json_parse(text, len, &lim, &lua_sink, &b, &err) != 0) {
        char msg[200];
        if (err.offset >= len)
            snprintf(msg, sizeof msg, "invalid JSON at the end of the text (byte %zu): %s",
                     len + 1, err.reason);
        else
            snprintf(msg, sizeof msg, "invalid JSON at byte %zu: %s", err.offset + 1,
                     err.reason);
        lua_pushnil(L);
        lua_pushstring(L, msg);
        return 2;
    }
    return 1;
}

static lua_Integer limit_option(lua_State *L, const char *name, lua_Integer dflt,
                                lua_Integer max)
{
    lua_getfield(L, 1, name);
    lua_Integer v = dflt;
    if (!lua_isnil(L, -1)) {
        double d = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
        if (!(d >= 1 && d <= (double)max) || d != (double)(lua_Integer)d)
            luaL_error(L, "bad option '%s' (integer in 1..%d expected)", name,
                       (int)(max > 2147483647 ? 2147483647 : max));
        v = (lua_Integer)d;
    }
    lua_pop(L, 1);
    return v;
}

/* core.json_decoder{ null = sentinel, array_mt = table or nil,
 *                    max_depth = 200, max_bytes = 2^30 } -> decode
 * array_mt becomes the metatable of every decoded array: a pointer store
 * per array, where entering each one in a weak table (an ephemeron table
 * the collector must clear) cost a tenth of a page's decoding time. */
static int l_json_decoder(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "null");
    if (lua_isnil(L, -1))
        return luaL_error(L, "bad option 'null' (a non-nil value for JSON null expected)");
    lua_getfield(L, 1, "array_mt");
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
        return luaL_error(L, "bad option 'array_mt' (table or nil expected, got %s)",
                          luaL_typename(L, -1));
    lua_pushinteger(L, limit_option(L, "max_depth", DEFAULT_MAX_DEPTH, AUD_JSON_DEPTH_CAP));
    lua_pushinteger(L, limit_option(L, "max_bytes", DEFAULT_MAX_BYTES,
                                    (lua_Integer)2147483647));
    lua_pushcclosure(L, l_decode, 4);
    return 1;
}

/* core.json_number(x) -> JSON text of a finite number, or nil. */
static int l_json_number(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TNUMBER);
    char text[40];
    size_t n;
#if AUD_LUA54
    if (lua_isinteger(L, 1))
        n = aud_num_format_integer((long long)lua_tointeger(L, 1), text, sizeof text);
    else
#endif
        n = aud_num_format_json((double)lua_tonumber(L, 1), text, sizeof text);
    if (n == 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, text, n);
    return 1;
}

void aud_l_open_json(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"json_decoder", l_json_decoder},
        {"json_number", l_json_number},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
