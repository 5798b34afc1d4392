/* Shared by the libFuzzer targets in fuzz/: the entry point's prototype, a
 * check that aborts (so libFuzzer saves the input as a crash), and a reader
 * that cuts one input into fields.
 *
 * Fields are separated by the byte 0xFF, which never occurs in UTF-8 and so
 * rarely in the real inputs (header lines, URLs, signatures); the last field
 * takes the rest and may hold any byte, 0xFF included. Every field is copied
 * into a heap block of exactly its size, so that ASan sees a read one byte
 * past the end, which a slice of libFuzzer's larger buffer would hide. */
#ifndef AUD_FUZZ_H
#define AUD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SEP 0xFF

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

/* An uninitialised heap block of exactly n bytes (one when n is 0), for
 * output buffers: a write past the room given is then an ASan report. */
static inline char *fuzz_alloc(size_t n)
{
    char *d = malloc(n ? n : 1);
    FUZZ_CHECK(d != NULL);
    return d;
}

/* A heap copy of exactly n bytes; callers pass the length along and never
 * read the pointer's contents when it is 0. */
static inline char *fuzz_copy(const void *src, size_t n)
{
    char *d = fuzz_alloc(n);
    if (n)
        memcpy(d, src, n);
    return d;
}

/* The next byte, or 0 when none is left. */
static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    uint8_t b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/* The next 8 bytes as an integer (missing bytes read as 0). */
static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fuzz_byte(in);
    return v;
}

static inline double fuzz_double(struct fuzz_in *in)
{
    uint64_t bits = fuzz_u64(in);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* The bytes up to the next separator (consumed) or to the end, as a heap
 * copy the caller frees; *len gets their count. */
static inline char *fuzz_field(struct fuzz_in *in, size_t *len)
{
    const uint8_t *sep = in->n ? memchr(in->p, FUZZ_SEP, in->n) : NULL;
    size_t n = sep ? (size_t)(sep - in->p) : in->n;
    char *d = fuzz_copy(in->p, n);
    *len = n;
    in->p += n;
    in->n -= n;
    if (sep) {
        in->p++;
        in->n--;
    }
    return d;
}

/* Everything left, whatever it holds. */
static inline char *fuzz_rest(struct fuzz_in *in, size_t *len)
{
    char *d = fuzz_copy(in->p, in->n);
    *len = in->n;
    in->p += in->n;
    in->n = 0;
    return d;
}

#endif
