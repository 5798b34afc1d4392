/* Lua binding of the limiters whose state lives outside the process:
 * core.limiter_file (store_file.c, the processes of one machine) and
 * core.limiter_redis (store_redis.c, many machines). Their methods are the
 * in-memory limiter's (lua_limiter.c), with the same arguments, results
 * and arithmetic, plus one convention for the store failing:
 *
 *   acquire, observe, penalize, configure and state return nil and a
 *   message ("file: ..." or "redis: ...") when the store cannot be read or
 *   written: a lock held too long, an I/O error, Redis down or slow.
 *   They never raise for that, so the caller decides whether to wait,
 *   fail the request or fall back. Bad arguments and a closed limiter
 *   raise, as on the in-memory limiter.
 *
 * Each object also remembers the tightest budget it was configured with
 * and re-applies it (tighter-wins, so a no-op while the shared state is
 * intact) before every operation but penalize: a Redis key that expired,
 * a file record that was corrupted, or a configure that failed while the
 * store was down cannot leave the account without its budget. */
#include <math.h>
#include <string.h>

#include "clock.h"
#include "lua_common.h"
#include "ratelimit.h"
#include "store_file.h"
#include "store_redis.h"

#define FILE_MT "audience.limiter.file"
#define REDIS_MT "audience.limiter.redis"
#define ERR_LEN 512

struct lstore {
    struct aud_file_store *file;   /* exactly one is set; both NULL */
    struct aud_redis_store *redis; /* once closed */
    double sticky_limit, sticky_per; /* NaN until configured */
};

struct op {
    enum aud_redis_op kind;
    double arg[3];
    double now; /* NaN: the file store reads the clock under its lock */
    double sticky_limit, sticky_per;
    double wait;
    struct aud_rl_state state;
    int clock_failed;
};

/* ---- running an operation ----------------------------------------- */

/* The same calls as lua_limiter.c makes on the in-memory state. */
static void apply(struct aud_rl_state *s, void *arg)
{
    struct op *op = arg;
    /* Read under the lock, the clock gives every process's operations the
     * order they hit the file in; read before it, a process delayed
     * between the two would move the bucket's refill stamp backwards. */
    if (isnan(op->now) && aud_clock_now(&op->now) != 0) {
        op->clock_failed = 1;
        op->state = *s;
        return;
    }
    if (!isnan(op->sticky_limit) && op->kind != AUD_REDIS_PENALIZE)
        aud_rl_configure(s, op->sticky_limit, op->sticky_per, op->now);
    switch (op->kind) {
    case AUD_REDIS_CONFIGURE:
        aud_rl_configure(s, op->arg[0], op->arg[1], op->now);
        break;
    case AUD_REDIS_ACQUIRE:
        op->wait = aud_rl_acquire(s, op->now, op->arg[0] == 1);
        break;
    case AUD_REDIS_OBSERVE:
        aud_rl_observe(s, op->arg[0], op->arg[1], op->arg[2], op->now);
        break;
    case AUD_REDIS_PENALIZE:
        aud_rl_penalize(s, op->arg[0]);
        break;
    case AUD_REDIS_STATE:
        aud_rl_advance(s, op->now);
        break;
    }
    op->state = *s;
}

static int run(struct lstore *u, struct op *op, char *err, size_t errlen)
{
    op->sticky_limit = u->sticky_limit;
    op->sticky_per = u->sticky_per;
    op->wait = 0;
    op->clock_failed = 0;
    if (u->file != NULL) {
        int write = op->kind != AUD_REDIS_STATE;
        if (aud_file_store_update(u->file, write, apply, op, err, errlen) != 0)
            return -1;
        if (op->clock_failed) {
            /* The record was written back unchanged. */
            snprintf(err, errlen, "file: clock_gettime failed");
            return -1;
        }
        return 0;
    }
    struct aud_redis_call c;
    c.op = op->kind;
    memcpy(c.arg, op->arg, sizeof c.arg);
    c.now = op->now;
    c.sticky_limit = op->sticky_limit;
    c.sticky_per = op->sticky_per;
    if (aud_redis_store_call(u->redis, &c, err, errlen) != 0)
        return -1;
    op->wait = c.wait;
    op->state = c.state;
    return 0;
}

