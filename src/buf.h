/* Growable byte buffer shared by the HTTP and header code. */
#ifndef AUD_BUF_H
#define AUD_BUF_H

#include <stddef.h>

struct aud_buf {
    char *data;
    size_t len;
    size_t cap;
};

void aud_buf_init(struct aud_buf *b);
/* Returns 0, or -1 when memory is exhausted or the size would overflow;
 * the buffer is left unchanged on failure. */
int aud_buf_append(struct aud_buf *b, const void *p, size_t n);
/* Forget the contents but keep the allocation unless it grew past keep,
 * so one huge response does not pin its memory for the handle's life. */
void aud_buf_clear(struct aud_buf *b, size_t keep);
void aud_buf_free(struct aud_buf *b);

#endif
