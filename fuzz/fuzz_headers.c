/* Response header collection (headers.c): a block of header lines as a server
 * could send them, interim responses, folding, NULs, bare CR and all.
 *
 * The block goes in twice: whole, through aud_headers_parse, and line by line
 * through aud_headers_feed_line with each line in a block of its own size, as
 * libcurl hands them over. Both must agree, and the result must keep the
 * documented shape: at most AUD_HEADERS_MAX distinct, non-empty, lower-cased,
 * trimmed names, each found again by aud_headers_get in any case. */
#include "fuzz.h"

#include "headers.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void check_shape(const struct aud_headers *h)
{
    FUZZ_CHECK(h->count <= AUD_HEADERS_MAX);
    FUZZ_CHECK(h->count <= h->cap);
    for (size_t i = 0; i < h->count; i++) {
        const struct aud_header *hd = &h->items[i];
        FUZZ_CHECK(hd->name_len > 0);
        FUZZ_CHECK(!is_blank(hd->name[0]) && !is_blank(hd->name[hd->name_len - 1]));
        FUZZ_CHECK(memchr(hd->name, ':', hd->name_len) == NULL);
        for (size_t j = 0; j < hd->name_len; j++)
            FUZZ_CHECK(!(hd->name[j] >= 'A' && hd->name[j] <= 'Z'));
        const struct aud_buf *v = &hd->value;
        FUZZ_CHECK(v->len <= v->cap);
        if (v->len > 0)
            FUZZ_CHECK(!is_blank(v->data[0]) && !is_blank(v->data[v->len - 1]));
        /* Lookups are linear: checking every name would make the target
         * quadratic in its input; the two ends cover first and latest. */
        if (i >= 32 && i + 32 < h->count)
            continue;
        FUZZ_CHECK(aud_headers_get(h, hd->name, hd->name_len) == hd);

        /* The same name upper-cased, from a block of its own size. */
        char *upper = fuzz_copy(hd->name, hd->name_len);
        for (size_t j = 0; j < hd->name_len; j++)
            if (upper[j] >= 'a' && upper[j] <= 'z')
                upper[j] = (char)(upper[j] - 'a' + 'A');
        FUZZ_CHECK(aud_headers_get(h, upper, hd->name_len) == hd);
        free(upper);
    }
}

static void check_same(const struct aud_headers *a, const struct aud_headers *b)
{
    FUZZ_CHECK(a->count == b->count);
    for (size_t i = 0; i < a->count; i++) {
        const struct aud_header *x = &a->items[i], *y = &b->items[i];
        FUZZ_CHECK(x->name_len == y->name_len);
        FUZZ_CHECK(memcmp(x->name, y->name, x->name_len) == 0);
        FUZZ_CHECK(x->value.len == y->value.len);
        if (x->value.len > 0)
            FUZZ_CHECK(memcmp(x->value.data, y->value.data, x->value.len) == 0);
    }
}

/* The AUD_HEADERS_MAX limit, once per process rather than from the corpus:
 * reaching it takes a ~5 kB input of a thousand lines, each looked up among
 * the names seen so far, and mutating such inputs would slow the target to a
 * few hundred runs a second. Past the limit new names are dropped while the
 * names already kept still collect their repeats. */
static void check_limit(void)
{
    struct aud_buf block;
    aud_buf_init(&block);
    char line[32];
    for (int i = 0; i < AUD_HEADERS_MAX + 10; i++) {
        int n = snprintf(line, sizeof line, "h%d: %d\r\n", i, i);
        FUZZ_CHECK(n > 0 && aud_buf_append(&block, line, (size_t)n) == 0);
    }
    FUZZ_CHECK(aud_buf_append(&block, "H0: again\r\n", 11) == 0);
    struct aud_headers h;
    aud_headers_init(&h);
    FUZZ_CHECK(aud_headers_parse(&h, block.data, block.len) == 0);
    FUZZ_CHECK(h.count == AUD_HEADERS_MAX);
    FUZZ_CHECK(aud_headers_get(&h, "h1024", 5) == NULL);
    const struct aud_header *first = aud_headers_get(&h, "h0", 2);
    FUZZ_CHECK(first != NULL && first->value.len == 8 &&
               memcmp(first->value.data, "0, again", 8) == 0);
    aud_headers_free(&h);
    aud_buf_free(&block);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check_limit();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aud_headers whole, lines;
    aud_headers_init(&whole);
    aud_headers_init(&lines);

    char *block = fuzz_copy(data, size);
    int rc_whole = aud_headers_parse(&whole, block, size);

    int rc_lines = 0;
    size_t off = 0;
    while (off < size && rc_lines == 0) {
        const char *lf = memchr(block + off, '\n', size - off);
        size_t n = lf ? (size_t)(lf - (block + off)) + 1 : size - off;
        char *line = fuzz_copy(block + off, n);
        rc_lines = aud_headers_feed_line(&lines, line, n);
        free(line);
        off += n;
    }

    /* -1 only means out of memory, which libFuzzer's limits make an
     * unrelated failure; the shape checks are then moot. */
    if (rc_whole == 0 && rc_lines == 0) {
        check_shape(&whole);
        check_same(&whole, &lines);
    }

    /* Reuse after clear must behave like a fresh collection. */
    aud_headers_clear(&lines);
    FUZZ_CHECK(lines.count == 0);
    if (aud_headers_parse(&lines, block, size) == 0 && rc_whole == 0)
        check_same(&whole, &lines);

    aud_headers_free(&whole);
    aud_headers_free(&lines);
    free(block);
    return 0;
}
