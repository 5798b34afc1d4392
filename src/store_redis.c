/* Redis-backed rate-limit state (see store_redis.h). */
#include "store_redis.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "crypto.h"

/* The script gets ratelimit.h's probe constants as text, so they have one home. */
#define AUD_STR_(x) #x
#define AUD_STR(x) AUD_STR_(x)

/* ratelimit.c's algorithm in Redis's Lua 5.1, so that the read-modify-
 * write is atomic on the server whatever the number of clients. It must
 * stay a line-by-line transcription of ratelimit.c: the specs compare the
 * two step by step. Unknown values (NaN in C) are absent hash fields;
 * numbers travel as "%.17g" strings, which round-trip doubles exactly.
 *
 * KEYS[1] is the account's hash. ARGV[1] the operation; ARGV[2] nine
 * comma-separated numbers, empty for nil: now, ttl, reset margin, token
 * slack (both from ratelimit.h, so the constants have one home), sticky
 * budget limit and per, and up to three operands. (Packed because Redis
 * cuts a client that sends more than 10 arguments before AUTH with a
 * protocol error, hiding the real problem: NOAUTH.)
 * For acquire the first operand is 1 when the caller probes (see
 * AUD_RL_PROBE_HOLD). Returns wait and the 10 state fields (false =
 * unknown; an unknown blind count is 0). */
