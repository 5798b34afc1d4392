#include "http1.h"

#include <stdio.h>
#include <string.h>

/* Past this a buffer is freed between responses (see aud_buf_clear). */
#define KEEP_BYTES (64u * 1024u)

enum {
    S_STATUS,
    S_HEADERS,
    S_LENGTH,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_END,
    S_TRAILERS,
    S_UNTIL_CLOSE,
    S_DONE,
    S_ERROR,
};

void aud_http1_init(struct aud_http1 *p, int head, int connect,
                    size_t max_body)
{
    memset(p, 0, sizeof *p);
    aud_buf_init(&p->line);
    aud_buf_init(&p->body);
    aud_headers_init(&p->headers);
    p->max_body = max_body;
    aud_http1_reset(p, head, connect);
}

void aud_http1_reset(struct aud_http1 *p, int head, int connect)
{
    aud_buf_clear(&p->line, KEEP_BYTES);
    aud_buf_clear(&p->body, KEEP_BYTES);
    aud_headers_clear(&p->headers);
    p->state = S_STATUS;
    p->head = head;
    p->connect = connect;
    p->header_bytes = 0;
    p->started = 0;
    p->status = 0;
    p->keep_alive = 0;
    p->chunked = 0;
    p->remaining = 0;
    p->extra = 0;
    p->kind = AUD_HTTP_OK;
    p->message[0] = '\0';
}

void aud_http1_free(struct aud_http1 *p)
{
    aud_buf_free(&p->line);
    aud_buf_free(&p->body);
    aud_headers_free(&p->headers);
}

static enum aud_http1_result fail(struct aud_http1 *p,
                                  enum aud_http_outcome kind, const char *msg)
{
    p->state = S_ERROR;
    p->kind = kind;
    snprintf(p->message, sizeof p->message, "%s", msg);
    return AUD_HTTP1_ERROR;
}

static enum aud_http1_result out_of_memory(struct aud_http1 *p)
{
    return fail(p, AUD_HTTP_NETWORK, "out of memory while reading the response");
}

static enum aud_http1_result body_too_large(struct aud_http1 *p)
{
    p->state = S_ERROR;
    p->kind = AUD_HTTP_TOO_LARGE;
    snprintf(p->message, sizeof p->message,
             "response body exceeds max_body (%zu bytes)", p->max_body);
    return AUD_HTTP1_ERROR;
}

static enum aud_http1_result head_too_large(struct aud_http1 *p)
{
    p->state = S_ERROR;
    p->kind = AUD_HTTP_TOO_LARGE;
    snprintf(p->message, sizeof p->message,
             "response headers exceed %u bytes", AUD_HTTP_MAX_HEADER_BYTES);
    return AUD_HTTP1_ERROR;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Takes bytes up to and including the next LF. Returns 1 with the line
 * (terminator stripped) in *out, 0 when all input went into the pending
 * line, -1 when the line would pass limit bytes, -2 when out of memory.
 * *raw gets the line's length on the wire. *out may point into p->line,
 * which the caller empties once done with it. */
static int next_line(struct aud_http1 *p, const char **data, size_t *len,
                     size_t limit, const char **out, size_t *out_len,
                     size_t *raw)
{
    const char *lf = memchr(*data, '\n', *len);
    size_t take = lf ? (size_t)(lf - *data) + 1 : *len;
    if (p->line.len > limit || take > limit - p->line.len)
        return -1;
    const char *s;
    size_t n;
    if (lf != NULL && p->line.len == 0) {
        s = *data;
        n = take;
    } else {
        if (aud_buf_append(&p->line, *data, take) != 0)
            return -2;
        if (lf == NULL) {
            *data += take;
            *len -= take;
            return 0;
        }
        s = p->line.data;
        n = p->line.len;
    }
    *data += take;
    *len -= take;
    *raw = n;
    n--; /* the LF */
    if (n > 0 && s[n - 1] == '\r')
        n--;
    *out = s;
    *out_len = n;
    return 1;
}

/* "HTTP/1.x NNN[ reason]" */
static int parse_status(struct aud_http1 *p, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) ||
        s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
        !is_digit(s[11]) || (n > 12 && s[12] != ' '))
        return -1;
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (p->status < 100)
        return -1;
    p->keep_alive = s[7] != '0';
    return 0;
}

