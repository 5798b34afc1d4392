#include "number.h"

#include <math.h>
#include <stdint.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Powers of ten that are exact in a double; with a mantissa below 2^53 a
 * single multiply or divide by one of them is correctly rounded. */
static const double exact_pow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

int aud_num_parse_decimal(const char *s, size_t n, double *out)
{
    size_t i = 0;
    while (i < n && is_blank(s[i]))
        i++;
    while (n > i && is_blank(s[n - 1]))
        n--;
    if (i == n || !is_digit(s[i]))
        return 0;

    uint64_t mant = 0;
    long exp10 = 0;
    const uint64_t room = UINT64_C(1000000000000000000);
    for (; i < n && is_digit(s[i]); i++) {
        if (mant < room)
            mant = mant * 10 + (uint64_t)(s[i] - '0');
        else if (exp10 < 400)
            exp10++; /* digits beyond 19 only scale the value */
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i == n || !is_digit(s[i]))
            return 0;
        for (; i < n && is_digit(s[i]); i++) {
            if (mant < room) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                exp10--;
            }
        }
    }
    if (i != n)
        return 0;

    double v = (double)mant;
    if (mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22)
        v = exp10 >= 0 ? v * exact_pow10[exp10] : v / exact_pow10[-exp10];
    else
        v = v * pow(10.0, (double)exp10);
    *out = v;
    return 1;
}

size_t aud_num_format_integer(long long v, char *out, size_t cap)
{
    int len = snprintf(out, cap, "%lld", v);
    return (len < 0 || (size_t)len >= cap) ? 0 : (size_t)len;
}

size_t aud_num_format(double x, char *out, size_t cap)
{
    if (!isfinite(x) || cap == 0)
        return 0;
    /* 2^63 itself does not fit a long long, hence the strict bound. */
    if (x == floor(x) && fabs(x) < 9223372036854775808.0)
        return aud_num_format_integer((long long)x, out, cap);

    char tmp[64];
    int len = snprintf(tmp, sizeof tmp, "%.17g", x);
    /* The rewrite below never lengthens the text, so this bounds it. */
    if (len < 0 || (size_t)len >= sizeof tmp || (size_t)len >= cap)
        return 0;
    /* %g emits only signs, digits, 'e' and the locale's (possibly
     * multibyte) decimal point, so any other run of bytes is that point. */
    size_t o = 0;
    for (int i = 0; i < len;) {
        char c = tmp[i];
        if (is_digit(c) || c == '-' || c == '+' || c == 'e' || c == 'E') {
            out[o++] = c;
            i++;
        } else {
            out[o++] = '.';
            while (i < len && !(is_digit(tmp[i]) || tmp[i] == '-' ||
                                tmp[i] == '+' || tmp[i] == 'e' || tmp[i] == 'E'))
                i++;
        }
    }
    out[o] = '\0';
    return o;
}

/* The "C" locale, made once: strtod and snprintf run under it through
 * uselocale, which changes the calling thread only. */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t enter_c_locale(locale_t *old)
{
    if (pthread_once(&c_locale_once, make_c_locale) != 0 || c_locale == (locale_t)0)
        return (locale_t)0;
    *old = uselocale(c_locale);
    return c_locale;
}

int aud_num_strtod(const char *s, size_t n, double *out)
{
    char small[128];
    char *copy = n < sizeof small ? small : malloc(n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, s, n);
    copy[n] = '\0';
    locale_t old;
    if (enter_c_locale(&old) == (locale_t)0) {
        if (copy != small)
            free(copy);
        return -1;
    }
    *out = strtod(copy, NULL);
    uselocale(old);
    if (copy != small)
        free(copy);
    return 0;
}

size_t aud_num_format_json(double x, char *out, size_t cap)
{
    if (!isfinite(x) || cap < 32)
        return 0;
    locale_t old;
    if (enter_c_locale(&old) == (locale_t)0)
        return 0;
    int len = 0;
    for (int digits = 14; digits <= 17; digits++) {
        len = snprintf(out, cap, "%.*g", digits, x);
        if (len < 0 || (size_t)len >= cap) {
            len = 0;
            break;
        }
        if (strtod(out, NULL) == x)
            break;
    }
    uselocale(old);
    return (size_t)len;
}
