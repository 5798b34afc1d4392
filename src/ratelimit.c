#include "ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

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
    s->penalty_len = NAN;
    s->blind = 0;
    s->blind_at = NAN;
    s->unsure_at = NAN;
    s->inflight = 0;
    s->inflight_at = NAN;
}

void aud_rl_step_init(struct aud_rl_step *st, enum aud_rl_op op, double now)
{
    st->op = op;
    st->now = now;
    st->budget_limit = NAN;
    st->budget_per = NAN;
    st->flag = 0;
    st->arg[0] = st->arg[1] = st->arg[2] = NAN;
    st->wait = 0;
}

static int has_budget(const struct aud_rl_state *s)
{
    return !isnan(s->budget_limit);
}

/* Within HOLD seconds after stamp (never when the clock went back past it). */
static int held(double stamp, double now)
{
    return !isnan(stamp) && now >= stamp && now - stamp < AUD_RL_PROBE_HOLD;
}

static void advance(struct aud_rl_state *s, double now)
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
    if (s->inflight > 0 && !(now - s->inflight_at < AUD_RL_INFLIGHT_TTL) &&
        !(now < s->inflight_at))
        s->inflight = 0;
    if (!isnan(s->reset_at) && now >= s->reset_at) {
        /* The new window's reset is unknown until one of its answers
         * tells; acquire holds a used-up window until then. Requests
         * still out may reach the server after its roll-over and count
         * in the new window. */
        s->remaining = fmax(0, s->limit - s->inflight); /* NaN if never reported */
        s->reset_at = NAN;
        s->unsure_at = NAN;
    }
    /* A penalty is a length of time: a wall clock that stepped back must
     * not turn "30 s" into "30 s plus the step". */
    if (!isnan(s->blocked_until) && s->blocked_until - now > s->penalty_len)
        s->blocked_until = now + s->penalty_len;
}

void aud_rl_tighter(double *limit, double *per, double new_limit, double new_per)
{
    if (!isnan(*limit)) {
        double old_rate = *limit / *per;
        double new_rate = new_limit / new_per;
        if (!(new_rate < old_rate || (new_rate == old_rate && new_limit < *limit)))
            return;
    }
    *limit = new_limit;
    *per = new_per;
}

static void configure(struct aud_rl_state *s, double limit, double per,
                      double now)
{
    if (has_budget(s)) {
        aud_rl_tighter(&s->budget_limit, &s->budget_per, limit, per);
        /* Switching budgets must not grant a fresh burst. */
        s->tokens = fmin(s->tokens, s->budget_limit);
        return;
    }
    s->budget_limit = limit;
    s->budget_per = per;
    s->tokens = limit;
    s->tokens_at = now;
}

static double acquire(struct aud_rl_state *s, double now, int probe)
{
    double wait = 0;
    if (s->blocked_until > now)
        wait = s->blocked_until - now;
    if (has_budget(s) && s->tokens < 1 - AUD_RL_TOKEN_SLACK) {
        double rate = s->budget_limit / s->budget_per;
        double refill = (1 - s->tokens) / rate;
        /* A budget of 1e-300 per 1e300 (configured, or read from a store)
         * overflows to an infinite wait, which no caller can report. */
        wait = fmax(wait, isfinite(refill) ? refill : AUD_RL_WAIT_MAX);
    }
    if (s->remaining < 1) {
        if (!isnan(s->reset_at))
            wait = fmax(wait, s->reset_at - now + AUD_RL_RESET_MARGIN);
        else if (held(s->unsure_at, now))
            /* Used up, reset unknown (a window that rolled over): what
             * went out is all the window allows until an answer says
             * more. Bounded, so lost answers cannot stall forever. */
            wait = fmax(wait, AUD_RL_PROBE_POLL);
    }
    /* Several workers or processes starting at once would otherwise all
     * go out before anyone knows the count, and spend it twice. */
    if (probe && isnan(s->remaining) && s->blind >= 1 && held(s->blind_at, now))
        wait = fmax(wait, AUD_RL_PROBE_POLL);
    if (wait > 0)
        return wait;
    if (has_budget(s))
        s->tokens -= 1;
    s->inflight += 1;
    s->inflight_at = now;
    if (!isnan(s->remaining)) {
        /* A grant past a bounded hold goes out on the server's word
         * (a 429 and its Retry-After), not on a negative count. */
        s->remaining = fmax(0, s->remaining - 1);
    } else {
        s->blind += 1;
        s->blind_at = now;
    }
    if (isnan(s->reset_at))
        s->unsure_at = now;
    return 0;
}

