#include "redis_cas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* KEYS[1] the account's key; ARGV: the blob read (empty: none), the new
 * blob, the TTL in whole seconds. 1: swapped; 0: someone wrote first. */
const char aud_redis_cas_script[] =
    "if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
    "return 1\n";

/* Conflicts are retried this many times within the deadline: with N
 * writers racing, one always wins, so this is only a guard. */
#define CAS_TRIES 1000

enum { PHASE_GET, PHASE_EVALSHA, PHASE_EVAL };

static void set_get(struct aud_redis_cas *m)
{
    m->phase = PHASE_GET;
    m->argc = 2;
    m->argv[0] = "GET";
    m->lens[0] = 3;
    m->argv[1] = m->conf->key;
    m->lens[1] = m->conf->key_len;
}

void aud_redis_cas_begin(struct aud_redis_cas *m, const struct aud_redis_cas_conf *conf,
                         struct aud_rl_step *st, struct aud_rl_state *out)
{
    memset(m, 0, sizeof *m);
    m->conf = conf;
    m->st = st;
    m->out = out;
    m->given_now = st->now;
    set_get(m);
}

void aud_redis_cas_end(struct aud_redis_cas *m)
{
    free(m->old);
    m->old = NULL;
    m->old_len = 0;
}

/* The idle TTL, never shorter than a known reset or penalty: forgetting
 * those would mean a burst of 429s. */
static long key_life(long ttl, const struct aud_rl_state *s, double now)
{
    double life = (double)ttl;
    if (s->reset_at - now > life)
        life = s->reset_at - now;
    if (s->blocked_until - now > life)
        life = s->blocked_until - now;
    life = ceil(life);
    return life > 2147483647.0 ? 2147483647L : (long)life;
}

static void set_swap(struct aud_redis_cas *m, int eval)
{
    m->phase = eval ? PHASE_EVAL : PHASE_EVALSHA;
    m->argc = 7;
    if (eval) {
        m->argv[0] = "EVAL";
        m->lens[0] = 4;
        m->argv[1] = aud_redis_cas_script;
        m->lens[1] = strlen(aud_redis_cas_script);
    } else {
        m->argv[0] = "EVALSHA";
        m->lens[0] = 7;
        m->argv[1] = m->conf->sha;
        m->lens[1] = strlen(m->conf->sha);
    }
    m->argv[2] = "1";
    m->lens[2] = 1;
    m->argv[3] = m->conf->key;
    m->lens[3] = m->conf->key_len;
    m->argv[4] = m->have ? m->old : "";
    m->lens[4] = m->have ? m->old_len : 0;
    m->argv[5] = (const char *)m->blob;
    m->lens[5] = sizeof m->blob;
    m->argv[6] = m->life;
    m->lens[6] = strlen(m->life);
}

static int got_blob(struct aud_redis_cas *m, const redisReply *cur, char *err, size_t errlen)
{
    if (cur->type != REDIS_REPLY_STRING && cur->type != REDIS_REPLY_NIL) {
        snprintf(err, errlen, "redis: %.300s",
                 cur->type == REDIS_REPLY_ERROR ? cur->str : "unexpected reply to GET");
        return AUD_CAS_FAILED;
    }
    aud_redis_cas_end(m);
    m->have = cur->type == REDIS_REPLY_STRING;
    if (m->have) {
        /* +1: malloc(0) may return NULL. */
        m->old = malloc(cur->len + 1);
        if (m->old == NULL) {
            snprintf(err, errlen, "redis: out of memory");
            return AUD_CAS_FAILED;
        }
        memcpy(m->old, cur->str, cur->len);
        m->old_len = cur->len;
    }
    (void)aud_rl_decode(m->have ? (const unsigned char *)m->old : NULL, m->old_len, m->out);
    m->st->now = m->given_now;
    if (aud_store_fill_now(m->st) != 0) {
        snprintf(err, errlen, "redis: clock_gettime failed");
        return AUD_CAS_FAILED;
    }
    aud_rl_apply(m->out, m->st);
    if (m->st->op == AUD_RL_STATE)
        return AUD_CAS_DONE;
    aud_rl_encode(m->out, m->blob);
    snprintf(m->life, sizeof m->life, "%ld", key_life(m->conf->ttl, m->out, m->st->now));
    set_swap(m, 0);
    return AUD_CAS_SEND;
}

int aud_redis_cas_reply(struct aud_redis_cas *m, const redisReply *rep, char *err,
                        size_t errlen)
{
    if (m->phase == PHASE_GET)
        return got_blob(m, rep, err, errlen);
    if (rep->type == REDIS_REPLY_ERROR && m->phase == PHASE_EVALSHA &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* First use on this server (or after SCRIPT FLUSH, a restart):
         * EVAL runs it and caches it for the next EVALSHA. */
        set_swap(m, 1);
        return AUD_CAS_SEND;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        /* LOADING, OOM, READONLY: the server answered */
        snprintf(err, errlen, "redis: %.300s", rep->str);
        return AUD_CAS_FAILED;
    }
    if (rep->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "redis: unexpected reply to the swap script");
        return AUD_CAS_FAILED;
    }
    if (rep->integer == 1)
        return AUD_CAS_DONE;
    if (++m->attempt >= CAS_TRIES) {
        snprintf(err, errlen, "redis: the quota state kept changing under this client");
        return AUD_CAS_FAILED;
    }
    set_get(m);
    return AUD_CAS_SEND;
}
