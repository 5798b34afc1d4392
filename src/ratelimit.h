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

struct aud_rl_state {
    double budget_limit; /* bucket capacity; NaN when no budget is set */
    double budget_per;   /* seconds to refill the whole bucket */
    double tokens;
    double tokens_at; /* when tokens was last refilled */
    double limit;     /* server window: size, remaining, epoch of reset */
    double remaining;
    double reset_at;
    double blocked_until; /* NaN when never penalized */
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
 * taken; wait that many seconds and ask again. */
double aud_rl_acquire(struct aud_rl_state *s, double now);

/* Any argument may be NaN (not reported). reset_at is an epoch. */
void aud_rl_observe(struct aud_rl_state *s, double limit, double remaining,
                    double reset_at, double now);

void aud_rl_penalize(struct aud_rl_state *s, double until);

/* Absolute epoch of a reset header value, given its style. */
double aud_rl_reset_at(double value, enum aud_rl_reset_style style, double now);

#endif
