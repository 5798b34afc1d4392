#include "url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

size_t aud_url_encoded_len(const char *s, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t add = unreserved((unsigned char)s[i]) ? 1 : 3;
        if (len > SIZE_MAX - add)
            return SIZE_MAX;
        len += add;
    }
    return len;
}

size_t aud_url_encode(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

static int param_cmp(const void *a, const void *b)
{
    const struct aud_query_param *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c != 0)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void aud_query_sort(struct aud_query_param *p, size_t n)
{
    if (n > 1)
        qsort(p, n, sizeof *p, param_cmp);
}

static int add_len(size_t *total, size_t add)
{
    if (add == SIZE_MAX || *total > SIZE_MAX - add)
        return -1;
    *total += add;
    return 0;
}

size_t aud_query_len(const struct aud_query_param *p, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (add_len(&total, aud_url_encoded_len(p[i].key, p[i].key_len)) ||
            add_len(&total, aud_url_encoded_len(p[i].value, p[i].value_len)) ||
            add_len(&total, i ? 2 : 1)) /* '=' and, after the first, '&' */
            return SIZE_MAX;
    }
    return total;
}

size_t aud_query_write(const struct aud_query_param *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[o++] = '&';
        o += aud_url_encode(p[i].key, p[i].key_len, out + o);
        out[o++] = '=';
        o += aud_url_encode(p[i].value, p[i].value_len, out + o);
    }
    return o;
}
