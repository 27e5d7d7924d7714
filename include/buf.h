#ifndef RELFLIP_BUF_H
#define RELFLIP_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable, always NUL-terminated byte buffer. `max` bounds it (0: no
 * bound); anything read from the network gets a bound, and an add that
 * would pass it fails with -1 and leaves the buffer as it was.
 */
struct buf {
	char *buf;
	size_t len;
	size_t alloc;
	size_t max;
};

#define BUF_INIT { NULL, 0, 0, 0 }

/* The contents; "" for an empty buffer. Borrowed. */
const char *buf_str(const struct buf *b);

int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addch(struct buf *b, char c);
int buf_addf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);

/* Empty the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/*
 * Make the text one line, as a message quoting a program's stderr wants
 * it: its lines joined with "; ", empty ones (and the newline that ends
 * the last) dropped.
 */
void buf_one_line(struct buf *b);
/* Hand the contents to the caller (never NULL) and reset the buffer. */
char *buf_detach(struct buf *b, size_t *len);
/* Free the memory; the buffer may be reused. */
void buf_release(struct buf *b);

#endif
