/* Retry-After (retry.c): delta-seconds or an HTTP-date, from a hostile
 * server, and the backoff arithmetic fed with arbitrary doubles.
 *
 * Input: 8 bytes of "now" (as an integer count of seconds, so the clock
 * values stay realistic), then the header value. A parse that succeeds must
 * give a wait in [0, AUD_RETRY_AFTER_MAX]; one that fails must leave the
 * output alone. The same bytes, read as four doubles and an attempt number,
 * drive aud_backoff, which must stay within [0, max]. */
#include <math.h>

#include "fuzz.h"

#include "retry.h"

static void check_backoff(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    /* The whole range: the C function takes any attempt number, and only
     * the Lua binding insists on >= 1. */
    uint64_t bits = fuzz_u64(&in);
    long long attempt;
    memcpy(&attempt, &bits, sizeof attempt);
    double base = fabs(fuzz_double(&in));
    double max = fabs(fuzz_double(&in));
    double r = fuzz_double(&in);
    /* Outside what the binding lets through (finite, r in [0, 1)). */
    if (!isfinite(base) || !isfinite(max) || !(r >= 0 && r < 1))
        return;
    double v = aud_backoff(attempt, base, max, r);
    FUZZ_CHECK(v >= 0 && v <= max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    /* Up to ~2^40 s: past every date curl_getdate can return and beyond. */
    double now = (double)(fuzz_u64(&in) & ((UINT64_C(1) << 40) - 1));
    size_t len;
    char *value = fuzz_rest(&in, &len);

    double wait = -12345.0;
    int ok = aud_retry_after_parse(value, len, now, &wait);
    FUZZ_CHECK(ok == 0 || ok == 1);
    if (ok)
        FUZZ_CHECK(wait >= 0 && wait <= AUD_RETRY_AFTER_MAX);
    else
        FUZZ_CHECK(wait == -12345.0);
    free(value);

    check_backoff(data, size);
    return 0;
}
