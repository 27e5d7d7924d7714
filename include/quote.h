#ifndef RELFLIP_QUOTE_H
#define RELFLIP_QUOTE_H

#include "buf.h"
#include "json.h" /* json_quote, which moved there */

/*
 * Append s to b as one word for a POSIX shell: single-quoted, with each '
 * written as '\''. Every word of every remote command goes through here.
 */
void sh_quote(struct buf *b, const char *s);

/* sh_quote into a fresh string owned by the caller. */
char *sh_quoted(const char *s);

/*
 * The length of the valid UTF-8 sequence at s (1 for ASCII), or 0 when s
 * does not start one: no overlong forms, surrogates or code points past
 * U+10FFFF.
 */
size_t quote_utf8_len(const char *s);

/*
 * Copy s for a terminal: control characters and escape sequences from a
 * server become visible \xNN, so hook output cannot move the cursor or
 * retitle the window. The result belongs to the caller.
 */
char *term_sanitize(const char *s);

#endif
