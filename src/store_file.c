/* File-backed quota state (see store_file.h).
 *
 * The file starts with a 160-byte header whose first 16 bytes are
 * "audience-quota1\n" (the rest is zero), then 160-byte records, one per
 * account:
 *
 *   offset size
 *        0    4  length of the account name, big-endian
 *        4   32  the name, zero-padded; a longer name is stored as its
 *                SHA-256
 *       36  116  the state blob (ratelimit.h)
 *      152    8  FNV-1a 64 of bytes 0..151, big-endian
 *
 * Crash safety: a record is only ever rewritten whole, in place, under an
 * exclusive flock(), and flock() locks die with their holder. A process
 * killed mid-write (or a power loss: nothing is fsync'ed, and losing a few
 * seconds of quota state is harmless) can at worst leave one record whose
 * checksum fails; it reads as fresh state and its slot is reused.
 *
 * flock(), not fcntl(): fcntl locks belong to the process, so two limiter
 * objects (or threads) of one process would not exclude each other, and
 * closing any descriptor of the file would drop the process's lock. */
#include "store_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "store.h"

#define HDR AUD_FILE_HEADER_SIZE
#define REC AUD_FILE_RECORD_SIZE
#define OFF_KEY 4
#define KEY_LEN 32
#define OFF_BLOB 36
#define OFF_SUM 152
#define SCAN_BATCH 32

_Static_assert(OFF_BLOB + AUD_RL_BLOB_LEN <= OFF_SUM, "the blob fits a record");

static const char MAGIC[16] = "audience-quota1\n";

