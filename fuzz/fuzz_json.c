/* The JSON parser (json.c) and the number reading it relies on (number.c
 * aud_num_strtod).
 *
 * Input: the whole input is one JSON text (no fields), copied to a heap
 * block of exactly its size.
 *
 * Checks:
 * - A refusal names an offset within the text (or just past its end).
 * - The sink's view is consistent: every container ends with the member
 *   or item count the sink counted itself, and keys come only in objects.
 * - Escaped strings unescape into no more than their escaped length (ASan
 *   watches a block of exactly that size).
 * - Round trip: the accepted text, written out again in a canonical form
 *   from what the sink heard, parses and writes out to the very same
 *   bytes; so numbers keep their kind (integer or float) and value, and
 *   strings their bytes.
 * - A top-level number agrees with strtod in the C locale, bit for bit (the
 *   exact fast path is no excuse to round differently). */
#include <math.h>

#include "fuzz.h"

#include "buf.h"
#include "json.h"

#define FUZZ_DEPTH 64

struct canon {
    struct aud_buf out;
    size_t counts[FUZZ_DEPTH + 2];
    int is_object[FUZZ_DEPTH + 2];
    int depth;
    int expect_value; /* in an object: a key was just written */
    size_t events;
    int top_number; /* the text was a bare number */
    double number;
};

static void put(struct canon *c, const void *p, size_t n)
{
    FUZZ_CHECK(aud_buf_append(&c->out, p, n) == 0);
}

/* Before a value: the separator its container needs, and the count. */
static void before_value(struct canon *c)
{
    c->events++;
    if (c->depth == 0)
        return;
    if (c->is_object[c->depth]) {
        FUZZ_CHECK(c->expect_value);
        c->expect_value = 0;
        return;
    }
    if (c->counts[c->depth]++ > 0)
        put(c, ",", 1);
}

static const char *begin(struct canon *c, int is_object)
{
    before_value(c);
    FUZZ_CHECK(c->depth < FUZZ_DEPTH + 1);
    c->depth++;
    c->counts[c->depth] = 0;
    c->is_object[c->depth] = is_object;
    put(c, is_object ? "{" : "[", 1);
    return NULL;
}

static const char *end(struct canon *c, int is_object, size_t n)
{
    FUZZ_CHECK(c->depth > 0);
    FUZZ_CHECK(c->is_object[c->depth] == is_object);
    FUZZ_CHECK(!c->expect_value);
    FUZZ_CHECK(c->counts[c->depth] == n);
    c->depth--;
    put(c, is_object ? "}" : "]", 1);
    return NULL;
}

static const char *on_begin_object(void *ud)
{
    return begin(ud, 1);
}

static const char *on_end_object(void *ud, size_t n)
{
    return end(ud, 1, n);
}

static const char *on_begin_array(void *ud)
{
    return begin(ud, 0);
}

static const char *on_end_array(void *ud, size_t n)
{
    return end(ud, 0, n);
}

/* The string's bytes, escaped only where JSON requires it (so invalid
 * UTF-8 goes out as it came in). */
static void put_string(struct canon *c, const char *raw, size_t len, int escaped)
{
    const char *s = raw;
    char *value = NULL;
    if (escaped) {
        value = fuzz_alloc(len);
        len = aud_json_unescape(raw, len, value);
        s = value;
    } else {
        FUZZ_CHECK(memchr(raw, '\\', len) == NULL);
    }
    put(c, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            put(c, e, 2);
        } else if (ch < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", ch);
            put(c, e, 6);
        } else {
            put(c, &s[i], 1);
        }
    }
    put(c, "\"", 1);
    free(value);
}

static const char *on_key(void *ud, const char *raw, size_t len, int escaped)
{
    struct canon *c = ud;
    FUZZ_CHECK(c->depth > 0 && c->is_object[c->depth]);
    FUZZ_CHECK(!c->expect_value);
    if (c->counts[c->depth]++ > 0)
        put(c, ",", 1);
    put_string(c, raw, len, escaped);
    put(c, ":", 1);
    c->expect_value = 1;
    return NULL;
}

static const char *on_string(void *ud, const char *raw, size_t len, int escaped)
{
    struct canon *c = ud;
    before_value(c);
    put_string(c, raw, len, escaped);
    return NULL;
}

static const char *on_integer(void *ud, long long v)
{
    struct canon *c = ud;
    before_value(c);
    if (c->depth == 0) {
        c->top_number = 1;
        c->number = (double)v;
    }
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", v);
    put(c, t, (size_t)n);
    return NULL;
}

static const char *on_number(void *ud, double v)
{
    struct canon *c = ud;
    FUZZ_CHECK(!isnan(v));
    before_value(c);
    if (c->depth == 0) {
        c->top_number = 2;
        c->number = v;
    }
    char t[40];
    int n;
    if (isinf(v))
        n = snprintf(t, sizeof t, "%s", v < 0 ? "-1e999" : "1e999");
    else
        n = snprintf(t, sizeof t, "%.17g", v);
    /* Written as a float, so that it reads back as one. */
    if (strpbrk(t, ".e") == NULL)
        n += snprintf(t + n, sizeof t - (size_t)n, ".0");
    put(c, t, (size_t)n);
    return NULL;
}

static const char *on_boolean(void *ud, int v)
{
    struct canon *c = ud;
    before_value(c);
    put(c, v ? "true" : "false", v ? 4 : 5);
    return NULL;
}

static const char *on_null(void *ud)
{
    struct canon *c = ud;
    before_value(c);
    put(c, "null", 4);
    return NULL;
}

static const struct aud_json_sink sink = {
    on_begin_object, on_end_object, on_begin_array, on_end_array, on_key,
    on_string,       on_integer,    on_number,      on_boolean,   on_null,
};

static int parse(const char *text, size_t len, struct canon *c)
{
    memset(c, 0, sizeof *c);
    aud_buf_init(&c->out);
    struct aud_json_limits lim = {FUZZ_DEPTH, 1u << 20};
    struct aud_json_error err = {0, NULL};
    int rc = aud_json_parse(text, len, &lim, &sink, c, &err);
    if (rc != 0) {
        FUZZ_CHECK(err.reason != NULL);
        FUZZ_CHECK(err.offset <= len);
    } else {
        FUZZ_CHECK(c->depth == 0);
        FUZZ_CHECK(c->events > 0);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_copy(data, size);
    struct canon first;
    if (parse(text, size, &first) == 0) {
        if (first.top_number) {
            char *copy = malloc(size + 1);
            FUZZ_CHECK(copy != NULL);
            memcpy(copy, text, size);
            copy[size] = '\0';
            double want = strtod(copy, NULL);
            free(copy);
            /* "-0" is the integer 0, where strtod keeps the sign. */
            FUZZ_CHECK(memcmp(&want, &first.number, sizeof want) == 0 ||
                       (want == 0 && first.number == 0 && first.top_number == 1));
        }
        struct canon second;
        char *again = fuzz_copy(first.out.data, first.out.len);
        FUZZ_CHECK(parse(again, first.out.len, &second) == 0);
        FUZZ_CHECK(second.out.len == first.out.len);
        FUZZ_CHECK(memcmp(second.out.data, first.out.data, first.out.len) == 0);
        free(again);
        aud_buf_free(&second.out);
    }
    aud_buf_free(&first.out);
    free(text);
    return 0;
}
