/* Redis for callers that own the socket (nginx's cosockets, see
 * lua/audience/redis_ngx.lua):
 *
 *   core.redis_codec([limits]) -> codec    sans-I/O RESP (redis_codec.c)
 *     codec:format({arg, ...}) -> bytes     codec:feed(bytes) -> true | nil, err
 *     codec:next_reply() -> reply | nil (more bytes needed) | nil, err
 *     codec:pending() -> bytes fed and not consumed
 *   A reply is a string (bulk), an integer, false (nil), a table with n
 *   (array), { status = "OK" } or { err = "ERR ..." }.
 *
 *   core.redis_quota(url, account [, opts]) -> quota    (store_redis.c's URL,
 *     options and swap; it never connects itself)
 *     quota:endpoint() -> host, port, pool, timeout, connect_timeout
 *     quota:setup() -> run, bytes   (nil when the URL needs no AUTH/SELECT)
 *     quota:run(op, now, budget_limit, budget_per, ...) -> run, bytes
 *       (the arguments of core.limiter_step after its state; now may be nil)
 *     run:feed(bytes) -> "more" | "send", bytes | "done"[, result]
 *                      | "error", msg (the server said no) | "broken", msg
 *     run:pending() -> bytes received past the last reply (a connection
 *       with any is out of step: not for the pool)
 *   A run is one compare-and-swap (redis_cas.c) or the connection's setup;
 *   each holds its own reader, so light threads sharing a quota object
 *   never mix their replies. No message holds the URL or the password. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_common.h"
#include "ratelimit.h"
#include "redis_cas.h"
#include "redis_codec.h"
#include "redis_conn.h"
#include "store_redis.h"

#define CODEC_MT "audience.redis_codec"
#define QUOTA_MT "audience.redis_quota"
#define RUN_MT "audience.redis_run"
#define ERR_LEN 512

/* ---- codec -------------------------------------------------------- */

struct lcodec {
    struct aud_redis_codec c;
    int live;
};

static struct lcodec *check_codec(lua_State *L)
{
    struct lcodec *u = luaL_checkudata(L, 1, CODEC_MT);
    if (!u->live)
        luaL_error(L, "redis codec is closed");
    return u;
}

static size_t limit_field(lua_State *L, int arg, const char *name, size_t def)
{
    return (size_t)aud_l_opt_field(L, arg, name, (double)def, 1, 1073741824.0, 1,
                                   "a whole number in [1, 2^30]");
}

static int l_codec_new(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    struct aud_redis_limits lim;
    aud_redis_limits_default(&lim);
    lim.max_buffer = limit_field(L, 1, "max_buffer", lim.max_buffer);
    lim.max_elements = (long long)limit_field(L, 1, "max_elements", (size_t)lim.max_elements);
    lim.max_string = limit_field(L, 1, "max_string", lim.max_string);
    struct lcodec *u = aud_newuserdata(L, sizeof *u);
    u->live = 0;
    luaL_setmetatable(L, CODEC_MT);
    if (aud_redis_codec_init(&u->c, &lim) != 0)
        return luaL_error(L, "out of memory");
    u->live = 1;
    return 1;
}

static int l_codec_format(lua_State *L)
{
    (void)check_codec(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)lua_rawlen(L, 2);
    if (n < 1 || n > 1024)
        return luaL_argerror(L, 2, "a command is 1 to 1024 strings");
    luaL_checkstack(L, n, "too many arguments");
    const char **argv = lua_newuserdata(L, (size_t)n * (sizeof *argv + sizeof(size_t)));
    size_t *lens = (size_t *)(void *)(argv + n);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 2, lua_pushfstring(L, "argument %d must be a string, got %s",
                                                       i + 1, luaL_typename(L, -1)));
        argv[i] = lua_tolstring(L, -1, &lens[i]);
    }
    char *out;
    long long len = aud_redis_format(&out, n, argv, lens);
    if (len < 0)
        return luaL_error(L, "out of memory");
    lua_pushlstring(L, out, (size_t)len);
    redisFreeCommand(out);
    return 1;
}

