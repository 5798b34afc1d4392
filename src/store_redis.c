/* Redis-backed quota state (see store_redis.h) over a blocking socket with
 * one deadline per operation (redis_conn.c). Each run is the compare-and-
 * swap of redis_cas.c, which inside nginx runs the same way over a cosocket
 * (lua_redis.c); this file owns the URL, the options and the connection. */
#include "store_redis.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "encoding.h"
#include "redis_cas.h"
#include "redis_conn.h"
#include "store.h"

struct aud_redis_store {
    redisContext *c; /* NULL until connected and after any failure */
    pid_t pid;       /* the process that opened c */
    struct aud_redis_target t;
    char *key; /* AUD_REDIS_KEY_PREFIX .. account */
    size_t key_len;
    double connect_timeout, timeout;
    char sha[2 * AUD_SHA1_LEN + 1];
    struct aud_redis_cas_conf conf;
    char pool[320]; /* see aud_redis_store_pool */
};

void aud_redis_options_default(struct aud_redis_options *o)
{
    o->connect_timeout = 1.0;
    o->timeout = 1.0;
    o->ttl = 86400;
}

/* ---- URL ---------------------------------------------------------- */

/* Percent-decodes s[0..n) into a new NUL-terminated string; NULL on a bad
 * escape or no memory (*oom tells which). */
