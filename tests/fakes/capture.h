#ifndef RELFLIP_CAPTURE_H
#define RELFLIP_CAPTURE_H

#include <stdio.h>

/*
 * For unit tests of what out.c writes: stdout or stderr (fd 1 or 2)
 * redirected to a temporary file between capture_begin and capture_end.
 * Aborts when the redirection cannot be set up.
 */
struct capture {
	int fd;
	int saved;
	FILE *tmp;
};

void capture_begin(struct capture *c, int fd);

/* Stop capturing; what was written, NUL-terminated, the caller's. */
char *capture_end(struct capture *c);

#endif