static int l_codec_feed(lua_State *L)
{
    struct lcodec *u = check_codec(L);
    size_t len;
    const char *s = aud_l_check_string(L, 2, "bytes", &len);
    if (aud_redis_codec_feed(&u->c, s, len) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, u->c.err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* hiredis nests at most 7 levels deep, so this recursion is bounded. */
static void push_reply(lua_State *L, const redisReply *r)
{
    luaL_checkstack(L, 4, "reply nested too deeply");
    switch (r->type) {
    case REDIS_REPLY_STRING:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)r->elements, 1);
        for (size_t i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_pushinteger(L, (lua_Integer)r->elements);
        lua_setfield(L, -2, "n");
        break;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, r->type == REDIS_REPLY_STATUS ? "status" : "err");
        break;
    default:
        lua_pushboolean(L, 0);
        break;
    }
}

static int l_codec_next(lua_State *L)
{
    struct lcodec *u = check_codec(L);
    redisReply *r;
    int rc = aud_redis_codec_next(&u->c, &r);
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, u->c.err);
        return 2;
    }
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    push_reply(L, r);
    freeReplyObject(r);
    return 1;
}

static int l_codec_pending(lua_State *L)
{
    struct lcodec *u = check_codec(L);
    lua_pushinteger(L, (lua_Integer)aud_redis_codec_pending(&u->c));
    return 1;
}

static int l_codec_close(lua_State *L)
{
    struct lcodec *u = luaL_checkudata(L, 1, CODEC_MT);
    if (u->live)
        aud_redis_codec_free(&u->c);
    u->live = 0;
    return 0;
}

static int l_codec_tostring(lua_State *L)
{
    (void)luaL_checkudata(L, 1, CODEC_MT);
    lua_pushstring(L, CODEC_MT);
    return 1;
}

/* ---- quota -------------------------------------------------------- */

struct lquota {
    struct aud_redis_store *store; /* for its URL, options and swap; never connected */
};

static struct lquota *check_quota(lua_State *L)
{
    struct lquota *u = luaL_checkudata(L, 1, QUOTA_MT);
    if (u->store == NULL)
        luaL_error(L, "redis quota is closed");
    return u;
}

static int l_quota_new(lua_State *L)
{
    size_t ulen, alen;
    const char *url = aud_l_check_string(L, 1, "url", &ulen);
    const char *account = aud_l_check_string(L, 2, "account", &alen);
    static const char *const names[] = {"connect_timeout", "timeout", "ttl", NULL};
    aud_l_check_opts(L, 3, names);
    struct aud_redis_options o;
    aud_redis_options_default(&o);
    o.connect_timeout = aud_l_opt_field(L, 3, "connect_timeout", o.connect_timeout, 1e-3, 3600, 0,
                                        "a number of seconds in [0.001, 3600]");
    o.timeout = aud_l_opt_field(L, 3, "timeout", o.timeout, 1e-3, 3600, 0,
                                "a number of seconds in [0.001, 3600]");
    o.ttl = (long)aud_l_opt_field(L, 3, "ttl", (double)o.ttl, 1, 2147483647.0, 1,
                                  "a whole number of seconds >= 1");
    struct lquota *u = aud_newuserdata(L, sizeof *u);
    u->store = NULL;
    luaL_setmetatable(L, QUOTA_MT);
    char err[ERR_LEN];
    u->store = aud_redis_store_new(url, ulen, account, alen, &o, err, sizeof err);
    if (u->store == NULL) {
        if (strncmp(err, "url", 3) == 0)
            return luaL_argerror(L, 1, err);
        return luaL_error(L, "%s", err);
    }
    return 1;
}

static int l_quota_endpoint(lua_State *L)
{
    struct lquota *u = check_quota(L);
    const struct aud_redis_target *t = aud_redis_store_target(u->store);
    double connect_timeout;
    double timeout = aud_redis_store_timeout(u->store, &connect_timeout);
    lua_pushstring(L, t->host);
    lua_pushinteger(L, t->port);
    lua_pushstring(L, aud_redis_store_pool(u->store));
    lua_pushnumber(L, timeout);
    lua_pushnumber(L, connect_timeout);
    return 5;
}

static int l_quota_close(lua_State *L)
{
    struct lquota *u = luaL_checkudata(L, 1, QUOTA_MT);
    aud_redis_store_free(u->store);
    u->store = NULL;
    return 0;
}

