/* Retry-After interpretation and exponential backoff. */
#ifndef AUD_RETRY_H
#define AUD_RETRY_H

#include <stddef.h>

/* Only keeps the arithmetic finite: the real value goes back to the caller,
 * and the client's max_wait decides what is slept. */
#define AUD_RETRY_AFTER_MAX 1e9

/* Accepts delta-seconds ("120", " 1.5 ") or an HTTP-date. Returns 1 and
 * the wait in seconds, in [0, AUD_RETRY_AFTER_MAX] (dates in the past give
 * 0), or 0 for anything else, negative numbers included. */
int aud_retry_after_parse(const char *s, size_t n, double now, double *out);

/* min(max, base * 2^(attempt-1)) * (0.5 + 0.5 * r): "equal jitter", so
 * a crowd of clients spreads out yet each still waits at least half. */
double aud_backoff(long long attempt, double base, double max, double r);

#endif
