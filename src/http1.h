/* Sans-I/O HTTP/1.1 for transports that own their sockets (nginx's
 * cosockets): a request serializer and an incremental response parser.
 * Bytes go in as they arrive, in pieces of any size; nothing here reads,
 * writes or waits. The response comes out in the shape the libcurl
 * transport gives: a status, the body, and the header table of headers.c
 * (lower-cased names, repeats joined) holding the final response only. */
#ifndef AUD_HTTP1_H
#define AUD_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "headers.h"
#include "http.h"

/* Longest chunk-size line (size and extensions) accepted. */
#define AUD_HTTP1_MAX_CHUNK_LINE 4096u

enum aud_http1_result {
    AUD_HTTP1_MORE,  /* feed more bytes (or report the end of input) */
    AUD_HTTP1_DONE,  /* a complete final response is available */
    AUD_HTTP1_ERROR, /* see kind and message */
};

struct aud_http1 {
    int state;
    int head;    /* answer to HEAD: no body whatever the headers say */
    int connect; /* answer to CONNECT: a 2xx ends with its headers */
    size_t max_body;
    size_t header_bytes; /* status and header lines, interim ones included */
    int started;         /* at least one byte arrived */
    struct aud_buf line; /* a line not yet ended by LF */
    struct aud_headers headers;
    struct aud_buf body;
    long status;
    int keep_alive;
    int chunked;
    uint64_t remaining; /* body or chunk bytes still expected */
    size_t extra;       /* bytes fed past the end of the response */
    enum aud_http_outcome kind; /* when AUD_HTTP1_ERROR */
    char message[128];          /* never holds response bytes */
};

void aud_http1_init(struct aud_http1 *p, int head, int connect,
                    size_t max_body);
/* Makes p ready for the next response, keeping modest buffers. */
void aud_http1_reset(struct aud_http1 *p, int head, int connect);
void aud_http1_free(struct aud_http1 *p);

/* Consumes data. Once DONE or ERROR, further input is not looked at; bytes
 * past the end of the response are counted in p->extra. */
enum aud_http1_result aud_http1_feed(struct aud_http1 *p, const char *data,
                                     size_t len);
/* The peer closed the connection: completes a body delimited by the close,
 * anything else unfinished is a truncated response (a network error). */
enum aud_http1_result aud_http1_eof(struct aud_http1 *p);

/* Whether a complete response is available. */
int aud_http1_done(const struct aud_http1 *p);

/* Whether the connection may carry another request after this DONE
 * response: HTTP/1.1 without "Connection: close" (or 1.0 with keep-alive),
 * a body delimited by length, and nothing unexpected after it. */
int aud_http1_reusable(const struct aud_http1 *p);

struct aud_http1_request {
    const char *method; /* an HTTP token */
    const char *target; /* origin-form "/p?q", absolute-form or host:port */
    size_t target_len;
    const char *host; /* the Host header's value */
    size_t host_len;
    const char *const *headers; /* "Name: value" lines */
    const size_t *header_lens;
    size_t nheaders;
    const char *body; /* NULL: none */
    size_t body_len;
};

/* Appends the serialized request to out. A body, or a POST, PUT or PATCH
 * without one, gets a Content-Length. The caller has validated every
 * string (aud_http_valid_*). Returns 0, or -1 when out of memory. */
int aud_http1_write_request(struct aud_buf *out,
                            const struct aud_http1_request *req);

#endif