static int l_quota_tostring(lua_State *L)
{
    (void)luaL_checkudata(L, 1, QUOTA_MT);
    lua_pushstring(L, QUOTA_MT); /* never the URL */
    return 1;
}

/* ---- runs --------------------------------------------------------- */

enum { RUN_SETUP, RUN_CAS, RUN_OVER };

struct lrun {
    int mode;
    struct aud_redis_codec codec;
    int codec_live;
    /* setup: the replies still expected and the commands they answer */
    int setup_left;
    const char *setup_names[2];
    /* a swap: copies, so the run outlives nothing it points into */
    char *key;
    char sha[48];
    struct aud_redis_cas_conf conf;
    struct aud_redis_cas cas;
    struct aud_rl_step st;
    struct aud_rl_state out;
};

static struct lrun *new_run(lua_State *L, int mode)
{
    struct lrun *r = aud_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    r->mode = RUN_OVER;
    luaL_setmetatable(L, RUN_MT);
    if (aud_redis_codec_init(&r->codec, NULL) != 0)
        luaL_error(L, "out of memory");
    r->codec_live = 1;
    r->mode = mode;
    return r;
}

/* Appends one formatted command to the buffer on top of the stack. */
static void add_command(lua_State *L, luaL_Buffer *b, int argc, const char **argv,
                        const size_t *lens)
{
    char *cmd;
    long long n = aud_redis_format(&cmd, argc, argv, lens);
    if (n < 0)
        luaL_error(L, "out of memory");
    luaL_addlstring(b, cmd, (size_t)n);
    /* Wiped (volatile: a plain memset before free may be optimised away):
     * an AUTH command holds the password. */
    volatile char *p = cmd;
    for (long long i = 0; i < n; i++)
        p[i] = 0;
    redisFreeCommand(cmd);
}