const char aud_redis_script[] =
    "local key, op = KEYS[1], ARGV[1]\n"
    "local v, n = {}, 0\n"
    "for field in string.gmatch((ARGV[2] or '') .. ',', '([^,]*),') do\n"
    "  n = n + 1\n"
    "  v[n] = tonumber(field)\n"
    "end\n"
    "local now, ttl, MARGIN, SLACK = v[1], v[2], v[3], v[4]\n"
    "local sticky_limit, sticky_per, a, b, c = v[5], v[6], v[7], v[8], v[9]\n"
    "local F = {'budget_limit', 'budget_per', 'tokens', 'tokens_at',\n"
    "           'limit', 'remaining', 'reset_at', 'blocked_until', 'blind', 'blind_at'}\n"
    "local PROBE_POLL, PROBE_HOLD = " AUD_STR(AUD_RL_PROBE_POLL) ", " AUD_STR(AUD_RL_PROBE_HOLD) "\n"
    "if n ~= 9 or not (now and ttl and MARGIN and SLACK) then\n"
    "  return redis.error_reply('audience: bad script arguments')\n"
    "end\n"
    "-- Whatever else wrote the hash, only finite numbers and a whole\n"
    "-- budget are taken; anything else reads as unknown.\n"
    "local function num(v)\n"
    "  v = tonumber(v)\n"
    "  if v == nil or v ~= v or v == math.huge or v == -math.huge then return nil end\n"
    "  return v\n"
    "end\n"
    "local s = {}\n"
    "local raw = redis.call('HMGET', key, unpack(F))\n"
    "for i = 1, #F do s[F[i]] = num(raw[i]) end\n"
    "if not (s.budget_limit and s.budget_per and s.tokens and s.tokens_at\n"
    "        and s.budget_limit > 0 and s.budget_per > 0) then\n"
    "  s.budget_limit, s.budget_per, s.tokens, s.tokens_at = nil, nil, nil, nil\n"
    "end\n"
    "\n"
    "local function advance(t)\n"
    "  if s.budget_limit then\n"
    "    local elapsed = t - s.tokens_at\n"
    "    if elapsed > 0 then\n"
    "      local rate = s.budget_limit / s.budget_per\n"
    "      s.tokens = math.min(s.budget_limit, s.tokens + elapsed * rate)\n"
    "    end\n"
    "    s.tokens_at = t\n"
    "  end\n"
    "  if s.reset_at and t >= s.reset_at then\n"
    "    s.remaining = s.limit\n"
    "    s.reset_at = nil\n"
    "  end\n"
    "end\n"
    "\n"
    "local function configure(limit, per, t)\n"
    "  advance(t)\n"
    "  if s.budget_limit then\n"
    "    local old_rate = s.budget_limit / s.budget_per\n"
    "    local new_rate = limit / per\n"
    "    if new_rate < old_rate or (new_rate == old_rate and limit < s.budget_limit) then\n"
    "      s.budget_limit, s.budget_per = limit, per\n"
    "      s.tokens = math.min(s.tokens, limit)\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  s.budget_limit, s.budget_per, s.tokens, s.tokens_at = limit, per, limit, t\n"
    "end\n"
    "\n"
    "local function acquire(t, probe)\n"
    "  advance(t)\n"
    "  local wait = 0\n"
    "  if s.blocked_until and s.blocked_until > t then wait = s.blocked_until - t end\n"
    "  if s.budget_limit and s.tokens < 1 - SLACK then\n"
    "    local rate = s.budget_limit / s.budget_per\n"
    "    wait = math.max(wait, (1 - s.tokens) / rate)\n"
    "  end\n"
    "  if s.remaining and s.remaining < 1 and s.reset_at then\n"
    "    wait = math.max(wait, s.reset_at - t + MARGIN)\n"
    "  end\n"
    "  if probe and not s.remaining and (s.blind or 0) >= 1 and s.blind_at\n"
    "     and t >= s.blind_at and t - s.blind_at < PROBE_HOLD then\n"
    "    wait = math.max(wait, PROBE_POLL)\n"
    "  end\n"
    "  if wait > 0 then return wait end\n"
    "  if s.budget_limit then s.tokens = s.tokens - 1 end\n"
    "  if s.remaining then s.remaining = s.remaining - 1\n"
    "  else s.blind = (s.blind or 0) + 1; s.blind_at = t end\n"
    "  return 0\n"
    "end\n"
    "\n"
    "local function observe(limit, remaining, reset_at, t)\n"
    "  advance(t)\n"
    "  if not (limit or remaining or reset_at) then s.blind_at = nil; return end\n"
    "  if limit then s.limit = limit end\n"
    "  if reset_at and reset_at <= t then return end\n"
    "  if remaining then\n"
    "    if not s.remaining then\n"
    "      s.remaining = remaining - math.max(0, (s.blind or 0) - 1)\n"
    "      s.blind, s.blind_at = nil, nil\n"
    "    elseif reset_at and s.reset_at and math.abs(s.reset_at - reset_at) > 1.0 then\n"
    "      s.remaining = remaining\n"
    "    else\n"
    "      s.remaining = math.min(s.remaining, remaining)\n"
    "    end\n"
    "  end\n"
    "  if reset_at then s.reset_at = reset_at end\n"
    "end\n"
    "\n"
    "local wait = 0\n"
    "if sticky_limit and sticky_per and op ~= 'penalize' then\n"
    "  configure(sticky_limit, sticky_per, now)\n"
    "end\n"
    "if op == 'acquire' then\n"
    "  wait = acquire(now, a == 1)\n"
    "elseif op == 'observe' then\n"
    "  observe(a, b, c, now)\n"
    "elseif op == 'penalize' then\n"
    "  if a and (not s.blocked_until or a > s.blocked_until) then s.blocked_until = a end\n"
    "elseif op == 'configure' then\n"
    "  if not (a and b and a > 0 and b > 0) then\n"
    "    return redis.error_reply('audience: bad budget')\n"
    "  end\n"
    "  configure(a, b, now)\n"
    "elseif op == 'state' then\n"
    "  advance(now)\n"
    "else\n"
    "  return redis.error_reply('audience: unknown operation')\n"
    "end\n"
    "\n"
    "if op ~= 'state' then\n"
    "  local fields = {}\n"
    "  for i = 1, #F do\n"
    "    local v = s[F[i]]\n"
    "    if v then\n"
    "      fields[#fields + 1] = F[i]\n"
    "      fields[#fields + 1] = string.format('%.17g', v)\n"
    "    end\n"
    "  end\n"
    "  redis.call('DEL', key)\n"
    "  if #fields > 0 then\n"
    "    redis.call('HSET', key, unpack(fields))\n"
    "    -- Idle accounts expire, but never before a known reset or the\n"
    "    -- end of a penalty: forgetting those would mean a burst of 429s.\n"
    "    local life = ttl\n"
    "    if s.reset_at then life = math.max(life, s.reset_at - now) end\n"
    "    if s.blocked_until then life = math.max(life, s.blocked_until - now) end\n"
    "    life = math.min(math.ceil(life), 2147483647)\n"
    "    redis.call('EXPIRE', key, string.format('%d', life))\n"
    "  end\n"
    "end\n"
    "\n"
    "local out = {string.format('%.17g', wait)}\n"
    "for i = 1, #F do\n"
    "  local v = s[F[i]]\n"
    "  out[i + 1] = v and string.format('%.17g', v) or false\n"
    "end\n"
    "return out\n";

