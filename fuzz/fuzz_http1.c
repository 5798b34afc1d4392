/* The HTTP/1.1 response parser (http1.c) on bytes as a server could send
 * them, checked three ways:
 *  - fed whole and fed in pieces of sizes drawn from the input, the two
 *    runs end the same way: same outcome, status, body, headers, reuse;
 *  - against libhttp-parser (Debian's http_parser 2.9.4) on the same bytes:
 *    when both take the input as a complete final response, status, body
 *    and keep-alive agree;
 *  - the result keeps its limits: body within max_body.
 *
 * Input: one flags byte (bit 0: answer to HEAD; bits 1-2: max_body), one
 * byte seeding the piece sizes, then the response bytes. */
#include "fuzz.h"

#include <http_parser.h>

#include "http1.h"

struct run {
    enum aud_http1_result r;
    struct aud_http1 p;
};

static void run_codec(struct run *out, const char *data, size_t len, int head,
                      size_t max_body, unsigned seed)
{
    aud_http1_init(&out->p, head, 0, max_body);
    enum aud_http1_result r = AUD_HTTP1_MORE;
    size_t off = 0;
    unsigned x = seed | 1u;
    while (off < len && r != AUD_HTTP1_ERROR) {
        size_t n = len - off;
        if (seed != 0) {
            x = x * 1103515245u + 12345u;
            size_t want = (size_t)((x >> 16) % 17u) + 1;
            if (want < n)
                n = want;
        }
        char *piece = fuzz_copy(data + off, n);
        r = aud_http1_feed(&out->p, piece, n);
        free(piece);
        off += n;
    }
    if (r == AUD_HTTP1_MORE)
        r = aud_http1_eof(&out->p);
    out->r = r;
}

static void check_same(const struct run *a, const struct run *b)
{
    FUZZ_CHECK(a->r == b->r);
    if (a->r == AUD_HTTP1_ERROR) {
        FUZZ_CHECK(a->p.kind == b->p.kind);
        FUZZ_CHECK(strcmp(a->p.message, b->p.message) == 0);
        return;
    }
    FUZZ_CHECK(a->p.status == b->p.status);
    FUZZ_CHECK(a->p.body.len == b->p.body.len);
    if (a->p.body.len)
        FUZZ_CHECK(memcmp(a->p.body.data, b->p.body.data, a->p.body.len) == 0);
    FUZZ_CHECK(aud_http1_reusable(&a->p) == aud_http1_reusable(&b->p));
    FUZZ_CHECK(a->p.headers.count == b->p.headers.count);
    for (size_t i = 0; i < a->p.headers.count; i++) {
        const struct aud_header *x = &a->p.headers.items[i], *y = &b->p.headers.items[i];
        FUZZ_CHECK(x->name_len == y->name_len && x->value.len == y->value.len);
        FUZZ_CHECK(memcmp(x->name, y->name, x->name_len) == 0);
        if (x->value.len)
            FUZZ_CHECK(memcmp(x->value.data, y->value.data, x->value.len) == 0);
    }
}

/* What libhttp-parser makes of the first final (non-1xx) response. */
struct ref {
    int head;
    int complete;
    int keep_alive;
    int last_chunk; /* the zero-size chunk was seen */
    int trailers;   /* and a field after it */
    unsigned status;
    struct aud_buf body;
};

static int ref_on_headers_complete(http_parser *hp)
{
    struct ref *r = hp->data;
    if (hp->status_code >= 200)
        r->body.len = 0;
    /* 1: the message has no body, which is how HEAD answers are told. 204
     * and 304 too: http_parser 2.9.4 would read one that carries a
     * non-chunked Transfer-Encoding until the close (RFC 9110 15.3.5). */
    return (r->head || hp->status_code == 204 || hp->status_code == 304) ? 1 : 0;
}

static int ref_on_body(http_parser *hp, const char *at, size_t len)
{
    struct ref *r = hp->data;
    FUZZ_CHECK(aud_buf_append(&r->body, at, len) == 0);
    return 0;
}

static int ref_on_chunk_header(http_parser *hp)
{
    struct ref *r = hp->data;
    if (hp->content_length == 0)
        r->last_chunk = 1;
    return 0;
}

