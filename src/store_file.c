/* File-backed rate-limit state (see store_file.h).
 *
 * The file is an array of 128-byte records, one per account, in host byte
 * order (it is shared by the processes of one machine, never copied):
 *
 *   offset size
 *        0    4  magic "ARF3" (the 3 is the format version)
 *        4    4  length of the account name
 *        8   32  the name, zero-padded; a longer name is stored as its
 *                SHA-256
 *       40   80  struct aud_rl_state: 10 IEEE-754 doubles, NaN = unknown
 *      120    8  FNV-1a 64 of bytes 0..119
 *
 * Crash safety: a record is only ever rewritten whole, in place, under an
 * exclusive flock(), and flock() locks die with their holder. A process
 * killed mid-write (or a power loss, since nothing is fsync'ed: losing a
 * few seconds of quota state is harmless) can at worst leave one record
 * whose checksum fails. Such a record, like any garbage, reads as fresh
 * state and its slot is reused by the next account that needs one; a
 * trailing partial record is overwritten by the next append. Nothing that
 * can be in the file makes an operation fail.
 *
 * flock(), not fcntl(): fcntl locks belong to the process, so two limiter
 * objects (or threads) of one process would not exclude each other, and
 * closing any descriptor of the file would drop the process's lock. */
#include "store_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"

#define REC AUD_FILE_RECORD_SIZE
#define OFF_KEYLEN 4
#define OFF_KEY 8
#define OFF_STATE 40
#define OFF_SUM 120
#define SCAN_BATCH 32

static const unsigned char MAGIC[4] = {'A', 'R', 'F', '3'};

struct aud_file_store {
    int fd;     /* -1 when it must be (re)opened */
    pid_t pid;  /* the process that opened fd */
    long slot;  /* where this account's record was last seen, or -1 */
    double lock_timeout;
    struct aud_file_key key;
    char path[]; /* NUL-terminated */
};

/* ---- record codec ---------------------------------------------------- */

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int aud_file_key_make(struct aud_file_key *k, const char *account,
                      size_t len, char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    if (len > UINT32_MAX) {
        snprintf(err, errlen, "account name too long");
        return -1;
    }
    k->len = (uint32_t)len;
    if (len <= sizeof k->bytes) {
        if (len > 0)
            memcpy(k->bytes, account, len);
        return 0;
    }
    return aud_sha256(account, len, k->bytes, err, errlen);
}

/* Field order of the stored state; part of the format. */
#define N_FIELDS 10
static const size_t FIELDS[N_FIELDS] = {
    offsetof(struct aud_rl_state, budget_limit),
    offsetof(struct aud_rl_state, budget_per),
    offsetof(struct aud_rl_state, tokens),
    offsetof(struct aud_rl_state, tokens_at),
    offsetof(struct aud_rl_state, limit),
    offsetof(struct aud_rl_state, remaining),
    offsetof(struct aud_rl_state, reset_at),
    offsetof(struct aud_rl_state, blocked_until),
    offsetof(struct aud_rl_state, blind),
    offsetof(struct aud_rl_state, blind_at),
};

void aud_file_record_encode(unsigned char rec[REC], const struct aud_file_key *k,
                            const struct aud_rl_state *s)
{
    memset(rec, 0, REC);
    memcpy(rec, MAGIC, sizeof MAGIC);
    memcpy(rec + OFF_KEYLEN, &k->len, sizeof k->len);
    memcpy(rec + OFF_KEY, k->bytes, sizeof k->bytes);
    for (int i = 0; i < N_FIELDS; i++)
        memcpy(rec + OFF_STATE + 8 * i, (const char *)s + FIELDS[i], sizeof(double));
    uint64_t sum = fnv1a64(rec, OFF_SUM);
    memcpy(rec + OFF_SUM, &sum, sizeof sum);
}

/* The checksum only catches accidents; a state ratelimit.c could never
 * produce (an infinite count, half a budget) is refused as well, so no
 * file content can make the arithmetic misbehave. */
static int sane(const unsigned char *state)
{
    for (int i = 0; i < N_FIELDS; i++) {
        double v;
        memcpy(&v, state + 8 * i, sizeof v);
        if (isinf(v))
            return 0;
    }
    return 1;
}

static int budget_whole(const struct aud_rl_state *s)
{
    if (isnan(s->budget_limit))
        return isnan(s->budget_per) && isnan(s->tokens) && isnan(s->tokens_at);
    return s->budget_limit > 0 && s->budget_per > 0 && !isnan(s->tokens) &&
           !isnan(s->tokens_at);
}