struct aud_redis_store {
    redisContext *c; /* NULL until connected and after any failure */
    pid_t pid;       /* the process that opened c */
    char *host;
    int port;
    long db;
    char *user; /* NULL when the URL has none */
    size_t user_len;
    char *password; /* NULL when the URL has none; never in a message */
    size_t password_len;
    char *key; /* AUD_REDIS_KEY_PREFIX .. account */
    size_t key_len;
    struct timeval connect_tv, tv;
    double timeout;
    long ttl;
    char sha[2 * AUD_SHA1_LEN + 1];
};

void aud_redis_options_default(struct aud_redis_options *o)
{
    o->connect_timeout = 1.0;
    o->timeout = 1.0;
    o->ttl = 86400;
}

/* ---- URL ---------------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

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
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
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
static int parse_url(struct aud_redis_store *r, const char *url, size_t len,
                     char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    const size_t slen = sizeof scheme - 1;
    if (memchr(url, '\0', len) != NULL) {
        snprintf(err, errlen, "url contains a NUL byte");
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

/* ---- SIGPIPE ------------------------------------------------------ */

/* hiredis writes with write(), so a server that went away turns the next
 * command into a SIGPIPE, which kills a plain Lua interpreter. Blocking it
 * in this thread (it is sent to the writing thread) and discarding one we
 * caused leaves the process's disposition alone, unlike SIG_IGN. */
struct pipe_guard {
    sigset_t old;
    int was_pending;
};

static int pipe_guard_begin(struct pipe_guard *g, char *err, size_t errlen)
{
    sigset_t set, pending;
    int rc;
    if (sigemptyset(&set) != 0 || sigaddset(&set, SIGPIPE) != 0) {
        snprintf(err, errlen, "redis: sigaddset: %s", strerror(errno));
        return -1;
    }
    if ((rc = pthread_sigmask(SIG_BLOCK, &set, &g->old)) != 0) {
        snprintf(err, errlen, "redis: pthread_sigmask: %s", strerror(rc));
        return -1;
    }
    if (sigpending(&pending) != 0) {
        int e = errno;
        (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL); /* restores what it just read */
        snprintf(err, errlen, "redis: sigpending: %s", strerror(e));
        return -1;
    }
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    return 0;
}

