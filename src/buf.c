#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void aud_buf_init(struct aud_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int aud_buf_append(struct aud_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > SIZE_MAX - b->len)
        return -1;
    size_t need = b->len + n;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len = need;
    return 0;
}

void aud_buf_clear(struct aud_buf *b, size_t keep)
{
    if (b->cap > keep)
        aud_buf_free(b);
    b->len = 0;
}

void aud_buf_free(struct aud_buf *b)
{
    free(b->data);
    aud_buf_init(b);
}
