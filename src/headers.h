/* Response header collection: raw header lines in, (lower-cased name,
 * trimmed value) pairs out. Fed straight from the network, so it accepts
 * arbitrary bytes: embedded NULs, missing colons, LF or CRLF endings. */
#ifndef AUD_HEADERS_H
#define AUD_HEADERS_H

#include <stddef.h>

#include "buf.h"

/* Distinct names kept per response; more are dropped. Real servers send a
 * few dozen, and the bound keeps the name lookup linear in input size. */
#define AUD_HEADERS_MAX 1024

struct aud_header {
    char *name; /* lower-cased ASCII, not NUL-terminated */
    size_t name_len;
    size_t name_cap; /* bytes allocated at name: slots are reused */
    struct aud_buf value; /* repeated names joined with ", " */
};

struct aud_headers {
    struct aud_header *items; /* cap slots; those past count keep their buffers */
    size_t count;
    size_t cap;
    size_t last; /* target of an obs-fold continuation line, or SIZE_MAX */
};

void aud_headers_init(struct aud_headers *h);
/* Drops every header but keeps the item array, and the small name and value
 * buffers of its slots, for the next response. */
void aud_headers_clear(struct aud_headers *h);
void aud_headers_free(struct aud_headers *h);

/* One line, with or without its CRLF/LF. A line starting with "HTTP/"
 * begins a new response and discards what was collected, so only the last
 * response (after 1xx interim ones or a proxy CONNECT) is kept.
 * Returns 0, or -1 when out of memory. */
int aud_headers_feed_line(struct aud_headers *h, const char *line, size_t len);
/* Splits a block on LF and feeds each line. Returns 0 or -1 (memory). */
int aud_headers_parse(struct aud_headers *h, const char *data, size_t len);

/* The joined value of a name (compared case-insensitively), or NULL. */
const struct aud_header *aud_headers_get(const struct aud_headers *h,
                                         const char *name, size_t len);

/* Whether needle (m bytes) occurs in s (n bytes); an empty needle occurs
 * everywhere. For the check that a response header holds no secret. */
int aud_headers_value_contains(const char *s, size_t n, const char *needle, size_t m);

#endif