/* http_parser lets a trailer field named Transfer-Encoding or Connection
 * change its keep-alive answer; the codec drops trailers, as framing in
 * them must not count (RFC 9112 7.1.2). */
static int ref_on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct ref *r = hp->data;
    (void)at;
    (void)len;
    if (r->last_chunk)
        r->trailers = 1;
    return 0;
}

static int ref_on_message_complete(http_parser *hp)
{
    struct ref *r = hp->data;
    if (hp->status_code < 200 || r->complete)
        return 0;
    r->complete = 1;
    r->status = hp->status_code;
    r->keep_alive = http_should_keep_alive(hp);
    http_parser_pause(hp, 1);
    return 0;
}

static void run_ref(struct ref *r, const char *data, size_t len, int head)
{
    http_parser_settings s;
    memset(&s, 0, sizeof s);
    s.on_headers_complete = ref_on_headers_complete;
    s.on_body = ref_on_body;
    s.on_message_complete = ref_on_message_complete;
    s.on_chunk_header = ref_on_chunk_header;
    s.on_header_field = ref_on_header_field;
    http_parser hp;
    http_parser_init(&hp, HTTP_RESPONSE);
    memset(r, 0, sizeof *r);
    aud_buf_init(&r->body);
    r->head = head;
    hp.data = r;
    size_t used = http_parser_execute(&hp, &s, data, len);
    if (!r->complete && used == len && HTTP_PARSER_ERRNO(&hp) == HPE_OK)
        http_parser_execute(&hp, &s, NULL, 0);
}

/* http_parser 2.9.4 keeps a tab before a bare LF in a field value, so it
 * reads "Transfer-Encoding: chunked<TAB>" as another coding, where RFC 9110
 * 5.5 trims it. Such inputs are left out of the comparison. */
static int has_trailing_tab(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\t' && (s[i + 1] == '\n' || s[i + 1] == '\r'))
            return 1;
    return 0;
}

/* http_parser 2.9.4 knows only a Transfer-Encoding of exactly "chunked":
 * a list (",chunked", "gzip, chunked") is a coding it reads until the close,
 * where RFC 9112 6.1 looks at the last element. Left out of the comparison. */
static int plain_coding(const struct aud_headers *h)
{
    const struct aud_header *te = aud_headers_get(h, "transfer-encoding", 17);
    if (te == NULL)
        return 1;
    if (te->value.len != 7)
        return 0;
    for (size_t i = 0; i < 7; i++)
        if ((te->value.data[i] | 0x20) != "chunked"[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_byte(&in);
    uint8_t seed = fuzz_byte(&in);
    size_t len;
    char *bytes = fuzz_rest(&in, &len);
    int head = flags & 1;
    static const size_t limits[] = {16, 1024, 65536, 1u << 20};
    size_t max_body = limits[(flags >> 1) & 3];

    struct run whole, pieces;
    run_codec(&whole, bytes, len, head, max_body, 0);
    run_codec(&pieces, bytes, len, head, max_body, seed);
    check_same(&whole, &pieces);
    FUZZ_CHECK(whole.p.body.len <= max_body);
    if (whole.r == AUD_HTTP1_DONE)
        FUZZ_CHECK(whole.p.status >= 200 && whole.p.status <= 999);

    struct ref ref;
    run_ref(&ref, bytes, len, head);
    if (whole.r == AUD_HTTP1_DONE && ref.complete && !has_trailing_tab(bytes, len) &&
        plain_coding(&whole.p.headers)) {
        FUZZ_CHECK((long)ref.status == whole.p.status);
        FUZZ_CHECK(ref.body.len == whole.p.body.len);
        if (ref.body.len)
            FUZZ_CHECK(memcmp(ref.body.data, whole.p.body.data, ref.body.len) == 0);
        if (!ref.trailers)
            FUZZ_CHECK(ref.keep_alive == whole.p.keep_alive);
    }

    aud_buf_free(&ref.body);
    aud_http1_free(&whole.p);
    aud_http1_free(&pieces.p);
    free(bytes);
    return 0;
}
