/* Rate-limit state shared by many machines through Redis. Each operation
 * is one script call (EVALSHA, EVAL on NOSCRIPT) that runs ratelimit.c's
 * algorithm, rewritten in Lua in store_redis.c, atomically on the server
 * over the hash "audience:rl:<account>". Time is the caller's "now": the
 * hosts sharing an account need synchronised clocks (NTP). */
#ifndef AUD_STORE_REDIS_H
#define AUD_STORE_REDIS_H

#include <stddef.h>

#include "ratelimit.h"

#define AUD_REDIS_KEY_PREFIX "audience:rl:"

struct aud_redis_options {
    double connect_timeout; /* seconds, > 0 */
    double timeout;         /* seconds, > 0: each command's send and reply */
    long ttl;               /* seconds, >= 1: idle time before the key expires */
};

void aud_redis_options_default(struct aud_redis_options *o);

struct aud_redis_store;

/* Parses url (redis://[[user]:password@]host[:port][/db]) and keeps a
 * copy of everything; connects lazily, on the first call. NULL with the
 * reason in err (a bad URL, memory); err never holds the password. */
struct aud_redis_store *aud_redis_store_new(const char *url, size_t url_len,
                                            const char *account,
                                            size_t account_len,
                                            const struct aud_redis_options *o,
                                            char *err, size_t errlen);
void aud_redis_store_free(struct aud_redis_store *r);

enum aud_redis_op {
    AUD_REDIS_CONFIGURE, /* arg: limit, per */
    AUD_REDIS_ACQUIRE,
    AUD_REDIS_OBSERVE,   /* arg: limit, remaining, reset_at (NaN = absent) */
    AUD_REDIS_PENALIZE,  /* arg: until */
    AUD_REDIS_STATE,     /* read only */
};

struct aud_redis_call {
    enum aud_redis_op op;
    double arg[3];
    double now;
    /* A budget applied (tighter-wins, as aud_rl_configure) before every
     * operation but penalize, so a key that expired or was wiped gets the
     * caller's budget back. NaN: none. */
    double sticky_limit, sticky_per;
    double wait;               /* out: acquire's result */
    struct aud_rl_state state; /* out: the state after the operation */
};

/* 0, or -1 with "redis: <reason>" in err (never the password). After a
 * connection failure the next call reconnects. */
int aud_redis_store_call(struct aud_redis_store *r, struct aud_redis_call *c,
                         char *err, size_t errlen);

/* The script's text (for tests and documentation). */
extern const char aud_redis_script[];

#endif