struct aud_file_store {
    int fd;    /* -1 when it must be (re)opened */
    pid_t pid; /* the process that opened fd */
    long slot; /* where this account's record was last seen, or -1 */
    double lock_timeout;
    unsigned char key[OFF_BLOB]; /* length + name, as in a record */
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

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int make_key(unsigned char key[OFF_BLOB], const char *account, size_t len,
                    char *err, size_t errlen)
{
    memset(key, 0, OFF_BLOB);
    if (len > UINT32_MAX) {
        snprintf(err, errlen, "account name too long");
        return -1;
    }
    for (int i = 0; i < 4; i++)
        key[i] = (unsigned char)((uint32_t)len >> (24 - 8 * i));
    if (len <= KEY_LEN) {
        if (len > 0)
            memcpy(key + OFF_KEY, account, len);
        return 0;
    }
    return aud_sha256(account, len, key + OFF_KEY, err, errlen);
}

static void encode(unsigned char rec[REC], const unsigned char key[OFF_BLOB],
                   const struct aud_rl_state *s)
{
    memset(rec, 0, REC);
    memcpy(rec, key, OFF_BLOB);
    aud_rl_encode(s, rec + OFF_BLOB);
    put_u64(rec + OFF_SUM, fnv1a64(rec, OFF_SUM));
}

/* 1 when rec is an intact record (of any account) and *s its state. */
static int intact(const unsigned char rec[REC], struct aud_rl_state *s)
{
    return get_u64(rec + OFF_SUM) == fnv1a64(rec, OFF_SUM) &&
           aud_rl_decode(rec + OFF_BLOB, AUD_RL_BLOB_LEN, s);
}

/* ---- file access ----------------------------------------------------- */

static int fail(struct aud_file_store *fs, const char *what, int errnum,
                char *err, size_t errlen)
{
    snprintf(err, errlen, "file: %s: %s: %s", fs->path, what, strerror(errnum));
    return -1;
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

static void drop_fd(struct aud_file_store *fs)
{
    if (fs->fd >= 0)
        (void)close(fs->fd); /* only ever written under released locks */
    fs->fd = -1;
    fs->slot = -1;
}

static int unlock_file(struct aud_file_store *fs, char *err, size_t errlen)
{
    while (flock(fs->fd, LOCK_UN) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        /* Closing our only copy of the description releases the lock for
         * sure; the next call reopens. */
        drop_fd(fs);
        return fail(fs, "flock(LOCK_UN)", e, err, errlen);
    }
    return 0;
}

/* Under the exclusive lock: an empty file (ours, just created, or one a
 * racing process created) gets the header; anything else must have it. */
static int check_header(struct aud_file_store *fs, char *err, size_t errlen)
{
    unsigned char hdr[HDR];
    ssize_t n = read_at(fs->fd, hdr, HDR, 0);
    if (n < 0)
        return fail(fs, "read", errno, err, errlen);
    if (n == 0) {
        memset(hdr, 0, HDR);
        memcpy(hdr, MAGIC, sizeof MAGIC);
        if (write_at(fs->fd, hdr, HDR, 0) != 0)
            return fail(fs, "write", errno, err, errlen);
        return 0;
    }
    if ((size_t)n < sizeof MAGIC || memcmp(hdr, MAGIC, sizeof MAGIC) != 0) {
        snprintf(err, errlen, "file: %s: exists and is not an audience quota "
                              "file (left untouched)", fs->path);
        return -1;
    }
    return 0;
}

static int open_fd(struct aud_file_store *fs, char *err, size_t errlen)
{
    /* O_NOFOLLOW: a symbolic link planted at the path is refused, not
     * followed. O_NONBLOCK: opening a FIFO planted there must not block.
     * O_CLOEXEC: a program started from here must not inherit the
     * descriptor, which would keep our lock alive after we die. */
    const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
    int fd = open(fs->path, flags);
    if (fd < 0 && errno == ENOENT)
        fd = open(fs->path, flags | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST)
        fd = open(fs->path, flags); /* another process created it first */
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            snprintf(err, errlen, "file: %s: is a symbolic link (refused)", fs->path);
        else
            fail(fs, "open", e, err, errlen);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        (void)close(fd);
        return fail(fs, "fstat", e, err, errlen);
    }
    if (!S_ISREG(st.st_mode)) {
        (void)close(fd);
        snprintf(err, errlen, "file: %s: not a regular file (refused)", fs->path);
        return -1;
    }
    fs->fd = fd;
    fs->pid = getpid();
    fs->slot = -1;
    if (lock_file(fs, LOCK_EX, err, errlen) != 0) {
        drop_fd(fs);
        return -1;
    }
    int rc = check_header(fs, err, errlen);
    char uerr[512];
    if (unlock_file(fs, uerr, sizeof uerr) != 0 && rc == 0) {
        snprintf(err, errlen, "%s", uerr);
        rc = -1;
    }
    if (rc != 0)
        drop_fd(fs);
    return rc;
}

/* A forked child shares the parent's open file description, and flock
 * locks belong to the description: parent and child would never exclude
 * each other. So each process opens its own. */
static int ensure_open(struct aud_file_store *fs, char *err, size_t errlen)
{
    if (fs->fd >= 0 && fs->pid == getpid())
        return 0;
    drop_fd(fs); /* the parent's lock is released only by its own copy */
    return open_fd(fs, err, errlen);
}

static off_t slot_offset(long slot)
{
    return (off_t)HDR + (off_t)slot * REC;
}

/* Finds the account's record, or fills *s with fresh state and picks the
 * slot a new record goes to (-1 if none: the file is full). */
static int find_record(struct aud_file_store *fs, struct aud_rl_state *s,
                       long *slot, char *err, size_t errlen)
{
    unsigned char buf[SCAN_BATCH * REC];
    if (fs->slot >= 0) {
        ssize_t n = read_at(fs->fd, buf, REC, slot_offset(fs->slot));
        if (n < 0)
            return fail(fs, "read", errno, err, errlen);
        if (n == REC && memcmp(buf, fs->key, OFF_BLOB) == 0 && intact(buf, s)) {
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
        ssize_t n = read_at(fs->fd, buf, want, slot_offset(base));
        if (n < 0)
            return fail(fs, "read", errno, err, errlen);
        long whole = (long)((size_t)n / REC);
        for (long i = 0; i < whole; i++) {
            const unsigned char *rec = buf + (size_t)i * REC;
            struct aud_rl_state tmp;
            if (!intact(rec, &tmp)) {
                if (free_slot < 0)
                    free_slot = base + i;
            } else if (memcmp(rec, fs->key, OFF_BLOB) == 0) {
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
    encode(rec, fs->key, s);
    if (write_at(fs->fd, rec, REC, slot_offset(slot)) != 0)
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
    if (make_key(fs->key, account, account_len, kerr, sizeof kerr) != 0) {
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

int aud_file_store_run(void *impl, struct aud_rl_step *st,
                       struct aud_rl_state *out, char *err, size_t errlen)
{
    struct aud_file_store *fs = impl;
    int write = st->op != AUD_RL_STATE;
    if (ensure_open(fs, err, errlen) != 0)
        return -1;
    if (lock_file(fs, write ? LOCK_EX : LOCK_SH, err, errlen) != 0)
        return -1;
    long slot;
    int rc = find_record(fs, out, &slot, err, errlen);
    if (rc == 0 && aud_store_fill_now(st) != 0)
        rc = fail(fs, "clock_gettime", errno, err, errlen);
    if (rc == 0) {
        aud_rl_apply(out, st);
        if (write)
            rc = write_record(fs, slot, out, err, errlen);
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
    /* In a forked child this drops only the child's copy. */
    drop_fd(fs);
    free(fs);
}
