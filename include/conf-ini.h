#ifndef RELFLIP_CONF_INI_H
#define RELFLIP_CONF_INI_H

#include <stddef.h>

#include "error.h"

/*
 * Private to the config loader: the interface between the config model
 * (src/conf.c) and its inih adapter (src/conf-ini.c), and the helpers both
 * use for their messages.
 */

/*
 * Parse INI text. on_section gets the text between '[' and ']'; on_key a
 * key and its value (both trimmed, the inline comment removed); each
 * returns 0, or -1 with err filled. Returns 0 or -1 (err filled).
 */
int conf_ini_parse(const char *text, const char *file,
		   int (*on_section)(void *, const char *, int,
				     struct rf_error *),
		   int (*on_key)(void *, const char *, const char *, int,
				 struct rf_error *),
		   void *ctx, struct rf_error *err);

/* How much of a value or line a message shows. */
#define CONF_ECHO_MAX 80

/*
 * Copy at most CONF_ECHO_MAX bytes of s (up to end, or its NUL when end is
 * NULL) into dst for a message, control characters as '?', "..." when cut.
 * Returns dst.
 */
const char *conf_echo(char *dst, size_t size, const char *s, const char *end);

/* Blank inside a config line: space, tab, \f, \v, \r. */
int conf_is_blank(char c);

/*
 * A config error: RF_EXIT_USAGE with "FILE:LINE: what", or "FILE: what"
 * for line 0. Returns -1.
 */
int conf_error_at(struct rf_error *err, const char *file, int line,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
