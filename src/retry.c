#include "retry.h"

#include <math.h>
#include <string.h>

#include <curl/curl.h>

#include "number.h"

static double clamp_wait(double v)
{
    if (!(v > 0)) /* also maps NaN to 0 */
        return 0;
    return v > AUD_RETRY_AFTER_MAX ? AUD_RETRY_AFTER_MAX : v;
}

int aud_retry_after_parse(const char *s, size_t n, double now, double *out)
{
    double v;
    if (aud_num_parse_decimal(s, n, &v)) {
        *out = clamp_wait(v);
        return 1;
    }
    /* Real HTTP-dates are ~30 bytes; the bound keeps the copy on the stack
     * and curl_getdate needs a NUL-terminated string without inner NULs. */
    char date[128];
    if (n == 0 || n >= sizeof date || memchr(s, '\0', n) != NULL)
        return 0;
    memcpy(date, s, n);
    date[n] = '\0';
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1)
        return 0;
    *out = clamp_wait((double)t - now);
    return 1;
}

double aud_backoff(long long attempt, double base, double max, double r)
{
    /* Past 2^1100 every double overflows to inf anyway; the clamp keeps the
     * int conversion for ldexp defined. Compared before subtracting: attempt
     * - 1 overflows for LLONG_MIN. */
    long long e = attempt > 1 ? attempt - 1 : 0;
    if (e > 1100)
        e = 1100;
    double v = ldexp(base, (int)e);
    if (!(v <= max))
        v = max;
    return v * (0.5 + 0.5 * r);
}