static int intact(const unsigned char rec[REC], struct aud_rl_state *s)
{
    uint64_t sum;
    memcpy(&sum, rec + OFF_SUM, sizeof sum);
    if (memcmp(rec, MAGIC, sizeof MAGIC) != 0 || sum != fnv1a64(rec, OFF_SUM) ||
        !sane(rec + OFF_STATE))
        return 0;
    for (int i = 0; i < N_FIELDS; i++)
        memcpy((char *)s + FIELDS[i], rec + OFF_STATE + 8 * i, sizeof(double));
    return budget_whole(s);
}

static int same_key(const unsigned char rec[REC], const struct aud_file_key *k)
{
    return memcmp(rec + OFF_KEYLEN, &k->len, sizeof k->len) == 0 &&
           memcmp(rec + OFF_KEY, k->bytes, sizeof k->bytes) == 0;
}

int aud_file_record_valid(const unsigned char rec[REC])
{
    struct aud_rl_state s;
    return intact(rec, &s);
}

int aud_file_record_decode(const unsigned char rec[REC],
                           const struct aud_file_key *k, struct aud_rl_state *s)
{
    struct aud_rl_state tmp;
    if (!same_key(rec, k) || !intact(rec, &tmp))
        return 0;
    *s = tmp;
    return 1;
}

/* ---- file access ----------------------------------------------------- */

static int fail(struct aud_file_store *fs, const char *what, int errnum,
                char *err, size_t errlen)
{
    snprintf(err, errlen, "file: %s: %s: %s", fs->path, what, strerror(errnum));
    return -1;
}

static int open_fd(struct aud_file_store *fs, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO or device planted at the path must not
     * block; on the regular file we insist on it changes nothing.
     * O_CLOEXEC: a program started from here must not inherit the
     * descriptor, which would keep our lock alive after we die. */
    int fd = open(fs->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                  0600);
    if (fd < 0)
        return fail(fs, "open", errno, err, errlen);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        (void)close(fd); /* nothing was written through it */
        return fail(fs, "fstat", e, err, errlen);
    }
    if (!S_ISREG(st.st_mode)) {
        (void)close(fd);
        snprintf(err, errlen, "file: %s: not a regular file", fs->path);
        return -1;
    }
    fs->fd = fd;
    fs->pid = getpid();
    return 0;
}

/* A forked child shares the parent's open file description, and flock
 * locks belong to the description: parent and child would never exclude
 * each other. So each process opens its own. */
static int ensure_open(struct aud_file_store *fs, char *err, size_t errlen)
{
    if (fs->fd >= 0 && fs->pid == getpid())
        return 0;
    if (fs->fd >= 0) {
        /* Closing our copy cannot release the parent's lock: only
         * LOCK_UN or closing the last copy does. */
        (void)close(fs->fd);
        fs->fd = -1;
        fs->slot = -1;
    }
    return open_fd(fs, err, errlen);
}

/* LOCK_NB and short sleeps rather than a blocking flock(): a blocking
 * call cannot be given a timeout without signals, which a library must
 * not take over. Holders keep the lock for microseconds. */
