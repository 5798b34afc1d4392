#include "http.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* The *_TIME_T infos used below appeared in 7.61.0. */
#if LIBCURL_VERSION_NUM < 0x073d00
#error "libcurl 7.61.0 or newer is required"
#endif

/* A response buffer that grew past this is freed after each request
 * instead of being kept around for the next one. */
#define KEEP_BODY_BYTES (1024u * 1024u)

struct aud_http {
    CURL *curl;
    struct aud_http_config cfg; /* owns its strings */
    struct aud_http_xfer x;
    /* Every handle-wide option is set, and the last request's options
     * were all set too: the next one only changes what a request owns. */
    int configured;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode aud_http_global_init(void)
{
    if (pthread_once(&global_once, global_init) != 0)
        return CURLE_FAILED_INIT;
    return global_rc;
}

const char *aud_http_curl_version(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return (v != NULL && v->version != NULL) ? v->version : LIBCURL_VERSION;
}

const char *aud_http_outcome_name(enum aud_http_outcome o)
{
    switch (o) {
    case AUD_HTTP_OK:
        return "ok";
    case AUD_HTTP_TIMEOUT:
        return "timeout";
    case AUD_HTTP_TOO_LARGE:
        return "too_large";
    case AUD_HTTP_TLS:
        return "tls";
    case AUD_HTTP_NETWORK:
    default:
        return "network";
    }
}

static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

int aud_http_valid_method(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

static int no_line_breaks(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
            return 0;
    return 1;
}

int aud_http_valid_url(const char *s, size_t n)
{
    return n > 0 && no_line_breaks(s, n);
}

int aud_http_valid_header(const char *s, size_t n)
{
    return no_line_breaks(s, n);
}

static char *dup_or_null(const char *s, int *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

int aud_http_config_copy(struct aud_http_config *dst,
                         const struct aud_http_config *src)
{
    int failed = 0;
    *dst = *src;
    dst->ca_file = dup_or_null(src->ca_file, &failed);
    dst->proxy = dup_or_null(src->proxy, &failed);
    dst->user_agent = dup_or_null(src->user_agent, &failed);
    if (failed) {
        aud_http_config_release(dst);
        return -1;
    }
    return 0;
}

/* The casts are sound: only aud_http_config_copy's heap copies get here. */
void aud_http_config_release(struct aud_http_config *c)
{
    free((void *)c->ca_file);
    free((void *)c->proxy);
    free((void *)c->user_agent);
    c->ca_file = NULL;
    c->proxy = NULL;
    c->user_agent = NULL;
}

void aud_http_xfer_init(struct aud_http_xfer *x)
{
    memset(x, 0, sizeof *x);
    aud_buf_init(&x->body);
    aud_headers_init(&x->headers);
}

void aud_http_xfer_clear(struct aud_http_xfer *x)
{
    aud_buf_clear(&x->body, KEEP_BODY_BYTES);
    aud_headers_clear(&x->headers);
}

void aud_http_xfer_free(struct aud_http_xfer *x)
{
    aud_buf_free(&x->body);
    aud_headers_free(&x->headers);
}

struct aud_http *aud_http_new(const struct aud_http_config *cfg, char *err,
                              size_t errlen)
{
    struct aud_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    aud_http_xfer_init(&h->x);
    if (aud_http_config_copy(&h->cfg, cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        free(h);
        return NULL;
    }
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        aud_http_config_release(&h->cfg);
        free(h);
        return NULL;
    }
    return h;
}

void aud_http_clear(struct aud_http *h)
{
    aud_http_xfer_clear(&h->x);
}

void aud_http_free(struct aud_http *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->curl);
    aud_http_xfer_free(&h->x);
    aud_http_config_release(&h->cfg);
    free(h);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct aud_http_xfer *h = ud;
    size_t n = size * nmemb; /* libcurl documents size as always 1 */
    if (n > h->max_body - h->body.len) {
        h->body_too_large = 1;
        return 0; /* anything but n makes libcurl abort the transfer */
    }
    if (aud_buf_append(&h->body, data, n) != 0) {
        h->out_of_memory = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct aud_http_xfer *h = ud;
    size_t n = size * nmemb;
    if (n > AUD_HTTP_MAX_HEADER_BYTES - h->header_bytes) {
        h->headers_too_large = 1;
        return 0;
    }
    h->header_bytes += n;
    if (aud_headers_feed_line(&h->headers, data, n) != 0) {
        h->out_of_memory = 1;
        return 0;
    }
    return n;
}

/* libcurl treats 0 as "no timeout", so round up to at least 1 ms; the
 * upper clamp (~24 days) keeps the conversion to long defined. */
static long to_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    if (!(ms >= 1))
        return 1;
    return ms > 2147483647.0 ? 2147483647L : (long)ms;
}

static int method_is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

#define SETOPT(opt, val)                                                     \
    do {                                                                     \
        CURLcode rc_ = curl_easy_setopt(curl, opt, val);                  \
        if (rc_ != CURLE_OK) {                                               \
            snprintf(res->message, sizeof res->message,                      \
                     "curl_easy_setopt(" #opt ") failed: %s",                \
                     curl_easy_strerror(rc_));                               \
            return -1;                                                       \
        }                                                                    \
    } while (0)

/* What is the same for every request of a handle (all of it wiped by
 * curl_easy_reset). */
static int handle_options(CURL *curl, const struct aud_http_config *c,
                          struct aud_http_xfer *h, struct aud_http_response *res)
{
    SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM-based DNS timeouts */
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)h);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)h);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    SETOPT(CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
    if (c->ca_file != NULL)
        SETOPT(CURLOPT_CAINFO, c->ca_file);
    if (c->proxy != NULL)
        SETOPT(CURLOPT_PROXY, c->proxy);
    SETOPT(CURLOPT_USERAGENT, c->user_agent);
    /* Redirects would replay credentials to another host; callers decide. */
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#if LIBCURL_VERSION_NUM >= 0x073600
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
#endif
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, to_ms(c->connect_timeout));
    return 0;
}

