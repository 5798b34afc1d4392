/* The quota state blob (ratelimit.c): whatever bytes a file, a shared dict
 * or a Redis key holds, decoding never misreads them, and the steps that
 * follow keep the state sane (no infinity, a count that stays a count, a
 * finite non-negative wait) and encode back to what decodes the same. */
#include <math.h>

#include "fuzz.h"
#include "ratelimit.h"

static void check_sane(const struct aud_rl_state *s)
{
    const double *f = &s->budget_limit;
    for (int i = 0; i < AUD_RL_NFIELDS; i++)
        FUZZ_CHECK(!isinf(f[i]));
    FUZZ_CHECK(s->blind >= 0);
    FUZZ_CHECK(!(s->penalty_len < 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t len;
    char *blob = fuzz_field(&in, &len);
    struct aud_rl_state s;
    int ok = aud_rl_decode((const unsigned char *)blob, len, &s);
    FUZZ_CHECK(ok == 0 || ok == 1);
    free(blob);
    check_sane(&s);
    double now = 1.7e9;
    while (in.n > 0) {
        struct aud_rl_step st;
        aud_rl_step_init(&st, (enum aud_rl_op)(fuzz_byte(&in) % 6),
                         now + (double)(int8_t)fuzz_byte(&in));
        if (fuzz_byte(&in) & 1) {
            st.budget_limit = 1 + fuzz_byte(&in);
            st.budget_per = 1 + fuzz_byte(&in);
        }
        st.flag = fuzz_byte(&in) & 1;
        for (int i = 0; i < 3; i++) {
            double v = fuzz_double(&in);
            st.arg[i] = isinf(v) ? NAN : v;
        }
        aud_rl_apply(&s, &st);
        FUZZ_CHECK(st.wait >= 0 && isfinite(st.wait));
        check_sane(&s);
        unsigned char out[AUD_RL_BLOB_LEN];
        aud_rl_encode(&s, out);
        struct aud_rl_state back;
        FUZZ_CHECK(aud_rl_decode(out, sizeof out, &back) == 1);
        unsigned char again[AUD_RL_BLOB_LEN];
        aud_rl_encode(&back, again);
        FUZZ_CHECK(memcmp(out, again, sizeof out) == 0);
    }
    return 0;
}
