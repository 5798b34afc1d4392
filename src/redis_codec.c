#include "redis_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aud_redis_limits_default(struct aud_redis_limits *l)
{
    /* The quota store's replies are a blob of a few hundred bytes or an
     * integer; a server claiming more is not one this store should wait for. */
    l->max_buffer = 1 << 20;
    l->max_elements = 1024;
    l->max_string = 512 * 1024;
}

/* Each object hook checks the claim before hiredis allocates for it; a
 * NULL makes the reader fail with "out of memory", which codec_next
 * rewrites with the real reason. */
static struct aud_redis_codec *codec_of(const redisReadTask *task)
{
    return task->privdata;
}

static void *create_string(const redisReadTask *task, char *s, size_t len)
{
    struct aud_redis_codec *c = codec_of(task);
    if (len > c->limits.max_string) {
        snprintf(c->err, sizeof c->err, "redis: a reply string of %zu bytes is over the limit", len);
        return NULL;
    }
    return c->base->createString(task, s, len);
}

static void *create_array(const redisReadTask *task, int n)
{
    struct aud_redis_codec *c = codec_of(task);
    if ((long long)n > c->limits.max_elements) {
        snprintf(c->err, sizeof c->err, "redis: a reply array of %d elements is over the limit", n);
        return NULL;
    }
    return c->base->createArray(task, n);
}

static void *create_integer(const redisReadTask *task, long long v)
{
    return codec_of(task)->base->createInteger(task, v);
}

static void *create_nil(const redisReadTask *task)
{
    return codec_of(task)->base->createNil(task);
}

static void free_object(void *obj)
{
    freeReplyObject(obj);
}

int aud_redis_codec_init(struct aud_redis_codec *c, const struct aud_redis_limits *l)
{
    memset(c, 0, sizeof *c);
    c->reader = redisReaderCreate();
    if (c->reader == NULL)
        return -1;
    c->base = c->reader->fn;
    c->fn.createString = create_string;
    c->fn.createArray = create_array;
    c->fn.createInteger = create_integer;
    c->fn.createNil = create_nil;
    c->fn.freeObject = free_object;
    c->reader->fn = &c->fn;
    c->reader->privdata = c;
    if (l != NULL)
        c->limits = *l;
    else
        aud_redis_limits_default(&c->limits);
    return 0;
}

void aud_redis_codec_free(struct aud_redis_codec *c)
{
    if (c->reader != NULL)
        redisReaderFree(c->reader);
    c->reader = NULL;
}

size_t aud_redis_codec_pending(const struct aud_redis_codec *c)
{
    return c->reader != NULL ? c->reader->len - c->reader->pos : 0;
}

int aud_redis_codec_feed(struct aud_redis_codec *c, const char *buf, size_t len)
{
    if (c->broken)
        return -1;
    if (len > c->limits.max_buffer ||
        aud_redis_codec_pending(c) > c->limits.max_buffer - len) {
        snprintf(c->err, sizeof c->err, "redis: a reply of more than %zu bytes is over the limit",
                 c->limits.max_buffer);
        c->broken = 1;
        return -1;
    }
    if (len > 0 && redisReaderFeed(c->reader, buf, len) != REDIS_OK) {
        snprintf(c->err, sizeof c->err, "redis: out of memory");
        c->broken = 1;
        return -1;
    }
    return 0;
}

int aud_redis_codec_next(struct aud_redis_codec *c, redisReply **out)
{
    *out = NULL;
    if (c->broken)
        return -1;
    c->err[0] = '\0';
    void *reply = NULL;
    if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
        if (c->err[0] == '\0')
            snprintf(c->err, sizeof c->err, "redis: protocol error: %.100s", c->reader->errstr);
        c->broken = 1;
        return -1;
    }
    *out = reply;
    return reply != NULL;
}

long long aud_redis_format(char **out, int argc, const char **argv, const size_t *lens)
{
    *out = NULL;
    int n = redisFormatCommandArgv(out, argc, argv, lens);
    if (n < 0 || *out == NULL)
        return -1;
    return n;
}