static int l_quota_setup(lua_State *L)
{
    struct lquota *u = check_quota(L);
    const struct aud_redis_target *t = aud_redis_store_target(u->store);
    if (t->password == NULL && t->db == 0)
        return 0;
    struct lrun *r = new_run(L, RUN_SETUP);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *auth[3];
    size_t auth_lens[3];
    int argc = aud_redis_auth_args(t, auth, auth_lens);
    if (argc > 0) {
        add_command(L, &b, argc, auth, auth_lens);
        r->setup_names[r->setup_left++] = "AUTH";
    }
    if (t->db != 0) {
        char db[24];
        int n = snprintf(db, sizeof db, "%ld", t->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        add_command(L, &b, 2, argv, lens);
        r->setup_names[r->setup_left++] = "SELECT";
    }
    luaL_pushresult(&b);
    return 2;
}

static int l_quota_run(lua_State *L)
{
    struct lquota *u = check_quota(L);
    struct aud_rl_step st;
    aud_l_check_step(L, 2, 1, &st);
    const struct aud_redis_cas_conf *conf = aud_redis_store_conf(u->store);
    struct lrun *r = new_run(L, RUN_CAS);
    r->key = malloc(conf->key_len + 1);
    if (r->key == NULL)
        return luaL_error(L, "out of memory");
    memcpy(r->key, conf->key, conf->key_len + 1);
    snprintf(r->sha, sizeof r->sha, "%s", conf->sha);
    r->conf = *conf;
    r->conf.key = r->key;
    r->conf.sha = r->sha;
    r->st = st;
    aud_redis_cas_begin(&r->cas, &r->conf, &r->st, &r->out);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_command(L, &b, r->cas.argc, r->cas.argv, r->cas.lens);
    luaL_pushresult(&b);
    return 2;
}

static void run_over(struct lrun *r)
{
    r->mode = RUN_OVER;
    aud_redis_cas_end(&r->cas);
}

static int run_fail(lua_State *L, struct lrun *r, const char *kind, const char *msg)
{
    run_over(r);
    lua_pushstring(L, kind);
    lua_pushstring(L, msg);
    return 2;
}

static int push_result(lua_State *L, struct lrun *r)
{
    lua_pushliteral(L, "done");
    if (r->st.op == AUD_RL_ACQUIRE) {
        lua_pushnumber(L, (lua_Number)r->st.wait);
        return 2;
    }
    if (r->st.op == AUD_RL_STATE) {
        aud_l_push_rl_state(L, &r->out, r->st.now);
        return 2;
    }
    return 1;
}

/* One reply of the setup: 1 when all came, 0 more, -1 refused (err). */
static int setup_reply(struct lrun *r, const redisReply *rep, char *err, size_t errlen)
{
    const char *name = r->setup_names[0];
    if (rep->type != REDIS_REPLY_STATUS) {
        snprintf(err, errlen, "redis: %s rejected: %.200s", name,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        return -1;
    }
    r->setup_names[0] = r->setup_names[1];
    return --r->setup_left == 0;
}

static int l_run_feed(lua_State *L)
{
    struct lrun *r = luaL_checkudata(L, 1, RUN_MT);
    size_t len;
    const char *s = aud_l_check_string(L, 2, "bytes", &len);
    if (r->mode == RUN_OVER)
        return luaL_error(L, "redis run is over");
    char err[ERR_LEN];
    if (aud_redis_codec_feed(&r->codec, s, len) != 0)
        return run_fail(L, r, "broken", r->codec.err);
    for (;;) {
        redisReply *rep;
        int got = aud_redis_codec_next(&r->codec, &rep);
        if (got < 0)
            return run_fail(L, r, "broken", r->codec.err);
        if (got == 0) {
            lua_pushliteral(L, "more");
            return 1;
        }
        if (r->mode == RUN_SETUP) {
            int rc = setup_reply(r, rep, err, sizeof err);
            freeReplyObject(rep);
            if (rc < 0)
                return run_fail(L, r, "error", err);
            if (rc == 0)
                continue;
            run_over(r);
            lua_pushliteral(L, "done");
            return 1;
        }
        int rc = aud_redis_cas_reply(&r->cas, rep, err, sizeof err);
        freeReplyObject(rep);
        if (rc == AUD_CAS_FAILED)
            return run_fail(L, r, "error", err);
        if (rc == AUD_CAS_DONE) {
            run_over(r);
            return push_result(L, r);
        }
        /* One command at a time: a reply past this one would be a server
         * out of step with us. */
        if (aud_redis_codec_pending(&r->codec) != 0)
            return run_fail(L, r, "broken", "redis: more replies than commands");
        lua_pushliteral(L, "send");
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        add_command(L, &b, r->cas.argc, r->cas.argv, r->cas.lens);
        luaL_pushresult(&b);
        return 2;
    }
}

static int l_run_pending(lua_State *L)
{
    struct lrun *r = luaL_checkudata(L, 1, RUN_MT);
    lua_pushinteger(L, r->codec_live ? (lua_Integer)aud_redis_codec_pending(&r->codec) : 0);
    return 1;
}

static int l_run_close(lua_State *L)
{
    struct lrun *r = luaL_checkudata(L, 1, RUN_MT);
    run_over(r);
    if (r->codec_live)
        aud_redis_codec_free(&r->codec);
    r->codec_live = 0;
    free(r->key);
    r->key = NULL;
    return 0;
}

static int l_run_tostring(lua_State *L)
{
    (void)luaL_checkudata(L, 1, RUN_MT);
    lua_pushstring(L, RUN_MT);
    return 1;
}

void aud_l_open_redis(lua_State *L)
{
    static const luaL_Reg codec_methods[] = {
        {"format", l_codec_format},   {"feed", l_codec_feed},
        {"next_reply", l_codec_next}, {"pending", l_codec_pending},
        {"close", l_codec_close},     {NULL, NULL},
    };
    static const luaL_Reg quota_methods[] = {
        {"endpoint", l_quota_endpoint}, {"setup", l_quota_setup}, {"run", l_quota_run},
        {"close", l_quota_close},       {NULL, NULL},
    };
    static const luaL_Reg run_methods[] = {
        {"feed", l_run_feed}, {"pending", l_run_pending}, {"close", l_run_close},
        {NULL, NULL},
    };
    aud_l_new_class(L, CODEC_MT, codec_methods, l_codec_close, l_codec_tostring);
    aud_l_new_class(L, QUOTA_MT, quota_methods, l_quota_close, l_quota_tostring);
    aud_l_new_class(L, RUN_MT, run_methods, l_run_close, l_run_tostring);
    static const luaL_Reg functions[] = {
        {"redis_codec", l_codec_new},
        {"redis_quota", l_quota_new},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
