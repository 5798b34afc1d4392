#include "multi.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* curl_multi_poll appeared in 7.66.0. */
#if LIBCURL_VERSION_NUM < 0x074200
#error "libcurl 7.66.0 or newer is required"
#endif

/* Idle easy handles kept for reuse. A handle is cheap next to a round
 * trip, so the pool only needs to cover the usual number in flight. */
#define MAX_IDLE 64

struct xfer {
    struct xfer *prev, *next; /* in exactly one of the multi's lists */
    CURL *curl;
    long long id;
    struct curl_slist *headers; /* hooked into curl while in flight */
    char *body;                 /* the request body's copy, in flight only */
    int broken; /* the handle's state is unknown: never reuse it */
    struct aud_http_xfer x;
    struct aud_http_response res; /* once finished */
};

struct list {
    struct xfer *head, *tail;
    size_t count;
};

struct aud_multi {
    CURLM *multi;
    CURLSH *share;
    struct aud_http_config cfg; /* owns its strings */
    int http2;                  /* this libcurl can speak HTTP/2 */
    size_t max_idle;
    struct list active; /* added to the multi handle */
    struct list done;   /* finished, not yet taken */
    struct list idle;   /* pooled, handle reset on reuse */
};

static void list_push(struct list *l, struct xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
    l->count++;
}

static void list_unlink(struct list *l, struct xfer *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->prev = x->next = NULL;
    l->count--;
}

