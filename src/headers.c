#include "headers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static void trim(const char **s, size_t *n)
{
    const char *p = *s;
    size_t len = *n;
    while (len > 0 && is_blank(*p)) {
        p++;
        len--;
    }
    while (len > 0 && is_blank(p[len - 1]))
        len--;
    *s = p;
    *n = len;
}

static int same_name(const struct aud_header *hd, const char *name, size_t len)
{
    if (hd->name_len != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (hd->name[i] != lower(name[i]))
            return 0;
    return 1;
}

void aud_headers_init(struct aud_headers *h)
{
    h->items = NULL;
    h->count = 0;
    h->cap = 0;
    h->last = SIZE_MAX;
}

/* A slot's buffers up to these sizes survive a clear: a keep-alive
 * connection gets the same few headers on every response, and reusing
 * their buffers saves two mallocs and two frees per header. */
#define KEEP_NAME 64
#define KEEP_VALUE 256

static void free_slot(struct aud_header *hd)
{
    free(hd->name);
    hd->name = NULL;
    hd->name_cap = 0;
    aud_buf_free(&hd->value);
}

void aud_headers_clear(struct aud_headers *h)
{
    for (size_t i = 0; i < h->count; i++) {
        struct aud_header *hd = &h->items[i];
        if (hd->name_cap > KEEP_NAME || hd->value.cap > KEEP_VALUE)
            free_slot(hd);
        hd->value.len = 0;
    }
    h->count = 0;
    h->last = SIZE_MAX;
}

void aud_headers_free(struct aud_headers *h)
{
    for (size_t i = 0; i < h->cap; i++)
        free_slot(&h->items[i]);
    free(h->items);
    aud_headers_init(h);
}

const struct aud_header *aud_headers_get(const struct aud_headers *h,
                                         const char *name, size_t len)
{
    for (size_t i = 0; i < h->count; i++)
        if (same_name(&h->items[i], name, len))
            return &h->items[i];
    return NULL;
}

/* Appends a list element; empty elements carry nothing, as in RFC 9110's
 * list syntax, so "a:" followed by "a: x" yields "x". */
static int join(struct aud_buf *v, const char *s, size_t n, const char *sep)
{
    if (n == 0)
        return 0;
    if (v->len > 0 && aud_buf_append(v, sep, strlen(sep)) != 0)
        return -1;
    return aud_buf_append(v, s, n);
}

static int add(struct aud_headers *h, const char *name, size_t name_len,
               const char *value, size_t value_len)
{
    for (size_t i = 0; i < h->count; i++) {
        if (same_name(&h->items[i], name, name_len)) {
            h->last = i;
            return join(&h->items[i].value, value, value_len, ", ");
        }
    }
    h->last = SIZE_MAX;
    if (h->count >= AUD_HEADERS_MAX)
        return 0;
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct aud_header *items = realloc(h->items, cap * sizeof *items);
        if (items == NULL)
            return -1;
        for (size_t i = h->cap; i < cap; i++) {
            items[i].name = NULL;
            items[i].name_len = 0;
            items[i].name_cap = 0;
            aud_buf_init(&items[i].value);
        }
        h->items = items;
        h->cap = cap;
    }
    struct aud_header *hd = &h->items[h->count];
    if (hd->name_cap < name_len) {
        free(hd->name);
        hd->name_cap = 0;
        hd->name = malloc(name_len);
        if (hd->name == NULL)
            return -1;
        hd->name_cap = name_len;
    }
    for (size_t i = 0; i < name_len; i++)
        hd->name[i] = lower(name[i]);
    hd->name_len = name_len;
    hd->value.len = 0;
    if (aud_buf_append(&hd->value, value, value_len) != 0)
        return -1;
    h->last = h->count++;
    return 0;
}

int aud_headers_feed_line(struct aud_headers *h, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        aud_headers_clear(h);
        return 0;
    }
    if (len == 0) {
        h->last = SIZE_MAX;
        return 0;
    }
    if (is_blank(line[0])) {
        /* Obsolete line folding (RFC 9112 5.2): the line continues the
         * previous field's value. */
        if (h->last == SIZE_MAX)
            return 0;
        trim(&line, &len);
        return join(&h->items[h->last].value, line, len, " ");
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL) {
        h->last = SIZE_MAX;
        return 0;
    }
    const char *name = line;
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    trim(&name, &name_len);
    trim(&value, &value_len);
    if (name_len == 0) {
        h->last = SIZE_MAX;
        return 0;
    }
    return add(h, name, name_len, value, value_len);
}

int aud_headers_parse(struct aud_headers *h, const char *data, size_t len)
{
    while (len > 0) {
        const char *lf = memchr(data, '\n', len);
        size_t line = lf ? (size_t)(lf - data) + 1 : len;
        if (aud_headers_feed_line(h, data, line) != 0)
            return -1;
        data += line;
        len -= line;
    }
    return 0;
}

int aud_headers_value_contains(const char *s, size_t n, const char *needle, size_t m)
{
    if (m == 0)
        return 1;
    while (n >= m) {
        const char *p = memchr(s, needle[0], n - m + 1);
        if (p == NULL)
            return 0;
        if (memcmp(p, needle, m) == 0)
            return 1;
        n -= (size_t)(p - s) + 1;
        s = p + 1;
    }
    return 0;
}
