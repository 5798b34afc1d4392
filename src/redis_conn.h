/* Talking to Redis with one deadline per operation: connecting, AUTH,
 * SELECT, writing and reading all count against the same instant, so a
 * server that accepts and then drips one byte at a time cannot hold a
 * caller past it (hiredis's own timeouts are per read()). */
#ifndef AUD_REDIS_CONN_H
#define AUD_REDIS_CONN_H

#include <signal.h>
#include <stddef.h>

#include <hiredis.h>

struct aud_redis_target {
    char *host;
    int port;
    long db;
    char *user; /* NULL when the URL has none */
    size_t user_len;
    char *password; /* NULL when the URL has none; never in a message */
    size_t password_len;
    double timeout; /* for messages: the deadline's length */
};

/* The AUTH command of t (AUTH [user] password) into argv/lens; returns its
 * argument count, or 0 when t has no password. */
int aud_redis_auth_args(const struct aud_redis_target *t, const char *argv[3],
                        size_t lens[3]);

/* deadline is on the monotonic clock (clock.h). A connected, authenticated
 * context with the database selected, or NULL with "redis: ..." in err. */
redisContext *aud_redis_connect(const struct aud_redis_target *t,
                                double deadline, char *err, size_t errlen);

/* One command's reply, or NULL when the connection is unusable (timed
 * out, closed, broken; the caller frees it) with the reason in err and
 * *stale set when it looks like a connection the server had closed
 * before this command (EOF, reset, broken pipe) rather than a slow one. */
redisReply *aud_redis_command(redisContext *c, const struct aud_redis_target *t,
                              int argc, const char **argv, const size_t *lens,
                              double deadline, int *stale, char *err,
                              size_t errlen);

/* hiredis writes with write(), so a server that went away turns the next
 * command into a SIGPIPE, which kills a plain Lua interpreter. Between
 * begin and end it is blocked in this thread, and one we caused is
 * discarded; the process's disposition is left alone. */
struct aud_pipe_guard {
    sigset_t old;
    int was_pending;
};
int aud_pipe_guard_begin(struct aud_pipe_guard *g, char *err, size_t errlen);
void aud_pipe_guard_end(struct aud_pipe_guard *g);

#endif
