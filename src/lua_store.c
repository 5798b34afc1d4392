/* Lua binding of the quota limiters: core.limiter (memory, registry.c),
 * core.limiter_file (store_file.c, the processes of one machine) and
 * core.limiter_redis (store_redis.c, many machines). They share one set of
 * methods, each a single store run (store.h) of the one algorithm:
 *
 *   configure(limit, per [, now])    acquire([now [, probe]]) -> wait
 *   observe([limit, remaining, reset_at [, now]])
 *   fail([sent [, now]])             penalize(until [, now])
 *   state([now]) -> { limit =, remaining =, ... }            close()
 *
 * A nil now means the store reads the clock under its lock. The budget
 * given to configure is kept here, in the object, and applied (tighter
 * wins) by every later run, so a wiped record or a store that was down
 * when it was configured gets it back; nothing else remembers it.
 *
 * When the shared store cannot be read or written (a lock held too long,
 * an I/O error, Redis down or slow), a method returns nil and a message
 * ("file: ..." or "redis: ..."); it never raises for that. Bad arguments
 * and a closed limiter raise. */
#include <math.h>
#include <string.h>

#include "lua_common.h"
#include "ratelimit.h"
#include "registry.h"
#include "store.h"
#include "store_file.h"
#include "store_redis.h"

#define MEMORY_MT "audience.limiter"
#define FILE_MT "audience.limiter.file"
#define REDIS_MT "audience.limiter.redis"
#define ERR_LEN 512

struct lstore {
    void *impl; /* NULL once closed */
    aud_store_run_fn run;
    aud_store_close_fn close;
    double budget_limit, budget_per; /* NaN until configured */
};

static struct lstore *to_store(lua_State *L)
{
    static const char *const names[] = {MEMORY_MT, FILE_MT, REDIS_MT};
    for (int i = 0; i < 3; i++) {
        struct lstore *u = luaL_testudata(L, 1, names[i]);
        if (u != NULL)
            return u;
    }
    luaL_argerror(L, 1, lua_pushfstring(L, "limiter expected, got %s",
                                        luaL_typename(L, 1)));
    return NULL;
}

