/* One reusable libcurl easy handle per client: keep-alive connections, DNS
 * and TLS session caches survive between requests. No Lua in here. */
#ifndef AUD_HTTP_H
#define AUD_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "buf.h"
#include "headers.h"

/* Response header bytes accepted per transfer, interim responses included. */
#define AUD_HTTP_MAX_HEADER_BYTES (256u * 1024u)

struct aud_http_config {
    double timeout;         /* seconds, > 0 */
    double connect_timeout; /* seconds, > 0 */
    int verify_tls;
    const char *ca_file;    /* NULL: libcurl's default bundle */
    const char *proxy;      /* NULL: libcurl honours *_PROXY / NO_PROXY */
    const char *user_agent; /* required */
    size_t max_body;        /* decoded body bytes, > 0 */
};

struct aud_http_request {
    const char *method; /* an HTTP token, see aud_http_valid_method */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t nheaders;
    const char *body; /* NULL: no body; may hold any bytes */
    size_t body_len;
    double timeout; /* seconds; <= 0 uses the handle's */
};

enum aud_http_outcome {
    AUD_HTTP_OK,        /* a complete response arrived, any status */
    AUD_HTTP_TIMEOUT,
    AUD_HTTP_TOO_LARGE, /* body over max_body or headers over the cap */
    AUD_HTTP_TLS,
    AUD_HTTP_NETWORK,
};

struct aud_http_response {
    enum aud_http_outcome outcome;
    long status;
    /* body and headers belong to the handle (or the multi transfer):
     * valid until the next perform, aud_http_clear or aud_http_free. */
    const char *body;
    size_t body_len;
    const struct aud_headers *headers;
    double elapsed;
    /* 0 only when the request provably never reached the server, so a
     * caller may retry even a non-idempotent request. */
    int sent;
    char message[CURL_ERROR_SIZE + 64]; /* failures only; never headers */
};

struct aud_http;

/* curl_global_init, once per process. Returns CURLE_OK or its error. */
CURLcode aud_http_global_init(void);
/* Runtime libcurl version, e.g. "7.88.1". */
const char *aud_http_curl_version(void);

/* Copies the config's strings. NULL with err filled on failure. */
struct aud_http *aud_http_new(const struct aud_http_config *cfg, char *err,
                              size_t errlen);
/* Returns res->outcome. */
enum aud_http_outcome aud_http_perform(struct aud_http *h,
                                       const struct aud_http_request *req,
                                       struct aud_http_response *res);
/* Releases the last response's memory early. */
void aud_http_clear(struct aud_http *h);
void aud_http_free(struct aud_http *h);

const char *aud_http_outcome_name(enum aud_http_outcome o);

/* ---- one transfer's setup and outcome, shared with multi.c ------------
 * aud_http_perform is prepare, curl_easy_perform, finish; the multi path
 * runs the same two halves around curl_multi_*, so both classify failures
 * and decide "sent" identically. */

/* What one transfer's callbacks collect. */
struct aud_http_xfer {
    char errbuf[CURL_ERROR_SIZE];
    struct aud_buf body;
    struct aud_headers headers;
    size_t max_body;
    size_t header_bytes;
    int body_too_large;
    int headers_too_large;
    int out_of_memory;
};

void aud_http_xfer_init(struct aud_http_xfer *x);
/* Drops the last response but keeps modest buffers for the next one. */
void aud_http_xfer_clear(struct aud_http_xfer *x);
void aud_http_xfer_free(struct aud_http_xfer *x);

/* Deep copy of the config's strings into dst; 0, or -1 (memory) leaving
 * dst empty. Release with aud_http_config_release. */
int aud_http_config_copy(struct aud_http_config *dst,
                         const struct aud_http_config *src);
void aud_http_config_release(struct aud_http_config *c);

/* Resets curl and sets every option for req, with x collecting the
 * response. *headers receives the list the handle now points at: it must
 * outlive the transfer and goes back through aud_http_finish. Returns 0,
 * or -1 with res filled as a not-sent network failure (*headers NULL). */
int aud_http_prepare(CURL *curl, const struct aud_http_config *cfg,
                     struct aud_http_xfer *x, const struct aud_http_request *req,
                     struct curl_slist **headers, struct aud_http_response *res);
/* Classifies a finished transfer: rc is curl_easy_perform's result or a
 * CURLMSG_DONE message's. Unhooks and frees headers. Fills res (body and
 * headers point into x) and returns res->outcome. */
enum aud_http_outcome aud_http_finish(CURL *curl, struct aud_http_xfer *x,
                                      CURLcode rc, struct curl_slist *headers,
                                      struct aud_http_response *res);

/* Injection guards for caller-supplied strings (1 = acceptable). A method
 * must be an RFC 9110 token; a URL and header lines must not contain NUL,
 * CR or LF, which would let one request smuggle another. */
int aud_http_valid_method(const char *s, size_t n);
int aud_http_valid_url(const char *s, size_t n);
int aud_http_valid_header(const char *s, size_t n);

#endif
