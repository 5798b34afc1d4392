/* Redis's wire protocol without any I/O: commands formatted by hiredis,
 * replies parsed by hiredis's reader from bytes fed in any pieces. Used
 * where something else owns the socket (nginx's cosockets). hiredis 0.14
 * has no bound on what a reply may claim (an array of 2^31 elements, a
 * bulk string of gigabytes), so the reader here enforces some. */
#ifndef AUD_REDIS_CODEC_H
#define AUD_REDIS_CODEC_H

#include <stddef.h>

#include <hiredis.h>

struct aud_redis_limits {
    size_t max_buffer;   /* bytes fed and not yet parsed into replies */
    long long max_elements; /* per array */
    size_t max_string;   /* per bulk string */
};

void aud_redis_limits_default(struct aud_redis_limits *l);

struct aud_redis_codec {
    redisReader *reader;
    redisReplyObjectFunctions fn;          /* the base's, behind the limits */
    const redisReplyObjectFunctions *base; /* hiredis's own */
    struct aud_redis_limits limits;
    int broken; /* a protocol error: nothing more can be parsed */
    char err[160];
};

/* 0, or -1 when out of memory. */
int aud_redis_codec_init(struct aud_redis_codec *c, const struct aud_redis_limits *l);
void aud_redis_codec_free(struct aud_redis_codec *c);

/* Appends bytes; 0, or -1 with the reason in c->err (then the codec is
 * broken): a reply larger than the limits, no memory. */
int aud_redis_codec_feed(struct aud_redis_codec *c, const char *buf, size_t len);

/* 1 with a reply (freeReplyObject it), 0 when more bytes are needed, -1
 * on a protocol error or a limit (c->err; the codec stays broken). */
int aud_redis_codec_next(struct aud_redis_codec *c, redisReply **out);

/* Bytes fed and not consumed by a reply yet. */
size_t aud_redis_codec_pending(const struct aud_redis_codec *c);

/* One command in the protocol's form, *out malloc'd (free it); its
 * length, or -1 when out of memory. */
long long aud_redis_format(char **out, int argc, const char **argv, const size_t *lens);

#endif