/* A request is over without a count: the probe is free, and a blind grant
 * no longer stands for a request the server may not have counted yet. */
static void finished(struct aud_rl_state *s)
{
    if (s->blind >= 1)
        s->blind -= 1;
    s->blind_at = NAN;
}

static void observe(struct aud_rl_state *s, double limit, double remaining,
                    double reset_at, double now)
{
    limit = limit >= 1 ? limit : NAN;
    if (!isnan(limit))
        s->limit = limit;
    if (remaining > s->limit)
        remaining = s->limit; /* a lie, or a window we do not know yet */
    if (isnan(remaining)) {
        finished(s);
    } else if (isnan(s->remaining)) {
        /* The first count learned: it covers the request it answers, but
         * the other requests sent blind (other workers, other processes)
         * may not have reached the server yet. */
        s->remaining = fmax(0, remaining - fmax(s->inflight, s->blind - 1));
        s->blind = 0;
        s->blind_at = NAN;
    } else if (!isnan(reset_at) && reset_at <= now) {
        /* A window that has ended, by this clock (a late answer, or a
         * clock ahead of the server's): its count says nothing about the
         * current one, whose requests sent since the roll-over it would
         * reopen. */
        finished(s);
    } else if (!isnan(reset_at) && !isnan(s->reset_at) &&
               fabs(s->reset_at - reset_at) > 1.0) {
        /* A different, current window. The requests still out were
         * granted against the old count and may land in this one. */
        s->remaining = fmax(0, remaining - s->inflight);
    } else {
        /* Answers to concurrent requests arrive in any order, and the
         * local count since a roll-over includes requests the server has
         * not answered yet: within one window the smallest is freshest. */
        s->remaining = fmin(s->remaining, remaining);
    }
    if (!isnan(reset_at) && reset_at > now) {
        s->reset_at = reset_at;
        s->unsure_at = NAN;
    }
}

static void fail(struct aud_rl_state *s, int sent)
{
    int was_blind = s->blind >= 1;
    finished(s);
    if (sent)
        return; /* it may have been counted: keep it spent */
    if (has_budget(s))
        s->tokens = fmin(s->budget_limit, s->tokens + 1);
    if (!was_blind && !isnan(s->remaining))
        s->remaining = isnan(s->limit) ? s->remaining + 1
                                       : fmin(s->limit, s->remaining + 1);
}

static void penalize(struct aud_rl_state *s, double until, double now)
{
    if (isnan(s->blocked_until) || until > s->blocked_until) {
        s->blocked_until = until;
        s->penalty_len = fmax(0, until - now);
    }
}

void aud_rl_apply(struct aud_rl_state *s, struct aud_rl_step *st)
{
    double now = st->now;
    st->wait = 0;
    if (st->budget_limit > 0 && st->budget_per > 0)
        configure(s, st->budget_limit, st->budget_per, now);
    advance(s, now);
    switch (st->op) {
    case AUD_RL_ACQUIRE:
        st->wait = acquire(s, now, st->flag);
        break;
    case AUD_RL_OBSERVE:
        s->inflight = fmax(0, s->inflight - 1);
        observe(s, aud_rl_count(st->arg[0]), aud_rl_count(st->arg[1]),
                st->arg[2], now);
        break;
    case AUD_RL_FAIL:
        s->inflight = fmax(0, s->inflight - 1);
        fail(s, st->flag);
        break;
    case AUD_RL_PENALIZE:
        if (isfinite(st->arg[0]))
            penalize(s, st->arg[0], now);
        break;
    case AUD_RL_STATE:
    case AUD_RL_CONFIGURE:
    default:
        break;
    }
}

