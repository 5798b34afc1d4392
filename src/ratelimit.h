/* The quota algorithm: a client-side token bucket, the server's advertised
 * window, a Retry-After penalty and the probe that learns the server's
 * count. It is the only place this arithmetic exists. Every store (memory,
 * file, nginx shared dict, Redis) keeps the state as the blob below and
 * runs one aud_rl_apply per operation between loading and saving it.
 * Unknown values are NaN. */
#ifndef AUD_RATELIMIT_H
#define AUD_RATELIMIT_H

#include <stddef.h>

/* Waiting exactly until a server's reset instant races its clock. */
#define AUD_RL_RESET_MARGIN 0.01
/* Refill arithmetic on epoch doubles loses ~1e-14 of a token (100.1 - 100
 * is not 0.1); without slack that becomes a pointless femtosecond wait. */
#define AUD_RL_TOKEN_SLACK 1e-9
/* While the server's count is unknown, one request (the probe) finds it out
 * and the others poll this often, for at most HOLD seconds after the last
 * request went out (an answer that never comes must not stall everyone).
 * The same bounded hold keeps a window that rolled over and was used up
 * shut until the first answer of the new window says when it resets. */
#define AUD_RL_PROBE_POLL 0.01
#define AUD_RL_PROBE_HOLD 2.0
/* Header numbers beyond these are lies or a misread format: ignored. */
#define AUD_RL_COUNT_MAX 1e9
#define AUD_RL_WAIT_MAX 1e9 /* seconds: the longest wait acquire gives */
#define AUD_RL_RESET_MAX 86400.0 /* seconds ahead of now */
#define AUD_RL_EPOCH_MS 1e12     /* above: a Unix time in milliseconds */
#define AUD_RL_EPOCH_S 1e9       /* above: a Unix time in seconds */
#define AUD_RL_INFLIGHT_TTL 60.0

struct aud_rl_state {
    double budget_limit; /* bucket capacity; NaN when no budget is set */
    double budget_per;   /* seconds to refill the whole bucket */
    double tokens;
    double tokens_at; /* when tokens was last refilled */
    double limit;     /* server window: size, remaining, epoch of reset */
    double remaining;
    double reset_at;
    double blocked_until; /* NaN when never penalized */
    double penalty_len;   /* the longest wait blocked_until may still mean */
    /* Grants made while remaining was unknown, whose requests the first
     * answer may not count yet (0 when there are none). */
    double blind;
    double blind_at; /* when the last of them went out; NaN when none */
    /* When the last request went out while the window's reset was
     * unknown; NaN once an answer said when it resets. */
    double unsure_at;
    /* Granted requests not answered yet (0 when none), and when the last
     * went out: at a roll-over they may still land in the new window.
     * Forgotten INFLIGHT_TTL after the last grant, so a process that died
     * with requests out cannot shrink every window after it. */
    double inflight;
    double inflight_at;
};

/* The blob: "ARL4" then the 14 fields above in declaration order, each an
 * IEEE-754 double stored big-endian, whatever the host's byte order. */
#define AUD_RL_NFIELDS 14
#define AUD_RL_BLOB_LEN (4 + 8 * AUD_RL_NFIELDS)

enum aud_rl_reset_style {
    AUD_RL_RESET_AUTO,  /* > 1e12 ms epoch, > 1e9 epoch, else a delay */
    AUD_RL_RESET_EPOCH, /* > 1e12 read as milliseconds */
    AUD_RL_RESET_DELTA,
};

enum aud_rl_op {
    AUD_RL_STATE,     /* advance only (callers discard the result) */
    AUD_RL_CONFIGURE, /* apply the step's budget and keep it */
    AUD_RL_ACQUIRE,  /* flag: the caller probes; out: wait */
    AUD_RL_OBSERVE,  /* arg: limit, remaining, reset_at (each may be NaN) */
    AUD_RL_FAIL,     /* a granted request got no answer; flag: it was sent */
    AUD_RL_PENALIZE, /* arg[0]: until (epoch) */
};

/* One operation. budget is the caller's configuration, applied (tighter
 * wins) before every operation, so a state that was lost or wiped gets it
 * back without any layer remembering it separately. NaN limit: none. */
struct aud_rl_step {
    enum aud_rl_op op;
    double now;
    double budget_limit, budget_per;
    int flag;
    double arg[3];
    double wait; /* out: acquire's result, 0 otherwise */
};

void aud_rl_init(struct aud_rl_state *s);
/* Replaces (*limit, *per) by (limit, per) when that budget is tighter:
 * a lower rate, or the same rate with a smaller burst. NaN *limit: none. */
void aud_rl_tighter(double *limit, double *per, double new_limit, double new_per);
void aud_rl_apply(struct aud_rl_state *s, struct aud_rl_step *st);

/* A step with every argument unset (NaN, 0) for op at now. */
void aud_rl_step_init(struct aud_rl_step *st, enum aud_rl_op op, double now);

void aud_rl_encode(const struct aud_rl_state *s,
                   unsigned char out[AUD_RL_BLOB_LEN]);
/* 1 and *s filled when blob is an intact state this code could have
 * written; 0 otherwise (*s is then fresh state). */
int aud_rl_decode(const unsigned char *blob, size_t len, struct aud_rl_state *s);

/* Absolute epoch of a reset header value, or NaN when it is out of range
 * (negative, or further ahead than AUD_RL_RESET_MAX). A time in the past
 * is returned as it is: the window has rolled. */
double aud_rl_reset_at(double value, enum aud_rl_reset_style style, double now);

/* A count header as a number, or NaN when negative or absurd. */
double aud_rl_count(double value);

#endif
