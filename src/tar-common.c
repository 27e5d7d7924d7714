/*
 * What both halves of the libarchive adapter use: names in messages,
 * path rules, the UTF-8 locale. See include/tar-common.h.
 */

#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tar-common.h"
#include "xmalloc.h"

/*
 * Thread-local C.UTF-8 for libarchive's name conversions: pax names are
 * UTF-8, and under LC_CTYPE=C they are unconvertible on read and written
 * as hdrcharset=BINARY on write. uselocale() leaves other threads alone.
 */
int
tar_locale_enter(struct tar_locale *l, const char *stage, struct rf_error *err)
{
	l->loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (l->loc == (locale_t)0) {
		l->old = (locale_t)0;
		return rf_error_set(err, RF_EXIT_INTERNAL, stage,
				    "cannot use the C.UTF-8 locale: %s",
				    strerror(errno));
	}
	l->old = uselocale(l->loc);
	return 0;
}

void
tar_locale_leave(struct tar_locale *l)
{
	if (l->loc == (locale_t)0)
		return;
	uselocale(l->old);
	freelocale(l->loc);
	l->loc = (locale_t)0;
}

/* Whether s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int
tar_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	int n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			cp = *p & 0x07;
		} else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

/*
 * Copy a name for a message: control bytes (C0, DEL, C1) and, in a name
 * that is not UTF-8, every byte past ASCII become \xHH, so a hostile
 * entry name cannot drive the terminal; long names are cut with "...".
 */
void
tar_show_name(char *dst, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int utf8 = tar_utf8_valid(s), c1 = 0;
	size_t o = 0;
	const unsigned char *p;

	if (len == 0)
		return;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (o + 8 >= len || o + 8 >= SHOW_MAX) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			c1 = 2;
		if (*p < 0x20 || *p == 0x7f || *p == '\\' ||
		    (*p >= 0x80 && !utf8) || c1 > 0) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[*p >> 4];
			dst[o++] = hex[*p & 0xf];
			if (c1 > 0)
				c1--;
		} else
			dst[o++] = (char)*p;
	}
	dst[o] = '\0';
}

/* Bytes in binary units for limits: "16 GiB", "261 KiB", "900 bytes". */
void
tar_show_size(char *dst, size_t len, uint64_t n)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(dst, len, "%llu bytes", (unsigned long long)n);
		return;
	}
	while (v >= 1024.0 && u < 3) {
		v /= 1024.0;
		u++;
	}
	snprintf(dst, len, v < 10.0 ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/*
 * Normalise a path inside the release: drop "." and empty components.
 * Returns the result (owned by the caller; "" for the release root), or
 * NULL with *why set for an absolute path or a ".." component.
 */
char *
tar_path_normalise(const char *path, const char **why)
{
	char *out = xmalloc(strlen(path) + 1);
	const char *p = path, *end;
	size_t o = 0, n;

	*why = NULL;
	if (path[0] == '/') {
		*why = "absolute path";
		free(out);
		return NULL;
	}
	while (*p != '\0') {
		end = strchr(p, '/');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*why = "path leaves the release ('..' component)";
			free(out);
			return NULL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = *end == '/' ? end + 1 : end;
	}
	out[o] = '\0';
	return out;
}

/*
 * Check a symlink at the normalised path entry. Its target must be
 * relative, and ".." may only lead it: "../../lib/x" is fine as long as
 * the entry is deep enough, "x/../.." is refused even when it looks
 * harmless, because "x" may itself be a link and the kernel resolves
 * ".." after following it, which a lexical check cannot see. Returns NULL
 * when fine, else the reason.
 */
const char *
tar_symlink_check(const char *entry, const char *target)
{
	const char *p, *end;
	size_t n, depth = 0;
	int named = 0;

	if (target == NULL || target[0] == '\0')
		return "empty target";
	if (target[0] == '/')
		return "absolute target";
	for (p = entry; *p != '\0'; p++) {
		if (*p == '/')
			depth++;
	}
	p = target;
	while (*p != '\0') {
		end = strchr(p, '/');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (named)
				return "'..' after a name (only leading '..' "
				       "are allowed)";
			if (depth == 0)
				return "target leaves the release";
			depth--;
		} else if (n > 0 && !(n == 1 && p[0] == '.'))
			named = 1;
		p = *end == '/' ? end + 1 : end;
	}
	return NULL;
}

void
tar_digest_hex(const unsigned char *md, unsigned int len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned int i;

	for (i = 0; i < len && i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[2 * i] = '\0';
}