static int lock_file(struct aud_file_store *fs, int op, char *err, size_t errlen)
{
    double start, now;
    double pause = 0.0002;
    if (aud_clock_monotonic(&start) != 0)
        return fail(fs, "clock_gettime", errno, err, errlen);
    for (;;) {
        if (flock(fs->fd, op | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return fail(fs, "flock", errno, err, errlen);
        if (aud_clock_monotonic(&now) != 0)
            return fail(fs, "clock_gettime", errno, err, errlen);
        double left = start + fs->lock_timeout - now;
        if (left <= 0) {
            snprintf(err, errlen,
                     "file: %s: still locked by another process after %g s",
                     fs->path, fs->lock_timeout);
            return -1;
        }
        if (aud_clock_sleep(fmin(pause, left)) != 0)
            return fail(fs, "nanosleep", errno, err, errlen);
        pause = fmin(pause * 2, 0.005);
    }
}

static int unlock_file(struct aud_file_store *fs, char *err, size_t errlen)
{
    while (flock(fs->fd, LOCK_UN) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        /* Closing our only copy of the description releases the lock for
         * sure; the next call reopens. */
        (void)close(fs->fd);
        fs->fd = -1;
        fs->slot = -1;
        return fail(fs, "flock(LOCK_UN)", e, err, errlen);
    }
    return 0;
}

/* Bytes read (fewer at end of file), or -1 with errno set. */
static ssize_t read_at(int fd, unsigned char *buf, size_t want, off_t off)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, off + (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int write_at(int fd, const unsigned char *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Finds the account's record, or fills *s with fresh state and picks the
 * slot a new record goes to (-1 if none: the file is full). */
static int find_record(struct aud_file_store *fs, struct aud_rl_state *s,
                       long *slot, char *err, size_t errlen)
{
    unsigned char buf[SCAN_BATCH * REC];
    if (fs->slot >= 0) {
        ssize_t n = read_at(fs->fd, buf, REC, (off_t)fs->slot * REC);
        if (n < 0)
            return fail(fs, "read", errno, err, errlen);
        if (n == REC && aud_file_record_decode(buf, &fs->key, s)) {
            *slot = fs->slot;
            return 0;
        }
        fs->slot = -1;
    }
    long free_slot = -1;
    for (long base = 0; base < AUD_FILE_MAX_RECORDS; base += SCAN_BATCH) {
        long count = AUD_FILE_MAX_RECORDS - base;
        if (count > SCAN_BATCH)
            count = SCAN_BATCH;
        size_t want = (size_t)count * REC;
        ssize_t n = read_at(fs->fd, buf, want, (off_t)base * REC);
        if (n < 0)
            return fail(fs, "read", errno, err, errlen);
        long whole = (long)((size_t)n / REC);
        for (long i = 0; i < whole; i++) {
            const unsigned char *rec = buf + (size_t)i * REC;
            struct aud_rl_state tmp;
            if (!intact(rec, &tmp)) {
                if (free_slot < 0)
                    free_slot = base + i;
            } else if (same_key(rec, &fs->key)) {
                *s = tmp;
                *slot = fs->slot = base + i;
                return 0;
            }
        }
        if ((size_t)n < want) {
            /* End of file: append here, over any torn partial record. */
            if (free_slot < 0)
                free_slot = base + whole;
            break;
        }
    }
    aud_rl_init(s);
    *slot = free_slot;
    return 0;
}

static int write_record(struct aud_file_store *fs, long slot,
                        const struct aud_rl_state *s, char *err, size_t errlen)
{
    if (slot < 0) {
        snprintf(err, errlen, "file: %s: full (%d accounts)", fs->path,
                 AUD_FILE_MAX_RECORDS);
        return -1;
    }
    unsigned char rec[REC];
    aud_file_record_encode(rec, &fs->key, s);
    if (write_at(fs->fd, rec, REC, (off_t)slot * REC) != 0)
        return fail(fs, "write", errno, err, errlen);
    fs->slot = slot;
    return 0;
}

/* ---- public ---------------------------------------------------------- */

struct aud_file_store *aud_file_store_open(const char *path,
                                           const char *account,
                                           size_t account_len,
                                           double lock_timeout, char *err,
                                           size_t errlen)
{
    size_t plen = strlen(path);
    struct aud_file_store *fs = malloc(sizeof *fs + plen + 1);
    if (fs == NULL) {
        snprintf(err, errlen, "file: out of memory");
        return NULL;
    }
    memcpy(fs->path, path, plen + 1);
    fs->fd = -1;
    fs->pid = 0;
    fs->slot = -1;
    fs->lock_timeout = lock_timeout;
    char kerr[200];
    if (aud_file_key_make(&fs->key, account, account_len, kerr, sizeof kerr) != 0) {
        snprintf(err, errlen, "file: %s", kerr);
        free(fs);
        return NULL;
    }
    if (open_fd(fs, err, errlen) != 0) {
        free(fs);
        return NULL;
    }
    return fs;
}

int aud_file_store_update(struct aud_file_store *fs, int write,
                          aud_file_store_fn fn, void *arg, char *err,
                          size_t errlen)
{
    if (ensure_open(fs, err, errlen) != 0)
        return -1;
    if (lock_file(fs, write ? LOCK_EX : LOCK_SH, err, errlen) != 0)
        return -1;
    struct aud_rl_state s;
    long slot;
    int rc = find_record(fs, &s, &slot, err, errlen);
    if (rc == 0) {
        fn(&s, arg);
        if (write)
            rc = write_record(fs, slot, &s, err, errlen);
    }
    char uerr[512];
    if (unlock_file(fs, uerr, sizeof uerr) != 0 && rc == 0) {
        snprintf(err, errlen, "%s", uerr);
        rc = -1;
    }
    return rc;
}

void aud_file_store_close(struct aud_file_store *fs)
{
    if (fs == NULL)
        return;
    /* Only read and written under locks already released; a late error
     * from close() (NFS) has nothing left to lose. In a forked child this
     * drops only the child's copy. */
    if (fs->fd >= 0)
        (void)close(fs->fd);
    free(fs);
}