/* What one request owns. `after_reset`: the handle comes straight from
 * curl_easy_reset; otherwise the previous request's method and body are
 * put back to what a reset leaves first, so nothing of them carries over
 * (a HEAD's NOBODY, a POST's body under a later DELETE). */
static int request_options(CURL *curl, const struct aud_http_config *c,
                           const struct aud_http_request *req,
                           struct curl_slist *headers, int after_reset,
                           struct aud_http_response *res)
{
    double timeout = req->timeout > 0 ? req->timeout : c->timeout;
    SETOPT(CURLOPT_TIMEOUT_MS, to_ms(timeout));
    SETOPT(CURLOPT_URL, req->url);
    if (!after_reset) {
        SETOPT(CURLOPT_CUSTOMREQUEST, (char *)NULL);
        SETOPT(CURLOPT_POSTFIELDS, (char *)NULL);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        /* Last: it also clears NOBODY and puts the method back to GET. */
        SETOPT(CURLOPT_HTTPGET, 1L);
    }
    if (method_is(req->method, "HEAD")) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (method_is(req->method, "GET") && req->body_len == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body != NULL) {
            /* The size first, so libcurl never strlen()s binary data. */
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            SETOPT(CURLOPT_POSTFIELDS, req->body);
        } else if (method_is(req->method, "POST") ||
                   method_is(req->method, "PUT") ||
                   method_is(req->method, "PATCH")) {
            /* Servers may answer 411 to a bodyless POST without
             * Content-Length; an empty body sends "Content-Length: 0". */
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            SETOPT(CURLOPT_POSTFIELDS, "");
        }
    }
    SETOPT(CURLOPT_HTTPHEADER, headers);
    return 0;
}

static int names_header(const char *line, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)line[i], b = (unsigned char)name[i];
        if (a == '\0')
            return 0;
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return line[n] == ':';
}

static int has_header(const struct aud_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (names_header(req->headers[i], name))
            return 1;
    return 0;
}

static struct curl_slist *build_headers(const struct aud_http_request *req)
{
    struct curl_slist *list = NULL;
    /* An empty "Expect:" stops libcurl's 100-continue round trip, which
     * costs a second against servers that ignore it. A bodyless POST would
     * otherwise go out labelled application/x-www-form-urlencoded by
     * libcurl: no body, no Content-Type ("Name:" removes libcurl's own). */
    const char *extra[2] = {"Expect:", NULL};
    if (req->body == NULL && !has_header(req, "content-type"))
        extra[1] = "Content-Type:";
    for (size_t i = 0; i < req->nheaders + 2; i++) {
        const char *line = i < req->nheaders ? req->headers[i] : extra[i - req->nheaders];
        if (line == NULL)
            continue;
        struct curl_slist *next = curl_slist_append(list, line);
        if (next == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

static int is_too_large(CURLcode rc)
{
#if LIBCURL_VERSION_NUM >= 0x080600
    return rc == CURLE_TOO_LARGE;
#else
    (void)rc;
    return 0;
#endif
}

static int is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074d00
    case CURLE_SSL_CLIENTCERT:
#endif
        return 1;
    default:
        return 0;
    }
}

/* Conservative: when in doubt the request counts as sent, because a
 * caller seeing "not sent" may replay a non-idempotent POST. */
static int was_sent(CURL *curl, CURLcode rc)
{
    if (rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_COULDNT_CONNECT)
        return 0;
    curl_off_t pretransfer = 0;
    if (curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) !=
            CURLE_OK ||
        pretransfer > 0)
        return 1;
    /* A reused connection can reach the transfer phase in under the
     * microsecond resolution; bytes written settle it. */
    long request_size = 0;
    if (curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_size) !=
        CURLE_OK)
        return 1;
    return request_size > 0;
}

