#include <stdio.h>
#include <string.h>

#include "quote.h"
#include "xmalloc.h"

void
sh_quote(struct buf *b, const char *s)
{
	buf_addch(b, '\'');
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			buf_adds(b, "'\\''");
		else
			buf_addch(b, *s);
	}
	buf_addch(b, '\'');
}

char *
sh_quoted(const char *s)
{
	struct buf b = BUF_INIT;

	sh_quote(&b, s);
	return buf_detach(&b, NULL);
}

size_t
quote_utf8_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

char *
term_sanitize(const char *s)
{
	struct buf b = BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p != '\0') {
		if (*p == '\t') {
			buf_addch(&b, '\t');
			p++;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			buf_addf(&b, "\\x%02x", *p);
			p++;
			continue;
		}
		n = quote_utf8_len((const char *)p);
		if (n == 0) {
			buf_addf(&b, "\\x%02x", *p);
			p++;
			continue;
		}
		/* C1 controls (U+0080..U+009F) act as escapes on some terminals. */
		if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
			buf_addf(&b, "\\x%02x\\x%02x", p[0], p[1]);
			p += 2;
			continue;
		}
		buf_add(&b, p, n);
		p += n;
	}
	return buf_detach(&b, NULL);
}
