/* Process-wide map from account name to one shared rate-limit state, so
 * every client object (and every thread, e.g. an nginx thread pool) for an
 * account draws on the same budget. */
#ifndef AUD_REGISTRY_H
#define AUD_REGISTRY_H

#include <stddef.h>

#include "ratelimit.h"

struct aud_rl_entry;

/* Finds or creates the entry for key (any bytes) and takes a reference.
 * NULL when out of memory. */
struct aud_rl_entry *aud_registry_acquire(const char *key, size_t len);
/* Drops a reference; the last one frees the entry. */
void aud_registry_release(struct aud_rl_entry *e);

/* The memory store's run (store.h): the entry's mutex makes it atomic. */
int aud_registry_run(void *impl, struct aud_rl_step *st,
                     struct aud_rl_state *out, char *err, size_t errlen);

#endif
