/* What every quota store does: one atomic load -> aud_rl_apply -> save of
 * the account's state (ratelimit.h). The stores differ only in where the
 * blob lives and what makes the swap atomic. */
#ifndef AUD_STORE_H
#define AUD_STORE_H

#include <stddef.h>

#include "ratelimit.h"

/* Each run: a NaN st->now is read from the wall clock while the store's
 * lock (or transaction) is held, so operations get the clock in the order
 * they change the state; a stale clock would move the bucket's refill
 * stamp back and credit the same interval twice. The state is saved
 * unless st->op is AUD_RL_STATE; *out is the state after. 0, or -1 with a
 * reason in err that never holds a password or URL. */
typedef int (*aud_store_run_fn)(void *impl, struct aud_rl_step *st,
                                struct aud_rl_state *out, char *err,
                                size_t errlen);
typedef void (*aud_store_close_fn)(void *impl);

/* 0, or -1 when the clock cannot be read. */
int aud_store_fill_now(struct aud_rl_step *st);

#endif
