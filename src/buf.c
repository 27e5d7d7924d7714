#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

const char *
buf_str(const struct buf *b)
{
	return b->buf ? b->buf : "";
}

static int
buf_grow(struct buf *b, size_t extra)
{
	size_t want;

	if (b->max != 0 && b->len + extra > b->max)
		return -1;
	want = b->len + extra + 1;
	if (want <= b->alloc)
		return 0;
	if (want < b->alloc * 2)
		want = b->alloc * 2;
	if (want < 64)
		want = 64;
	b->buf = xrealloc(b->buf, want);
	b->alloc = want;
	return 0;
}

int
buf_add(struct buf *b, const void *data, size_t len)
{
	if (buf_grow(b, len) != 0)
		return -1;
	/* An empty buffer's data may be NULL: memcpy must not see it. */
	if (len > 0)
		memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addch(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int
buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || buf_grow(b, (size_t)n) != 0)
		return -1;
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->buf != NULL)
		b->buf[0] = '\0';
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->buf, b->buf + n, b->len - n);
	b->len -= n;
	b->buf[b->len] = '\0';
}

void
buf_one_line(struct buf *b)
{
	struct buf line = BUF_INIT;
	const char *p, *nl;
	size_t n;

	if (b->len == 0 || memchr(b->buf, '\n', b->len) == NULL)
		return;
	for (p = b->buf;; p = nl + 1) {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > 0) {
			if (line.len > 0)
				buf_adds(&line, "; ");
			buf_add(&line, p, n);
		}
		if (nl == NULL)
			break;
	}
	free(b->buf);
	b->buf = line.buf;
	b->len = line.len;
	b->alloc = line.alloc;
}

char *
buf_detach(struct buf *b, size_t *len)
{
	char *p = b->buf ? b->buf : xstrdup("");

	if (len != NULL)
		*len = b->len;
	b->buf = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

void
buf_release(struct buf *b)
{

	free(b->buf);
	b->buf = NULL;
	b->len = 0;
	b->alloc = 0;
}