static enum aud_http_outcome fail(struct aud_http_response *res,
                                  enum aud_http_outcome o, int sent)
{
    res->outcome = o;
    res->sent = sent;
    return o;
}

/* `keep`: the handle holds every handle-wide option already (set by an
 * earlier prepare on it that fully succeeded), so the reset and those
 * options are skipped. */
static int prepare(CURL *curl, const struct aud_http_config *cfg,
                   struct aud_http_xfer *x, const struct aud_http_request *req,
                   struct curl_slist **headers, struct aud_http_response *res,
                   int keep)
{
    memset(res, 0, sizeof *res);
    res->headers = &x->headers;
    *headers = NULL;
    aud_http_xfer_clear(x);
    x->max_body = cfg->max_body;
    x->header_bytes = 0;
    x->body_too_large = 0;
    x->headers_too_large = 0;
    x->out_of_memory = 0;
    x->errbuf[0] = '\0';

    /* Resetting (rather than making a new handle) keeps live connections
     * and the DNS and TLS session caches, while no option of the previous
     * request (method, body, headers) can leak into this one. */
    if (!keep)
        curl_easy_reset(curl);

    struct curl_slist *list = build_headers(req);
    if (list == NULL) {
        snprintf(res->message, sizeof res->message, "out of memory");
        fail(res, AUD_HTTP_NETWORK, 0);
        return -1;
    }
    if ((!keep && handle_options(curl, cfg, x, res) != 0) ||
        request_options(curl, cfg, req, list, !keep, res) != 0) {
        curl_slist_free_all(list);
        fail(res, AUD_HTTP_NETWORK, 0);
        return -1;
    }
    *headers = list;
    return 0;
}

int aud_http_prepare(CURL *curl, const struct aud_http_config *cfg,
                     struct aud_http_xfer *x, const struct aud_http_request *req,
                     struct curl_slist **headers, struct aud_http_response *res)
{
    return prepare(curl, cfg, x, req, headers, res, 0);
}

enum aud_http_outcome aud_http_finish(CURL *curl, struct aud_http_xfer *h,
                                      CURLcode rc, struct curl_slist *headers,
                                      struct aud_http_response *res)
{
    /* The list must outlive the transfer but not the call; unhooking it
     * first means the handle never holds a dangling pointer. */
    CURLcode unhook =
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK && unhook != CURLE_OK)
        rc = unhook;

    curl_off_t total = 0;
    if (curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK)
        res->elapsed = (double)total / 1e6;

    if (rc == CURLE_OK) {
        long status = 0;
        rc = curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK) {
            res->outcome = AUD_HTTP_OK;
            res->status = status;
            res->body = h->body.data ? h->body.data : "";
            res->body_len = h->body.len;
            res->sent = 1;
            return AUD_HTTP_OK;
        }
    }

    int sent = was_sent(curl, rc);
    aud_http_xfer_clear(h); /* a partial body or header set is never returned */
    if (h->body_too_large) {
        snprintf(res->message, sizeof res->message,
                 "response body exceeds max_body (%zu bytes)", h->max_body);
        return fail(res, AUD_HTTP_TOO_LARGE, sent);
    }
    if (h->headers_too_large) {
        snprintf(res->message, sizeof res->message,
                 "response headers exceed %u bytes", AUD_HTTP_MAX_HEADER_BYTES);
        return fail(res, AUD_HTTP_TOO_LARGE, sent);
    }
    if (h->out_of_memory) {
        snprintf(res->message, sizeof res->message,
                 "out of memory while reading the response");
        return fail(res, AUD_HTTP_NETWORK, sent);
    }
    /* libcurl refuses a single header line over its own cap (100 KB) before
     * on_header sees it, and says so as "out of memory" (8.6+: TOO_LARGE):
     * the answer is too large, and asking again gets the same answer. */
    if (rc == CURLE_OUT_OF_MEMORY || is_too_large(rc)) {
        snprintf(res->message, sizeof res->message,
                 "a response header is larger than libcurl accepts (libcurl: %s)",
                 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
        return fail(res, AUD_HTTP_TOO_LARGE, sent);
    }
    snprintf(res->message, sizeof res->message, "%s",
             h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return fail(res, AUD_HTTP_TIMEOUT, sent);
    if (is_tls_error(rc))
        return fail(res, AUD_HTTP_TLS, sent);
    return fail(res, AUD_HTTP_NETWORK, sent);
}

enum aud_http_outcome aud_http_perform(struct aud_http *h,
                                       const struct aud_http_request *req,
                                       struct aud_http_response *res)
{
    struct curl_slist *headers;
    int keep = h->configured;
    /* Until this prepare succeeds the handle's options are in doubt. */
    h->configured = 0;
    if (prepare(h->curl, &h->cfg, &h->x, req, &headers, res, keep) != 0)
        return res->outcome;
    h->configured = 1;
    CURLcode rc = curl_easy_perform(h->curl);
    return aud_http_finish(h->curl, &h->x, rc, headers, res);
}
