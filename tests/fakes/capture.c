#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "buf.h"
#include "capture.h"

void
capture_begin(struct capture *c, int fd)
{
	fflush(stdout);
	fflush(stderr);
	c->fd = fd;
	c->tmp = tmpfile();
	if (c->tmp == NULL)
		abort();
	c->saved = dup(fd);
	if (c->saved < 0 || dup2(fileno(c->tmp), fd) < 0)
		abort();
}

char *
capture_end(struct capture *c)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	fflush(stdout);
	fflush(stderr);
	if (dup2(c->saved, c->fd) < 0)
		abort();
	close(c->saved);
	rewind(c->tmp);
	while ((n = fread(chunk, 1, sizeof(chunk), c->tmp)) > 0)
		buf_add(&b, chunk, n);
	fclose(c->tmp);
	return buf_detach(&b, NULL);
}