static int token_is(const char *s, size_t n, const char *want)
{
    size_t w = strlen(want);
    if (n != w)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != want[i])
            return 0;
    return 1;
}

/* Calls back for each element of a comma-separated list, trimmed. */
static void each_token(const struct aud_header *h,
                       void (*fn)(void *, const char *, size_t), void *ud)
{
    const char *s = h->value.data;
    size_t n = h->value.len;
    while (n > 0) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        const char *t = s;
        size_t tl = len;
        while (tl > 0 && is_blank(*t)) {
            t++;
            tl--;
        }
        while (tl > 0 && is_blank(t[tl - 1]))
            tl--;
        if (tl > 0)
            fn(ud, t, tl);
        s += comma ? len + 1 : len;
        n -= comma ? len + 1 : len;
    }
}

static void on_connection_token(void *ud, const char *t, size_t n)
{
    struct aud_http1 *p = ud;
    if (token_is(t, n, "close"))
        p->keep_alive = 0;
    else if (token_is(t, n, "keep-alive"))
        p->keep_alive = 1;
}

static void on_coding(void *ud, const char *t, size_t n)
{
    *(int *)ud = token_is(t, n, "chunked");
}

/* Every element the same decimal number (RFC 9110 8.6 allows repeats). */
static int parse_length(const struct aud_header *h, uint64_t *out)
{
    const char *s = h->value.data;
    size_t n = h->value.len;
    int seen = 0;
    uint64_t v = 0;
    size_t i = 0;
    while (i <= n) {
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n || !is_digit(s[i]))
            return -1;
        uint64_t x = 0;
        while (i < n && is_digit(s[i])) {
            if (x > (UINT64_MAX - 9) / 10)
                return -1;
            x = x * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        while (i < n && is_blank(s[i]))
            i++;
        if (seen && x != v)
            return -1;
        v = x;
        seen = 1;
        if (i == n)
            break;
        if (s[i] != ',')
            return -1;
        i++;
    }
    *out = v;
    return 0;
}

static enum aud_http1_result done(struct aud_http1 *p)
{
    p->state = S_DONE;
    return AUD_HTTP1_DONE;
}

/* The blank line after a head: decides how the body is delimited. */
static enum aud_http1_result end_of_head(struct aud_http1 *p)
{
    if (p->status < 200) {
        if (p->status == 101)
            return fail(p, AUD_HTTP_NETWORK,
                        "unexpected 101 Switching Protocols response");
        p->state = S_STATUS; /* an interim response: the real one follows */
        return AUD_HTTP1_MORE;
    }
    const struct aud_header *conn = aud_headers_get(&p->headers, "connection", 10);
    if (conn != NULL)
        each_token(conn, on_connection_token, p);
    if (p->head || p->status == 204 || p->status == 304 ||
        (p->connect && p->status / 100 == 2))
        return done(p);

    const struct aud_header *te =
        aud_headers_get(&p->headers, "transfer-encoding", 17);
    const struct aud_header *cl = aud_headers_get(&p->headers, "content-length", 14);
    if (te != NULL && te->value.len > 0) {
        int chunked = 0;
        each_token(te, on_coding, &chunked);
        /* Both framings at once is how requests get smuggled: trust the
         * coding but never reuse the connection (RFC 9112 6.3). */
        if (cl != NULL)
            p->keep_alive = 0;
        if (chunked) {
            p->chunked = 1;
            p->state = S_CHUNK_SIZE;
        } else {
            p->keep_alive = 0;
            p->state = S_UNTIL_CLOSE;
        }
        return AUD_HTTP1_MORE;
    }
    if (cl != NULL) {
        uint64_t n;
        if (parse_length(cl, &n) != 0)
            return fail(p, AUD_HTTP_NETWORK, "invalid Content-Length in the response");
        if (n > (uint64_t)p->max_body)
            return body_too_large(p);
        if (n == 0)
            return done(p);
        p->remaining = n;
        p->state = S_LENGTH;
        return AUD_HTTP1_MORE;
    }
    p->keep_alive = 0;
    p->state = S_UNTIL_CLOSE;
    return AUD_HTTP1_MORE;
}

