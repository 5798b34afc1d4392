#include "redis_conn.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"

/* ---- SIGPIPE ------------------------------------------------------ */

int aud_pipe_guard_begin(struct aud_pipe_guard *g, char *err, size_t errlen)
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

void aud_pipe_guard_end(struct aud_pipe_guard *g)
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

/* ---- waiting ------------------------------------------------------ */

/* 0: fd is ready for events; -1: the deadline passed (errno ETIMEDOUT)
 * or poll failed. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double now;
        if (aud_clock_monotonic(&now) != 0)
            return -1;
        double left = deadline - now;
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int ms = (int)ceil(fmin(left, 3600) * 1000);
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0; /* errors and hang-ups show in the next read/write */
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static void io_error(const struct aud_redis_target *t, const char *what,
                     redisContext *c, int e, char *err, size_t errlen)
{
    if (e == ETIMEDOUT)
        snprintf(err, errlen, "redis: %s %s:%d: timed out after %g s", what, t->host,
                 t->port, t->timeout);
    else
        snprintf(err, errlen, "redis: %s %s:%d: %s", what, t->host, t->port,
                 c != NULL && c->errstr[0] ? c->errstr : strerror(e));
}

redisReply *aud_redis_command(redisContext *c, const struct aud_redis_target *t,
                              int argc, const char **argv, const size_t *lens,
                              double deadline, int *stale, char *err,
                              size_t errlen)
{
    *stale = 0;
    if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) {
        snprintf(err, errlen, "redis: out of memory");
        return NULL;
    }
    int done = 0;
    while (!done) {
        errno = 0;
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            int e = errno;
            *stale = e == EPIPE || e == ECONNRESET;
            io_error(t, "command", c, e, err, errlen);
            return NULL;
        }
        if (!done && wait_fd(c->fd, POLLOUT, deadline) != 0) {
            io_error(t, "command", c, errno, err, errlen);
            return NULL;
        }
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(err, errlen, "redis: %s:%d: protocol error", t->host, t->port);
            return NULL;
        }
        if (reply != NULL)
            return reply;
        if (wait_fd(c->fd, POLLIN, deadline) != 0) {
            io_error(t, "command", c, errno, err, errlen);
            return NULL;
        }
        errno = 0;
        if (redisBufferRead(c) != REDIS_OK) {
            int e = errno;
            *stale = c->err == REDIS_ERR_EOF || e == ECONNRESET || e == EPIPE;
            io_error(t, "command", c, e, err, errlen);
            return NULL;
        }
    }
}

/* Checks a setup command's reply (AUTH, SELECT); frees it. */
static int setup(redisContext *c, const struct aud_redis_target *t, int argc,
                 const char **argv, const size_t *lens, double deadline,
                 char *err, size_t errlen)
{
    int stale;
    redisReply *rep = aud_redis_command(c, t, argc, argv, lens, deadline, &stale,
                                        err, errlen);
    if (rep == NULL)
        return -1;
    int ok = rep->type == REDIS_REPLY_STATUS;
    if (!ok)
        snprintf(err, errlen, "redis: %s rejected: %.200s", argv[0],
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

int aud_redis_auth_args(const struct aud_redis_target *t, const char *argv[3],
                        size_t lens[3])
{
    if (t->password == NULL)
        return 0;
    int argc = 0;
    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (t->user != NULL) {
        argv[argc] = t->user;
        lens[argc++] = t->user_len;
    }
    argv[argc] = t->password;
    lens[argc++] = t->password_len;
    return argc;
}

redisContext *aud_redis_connect(const struct aud_redis_target *t,
                                double deadline, char *err, size_t errlen)
{
    redisContext *c = redisConnectNonBlock(t->host, t->port);
    if (c == NULL) {
        snprintf(err, errlen, "redis: out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis: connect %s:%d: %s", t->host, t->port, c->errstr);
        redisFree(c);
        return NULL;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (wait_fd(c->fd, POLLOUT, deadline) != 0 ||
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        io_error(t, "connect", NULL, soerr != 0 ? soerr : errno, err, errlen);
        redisFree(c);
        return NULL;
    }
    const char *auth[3];
    size_t auth_lens[3];
    int argc = aud_redis_auth_args(t, auth, auth_lens);
    if (argc > 0) {
        if (setup(c, t, argc, auth, auth_lens, deadline, err, errlen) != 0) {
            redisFree(c);
            return NULL;
        }
    }
    if (t->db != 0) {
        char db[24];
        int n = snprintf(db, sizeof db, "%ld", t->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        if (setup(c, t, 2, argv, lens, deadline, err, errlen) != 0) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}
