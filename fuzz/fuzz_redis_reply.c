/* Redis replies (redis_codec.c: hiredis's reader behind size limits) fed in
 * pieces whose sizes come from the input: the replies and the error must be
 * the same as with the whole input fed at once, nothing past a limit is
 * built, and every reply driven into the compare-and-swap machine
 * (redis_cas.c) gives one of its three answers with a command or a reason.
 *
 * Input: field 1, piece sizes (one byte each, 0 meaning 1); field 2, the
 * bytes from the server. */
#include <math.h>

#include "fuzz.h"
#include "redis_cas.h"
#include "redis_codec.h"

#define MAX_REPLIES 64

static int same(const redisReply *a, const redisReply *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case REDIS_REPLY_INTEGER:
        return a->integer == b->integer;
    case REDIS_REPLY_ARRAY:
        if (a->elements != b->elements)
            return 0;
        for (size_t i = 0; i < a->elements; i++)
            if (!same(a->element[i], b->element[i]))
                return 0;
        return 1;
    case REDIS_REPLY_NIL:
        return 1;
    default:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    }
}

static void check_limits(const redisReply *r, const struct aud_redis_limits *l)
{
    if (r->type == REDIS_REPLY_ARRAY) {
        FUZZ_CHECK((long long)r->elements <= l->max_elements);
        for (size_t i = 0; i < r->elements; i++)
            check_limits(r->element[i], l);
    } else if (r->type == REDIS_REPLY_STRING) {
        FUZZ_CHECK(r->len <= l->max_string);
    }
}

/* All replies of one codec fed data in the given pieces; the count, and
 * whether it ended in an error. */
static int parse_all(const struct aud_redis_limits *l, const char *data, size_t len,
                     const char *sizes, size_t nsizes, redisReply **out, int *failed)
{
    struct aud_redis_codec c;
    FUZZ_CHECK(aud_redis_codec_init(&c, l) == 0);
    int n = 0;
    size_t at = 0, k = 0;
    *failed = 0;
    while (at < len && !*failed && n < MAX_REPLIES) {
        size_t piece = nsizes > 0 ? (unsigned char)sizes[k++ % nsizes] : len;
        if (piece == 0)
            piece = 1;
        if (piece > len - at)
            piece = len - at;
        if (aud_redis_codec_feed(&c, data + at, piece) != 0) {
            *failed = 1;
            break;
        }
        at += piece;
        while (n < MAX_REPLIES) {
            redisReply *r;
            int got = aud_redis_codec_next(&c, &r);
            if (got < 0) {
                FUZZ_CHECK(c.err[0] != '\0');
                *failed = 1;
                break;
            }
            if (got == 0)
                break;
            check_limits(r, l);
            out[n++] = r;
        }
    }
    aud_redis_codec_free(&c);
    return n;
}

static void drive_cas(redisReply **replies, int n)
{
    struct aud_redis_cas_conf conf = {"audience:rl:f", 13, "0123456789abcdef0123456789abcdef01234567", 60};
    struct aud_rl_step st;
    struct aud_rl_state out;
    aud_rl_step_init(&st, AUD_RL_ACQUIRE, 1.7e9);
    struct aud_redis_cas m;
    aud_redis_cas_begin(&m, &conf, &st, &out);
    char err[256];
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(m.argc == 2 || m.argc == 7);
        for (int a = 0; a < m.argc; a++)
            FUZZ_CHECK(m.argv[a] != NULL);
        err[0] = '\0';
        int rc = aud_redis_cas_reply(&m, replies[i], err, sizeof err);
        if (rc == AUD_CAS_FAILED) {
            FUZZ_CHECK(strncmp(err, "redis: ", 7) == 0);
            break;
        }
        if (rc == AUD_CAS_DONE) {
            FUZZ_CHECK(isfinite(st.wait) && st.wait >= 0);
            break;
        }
        FUZZ_CHECK(rc == AUD_CAS_SEND);
    }
    aud_redis_cas_end(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t nsizes, len;
    char *sizes = fuzz_field(&in, &nsizes);
    char *bytes = fuzz_field(&in, &len);
    struct aud_redis_limits l;
    aud_redis_limits_default(&l);
    /* Small limits, so inputs of fuzzing size reach them. */
    l.max_buffer = 4096;
    l.max_elements = 16;
    l.max_string = 256;
    redisReply *whole[MAX_REPLIES], *pieces[MAX_REPLIES];
    int whole_failed, pieces_failed;
    int nw = parse_all(&l, bytes, len, NULL, 0, whole, &whole_failed);
    int np = parse_all(&l, bytes, len, sizes, nsizes, pieces, &pieces_failed);
    /* A limit on the bytes buffered can trip for the whole input and not
     * for pieces (replies consumed in between); only then may they differ. */
    if (len <= l.max_buffer) {
        FUZZ_CHECK(nw == np);
        FUZZ_CHECK(whole_failed == pieces_failed);
        for (int i = 0; i < nw; i++)
            FUZZ_CHECK(same(whole[i], pieces[i]));
    }
    drive_cas(pieces, np);
    for (int i = 0; i < nw; i++)
        freeReplyObject(whole[i]);
    for (int i = 0; i < np; i++)
        freeReplyObject(pieces[i]);
    free(sizes);
    free(bytes);
    return 0;
}