static struct lstore *check_store(lua_State *L)
{
    struct lstore *u = to_store(L);
    if (u->impl == NULL)
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

static double opt_now(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NAN : aud_l_check_finite(L, arg);
}

/* Every argument is checked before the run: a Lua error must never unwind
 * past a held mutex or lock. */
static int run(lua_State *L, struct lstore *u, struct aud_rl_step *st,
               struct aud_rl_state *out)
{
    st->budget_limit = u->budget_limit;
    st->budget_per = u->budget_per;
    char err[ERR_LEN];
    if (u->run(u->impl, st, out, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return -1;
    }
    return 0;
}

static int l_configure(lua_State *L)
{
    struct lstore *u = check_store(L);
    double limit = check_positive(L, 2, "limit");
    double per = check_positive(L, 3, "per");
    struct aud_rl_step st;
    aud_rl_step_init(&st, AUD_RL_CONFIGURE, opt_now(L, 4));
    aud_rl_tighter(&u->budget_limit, &u->budget_per, limit, per);
    struct aud_rl_state s;
    return run(L, u, &st, &s) != 0 ? 2 : 0;
}

static int l_acquire(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct aud_rl_step st;
    aud_rl_step_init(&st, AUD_RL_ACQUIRE, opt_now(L, 2));
    st.flag = lua_toboolean(L, 3);
    struct aud_rl_state s;
    if (run(L, u, &st, &s) != 0)
        return 2;
    lua_pushnumber(L, (lua_Number)st.wait);
    return 1;
}

static int l_observe(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct aud_rl_step st;
    aud_rl_step_init(&st, AUD_RL_OBSERVE, opt_now(L, 5));
    for (int i = 0; i < 3; i++)
        st.arg[i] = aud_l_opt_finite_or_nan(L, 2 + i);
    struct aud_rl_state s;
    return run(L, u, &st, &s) != 0 ? 2 : 0;
}

static int l_fail(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct aud_rl_step st;
    aud_rl_step_init(&st, AUD_RL_FAIL, opt_now(L, 3));
    st.flag = lua_toboolean(L, 2);
    struct aud_rl_state s;
    return run(L, u, &st, &s) != 0 ? 2 : 0;
}

static int l_penalize(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct aud_rl_step st;
    double until = aud_l_check_finite(L, 2);
    aud_rl_step_init(&st, AUD_RL_PENALIZE, opt_now(L, 3));
    st.arg[0] = until;
    struct aud_rl_state s;
    return run(L, u, &st, &s) != 0 ? 2 : 0;
}

static int l_state(lua_State *L)
{
    struct lstore *u = check_store(L);
    struct aud_rl_step st;
    aud_rl_step_init(&st, AUD_RL_STATE, opt_now(L, 2));
    struct aud_rl_state s;
    if (run(L, u, &st, &s) != 0)
        return 2;
    aud_l_push_rl_state(L, &s, st.now);
    return 1;
}

static int l_close(lua_State *L)
{
    struct lstore *u = to_store(L);
    if (u->impl != NULL) {
        u->close(u->impl);
        u->impl = NULL;
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct lstore *u = to_store(L);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__name");
    const char *name = lua_tostring(L, -1);
    /* Never the URL or path: a URL may hold a password. */
    if (u->impl == NULL)
        lua_pushfstring(L, "%s (closed)", name);
    else
        lua_pushfstring(L, "%s (%p)", name, u->impl);
    return 1;
}

/* ---- constructors ------------------------------------------------- */

static struct lstore *new_store(lua_State *L, const char *mt, aud_store_run_fn r,
                                aud_store_close_fn c)
{
    struct lstore *u = aud_newuserdata(L, sizeof *u);
    u->impl = NULL;
    u->run = r;
    u->close = c;
    u->budget_limit = NAN;
    u->budget_per = NAN;
    luaL_setmetatable(L, mt);
    return u;
}

static void release_entry(void *impl)
{
    aud_registry_release(impl);
}

/* core.limiter(account) -> limiter over this process's memory. */
static int l_limiter(lua_State *L)
{
    size_t len;
    const char *account = luaL_checklstring(L, 1, &len);
    struct lstore *u = new_store(L, MEMORY_MT, aud_registry_run, release_entry);
    u->impl = aud_registry_acquire(account, len);
    if (u->impl == NULL)
        return luaL_error(L, "out of memory");
    return 1;
}

static int file_run(void *impl, struct aud_rl_step *st, struct aud_rl_state *out,
                    char *err, size_t errlen)
{
    return aud_file_store_run(impl, st, out, err, errlen);
}

static void file_close(void *impl)
{
    aud_file_store_close(impl);
}

/* core.limiter_file(path, account [, {lock_timeout = 5}]) -> limiter, or
 * nil, "file: PATH: ..." when the path is not (and cannot become) this
 * store's own file: see store_file.h. */
static int l_limiter_file(lua_State *L)
{
    static const char *const names[] = {"lock_timeout", NULL};
    size_t plen, alen;
    const char *path = aud_l_check_string(L, 1, "path", &plen);
    const char *account = aud_l_check_string(L, 2, "account", &alen);
    if (plen == 0 || memchr(path, '\0', plen) != NULL)
        luaL_argerror(L, 1, "path must be a non-empty string without NUL bytes");
    aud_l_check_opts(L, 3, names);
    double lock_timeout = aud_l_opt_field(L, 3, "lock_timeout", AUD_FILE_LOCK_TIMEOUT,
                                          0, 3600, 0, "a number of seconds in [0, 3600]");
    struct lstore *u = new_store(L, FILE_MT, file_run, file_close);
    char err[ERR_LEN];
    u->impl = aud_file_store_open(path, account, alen, lock_timeout, err, sizeof err);
    if (u->impl == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int redis_run(void *impl, struct aud_rl_step *st, struct aud_rl_state *out,
                     char *err, size_t errlen)
{
    return aud_redis_store_run(impl, st, out, err, errlen);
}

static void redis_close(void *impl)
{
    aud_redis_store_free(impl);
}

/* core.limiter_redis(url, account [, {connect_timeout = 1, timeout = 1,
 * ttl = 86400}]) -> limiter. Connects on first use; raises only for bad
 * arguments (a malformed URL included, never echoed). */
static int l_limiter_redis(lua_State *L)
{
    static const char *const names[] = {"connect_timeout", "timeout", "ttl", NULL};
    size_t ulen, alen;
    const char *url = aud_l_check_string(L, 1, "url", &ulen);
    const char *account = aud_l_check_string(L, 2, "account", &alen);
    aud_l_check_opts(L, 3, names);
    struct aud_redis_options o;
    aud_redis_options_default(&o);
    o.connect_timeout = aud_l_opt_field(L, 3, "connect_timeout", o.connect_timeout,
                                        1e-3, 3600, 0, "a number of seconds in [0.001, 3600]");
    o.timeout = aud_l_opt_field(L, 3, "timeout", o.timeout, 1e-3, 3600, 0,
                                "a number of seconds in [0.001, 3600]");
    o.ttl = (long)aud_l_opt_field(L, 3, "ttl", (double)o.ttl, 1, 2147483647.0, 1,
                                  "a whole number of seconds >= 1");
    struct lstore *u = new_store(L, REDIS_MT, redis_run, redis_close);
    char err[ERR_LEN];
    u->impl = aud_redis_store_new(url, ulen, account, alen, &o, err, sizeof err);
    if (u->impl == NULL) {
        if (strncmp(err, "url", 3) == 0)
            return luaL_argerror(L, 1, err); /* copied before it unwinds */
        return luaL_error(L, "%s", err);
    }
    return 1;
}

void aud_l_open_store(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"configure", l_configure}, {"acquire", l_acquire},
        {"observe", l_observe},     {"fail", l_fail},
        {"penalize", l_penalize},   {"state", l_state},
        {"close", l_close},         {NULL, NULL},
    };
    aud_l_new_class(L, MEMORY_MT, methods, l_close, l_tostring);
    aud_l_new_class(L, FILE_MT, methods, l_close, l_tostring);
    aud_l_new_class(L, REDIS_MT, methods, l_close, l_tostring);

    static const luaL_Reg functions[] = {
        {"limiter", l_limiter},
        {"limiter_file", l_limiter_file},
        {"limiter_redis", l_limiter_redis},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