static void pipe_guard_end(struct pipe_guard *g)
{
    sigset_t set, pending;
    /* A SIGPIPE that was pending before us is someone else's: left for
     * delivery when the old mask comes back. */
    if (!g->was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1 && sigemptyset(&set) == 0 &&
        sigaddset(&set, SIGPIPE) == 0) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    /* Restoring a mask that pthread_sigmask itself returned cannot fail. */
    (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- connection --------------------------------------------------- */

static void drop(struct aud_redis_store *r)
{
    if (r->c != NULL) {
        /* Only closes the socket (no QUIT), so this is also right in a
         * forked child holding a copy of the parent's connection. */
        redisFree(r->c);
        r->c = NULL;
    }
}

/* A message for a failed command on c; e is errno right after it. */
static void conn_error(struct aud_redis_store *r, redisContext *c, int e,
                       const char *what, char *err, size_t errlen)
{
    if (c->err == REDIS_ERR_IO && (e == EAGAIN || e == EWOULDBLOCK))
        snprintf(err, errlen, "redis: %s %s:%d: timed out after %g s", what,
                 r->host, r->port, r->timeout);
    else
        snprintf(err, errlen, "redis: %s %s:%d: %s", what, r->host, r->port,
                 c->errstr[0] ? c->errstr : "connection failed");
}

/* Checks a setup command's reply (AUTH, SELECT); frees it. */
static int expect_ok(struct aud_redis_store *r, redisContext *c, redisReply *rep,
                     const char *what, char *err, size_t errlen)
{
    if (rep == NULL) {
        conn_error(r, c, errno, what, err, errlen);
        return -1;
    }
    int ok = rep->type == REDIS_REPLY_STATUS;
    if (!ok)
        snprintf(err, errlen, "redis: %s rejected: %.200s", what,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

static int do_connect(struct aud_redis_store *r, char *err, size_t errlen)
{
    redisContext *c = redisConnectWithTimeout(r->host, r->port, r->connect_tv);
    if (c == NULL) {
        snprintf(err, errlen, "redis: out of memory");
        return -1;
    }
    if (c->err) {
        snprintf(err, errlen, "redis: connect %s:%d: %s", r->host, r->port,
                 c->errstr);
        redisFree(c);
        return -1;
    }
    if (redisSetTimeout(c, r->tv) != REDIS_OK) {
        snprintf(err, errlen, "redis: setting the timeout: %s", c->errstr);
        redisFree(c);
        return -1;
    }
    if (r->password != NULL) {
        const char *argv[3] = {"AUTH", NULL, NULL};
        size_t lens[3] = {4, 0, 0};
        int argc = 1;
        if (r->user != NULL) {
            argv[argc] = r->user;
            lens[argc++] = r->user_len;
        }
        argv[argc] = r->password;
        lens[argc++] = r->password_len;
        if (expect_ok(r, c, redisCommandArgv(c, argc, argv, lens), "AUTH", err,
                      errlen) != 0) {
            redisFree(c);
            return -1;
        }
    }
    if (r->db != 0) {
        char db[24];
        int n = snprintf(db, sizeof db, "%ld", r->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        if (expect_ok(r, c, redisCommandArgv(c, 2, argv, lens), "SELECT", err,
                      errlen) != 0) {
            redisFree(c);
            return -1;
        }
    }
    r->c = c;
    r->pid = getpid();
    return 0;
}

/* ---- the script call ---------------------------------------------- */

static const char *const OP_NAMES[] = {
    [AUD_REDIS_CONFIGURE] = "configure", [AUD_REDIS_ACQUIRE] = "acquire",
    [AUD_REDIS_OBSERVE] = "observe",     [AUD_REDIS_PENALIZE] = "penalize",
    [AUD_REDIS_STATE] = "state",
};

#define NUM_LEN 32

static size_t fmt_num(char buf[NUM_LEN], double v)
{
    if (isnan(v)) {
        buf[0] = '\0';
        return 0;
    }
    /* %.17g of a finite double fits in 25 bytes. */
    int n = snprintf(buf, NUM_LEN, "%.17g", v);
    return n > 0 && n < NUM_LEN ? (size_t)n : 0;
}

static int parse_num(const redisReply *e, double *out)
{
    if (e->type == REDIS_REPLY_NIL) {
        *out = NAN;
        return 0;
    }
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= NUM_LEN)
        return -1;
    char buf[NUM_LEN];
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    char *endp;
    errno = 0;
    double v = strtod(buf, &endp);
    if (*endp != '\0' || errno != 0 || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int read_result(redisReply *rep, struct aud_redis_call *call)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 11)
        return -1;
    double v[11];
    for (size_t i = 0; i < 11; i++)
        if (parse_num(rep->element[i], &v[i]) != 0)
            return -1;
    if (isnan(v[0]))
        return -1;
    call->wait = v[0];
    struct aud_rl_state *s = &call->state;
    s->budget_limit = v[1];
    s->budget_per = v[2];
    s->tokens = v[3];
    s->tokens_at = v[4];
    s->limit = v[5];
    s->remaining = v[6];
    s->reset_at = v[7];
    s->blocked_until = v[8];
    s->blind = isnan(v[9]) ? 0 : v[9];
    s->blind_at = v[10];
    return 0;
}

enum { CALL_OK = 0, CALL_FAILED = -1, CALL_CONN_FAILED = -2 };

/* CALL_CONN_FAILED: the connection is unusable (dropped); *stale tells
 * whether the failure looks like a connection the server had already
 * closed (EOF, reset, broken pipe) rather than a timeout or a bad reply. */
static int run_script(struct aud_redis_store *r, struct aud_redis_call *call,
                      int *stale, char *err, size_t errlen)
{
    double values[9] = {call->now, (double)r->ttl, AUD_RL_RESET_MARGIN,
                        AUD_RL_TOKEN_SLACK, call->sticky_limit,
                        call->sticky_per, call->arg[0], call->arg[1],
                        call->arg[2]};
    char nums[9 * NUM_LEN];
    size_t used = 0;
    for (int i = 0; i < 9; i++) {
        if (i > 0)
            nums[used++] = ',';
        used += fmt_num(nums + used, values[i]);
    }
    const char *argv[6] = {"EVALSHA", r->sha, "1", r->key, OP_NAMES[call->op], nums};
    size_t lens[6] = {7, strlen(r->sha), 1, r->key_len, strlen(OP_NAMES[call->op]), used};

    redisReply *rep = redisCommandArgv(r->c, 6, argv, lens);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* First use on this server (or after SCRIPT FLUSH / a restart):
         * EVAL runs the script and caches it for the next EVALSHA. */
        freeReplyObject(rep);
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = aud_redis_script;
        lens[1] = sizeof aud_redis_script - 1;
        rep = redisCommandArgv(r->c, 6, argv, lens);
    }
    if (rep == NULL) {
        int e = errno;
        *stale = r->c->err == REDIS_ERR_EOF ||
                 (r->c->err == REDIS_ERR_IO && (e == EPIPE || e == ECONNRESET));
        conn_error(r, r->c, e, "command", err, errlen);
        drop(r);
        return CALL_CONN_FAILED;
    }
    int rc = CALL_OK;
    if (rep->type == REDIS_REPLY_ERROR) {
        /* The server answered, so the connection is fine (LOADING, OOM,
         * READONLY, WRONGTYPE, a script error). */
        snprintf(err, errlen, "redis: %.300s", rep->str);
        rc = CALL_FAILED;
    } else if (read_result(rep, call) != 0) {
        snprintf(err, errlen, "redis: unexpected reply to the limiter script");
        rc = CALL_FAILED;
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- public ------------------------------------------------------- */

static struct timeval to_timeval(double seconds)
{
    struct timeval tv;
    double whole = floor(seconds);
    tv.tv_sec = (time_t)whole;
    tv.tv_usec = (suseconds_t)((seconds - whole) * 1e6);
    if (tv.tv_usec > 999999)
        tv.tv_usec = 999999;
    /* hiredis treats a zero timeout as none: keep it bounded. */
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    return tv;
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
    if (parse_url(r, url, url_len, err, errlen) != 0)
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
    r->connect_tv = to_timeval(o->connect_timeout);
    r->tv = to_timeval(o->timeout);
    r->timeout = o->timeout;
    r->ttl = o->ttl;

    unsigned char digest[AUD_SHA1_LEN];
    struct aud_span span = {aud_redis_script, sizeof aud_redis_script - 1};
    char cerr[200];
    if (aud_sha1(&span, 1, digest, cerr, sizeof cerr) != 0) {
        snprintf(err, errlen, "%s", cerr);
        goto fail;
    }
    for (int i = 0; i < AUD_SHA1_LEN; i++)
        snprintf(r->sha + 2 * i, 3, "%02x", digest[i]);
    return r;
fail:
    aud_redis_store_free(r);
    return NULL;
}

int aud_redis_store_call(struct aud_redis_store *r, struct aud_redis_call *c,
                         char *err, size_t errlen)
{
    struct pipe_guard guard;
    if (pipe_guard_begin(&guard, err, errlen) != 0)
        return -1;
    /* A forked child must not talk over its parent's socket: the replies
     * would interleave. */
    if (r->c != NULL && r->pid != getpid())
        drop(r);
    int reused = r->c != NULL;
    int rc = CALL_FAILED, stale = 0;
    if (r->c != NULL || do_connect(r, err, errlen) == 0)
        rc = run_script(r, c, &stale, err, errlen);
    /* A connection that sat idle may have been closed by a server restart
     * or an idle timeout; that says nothing about the server now, so one
     * fresh attempt is made. Not after a timeout: that would double the
     * caller's wait. (If the server did run the script before closing, the
     * retry counts one unit twice: a harmless, conservative error.) */
    if (rc == CALL_CONN_FAILED && reused && stale) {
        if (do_connect(r, err, errlen) == 0)
            rc = run_script(r, c, &stale, err, errlen);
    }
    pipe_guard_end(&guard);
    return rc == CALL_OK ? 0 : -1;
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
    free(r->host);
    free(r->user);
    if (r->password != NULL) {
        wipe(r->password, r->password_len);
        free(r->password);
    }
    free(r->key);
    free(r);
}
