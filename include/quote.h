#ifndef RELFLIP_QUOTE_H
#define RELFLIP_QUOTE_H

#include "buf.h"

/*
 * Append s to b as one word for a POSIX shell: single-quoted, with each '
 * written as '\''. Every word of every remote command goes through here.
 */
void sh_quote(struct buf *b, const char *s);

/* sh_quote into a fresh string owned by the caller. */
char *sh_quoted(const char *s);

/*
 * Append s to b as a JSON string (with the quotes). Control characters
 * and invalid UTF-8 are escaped, so remote text cannot break a line.
 */
void json_quote(struct buf *b, const char *s);

/*
 * Copy s for a terminal: control characters and escape sequences from a
 * server become visible \xNN, so hook output cannot move the cursor or
 * retitle the window. The result belongs to the caller.
 */
char *term_sanitize(const char *s);

#endif