static int push_failure(lua_State *L, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

/* ---- arguments ---------------------------------------------------- */

static struct lstore *to_store(lua_State *L)
{
    struct lstore *u = luaL_testudata(L, 1, FILE_MT);
    if (u == NULL)
        u = luaL_testudata(L, 1, REDIS_MT);
    if (u == NULL)
        luaL_argerror(L, 1, lua_pushfstring(L, "limiter expected, got %s",
                                            luaL_typename(L, 1)));
    return u;
}

static struct lstore *check_store(lua_State *L)
{
    struct lstore *u = to_store(L);
    if (u->file == NULL && u->redis == NULL)
        luaL_error(L, "limiter is closed");
    return u;
}

static double check_positive(lua_State *L, int arg, const char *name)
{
    double v = aud_l_check_finite(L, arg);
    if (!(v > 0))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be positive", name));
    return v;
}

/* The file store reads the clock itself, under its lock. */
static double opt_now(lua_State *L, struct lstore *u, int arg)
{
    if (u->file != NULL && lua_isnoneornil(L, arg))
        return NAN;
    return aud_l_opt_now(L, arg);
}

/* opts must be nil or a table whose keys are all in names: a misspelt
 * timeout silently ignored would be a hang waiting to happen. */
static void check_opts(lua_State *L, int arg, const char *const *names)
{
    if (lua_isnoneornil(L, arg))
        return;
    if (!lua_istable(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "opts must be a table, got %s",
                                              luaL_typename(L, arg)));
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        int known = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (const char *const *n = names; *n != NULL; n++)
                known = known || strcmp(lua_tostring(L, -2), *n) == 0;
        if (!known)
            luaL_argerror(L, arg,
                          lua_type(L, -2) == LUA_TSTRING
                              ? lua_pushfstring(L, "opts: unknown option '%s'",
                                                lua_tostring(L, -2))
                              : "opts: option names must be strings");
        lua_pop(L, 1);
    }
}