/* hex [BWS] [; extensions] */
static int parse_chunk_size(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < n) {
        char c = lower(s[i]);
        int d;
        if (is_digit(c))
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            break;
        if (v > (UINT64_MAX >> 4))
            return -1;
        v = v << 4 | (uint64_t)d;
        i++;
    }
    if (i == 0)
        return -1;
    while (i < n && is_blank(s[i]))
        i++;
    if (i < n && s[i] != ';')
        return -1;
    *out = v;
    return 0;
}

static enum aud_http1_result take_body(struct aud_http1 *p, const char **data,
                                       size_t *len, size_t n)
{
    if (n > p->max_body - p->body.len)
        return body_too_large(p);
    if (aud_buf_append(&p->body, *data, n) != 0)
        return out_of_memory(p);
    *data += n;
    *len -= n;
    return AUD_HTTP1_MORE;
}

/* What is at hand of the body bytes the framing still owes. */
static enum aud_http1_result take_remaining(struct aud_http1 *p, const char **data,
                                            size_t *len)
{
    size_t take = *len;
    if ((uint64_t)take > p->remaining)
        take = (size_t)p->remaining;
    if (take_body(p, data, len, take) == AUD_HTTP1_ERROR)
        return AUD_HTTP1_ERROR;
    p->remaining -= take;
    return AUD_HTTP1_MORE;
}

/* One line of a head (status, header or trailer). */
static enum aud_http1_result head_line(struct aud_http1 *p, const char *s,
                                       size_t n)
{
    /* A bare CR: some parsers end the head there, others not, which is
     * how one response gets read as two (RFC 9112 2.2 lets us refuse). */
    if (memchr(s, '\r', n) != NULL)
        return fail(p, AUD_HTTP_NETWORK, "malformed response head (bare CR)");
    switch (p->state) {
    case S_STATUS:
        if (n == 0)
            return AUD_HTTP1_MORE; /* RFC 9112 2.2: stray blank lines */
        if (parse_status(p, s, n) != 0)
            return fail(p, AUD_HTTP_NETWORK, "malformed HTTP status line");
        if (aud_headers_feed_line(&p->headers, s, n) != 0)
            return out_of_memory(p);
        p->state = S_HEADERS;
        return AUD_HTTP1_MORE;
    case S_HEADERS:
        if (n == 0)
            return end_of_head(p);
        if (aud_headers_feed_line(&p->headers, s, n) != 0)
            return out_of_memory(p);
        return AUD_HTTP1_MORE;
    default: /* S_TRAILERS: read and dropped, as they may arrive late */
        return n == 0 ? done(p) : AUD_HTTP1_MORE;
    }
}

static enum aud_http1_result step(struct aud_http1 *p, const char **data,
                                  size_t *len)
{
    const char *s;
    size_t n, raw;
    int rc;
    switch (p->state) {
    case S_STATUS:
    case S_HEADERS:
    case S_TRAILERS:
        rc = next_line(p, data, len, AUD_HTTP_MAX_HEADER_BYTES - p->header_bytes,
                       &s, &n, &raw);
        if (rc == -1)
            return head_too_large(p);
        if (rc == -2)
            return out_of_memory(p);
        if (rc == 0)
            return AUD_HTTP1_MORE;
        p->header_bytes += raw;
        enum aud_http1_result r = head_line(p, s, n);
        p->line.len = 0;
        return r;
    case S_LENGTH: {
        if (take_remaining(p, data, len) == AUD_HTTP1_ERROR)
            return AUD_HTTP1_ERROR;
        return p->remaining == 0 ? done(p) : AUD_HTTP1_MORE;
    }
    case S_CHUNK_SIZE:
    case S_CHUNK_END:
        rc = next_line(p, data, len, AUD_HTTP1_MAX_CHUNK_LINE, &s, &n, &raw);
        if (rc == -1)
            return fail(p, AUD_HTTP_NETWORK, "malformed chunked body");
        if (rc == -2)
            return out_of_memory(p);
        if (rc == 0)
            return AUD_HTTP1_MORE;
        /* Chunk lines end in CRLF, strictly: parsers differ on a bare LF
         * after an extension (http_parser reads on), and a framing two
         * parsers read differently is a smuggling vector. */
        if (n + 2 != raw) {
            p->line.len = 0;
            return fail(p, AUD_HTTP_NETWORK, "malformed chunked body");
        }
        if (p->state == S_CHUNK_END) {
            p->line.len = 0;
            if (n != 0)
                return fail(p, AUD_HTTP_NETWORK, "malformed chunked body");
            p->state = S_CHUNK_SIZE;
            return AUD_HTTP1_MORE;
        }
        uint64_t size;
        rc = parse_chunk_size(s, n, &size);
        p->line.len = 0;
        if (rc != 0)
            return fail(p, AUD_HTTP_NETWORK, "malformed chunked body");
        if (size == 0) {
            p->state = S_TRAILERS;
            return AUD_HTTP1_MORE;
        }
        if (size > (uint64_t)(p->max_body - p->body.len))
            return body_too_large(p);
        p->remaining = size;
        p->state = S_CHUNK_DATA;
        return AUD_HTTP1_MORE;
    case S_CHUNK_DATA: {
        if (take_remaining(p, data, len) == AUD_HTTP1_ERROR)
            return AUD_HTTP1_ERROR;
        if (p->remaining == 0)
            p->state = S_CHUNK_END;
        return AUD_HTTP1_MORE;
    }
    case S_UNTIL_CLOSE:
        return take_body(p, data, len, *len);
    default:
        return AUD_HTTP1_ERROR;
    }
}

