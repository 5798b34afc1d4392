/* The compare-and-swap of a quota blob in Redis as a sequence of commands
 * and replies, without any I/O: the blocking store (store_redis.c) and the
 * one on nginx's cosockets (lua_redis.c) both drive this, so there is one
 * definition of the swap: GET the blob, apply the step (ratelimit.c) with
 * the clock read after the GET, then a script sets the new blob only if
 * the key still holds the old one; on a conflict, start over. */
#ifndef AUD_REDIS_CAS_H
#define AUD_REDIS_CAS_H

#include <stddef.h>

#include <hiredis.h>

#include "ratelimit.h"

struct aud_redis_cas_conf {
    const char *key; /* AUD_REDIS_KEY_PREFIX .. account */
    size_t key_len;
    const char *sha; /* of aud_redis_cas_script, hex */
    long ttl;        /* idle life of the key, seconds */
};

/* The script's text: it knows nothing of the algorithm. */
extern const char aud_redis_cas_script[];

enum { AUD_CAS_SEND = 1, AUD_CAS_DONE = 0, AUD_CAS_FAILED = -1 };

struct aud_redis_cas {
    const struct aud_redis_cas_conf *conf;
    struct aud_rl_step *st;
    struct aud_rl_state *out;
    double given_now;
    int phase; /* what the pending command is */
    int attempt;
    char *old; /* the blob read, sent back as the swap's condition */
    size_t old_len;
    int have; /* the key existed */
    unsigned char blob[AUD_RL_BLOB_LEN];
    char life[24];
    /* The command to send next; valid until the next call. */
    int argc;
    const char *argv[7];
    size_t lens[7];
};

/* Starts a run of st (its budget already set); the first command is in
 * m->argc/argv/lens. conf, st and out must outlive the run. */
void aud_redis_cas_begin(struct aud_redis_cas *m, const struct aud_redis_cas_conf *conf,
                         struct aud_rl_step *st, struct aud_rl_state *out);

/* The reply to the pending command: AUD_CAS_SEND (the next command is in
 * m->argv), AUD_CAS_DONE (*out is the state after, st->wait set), or
 * AUD_CAS_FAILED with "redis: ..." in err (the server answered, so the
 * connection is still in step). */
int aud_redis_cas_reply(struct aud_redis_cas *m, const redisReply *rep, char *err,
                        size_t errlen);

/* Releases what the run holds; safe to call twice. */
void aud_redis_cas_end(struct aud_redis_cas *m);

#endif