static char *pct_decode(const char *s, size_t n, size_t *out_len, int *oom)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    *oom = out == NULL;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? aud_hex_value((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? aud_hex_value((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static char *dup_range(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* Messages say what is wrong without quoting the URL, which may hold a
 * password. */
static int parse_url(struct aud_redis_target *r, const char *url, size_t len,
                     char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    static const char tls_scheme[] = "rediss://";
    const size_t slen = sizeof scheme - 1;
    if (memchr(url, '\0', len) != NULL) {
        snprintf(err, errlen, "url contains a NUL byte");
        return -1;
    }
    if (len >= slen + 1 && strncmp(url, tls_scheme, slen + 1) == 0) {
        /* Debian's hiredis 0.14 has no TLS. */
        snprintf(err, errlen, "url: TLS to Redis is not supported by this build "
                              "(rediss://); use redis:// on a trusted network");
        return -1;
    }
    if (len < slen || strncmp(url, scheme, slen) != 0) {
        snprintf(err, errlen, "url must start with redis://");
        return -1;
    }
    const char *p = url + slen, *end = url + len;
    const char *auth_end = p;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    if (auth_end < end && *auth_end != '/') {
        snprintf(err, errlen, "url: query strings and fragments are not supported");
        return -1;
    }
    /* The last '@': an unescaped '@' in a password still parses. */
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            snprintf(err, errlen, "url: credentials need a password "
                                  "(redis://:PASSWORD@HOST or redis://USER:PASSWORD@HOST)");
            return -1;
        }
        int oom;
        if (colon > p) {
            r->user = pct_decode(p, (size_t)(colon - p), &r->user_len, &oom);
            if (r->user == NULL) {
                snprintf(err, errlen, oom ? "out of memory" : "url: bad %%-escape in the user name");
                return -1;
            }
        }
        r->password = pct_decode(colon + 1, (size_t)(at - colon - 1), &r->password_len, &oom);
        if (r->password == NULL) {
            snprintf(err, errlen, oom ? "out of memory" : "url: bad %%-escape in the password");
            return -1;
        }
        p = at + 1;
    }
    const char *host = p, *host_end;
    if (p < auth_end && *p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (host_end == NULL) {
            snprintf(err, errlen, "url: unterminated [IPv6] host");
            return -1;
        }
        p = host_end + 1;
    } else {
        host_end = p;
        while (host_end < auth_end && *host_end != ':')
            host_end++;
        p = host_end;
    }
    if (host_end == host) {
        snprintf(err, errlen, "url: missing host");
        return -1;
    }
    r->port = 6379;
    if (p < auth_end) {
        if (*p != ':' || p + 1 == auth_end) {
            snprintf(err, errlen, "url: bad port");
            return -1;
        }
        long port = 0;
        for (p++; p < auth_end; p++) {
            if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535) {
                snprintf(err, errlen, "url: bad port");
                return -1;
            }
        }
        if (port < 1) {
            snprintf(err, errlen, "url: bad port");
            return -1;
        }
        r->port = (int)port;
    }
    r->db = 0;
    p = auth_end;
    if (p < end)
        p++; /* the '/' */
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p) || (r->db = r->db * 10 + (*p - '0')) > INT_MAX) {
            snprintf(err, errlen, "url: the path must be a database number");
            return -1;
        }
    }
    r->host = dup_range(host, (size_t)(host_end - host));
    if (r->host == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- one run ------------------------------------------------------ */

static void drop(struct aud_redis_store *r)
{
    if (r->c != NULL) {
        /* Only closes the socket (no QUIT), so this is also right in a
         * forked child holding a copy of the parent's connection. */
        redisFree(r->c);
        r->c = NULL;
    }
}

/* A failed command: the connection is in an unknown state. */
static int lost(struct aud_redis_store *r)
{
    drop(r);
    return -2;
}

/* 0 done, -1 failed (connection fine), -2 connection lost (dropped);
 * *stale as for aud_redis_command. */
static int cas_run(struct aud_redis_store *r, struct aud_rl_step *st,
                   struct aud_rl_state *out, double deadline, int *stale,
                   char *err, size_t errlen)
{
    struct aud_redis_cas m;
    aud_redis_cas_begin(&m, &r->conf, st, out);
    for (;;) {
        redisReply *rep = aud_redis_command(r->c, &r->t, m.argc, m.argv, m.lens,
                                            deadline, stale, err, errlen);
        if (rep == NULL) {
            aud_redis_cas_end(&m);
            return lost(r);
        }
        *stale = 0;
        int rc = aud_redis_cas_reply(&m, rep, err, errlen);
        freeReplyObject(rep);
        if (rc != AUD_CAS_SEND) {
            aud_redis_cas_end(&m);
            return rc == AUD_CAS_DONE ? 0 : -1;
        }
    }
}

int aud_redis_store_run(void *impl, struct aud_rl_step *st,
                        struct aud_rl_state *out, char *err, size_t errlen)
{
    struct aud_redis_store *r = impl;
    double start;
    if (aud_clock_monotonic(&start) != 0) {
        snprintf(err, errlen, "redis: clock_gettime failed");
        return -1;
    }
    struct aud_pipe_guard guard;
    if (aud_pipe_guard_begin(&guard, err, errlen) != 0)
        return -1;
    /* A forked child must not talk over its parent's socket: the replies
     * would interleave. */
    if (r->c != NULL && r->pid != getpid())
        drop(r);
    int reused = r->c != NULL;
    int rc = -1, stale = 0;
    double deadline = start + r->timeout;
    if (r->c == NULL) {
        r->c = aud_redis_connect(&r->t, start + fmin(r->connect_timeout, r->timeout),
                                 err, errlen);
        r->pid = getpid();
    }
    if (r->c != NULL)
        rc = cas_run(r, st, out, deadline, &stale, err, errlen);
    /* A connection that sat idle may have been closed by a server restart
     * or an idle timeout; that says nothing about the server now, so one
     * fresh attempt is made, within the same deadline. */
    if (rc == -2 && reused && stale) {
        r->c = aud_redis_connect(&r->t, deadline, err, errlen);
        r->pid = getpid();
        if (r->c != NULL)
            rc = cas_run(r, st, out, deadline, &stale, err, errlen);
    }
    aud_pipe_guard_end(&guard);
    return rc == 0 ? 0 : -1;
}

/* ---- public ------------------------------------------------------- */

/* Connections that share a name must be interchangeable: the same server,
 * database and credentials. The credentials enter only as a digest. */
static int pool_name(struct aud_redis_store *r, char *err, size_t errlen)
{
    static const char sep[1] = {0};
    struct aud_span parts[3] = {
        {r->t.user != NULL ? r->t.user : "", r->t.user != NULL ? r->t.user_len : 0},
        {sep, 1},
        {r->t.password != NULL ? r->t.password : "", r->t.password != NULL ? r->t.password_len : 0},
    };
    unsigned char digest[AUD_SHA1_LEN];
    if (aud_sha1(parts, 3, digest, err, errlen) != 0)
        return -1;
    char hex[17];
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    int n = snprintf(r->pool, sizeof r->pool, "audience-redis:%s:%d:%ld:%s",
                     r->t.host, r->t.port, r->t.db, r->t.password != NULL ? hex : "-");
    if (n < 0 || (size_t)n >= sizeof r->pool) {
        snprintf(err, errlen, "url: the host name is too long");
        return -1;
    }
    return 0;
}

const struct aud_redis_target *aud_redis_store_target(const struct aud_redis_store *r)
{
    return &r->t;
}

const struct aud_redis_cas_conf *aud_redis_store_conf(const struct aud_redis_store *r)
{
    return &r->conf;
}

const char *aud_redis_store_pool(const struct aud_redis_store *r)
{
    return r->pool;
}

double aud_redis_store_timeout(const struct aud_redis_store *r, double *connect_timeout)
{
    *connect_timeout = fmin(r->connect_timeout, r->timeout);
    return r->timeout;
}

struct aud_redis_store *aud_redis_store_new(const char *url, size_t url_len,
                                            const char *account,
                                            size_t account_len,
                                            const struct aud_redis_options *o,
                                            char *err, size_t errlen)
{
    struct aud_redis_store *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_url(&r->t, url, url_len, err, errlen) != 0)
        goto fail;
    size_t plen = sizeof AUD_REDIS_KEY_PREFIX - 1;
    r->key_len = plen + account_len;
    r->key = malloc(r->key_len + 1);
    if (r->key == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(r->key, AUD_REDIS_KEY_PREFIX, plen);
    if (account_len > 0)
        memcpy(r->key + plen, account, account_len);
    r->key[r->key_len] = '\0';
    r->connect_timeout = o->connect_timeout;
    r->timeout = o->timeout;
    r->t.timeout = o->timeout;
    r->conf.key = r->key;
    r->conf.key_len = r->key_len;
    r->conf.sha = r->sha;
    r->conf.ttl = o->ttl;

    unsigned char digest[AUD_SHA1_LEN];
    struct aud_span span = {aud_redis_cas_script, strlen(aud_redis_cas_script)};
    char cerr[200];
    if (aud_sha1(&span, 1, digest, cerr, sizeof cerr) != 0) {
        snprintf(err, errlen, "%s", cerr);
        goto fail;
    }
    for (int i = 0; i < AUD_SHA1_LEN; i++)
        snprintf(r->sha + 2 * i, 3, "%02x", digest[i]);
    if (pool_name(r, cerr, sizeof cerr) != 0) {
        snprintf(err, errlen, "%s", cerr);
        goto fail;
    }
    return r;
fail:
    aud_redis_store_free(r);
    return NULL;
}

static void wipe(char *s, size_t n)
{
    /* volatile: a plain memset before free may be optimised away. */
    volatile char *p = s;
    while (n-- > 0)
        *p++ = 0;
}

void aud_redis_store_free(struct aud_redis_store *r)
{
    if (r == NULL)
        return;
    drop(r);
    free(r->t.host);
    free(r->t.user);
    if (r->t.password != NULL) {
        wipe(r->t.password, r->t.password_len);
        free(r->t.password);
    }
    free(r->key);
    free(r);
}
