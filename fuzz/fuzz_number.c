/* Rate-limit header numbers (number.c, and ratelimit.c's reset arithmetic as
 * lua_util.c's parse_rate_headers applies it) and the number formatting used
 * in query strings.
 *
 * Input: one byte choosing a reset style, 8 bytes of a double to format, one
 * byte of output room, then up to three header values (limit, remaining,
 * reset) separated by 0xFF.
 *
 * Checks: an accepted value is >= 0 and not NaN, and agrees with strtod in
 * the C locale: exactly where the parser promises a correctly rounded result
 * (at most 15 digits, at most 22 after the point), and to 1e-9 relative
 * within [1e-250, 1e250]. Formatting never writes past the room it is given,
 * and what it writes reads back as the same double. */
#include <math.h>

#include "fuzz.h"

#include "number.h"
#include "ratelimit.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Compares an accepted value with strtod on the same (trimmed) text. The
 * parser accepts a subset of strtod's syntax, so strtod must accept all of
 * it too. */
static void check_against_strtod(const char *s, size_t n, double v)
{
    size_t i = 0;
    while (i < n && is_blank(s[i]))
        i++;
    while (n > i && is_blank(s[n - 1]))
        n--;
    size_t digits = 0, frac = 0;
    int after_point = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] == '.') {
            after_point = 1;
        } else {
            FUZZ_CHECK(is_digit(s[j]));
            digits++;
            frac += after_point;
        }
    }
    char *text = malloc(n - i + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, s + i, n - i);
    text[n - i] = '\0';
    char *end = NULL;
    double want = strtod(text, &end);
    FUZZ_CHECK(end == text + (n - i));
    free(text);

    if (digits <= 15 && frac <= 22)
        FUZZ_CHECK(v == want);
    else if (want >= 1e-250 && want <= 1e250)
        FUZZ_CHECK(fabs(v - want) <= 1e-9 * want);
}

/* A header value the way parse_rate_headers reads it: a number or NaN. */
static double rate_value(const char *s, size_t n)
{
    double v;
    if (!aud_num_parse_decimal(s, n, &v) || !isfinite(v))
        return NAN;
    return v;
}

static void check_format(double x, size_t cap)
{
    char *out = fuzz_alloc(cap);
    size_t len = aud_num_format(x, out, cap);
    if (!isfinite(x) || cap == 0) {
        FUZZ_CHECK(len == 0);
    } else if (len > 0) {
        FUZZ_CHECK(len < cap && out[len] == '\0');
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK(is_digit(out[i]) || strchr("-+.eE", out[i]) != NULL);
        FUZZ_CHECK(strtod(out, NULL) == x);
    }
    free(out);

    /* The integer form, where the value has one. */
    if (isfinite(x) && fabs(x) < 9223372036854775808.0) {
        long long v = (long long)x;
        out = fuzz_alloc(cap);
        len = aud_num_format_integer(v, out, cap);
        if (len > 0) {
            FUZZ_CHECK(len < cap && out[len] == '\0');
            FUZZ_CHECK(strtoll(out, NULL, 10) == v);
        }
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    static const enum aud_rl_reset_style styles[] = {
        AUD_RL_RESET_AUTO, AUD_RL_RESET_EPOCH, AUD_RL_RESET_DELTA};
    enum aud_rl_reset_style style = styles[fuzz_byte(&in) % 3];
    double x = fuzz_double(&in);
    size_t cap = fuzz_byte(&in) % 48;
    check_format(x, cap);

    double values[3];
    for (int k = 0; k < 3; k++) {
        size_t n;
        char *s = fuzz_field(&in, &n);
        double v = -1;
        if (aud_num_parse_decimal(s, n, &v)) {
            FUZZ_CHECK(v >= 0);
            check_against_strtod(s, n, v);
        } else {
            FUZZ_CHECK(v == -1);
        }
        values[k] = rate_value(s, n);
        free(s);
    }

    /* The reset instant is an epoch for the limiter: never NaN for a finite
     * header value at a realistic now. */
    double now = 1.7e9;
    if (!isnan(values[2])) {
        double at = aud_rl_reset_at(values[2], style, now);
        FUZZ_CHECK(isnan(at) || (at >= 0 && at - now <= AUD_RL_RESET_MAX));
    }
    return 0;
}
