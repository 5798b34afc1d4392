#include "ratelimit.h"

#include <math.h>

void aud_rl_init(struct aud_rl_state *s)
{
    s->budget_limit = NAN;
    s->budget_per = NAN;
    s->tokens = NAN;
    s->tokens_at = NAN;
    s->limit = NAN;
    s->remaining = NAN;
    s->reset_at = NAN;
    s->blocked_until = NAN;
    s->blind = 0;
    s->blind_at = NAN;
}

static int has_budget(const struct aud_rl_state *s)
{
    return !isnan(s->budget_limit);
}

void aud_rl_advance(struct aud_rl_state *s, double now)
{
    if (has_budget(s)) {
        double elapsed = now - s->tokens_at;
        if (elapsed > 0) {
            double rate = s->budget_limit / s->budget_per;
            s->tokens = fmin(s->budget_limit, s->tokens + elapsed * rate);
        }
        /* Also moved when the wall clock stepped back: keeping the later
         * stamp would starve the bucket until the clock caught up. */
        s->tokens_at = now;
    }
    if (!isnan(s->reset_at) && now >= s->reset_at) {
        s->remaining = s->limit; /* NaN if the size was never reported */
        s->reset_at = NAN;
    }
}

void aud_rl_configure(struct aud_rl_state *s, double limit, double per,
                      double now)
{
    aud_rl_advance(s, now);
    if (has_budget(s)) {
        double old_rate = s->budget_limit / s->budget_per;
        double new_rate = limit / per;
        if (new_rate < old_rate ||
            (new_rate == old_rate && limit < s->budget_limit)) {
            s->budget_limit = limit;
            s->budget_per = per;
            /* Switching budgets must not grant a fresh burst. */
            s->tokens = fmin(s->tokens, limit);
        }
        return;
    }
    s->budget_limit = limit;
    s->budget_per = per;
    s->tokens = limit;
    s->tokens_at = now;
}

double aud_rl_acquire(struct aud_rl_state *s, double now, int probe)
{
    aud_rl_advance(s, now);
    double wait = 0;
    if (s->blocked_until > now)
        wait = s->blocked_until - now;
    if (has_budget(s) && s->tokens < 1 - AUD_RL_TOKEN_SLACK) {
        double rate = s->budget_limit / s->budget_per;
        wait = fmax(wait, (1 - s->tokens) / rate);
    }
    /* With no known reset the server is left to answer 429 + Retry-After:
     * guessing a window length would stall clients for nothing. */
    if (s->remaining < 1 && !isnan(s->reset_at))
        wait = fmax(wait, s->reset_at - now + AUD_RL_RESET_MARGIN);
    /* Several workers or processes starting at once would otherwise all
     * go out before anyone knows the count, and spend it twice. */
    if (probe && isnan(s->remaining) && s->blind >= 1 && !isnan(s->blind_at) &&
        now >= s->blind_at && now - s->blind_at < AUD_RL_PROBE_HOLD)
        wait = fmax(wait, AUD_RL_PROBE_POLL);
    if (wait > 0)
        return wait;
    if (has_budget(s))
        s->tokens -= 1;
    if (!isnan(s->remaining)) {
        s->remaining -= 1;
    } else {
        s->blind += 1;
        s->blind_at = now;
    }
    return 0;
}

void aud_rl_observe(struct aud_rl_state *s, double limit, double remaining,
                    double reset_at, double now)
{
    aud_rl_advance(s, now);
    /* A request that ended without teaching anything (no answer, or one
     * without the headers) frees the probe, so the next can go at once. */
    if (isnan(limit) && isnan(remaining) && isnan(reset_at)) {
        s->blind_at = NAN;
        return;
    }
    if (!isnan(limit))
        s->limit = limit;
    /* A late answer about a window that has already ended says nothing
     * about the current one: taking its count would reopen a window that
     * the requests sent since the roll-over are already spending. */
    if (!isnan(reset_at) && reset_at <= now)
        return;
    if (!isnan(remaining)) {
        /* Answers to concurrent requests arrive in any order, and the local
         * count since a roll-over (reset_at unknown) includes requests the
         * server has not answered yet: within one window the smallest count
         * is the freshest. Only a different, current window replaces it. */
        if (isnan(s->remaining)) {
            /* The first count learned: it covers the request it answers,
             * but the other requests sent blind (other workers, other
             * processes) may not have reached the server yet. */
            s->remaining = remaining - fmax(0, s->blind - 1);
            s->blind = 0;
            s->blind_at = NAN;
        } else if (!isnan(reset_at) && !isnan(s->reset_at) &&
                   fabs(s->reset_at - reset_at) > 1.0) {
            s->remaining = remaining;
        } else {
            s->remaining = fmin(s->remaining, remaining);
        }
    }
    if (!isnan(reset_at))
        s->reset_at = reset_at;
}

void aud_rl_penalize(struct aud_rl_state *s, double until)
{
    if (isnan(s->blocked_until) || until > s->blocked_until)
        s->blocked_until = until;
}

double aud_rl_reset_at(double value, enum aud_rl_reset_style style, double now)
{
    switch (style) {
    case AUD_RL_RESET_EPOCH:
        return value;
    case AUD_RL_RESET_DELTA:
        return now + value;
    case AUD_RL_RESET_AUTO:
    default:
        return value > 1e9 ? value : now + value;
    }
}
