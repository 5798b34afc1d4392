#include "registry.h"

#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aud_rl_entry {
    struct aud_rl_entry *next;
    size_t refs; /* guarded by registry_mutex */
    pthread_mutex_t mutex;
    struct aud_rl_state state; /* guarded by mutex */
    size_t key_len;
    char key[];
};

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct aud_rl_entry *registry_head;

/* Locking a valid default mutex cannot fail; if it does, memory is
 * corrupt and carrying on would hand out torn rate-limit state. */
static void lock(pthread_mutex_t *m)
{
    if (pthread_mutex_lock(m) != 0)
        abort();
}

static void unlock(pthread_mutex_t *m)
{
    if (pthread_mutex_unlock(m) != 0)
        abort();
}

struct aud_rl_entry *aud_registry_acquire(const char *key, size_t len)
{
    lock(&registry_mutex);
    struct aud_rl_entry *e = registry_head;
    while (e != NULL && !(e->key_len == len && memcmp(e->key, key, len) == 0))
        e = e->next;
    if (e == NULL) {
        e = malloc(sizeof *e + len);
        if (e != NULL && pthread_mutex_init(&e->mutex, NULL) != 0) {
            free(e);
            e = NULL;
        }
        if (e != NULL) {
            e->refs = 0;
            aud_rl_init(&e->state);
            e->key_len = len;
            if (len > 0)
                memcpy(e->key, key, len);
            e->next = registry_head;
            registry_head = e;
        }
    }
    if (e != NULL)
        e->refs++;
    unlock(&registry_mutex);
    return e;
}

void aud_registry_release(struct aud_rl_entry *e)
{
    lock(&registry_mutex);
    if (--e->refs > 0) {
        unlock(&registry_mutex);
        return;
    }
    struct aud_rl_entry **pp = &registry_head;
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    unlock(&registry_mutex);
    /* No other reference exists, so nobody can hold or wait on e->mutex. */
    pthread_mutex_destroy(&e->mutex);
    free(e);
}

int aud_registry_run(void *impl, struct aud_rl_step *st,
                     struct aud_rl_state *out, char *err, size_t errlen)
{
    struct aud_rl_entry *e = impl;
    lock(&e->mutex);
    if (aud_store_fill_now(st) != 0) {
        unlock(&e->mutex);
        snprintf(err, errlen, "memory: clock_gettime failed");
        return -1;
    }
    struct aud_rl_state copy = e->state;
    struct aud_rl_state *s = st->op == AUD_RL_STATE ? &copy : &e->state;
    aud_rl_apply(s, st);
    *out = *s;
    unlock(&e->mutex);
    return 0;
}