static struct xfer *list_find(const struct list *l, long long id)
{
    for (struct xfer *x = l->head; x != NULL; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

/* Detaches what only a transfer in flight holds. curl_easy_reset drops
 * the handle's pointer to the header list before the list goes. */
static void release_request(struct xfer *x)
{
    if (x->headers != NULL) {
        if (x->curl != NULL)
            curl_easy_reset(x->curl);
        curl_slist_free_all(x->headers);
        x->headers = NULL;
    }
    free(x->body);
    x->body = NULL;
}

static void destroy(struct xfer *x)
{
    release_request(x);
    if (x->curl != NULL)
        curl_easy_cleanup(x->curl); /* connections stay with the multi */
    aud_http_xfer_free(&x->x);
    free(x);
}

/* x is in no list and not in the multi handle. */
static void recycle(struct aud_multi *m, struct xfer *x)
{
    release_request(x);
    if (x->broken || x->curl == NULL || m->idle.count >= m->max_idle) {
        destroy(x);
        return;
    }
    aud_http_xfer_clear(&x->x);
    list_push(&m->idle, x);
}

static struct xfer *obtain(struct aud_multi *m)
{
    struct xfer *x = m->idle.head;
    if (x != NULL) {
        list_unlink(&m->idle, x);
        return x;
    }
    x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    aud_http_xfer_init(&x->x);
    x->curl = curl_easy_init();
    if (x->curl == NULL) {
        free(x);
        return NULL;
    }
    return x;
}

void aud_multi_free(struct aud_multi *m)
{
    if (m == NULL)
        return;
    /* Easy handles leave the multi before it is cleaned up, and all of
     * them are gone before the share handle, which refuses while used. */
    while (m->active.head != NULL) {
        struct xfer *x = m->active.head;
        list_unlink(&m->active, x);
        /* Should this fail, curl_easy_cleanup in destroy detaches the
         * handle itself; there is no caller left to tell. */
        (void)curl_multi_remove_handle(m->multi, x->curl);
        destroy(x);
    }
    while (m->done.head != NULL) {
        struct xfer *x = m->done.head;
        list_unlink(&m->done, x);
        destroy(x);
    }
    while (m->idle.head != NULL) {
        struct xfer *x = m->idle.head;
        list_unlink(&m->idle, x);
        destroy(x);
    }
    /* Both fail only on misuse the order above rules out (a handle still
     * attached), and nobody is left to report to: results deliberately
     * dropped. */
    if (m->multi != NULL)
        (void)curl_multi_cleanup(m->multi);
    if (m->share != NULL)
        (void)curl_share_cleanup(m->share);
    aud_http_config_release(&m->cfg);
    free(m);
}

#define MULTI_SETOPT(opt, val)                                               \
    do {                                                                     \
        CURLMcode mc_ = curl_multi_setopt(m->multi, opt, val);               \
        if (mc_ != CURLM_OK) {                                               \
            snprintf(err, errlen, "curl_multi_setopt(" #opt ") failed: %s",  \
                     curl_multi_strerror(mc_));                              \
            goto fail;                                                       \
        }                                                                    \
    } while (0)

#define SHARE_SETOPT(opt, val)                                               \
    do {                                                                     \
        CURLSHcode sc_ = curl_share_setopt(m->share, opt, val);              \
        if (sc_ != CURLSHE_OK) {                                             \
            snprintf(err, errlen, "curl_share_setopt(" #opt ") failed: %s",  \
                     curl_share_strerror(sc_));                              \
            goto fail;                                                       \
        }                                                                    \
    } while (0)

struct aud_multi *aud_multi_new(const struct aud_http_config *cfg,
                                long max_connections, char *err,
                                size_t errlen)
{
    if (max_connections < 1 || max_connections > AUD_MULTI_MAX_CONNECTIONS) {
        snprintf(err, errlen, "max_connections must be 1..%ld",
                 AUD_MULTI_MAX_CONNECTIONS);
        return NULL;
    }
    struct aud_multi *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (aud_http_config_copy(&m->cfg, cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        free(m);
        return NULL;
    }
    m->max_idle = max_connections < MAX_IDLE ? (size_t)max_connections : MAX_IDLE;
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    m->http2 = v != NULL && (v->features & CURL_VERSION_HTTP2) != 0;

    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    /* A server that offers HTTP/2 gets every request on one connection
     * instead of max_connections handshakes. */
    MULTI_SETOPT(CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    MULTI_SETOPT(CURLMOPT_MAX_HOST_CONNECTIONS, max_connections);
    MULTI_SETOPT(CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections);
    /* The default cache size follows the number of transfers in flight,
     * so a dwindling batch would close connections the next one wants. */
    MULTI_SETOPT(CURLMOPT_MAXCONNECTS, max_connections);

    /* The multi handle shares connections but (before libcurl 8) not TLS
     * sessions: without this every new easy handle does a full handshake.
     * No lock callbacks: the multi is used from one thread. */
    m->share = curl_share_init();
    if (m->share == NULL) {
        snprintf(err, errlen, "curl_share_init failed");
        goto fail;
    }
    SHARE_SETOPT(CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    SHARE_SETOPT(CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return m;

fail:
    aud_multi_free(m);
    return NULL;
}

static int starts_with_https(const char *url)
{
    static const char scheme[] = "https://";
    for (size_t i = 0; i < sizeof scheme - 1; i++) {
        char c = url[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return 0;
    }
    return 1;
}

#define EASY_SETOPT(opt, val)                                                \
    do {                                                                     \
        CURLcode rc_ = curl_easy_setopt(x->curl, opt, val);                  \
        if (rc_ != CURLE_OK) {                                               \
            snprintf(x->res.message, sizeof x->res.message,                  \
                     "curl_easy_setopt(" #opt ") failed: %s",                \
                     curl_easy_strerror(rc_));                               \
            return -1;                                                       \
        }                                                                    \
    } while (0)

/* What the multi path adds to aud_http_prepare's options. */
static int multi_options(struct aud_multi *m, struct xfer *x, const char *url)
{
    EASY_SETOPT(CURLOPT_PRIVATE, (void *)x);
    EASY_SETOPT(CURLOPT_SHARE, m->share);
    if (m->http2) {
        /* h2 through ALPN on https; plain http stays HTTP/1.1 (no h2c
         * upgrade round trip). */
        EASY_SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        /* Waiting for the first connection to tell whether it multiplexes
         * beats opening max_connections at once -- but only where h2 is
         * possible: on plain http it would hold every transfer back until
         * the first response arrives. */
        if (starts_with_https(url))
            EASY_SETOPT(CURLOPT_PIPEWAIT, 1L);
    }
    return 0;
}

/* A transfer that could not start: it is reported like any finished
 * one, as aud_http_perform reports a setup failure. */
static void fail_start(struct aud_multi *m, struct xfer *x)
{
    x->broken = 1; /* half-configured; never reused */
    release_request(x);
    x->res.outcome = AUD_HTTP_NETWORK;
    x->res.sent = 0;
    x->res.headers = &x->x.headers;
    list_push(&m->done, x);
}

enum aud_multi_add_result aud_multi_add(struct aud_multi *m, long long id,
                                        const struct aud_http_request *req,
                                        char *err, size_t errlen)
{
    if (list_find(&m->active, id) != NULL || list_find(&m->done, id) != NULL)
        return AUD_MULTI_DUPLICATE;
    struct xfer *x = obtain(m);
    if (x == NULL) {
        snprintf(err, errlen, "out of memory");
        return AUD_MULTI_ERROR;
    }
    x->id = id;
    x->broken = 0;

    /* The handle reads the body while in flight, long after the caller's
     * string may be gone. */
    struct aud_http_request r = *req;
    if (req->body != NULL) {
        x->body = malloc(req->body_len > 0 ? req->body_len : 1);
        if (x->body == NULL) {
            recycle(m, x);
            snprintf(err, errlen, "out of memory");
            return AUD_MULTI_ERROR;
        }
        if (req->body_len > 0)
            memcpy(x->body, req->body, req->body_len);
        r.body = x->body;
    }

    if (aud_http_prepare(x->curl, &m->cfg, &x->x, &r, &x->headers, &x->res) != 0) {
        fail_start(m, x);
        return AUD_MULTI_ADDED;
    }
    if (multi_options(m, x, r.url) != 0) {
        fail_start(m, x);
        return AUD_MULTI_ADDED;
    }
    CURLMcode mc = curl_multi_add_handle(m->multi, x->curl);
    if (mc != CURLM_OK) {
        snprintf(x->res.message, sizeof x->res.message,
                 "curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
        fail_start(m, x);
        return AUD_MULTI_ADDED;
    }
    list_push(&m->active, x);
    return AUD_MULTI_ADDED;
}

static struct xfer *owner_of(struct aud_multi *m, CURL *easy)
{
    char *p = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) == CURLE_OK && p != NULL)
        return (struct xfer *)(void *)p;
    for (struct xfer *x = m->active.head; x != NULL; x = x->next)
        if (x->curl == easy)
            return x;
    return NULL;
}

/* Moves every transfer libcurl reports finished to the done list. */
static void collect(struct aud_multi *m)
{
    CURLMsg *msg;
    int queued;
    while ((msg = curl_multi_info_read(m->multi, &queued)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg dies with curl_multi_remove_handle: copy it first. */
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct xfer *x = owner_of(m, easy);
        if (x == NULL)
            continue; /* not ours: cannot happen, and nothing to report */
        list_unlink(&m->active, x);
        if (curl_multi_remove_handle(m->multi, easy) != CURLM_OK)
            x->broken = 1; /* destroy's curl_easy_cleanup detaches it */
        aud_http_finish(easy, &x->x, rc, x->headers, &x->res);
        x->headers = NULL; /* freed by aud_http_finish */
        free(x->body);
        x->body = NULL;
        list_push(&m->done, x);
    }
}

/* Whole milliseconds, rounded up so a short wait never becomes a busy
 * loop of zero-length polls. */
static int wait_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    if (!(ms >= 0))
        return 0;
    return ms > (double)INT_MAX ? INT_MAX : (int)ms;
}

int aud_multi_poll(struct aud_multi *m, double timeout, char *err,
                   size_t errlen)
{
    double now;
    if (aud_clock_monotonic(&now) != 0) {
        snprintf(err, errlen, "clock_gettime failed");
        return -1;
    }
    double deadline = now + timeout;
    for (;;) {
        if (m->active.count > 0) {
            int running;
            CURLMcode mc = curl_multi_perform(m->multi, &running);
            if (mc != CURLM_OK) {
                snprintf(err, errlen, "curl_multi_perform failed: %s",
                         curl_multi_strerror(mc));
                return -1;
            }
            collect(m);
        }
        /* Nothing in flight means nothing can finish by waiting. */
        if (m->done.count > 0 || m->active.count == 0 || !(deadline > now))
            return 0;
        /* curl_multi_poll also wakes for libcurl's own timers, so
         * transfer timeouts fire even when no socket stirs. */
        CURLMcode mc = curl_multi_poll(m->multi, NULL, 0,
                                       wait_ms(deadline - now), NULL);
        if (mc != CURLM_OK) {
            snprintf(err, errlen, "curl_multi_poll failed: %s",
                     curl_multi_strerror(mc));
            return -1;
        }
        /* Past the deadline, the perform at the top still picks up
         * whatever the wait woke for before the check returns. */
        if (aud_clock_monotonic(&now) != 0) {
            snprintf(err, errlen, "clock_gettime failed");
            return -1;
        }
    }
}

const struct aud_http_response *aud_multi_peek(struct aud_multi *m,
                                               long long *id)
{
    struct xfer *x = m->done.head;
    if (x == NULL)
        return NULL;
    *id = x->id;
    return &x->res;
}

void aud_multi_pop(struct aud_multi *m)
{
    struct xfer *x = m->done.head;
    if (x == NULL)
        return;
    list_unlink(&m->done, x);
    recycle(m, x);
}

size_t aud_multi_pending(const struct aud_multi *m)
{
    return m->active.count + m->done.count;
}

int aud_multi_cancel(struct aud_multi *m, long long id, char *err,
                     size_t errlen)
{
    struct xfer *x = list_find(&m->done, id);
    if (x != NULL) {
        list_unlink(&m->done, x);
        recycle(m, x);
        return 1;
    }
    x = list_find(&m->active, id);
    if (x == NULL)
        return 0;
    list_unlink(&m->active, x);
    CURLMcode mc = curl_multi_remove_handle(m->multi, x->curl);
    if (mc != CURLM_OK) {
        x->broken = 1;
        destroy(x);
        snprintf(err, errlen, "curl_multi_remove_handle failed: %s",
                 curl_multi_strerror(mc));
        return -1;
    }
    recycle(m, x);
    return 1;
}
