/* RFC 3986 percent-encoding and deterministic query strings. */
#ifndef AUD_URL_H
#define AUD_URL_H

#include <stddef.h>

/* Encoded length of n bytes (unreserved bytes stay, others become %XX);
 * SIZE_MAX if it would overflow. */
size_t aud_url_encoded_len(const char *s, size_t n);
/* Writes the encoding of s into out, which must hold
 * aud_url_encoded_len(s, n) bytes; returns the bytes written. */
size_t aud_url_encode(const char *s, size_t n, char *out);

struct aud_query_param {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    size_t seq; /* insertion order; keeps repeated keys in array order */
};

/* Orders params bytewise by key, then by seq, so that a query string is a
 * pure function of its parameters (it gets signed). */
void aud_query_sort(struct aud_query_param *p, size_t n);
/* Exact length of "k=v&k=v..." for p, or SIZE_MAX on overflow. */
size_t aud_query_len(const struct aud_query_param *p, size_t n);
/* Writes the query (no leading '?', no NUL) and returns its length. */
size_t aud_query_write(const struct aud_query_param *p, size_t n, char *out);

#endif
