/* Rate-limit state shared by the processes of one machine through a small
 * file: every operation locks the file, reads the account's record, runs
 * the ratelimit.c functions on it and writes it back. The record format
 * and the crash-safety argument are described in store_file.c. */
#ifndef AUD_STORE_FILE_H
#define AUD_STORE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

#define AUD_FILE_RECORD_SIZE 128
/* Caps the file at 512 KiB, so a huge file (garbage, a wrong path) never
 * makes one operation read megabytes. */
#define AUD_FILE_MAX_RECORDS 4096
/* Default bound on waiting for another process's lock. Holders keep it
 * for microseconds, so reaching it means something is badly wrong. */
#define AUD_FILE_LOCK_TIMEOUT 5.0

struct aud_file_store;

/* Opens (creating, mode 0600) path for account (any bytes). lock_timeout
 * must be finite and >= 0. NULL with a reason in err on failure. */
struct aud_file_store *aud_file_store_open(const char *path,
                                           const char *account,
                                           size_t account_len,
                                           double lock_timeout, char *err,
                                           size_t errlen);

/* Called with the account's state (fresh when it has no valid record);
 * it must not fail or block. */
typedef void (*aud_file_store_fn)(struct aud_rl_state *s, void *arg);

/* write = 1: under an exclusive lock, fn's changes are written back.
 * write = 0: under a shared lock, fn sees a copy that is discarded.
 * 0, or -1 with a reason in err (lock timeout, I/O error, file full). */
int aud_file_store_update(struct aud_file_store *fs, int write,
                          aud_file_store_fn fn, void *arg, char *err,
                          size_t errlen);

void aud_file_store_close(struct aud_file_store *fs);

/* ---- the record codec, exposed for tests and fuzzing ---------------- */

/* The identity stored in a record for an account name. */
struct aud_file_key {
    uint32_t len; /* the full name's length */
    unsigned char bytes[32];
};

/* 0, or -1 with a reason in err (a name over 4 GiB, OpenSSL failure). */
int aud_file_key_make(struct aud_file_key *k, const char *account,
                      size_t len, char *err, size_t errlen);
void aud_file_record_encode(unsigned char rec[AUD_FILE_RECORD_SIZE],
                            const struct aud_file_key *k,
                            const struct aud_rl_state *s);
/* 1 and *s filled when rec is an intact record of key k; 0 otherwise
 * (another account, garbage, a torn write, an impossible state). */
int aud_file_record_decode(const unsigned char rec[AUD_FILE_RECORD_SIZE],
                           const struct aud_file_key *k,
                           struct aud_rl_state *s);
/* 1 when rec is an intact record of any account: such a slot is never
 * reused for another. */
int aud_file_record_valid(const unsigned char rec[AUD_FILE_RECORD_SIZE]);

#endif