enum aud_http1_result aud_http1_feed(struct aud_http1 *p, const char *data,
                                     size_t len)
{
    if (p->state == S_ERROR)
        return AUD_HTTP1_ERROR;
    if (p->state == S_DONE) {
        p->extra += len;
        return AUD_HTTP1_DONE;
    }
    if (len > 0)
        p->started = 1;
    while (len > 0) {
        enum aud_http1_result r = step(p, &data, &len);
        if (r == AUD_HTTP1_ERROR)
            return r;
        if (r == AUD_HTTP1_DONE) {
            p->extra += len;
            return r;
        }
    }
    return AUD_HTTP1_MORE;
}

enum aud_http1_result aud_http1_eof(struct aud_http1 *p)
{
    switch (p->state) {
    case S_DONE:
        return AUD_HTTP1_DONE;
    case S_ERROR:
        return AUD_HTTP1_ERROR;
    case S_UNTIL_CLOSE:
        p->keep_alive = 0;
        return done(p);
    default:
        return fail(p, AUD_HTTP_NETWORK,
                    p->started ? "connection closed before the response was complete"
                               : "connection closed before any response");
    }
}

int aud_http1_done(const struct aud_http1 *p)
{
    return p->state == S_DONE;
}

int aud_http1_reusable(const struct aud_http1 *p)
{
    return p->state == S_DONE && p->keep_alive && p->extra == 0 && !p->connect;
}

static int put(struct aud_buf *out, const char *s, size_t n)
{
    return aud_buf_append(out, s, n);
}

static int puts_(struct aud_buf *out, const char *s)
{
    return aud_buf_append(out, s, strlen(s));
}

int aud_http1_write_request(struct aud_buf *out,
                            const struct aud_http1_request *req)
{
    int rc = 0;
    rc |= puts_(out, req->method);
    rc |= put(out, " ", 1);
    rc |= put(out, req->target, req->target_len);
    rc |= puts_(out, " HTTP/1.1\r\nHost: ");
    rc |= put(out, req->host, req->host_len);
    rc |= put(out, "\r\n", 2);
    for (size_t i = 0; i < req->nheaders; i++) {
        rc |= put(out, req->headers[i], req->header_lens[i]);
        rc |= put(out, "\r\n", 2);
    }
    const char *m = req->method;
    /* Servers may answer 411 to a bodyless POST without a length. */
    if (req->body != NULL || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
        strcmp(m, "PATCH") == 0) {
        char cl[48];
        int n = snprintf(cl, sizeof cl, "Content-Length: %zu\r\n",
                         req->body != NULL ? req->body_len : (size_t)0);
        rc |= put(out, cl, (size_t)n);
    }
    rc |= put(out, "\r\n", 2);
    if (req->body != NULL && req->body_len > 0)
        rc |= put(out, req->body, req->body_len);
    return rc != 0 ? -1 : 0;
}
