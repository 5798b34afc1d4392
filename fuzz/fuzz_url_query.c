/* Percent-encoding and query building (url.c): the code that turns a Lua
 * table into the query string that gets sent and, for Creamailer, signed.
 *
 * Input: the bytes to percent-encode, then key/value fields (0xFF between
 * every key and value), which become query parameters in input order.
 *
 * Checks: aud_url_encode writes exactly aud_url_encoded_len bytes, only
 * unreserved characters and %XX, and decodes back to its input. The query
 * is exactly aud_query_len bytes, its keys are in byte order (repeated keys
 * in input order), and parameters given in another order build the same
 * string: the signature depends on it. */
#include "fuzz.h"

#include "url.h"

#define MAX_PARAMS 64

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* the encoder writes upper case only */
}

static void check_encode(const char *s, size_t n)
{
    size_t len = aud_url_encoded_len(s, n);
    FUZZ_CHECK(len >= n && len <= 3 * n);
    char *out = fuzz_alloc(len);
    FUZZ_CHECK(aud_url_encode(s, n, out) == len);
    size_t i = 0, o = 0;
    while (o < len) {
        FUZZ_CHECK(i < n);
        if (out[o] == '%') {
            FUZZ_CHECK(o + 2 < len);
            int hi = hex_value(out[o + 1]), lo = hex_value(out[o + 2]);
            FUZZ_CHECK(hi >= 0 && lo >= 0);
            FUZZ_CHECK((unsigned char)s[i] == (unsigned)(hi << 4 | lo));
            FUZZ_CHECK(!unreserved((unsigned char)s[i]));
            o += 3;
        } else {
            FUZZ_CHECK(unreserved((unsigned char)out[o]));
            FUZZ_CHECK(out[o] == s[i]);
            o++;
        }
        i++;
    }
    FUZZ_CHECK(i == n);
    free(out);
}

static int key_cmp(const struct aud_query_param *x,
                   const struct aud_query_param *y)
{
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c != 0)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Builds the query; the caller frees it. */
static char *build(struct aud_query_param *p, size_t n, size_t *len)
{
    aud_query_sort(p, n);
    for (size_t i = 1; i < n; i++) {
        int c = key_cmp(&p[i - 1], &p[i]);
        FUZZ_CHECK(c < 0 || (c == 0 && p[i - 1].seq < p[i].seq));
    }
    *len = aud_query_len(p, n);
    FUZZ_CHECK(*len != SIZE_MAX);
    char *out = fuzz_alloc(*len);
    FUZZ_CHECK(aud_query_write(p, n, out) == *len);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t n;
    char *s = fuzz_field(&in, &n);
    check_encode(s, n);
    free(s);

    struct aud_query_param params[MAX_PARAMS], reversed[MAX_PARAMS];
    char *owned[2 * MAX_PARAMS];
    size_t count = 0, nowned = 0;
    while (in.n > 0 && count < MAX_PARAMS) {
        struct aud_query_param *p = &params[count];
        char *k = fuzz_field(&in, &p->key_len);
        char *v = fuzz_field(&in, &p->value_len);
        owned[nowned++] = k;
        owned[nowned++] = v;
        p->key = k;
        p->value = v;
        p->seq = count++;
    }
    /* The same parameters handed over in reverse, with the same seq: the
     * order they were collected in must not matter. */
    for (size_t i = 0; i < count; i++)
        reversed[i] = params[count - 1 - i];

    size_t len_a, len_b;
    char *a = build(params, count, &len_a);
    char *b = build(reversed, count, &len_b);
    FUZZ_CHECK(len_a == len_b);
    FUZZ_CHECK(len_a == 0 || memcmp(a, b, len_a) == 0);
    /* One '=' per parameter and one '&' between two, outside the escapes. */
    size_t eq = 0, amp = 0;
    for (size_t i = 0; i < len_a; i++) {
        eq += a[i] == '=';
        amp += a[i] == '&';
    }
    FUZZ_CHECK(eq == count && amp == (count ? count - 1 : 0));

    free(a);
    free(b);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    return 0;
}
