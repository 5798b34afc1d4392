/* Quota state shared by the processes of one machine through a small file
 * of its own: every run locks the file, reads the account's record (the
 * ratelimit.h blob), applies the step and writes it back. The layout and
 * the crash-safety argument are in store_file.c. */
#ifndef AUD_STORE_FILE_H
#define AUD_STORE_FILE_H

#include <stddef.h>

#include "ratelimit.h"

#define AUD_FILE_HEADER_SIZE 160
#define AUD_FILE_RECORD_SIZE 160
/* Caps the file at ~640 KiB, so a huge file never makes one operation read
 * megabytes. */
#define AUD_FILE_MAX_RECORDS 4096
/* Default bound on waiting for another process's lock. Holders keep it
 * for microseconds, so reaching it means something is badly wrong. */
#define AUD_FILE_LOCK_TIMEOUT 5.0

struct aud_file_store;

/* Opens path for account (any bytes), creating it (mode 0600, never
 * through a symbolic link) when it does not exist. Refuses, leaving it
 * untouched, a path that is a symbolic link, a directory or anything but
 * a regular file, an existing file that does not start with this store's
 * header, or one that cannot be opened for writing. lock_timeout must be
 * finite and >= 0. NULL with "file: PATH: reason" in err. */
struct aud_file_store *aud_file_store_open(const char *path,
                                           const char *account,
                                           size_t account_len,
                                           double lock_timeout, char *err,
                                           size_t errlen);

/* The store's run (store.h). */
int aud_file_store_run(void *fs, struct aud_rl_step *st,
                       struct aud_rl_state *out, char *err, size_t errlen);

void aud_file_store_close(struct aud_file_store *fs);

#endif