/* ---- the blob ------------------------------------------------------ */

static double *field(struct aud_rl_state *s, int i)
{
    double *const f[AUD_RL_NFIELDS] = {
        &s->budget_limit, &s->budget_per, &s->tokens,        &s->tokens_at,
        &s->limit,        &s->remaining,  &s->reset_at,      &s->blocked_until,
        &s->penalty_len,  &s->blind,      &s->blind_at,      &s->unsure_at,
        &s->inflight,     &s->inflight_at,
    };
    return f[i];
}

static const unsigned char BLOB_MAGIC[4] = {'A', 'R', 'L', '4'};

void aud_rl_encode(const struct aud_rl_state *s, unsigned char out[AUD_RL_BLOB_LEN])
{
    struct aud_rl_state copy = *s;
    memcpy(out, BLOB_MAGIC, sizeof BLOB_MAGIC);
    for (int i = 0; i < AUD_RL_NFIELDS; i++) {
        uint64_t bits;
        memcpy(&bits, field(&copy, i), sizeof bits);
        for (int b = 0; b < 8; b++)
            out[4 + 8 * i + b] = (unsigned char)(bits >> (56 - 8 * b));
    }
}

/* A state this code can produce: no infinity, a whole budget or none, a
 * blind count that is a count. Anything else (another program's bytes, a
 * torn write) must not reach the arithmetic. */
static int plausible(const struct aud_rl_state *s)
{
    for (int i = 0; i < AUD_RL_NFIELDS; i++)
        if (isinf(*field((struct aud_rl_state *)s, i)))
            return 0;
    int budget_ok =
        isnan(s->budget_limit)
            ? isnan(s->budget_per) && isnan(s->tokens) && isnan(s->tokens_at)
            : s->budget_limit > 0 && s->budget_per > 0 && !isnan(s->tokens) &&
                  !isnan(s->tokens_at);
    return budget_ok && s->blind >= 0 && s->inflight >= 0 && !(s->penalty_len < 0) &&
           !(s->limit < 1);
}

int aud_rl_decode(const unsigned char *blob, size_t len, struct aud_rl_state *s)
{
    struct aud_rl_state t;
    if (blob == NULL || len != AUD_RL_BLOB_LEN ||
        memcmp(blob, BLOB_MAGIC, sizeof BLOB_MAGIC) != 0) {
        aud_rl_init(s);
        return 0;
    }
    for (int i = 0; i < AUD_RL_NFIELDS; i++) {
        uint64_t bits = 0;
        for (int b = 0; b < 8; b++)
            bits = bits << 8 | blob[4 + 8 * i + b];
        memcpy(field(&t, i), &bits, sizeof bits);
    }
    if (!plausible(&t)) {
        aud_rl_init(s);
        return 0;
    }
    *s = t;
    return 1;
}

/* ---- header numbers -------------------------------------------------- */

double aud_rl_count(double value)
{
    return value >= 0 && value <= AUD_RL_COUNT_MAX ? value : NAN;
}

double aud_rl_reset_at(double value, enum aud_rl_reset_style style, double now)
{
    if (!(value >= 0) || !isfinite(value))
        return NAN;
    double at;
    if (style != AUD_RL_RESET_DELTA && value > AUD_RL_EPOCH_MS)
        at = value / 1000;
    else if (style == AUD_RL_RESET_EPOCH || (style == AUD_RL_RESET_AUTO &&
                                             value > AUD_RL_EPOCH_S))
        at = value; /* a small epoch is long past: the window has rolled */
    else
        at = now + value;
    return at - now > AUD_RL_RESET_MAX ? NAN : at;
}
