/* Rate-limit state machine: a client-side token bucket, the server's
 * advertised window, and a Retry-After penalty. The state is a plain
 * struct of doubles and every operation a function of (state, now), so it
 * can later live in a file or shared memory. Unknown values are NaN. */
#ifndef AUD_RATELIMIT_H
#define AUD_RATELIMIT_H

/* Waiting exactly until a server's reset instant races its clock. */
#define AUD_RL_RESET_MARGIN 0.01
/* Refill arithmetic on epoch doubles loses ~1e-14 of a token (100.1 - 100
 * is not 0.1); without slack that becomes a pointless femtosecond wait. */
#define AUD_RL_TOKEN_SLACK 1e-9
/* While the server's count is unknown, one request (the probe) finds it out
 * and the others poll this often, for at most PROBE_HOLD seconds after it
 * went out (a probe lost without an answer must not stall everyone). */
#define AUD_RL_PROBE_POLL 0.01
#define AUD_RL_PROBE_HOLD 2.0

struct aud_rl_state {
    double budget_limit; /* bucket capacity; NaN when no budget is set */
    double budget_per;   /* seconds to refill the whole bucket */
    double tokens;
    double tokens_at; /* when tokens was last refilled */
    double limit;     /* server window: size, remaining, epoch of reset */
    double remaining;
    double reset_at;
    double blocked_until; /* NaN when never penalized */
    /* Grants made while remaining was unknown, whose requests the first
     * answer may not count yet (0 when there are none). */
    double blind;
    double blind_at; /* when the last of them went out; NaN when none */
};

enum aud_rl_reset_style {
    AUD_RL_RESET_AUTO,  /* > 1e9 reads as an epoch, else as a delta */
    AUD_RL_RESET_EPOCH,
    AUD_RL_RESET_DELTA,
};

void aud_rl_init(struct aud_rl_state *s);

/* Refills the bucket and rolls the server window over once its reset
 * instant has passed. The other operations call it themselves. */
void aud_rl_advance(struct aud_rl_state *s, double now);

/* limit and per must be finite and > 0. An existing budget is replaced
 * only by a tighter one (lower rate; equal rate: smaller burst). */
void aud_rl_configure(struct aud_rl_state *s, double limit, double per,
                      double now);

/* 0: go, one unit was taken from every active budget. > 0: nothing was
 * taken; wait that many seconds and ask again. probe: the caller learns the
 * server's count from answers, so while it is unknown only one request at a
 * time goes out blind (see AUD_RL_PROBE_HOLD). */
double aud_rl_acquire(struct aud_rl_state *s, double now, int probe);

/* Any argument may be NaN (not reported). reset_at is an epoch. All three
 * NaN: a request ended without teaching anything; it frees the probe. */
void aud_rl_observe(struct aud_rl_state *s, double limit, double remaining,
                    double reset_at, double now);

void aud_rl_penalize(struct aud_rl_state *s, double until);

/* Absolute epoch of a reset header value, given its style. */
double aud_rl_reset_at(double value, enum aud_rl_reset_style style, double now);

#endif
