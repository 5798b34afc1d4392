/* Quota state shared by many machines through Redis: the account's blob
 * (ratelimit.h) under "audience:rl:<account>", swapped atomically (see
 * store_redis.c). Time is each caller's clock: the hosts sharing an
 * account need synchronised clocks (NTP). */
#ifndef AUD_STORE_REDIS_H
#define AUD_STORE_REDIS_H

#include <stddef.h>

#include "ratelimit.h"

#define AUD_REDIS_KEY_PREFIX "audience:rl:"

struct aud_redis_options {
    double connect_timeout; /* seconds, > 0: at most this of the deadline */
    double timeout;         /* seconds, > 0: each operation's whole deadline */
    long ttl;               /* seconds, >= 1: idle time before the key expires */
};

void aud_redis_options_default(struct aud_redis_options *o);

struct aud_redis_store;

/* Parses url (redis://[[user]:password@]host[:port][/db]) and keeps a
 * copy of everything; connects lazily, on the first run. NULL with the
 * reason in err (a bad URL, rediss://, memory); err never holds the URL
 * or the password. */
struct aud_redis_store *aud_redis_store_new(const char *url, size_t url_len,
                                            const char *account,
                                            size_t account_len,
                                            const struct aud_redis_options *o,
                                            char *err, size_t errlen);
void aud_redis_store_free(struct aud_redis_store *r);

/* The store's run (store.h); err starts "redis: ". After a connection
 * failure the next run reconnects. */
int aud_redis_store_run(void *r, struct aud_rl_step *st,
                        struct aud_rl_state *out, char *err, size_t errlen);

/* What the cosocket store (lua_redis.c) needs to run the same swap over
 * a connection it owns. The pool name tells apart servers, databases and
 * credentials (by a digest: it never holds the password). The timeout is
 * each operation's deadline; *connect_timeout the part of it connecting
 * may use. */
struct aud_redis_target;
struct aud_redis_cas_conf;
const struct aud_redis_target *aud_redis_store_target(const struct aud_redis_store *r);
const struct aud_redis_cas_conf *aud_redis_store_conf(const struct aud_redis_store *r);
const char *aud_redis_store_pool(const struct aud_redis_store *r);
double aud_redis_store_timeout(const struct aud_redis_store *r, double *connect_timeout);

#endif
