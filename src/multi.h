/* Many requests in flight at once on libcurl's multi interface, for
 * callers that fan out (bulk imports, paging several lists). Requests are
 * set up and classified by the same code as aud_http_perform, so a result
 * means the same thing on either path. One aud_multi belongs to one
 * thread at a time. No Lua in here. */
#ifndef AUD_MULTI_H
#define AUD_MULTI_H

#include <stddef.h>

#include "http.h"

/* Upper bound of max_connections; beyond it a client is a load test. */
#define AUD_MULTI_MAX_CONNECTIONS 1024L

struct aud_multi;

/* Copies the config's strings. max_connections (1..AUD_MULTI_MAX_CONNECTIONS)
 * caps connections per host and in total. NULL with err filled on failure. */
struct aud_multi *aud_multi_new(const struct aud_http_config *cfg,
                                long max_connections, char *err,
                                size_t errlen);
/* Frees every transfer, in flight or finished, and the handles. */
void aud_multi_free(struct aud_multi *m);

enum aud_multi_add_result {
    AUD_MULTI_ADDED,
    AUD_MULTI_DUPLICATE, /* id is pending already; nothing was started */
    AUD_MULTI_ERROR,     /* err filled; nothing was started */
};

/* Starts req (copied: the caller's strings may go right away). Its timeout
 * runs from here, time queued for a free connection included: a caller's
 * deadline holds however busy the multi is, and a transfer that timed out
 * while queued is reported as not sent. A request that cannot be set up
 * still counts as added: it finishes at the next poll as a not-sent
 * network failure, as aud_http_perform reports it. */
enum aud_multi_add_result aud_multi_add(struct aud_multi *m, long long id,
                                        const struct aud_http_request *req,
                                        char *err, size_t errlen);

/* Drives the transfers, waiting up to timeout seconds (0: not at all) for
 * one to finish; returns early once one has, and at once when none is
 * pending. Returns 0, or -1 with err filled. */
int aud_multi_poll(struct aud_multi *m, double timeout, char *err,
                   size_t errlen);

/* The oldest finished transfer not yet taken, or NULL. The response (body
 * and headers included) stays valid until aud_multi_pop. */
const struct aud_http_response *aud_multi_peek(struct aud_multi *m,
                                               long long *id);
/* Forgets the transfer aud_multi_peek returned. */
void aud_multi_pop(struct aud_multi *m);

/* Transfers added and neither taken by aud_multi_pop nor cancelled. */
size_t aud_multi_pending(const struct aud_multi *m);

/* Abandons a pending transfer. Returns 1 when id was pending, 0 when not,
 * -1 with err filled when libcurl refused (the transfer is gone anyway). */
int aud_multi_cancel(struct aud_multi *m, long long id, char *err,
                     size_t errlen);

#endif