/* opts[name] as a number in [min, max], or def when absent. */
static double opt_field(lua_State *L, int arg, const char *name, double def,
                        double min, double max, int integer, const char *what)
{
    if (lua_isnoneornil(L, arg))
        return def;
    lua_getfield(L, arg, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    double v = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;
    if (!(v >= min && v <= max) || (integer && v != floor(v)))
        luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s must be %s", name, what));
    lua_pop(L, 1);
    return v;
}

/* ---- methods ------------------------------------------------------ */

static int l_store_configure(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct op op = {.kind = AUD_REDIS_CONFIGURE};
    op.arg[0] = check_positive(L, 2, "limit");
    op.arg[1] = check_positive(L, 3, "per");
    op.arg[2] = NAN;
    op.now = opt_now(L, u, 4);
    /* Remembered even if the store is down now: the next operation that
     * reaches it applies the budget. */
    struct aud_rl_state t;
    aud_rl_init(&t);
    if (!isnan(u->sticky_limit))
        aud_rl_configure(&t, u->sticky_limit, u->sticky_per, 0);
    aud_rl_configure(&t, op.arg[0], op.arg[1], 0);
    u->sticky_limit = t.budget_limit;
    u->sticky_per = t.budget_per;
    char err[ERR_LEN];
    if (run(u, &op, err, sizeof err) != 0)
        return push_failure(L, err);
    return 0;
}

static int l_store_acquire(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct op op = {.kind = AUD_REDIS_ACQUIRE, .arg = {NAN, NAN, NAN}};
    op.now = opt_now(L, u, 2);
    op.arg[0] = lua_toboolean(L, 3) ? 1 : 0;
    char err[ERR_LEN];
    if (run(u, &op, err, sizeof err) != 0)
        return push_failure(L, err);
    lua_pushnumber(L, (lua_Number)op.wait);
    return 1;
}

static int l_store_observe(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct op op = {.kind = AUD_REDIS_OBSERVE};
    op.arg[0] = aud_l_opt_finite_or_nan(L, 2);
    op.arg[1] = aud_l_opt_finite_or_nan(L, 3);
    op.arg[2] = aud_l_opt_finite_or_nan(L, 4);
    op.now = opt_now(L, u, 5);
    char err[ERR_LEN];
    if (run(u, &op, err, sizeof err) != 0)
        return push_failure(L, err);
    return 0;
}

static int l_store_penalize(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct op op = {.kind = AUD_REDIS_PENALIZE, .arg = {NAN, NAN, NAN}};
    op.arg[0] = aud_l_check_finite(L, 2);
    /* Not part of the arithmetic (penalize takes no "now"); Redis sets
     * the key's TTL from it. */
    op.now = NAN;
    if (u->redis != NULL && aud_clock_now(&op.now) != 0)
        return push_failure(L, "redis: clock_gettime failed");
    char err[ERR_LEN];
    if (run(u, &op, err, sizeof err) != 0)
        return push_failure(L, err);
    return 0;
}

static int l_store_state(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct op op = {.kind = AUD_REDIS_STATE, .arg = {NAN, NAN, NAN}};
    op.now = opt_now(L, u, 2);
    char err[ERR_LEN];
    if (run(u, &op, err, sizeof err) != 0)
        return push_failure(L, err);
    const struct aud_rl_state *s = &op.state;
    aud_l_push_rl_state(L, s, op.now);
    return 1;
}

static int l_store_close(lua_State *L)
{
    struct lstore *u = to_store(L);
    if (u->file != NULL) {
        aud_file_store_close(u->file);
        u->file = NULL;
    }
    if (u->redis != NULL) {
        aud_redis_store_free(u->redis);
        u->redis = NULL;
    }
    return 0;
}

static int l_store_tostring(lua_State *L)
{
    struct lstore *u = to_store(L);
    const char *name = luaL_testudata(L, 1, FILE_MT) != NULL ? FILE_MT : REDIS_MT;
    void *p = u->file != NULL ? (void *)u->file : (void *)u->redis;
    /* Never the URL: it may hold a password. */
    if (p == NULL)
        lua_pushfstring(L, "%s (closed)", name);
    else
        lua_pushfstring(L, "%s (%p)", name, p);
    return 1;
}

/* ---- constructors ------------------------------------------------- */

static struct lstore *new_store(lua_State *L, const char *mt)
{
    struct lstore *u = aud_newuserdata(L, sizeof *u);
    u->file = NULL;
    u->redis = NULL;
    u->sticky_limit = NAN;
    u->sticky_per = NAN;
    luaL_setmetatable(L, mt);
    return u;
}

/* core.limiter_file(path, account [, {lock_timeout = 5}]) -> limiter, or
 * nil, "file: ..." when the file cannot be opened or created. */
static int l_limiter_file(lua_State *L)
{
    static const char *const names[] = {"lock_timeout", NULL};
    size_t plen, alen;
    const char *path = aud_l_check_string(L, 1, "path", &plen);
    const char *account = aud_l_check_string(L, 2, "account", &alen);
    if (plen == 0 || memchr(path, '\0', plen) != NULL)
        luaL_argerror(L, 1, "path must be a non-empty string without NUL bytes");
    check_opts(L, 3, names);
    double lock_timeout = opt_field(L, 3, "lock_timeout", AUD_FILE_LOCK_TIMEOUT,
                                    0, 3600, 0, "a number of seconds in [0, 3600]");
    struct lstore *u = new_store(L, FILE_MT);
    char err[ERR_LEN];
    u->file = aud_file_store_open(path, account, alen, lock_timeout, err, sizeof err);
    if (u->file == NULL)
        return push_failure(L, err);
    return 1;
}

/* core.limiter_redis(url, account [, {connect_timeout = 1, timeout = 1,
 * ttl = 86400}]) -> limiter. Connects on first use; raises only for bad
 * arguments (a malformed URL included). */
static int l_limiter_redis(lua_State *L)
{
    static const char *const names[] = {"connect_timeout", "timeout", "ttl", NULL};
    size_t ulen, alen;
    const char *url = aud_l_check_string(L, 1, "url", &ulen);
    const char *account = aud_l_check_string(L, 2, "account", &alen);
    check_opts(L, 3, names);
    struct aud_redis_options o;
    aud_redis_options_default(&o);
    o.connect_timeout = opt_field(L, 3, "connect_timeout", o.connect_timeout,
                                  1e-3, 3600, 0, "a number of seconds in [0.001, 3600]");
    o.timeout = opt_field(L, 3, "timeout", o.timeout, 1e-3, 3600, 0,
                          "a number of seconds in [0.001, 3600]");
    o.ttl = (long)opt_field(L, 3, "ttl", (double)o.ttl, 1, 2147483647.0, 1,
                            "a whole number of seconds >= 1");
    struct lstore *u = new_store(L, REDIS_MT);
    char err[ERR_LEN];
    u->redis = aud_redis_store_new(url, ulen, account, alen, &o, err, sizeof err);
    if (u->redis == NULL) {
        if (strncmp(err, "url", 3) == 0)
            return luaL_argerror(L, 1, err); /* copied before it unwinds */
        return luaL_error(L, "%s", err);
    }
    return 1;
}

void aud_l_open_store(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"configure", l_store_configure},
        {"acquire", l_store_acquire},
        {"observe", l_store_observe},
        {"penalize", l_store_penalize},
        {"state", l_store_state},
        {"close", l_store_close},
        {NULL, NULL},
    };
    aud_l_new_class(L, FILE_MT, methods, l_store_close, l_store_tostring);
    aud_l_new_class(L, REDIS_MT, methods, l_store_close, l_store_tostring);

    static const luaL_Reg functions[] = {
        {"limiter_file", l_limiter_file},
        {"limiter_redis", l_limiter_redis},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
