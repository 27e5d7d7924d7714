/*
 * conf-ini.c: the inih adapter, and the only file that includes <ini.h>.
 *
 * inih r55, as Debian ships it, has three habits a deployer cannot live
 * with (../shared/LIBRARY-NOTES.md section 5):
 *
 * - a line longer than its buffer (200 bytes with CR, LF and NUL) is cut
 *   and the rest parsed as a new line, so a long install command would be
 *   run truncated;
 * - an indented line continues the previous key, so a stray indented
 *   "port = 2222" ends up inside the previous value;
 * - section names are cut to 49 characters, and a repeated section is
 *   merged silently.
 *
 * Debian's `ini_max_line` would lift the first limit, but it is a Debian
 * patch and would not link against upstream inih, and nothing switches
 * the others off in every build. So the reader function we hand to
 * ini_parse_stream() looks at each line before inih does, which works
 * with any inih build:
 *
 * - it counts lines, so we never need INI_HANDLER_LINENO (whose handler
 *   signature has to match how the library was built);
 * - blank and comment lines reach inih as empty lines;
 * - an indented line is an error naming its line;
 * - a section header is parsed here, whole, and passed to the config
 *   model (conf.c); inih sees an empty line, so it never cuts or merges a
 *   section, and its `section` argument is not used;
 * - a key line that fits inih's buffer goes to inih unchanged: inih
 *   splits it at '=' or ':', drops an inline " ;" comment, trims, and
 *   reports a line without '=' as an error;
 * - a key line that would not fit is split here the same way, kept aside
 *   with its line number, and inih gets a short stand-in ("x=") whose
 *   handler call picks up the kept key and value.
 *
 * The first error stops reading: the reader returns NULL, which inih takes
 * for the end of the file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "conf-ini.h"
#include "error.h"
#include "xmalloc.h"

struct ini_state {
	const char *file;
	const char *text;
	const char *pos; /* the next line to read */
	int lineno;      /* the line last handed to inih */
	int fail_line;   /* the line whose error is in err, or 0 */

	/* A key line too long for inih's buffer, split by us. */
	int aside_line;
	char *aside_key;
	char *aside_value;

	int (*on_section)(void *, const char *, int, struct rf_error *);
	int (*on_key)(void *, const char *, const char *, int,
		      struct rf_error *);
	void *ctx;
	struct rf_error *err;
};

static int ini_fail(struct ini_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ini_fail(struct ini_state *st, int line, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	st->fail_line = line;
	return conf_error_at(st->err, st->file, line, "%s", what);
}

static int
ini_fail_syntax(struct ini_state *st, int line, const char *s, const char *end)
{
	char shown[CONF_ECHO_MAX + 8];

	return ini_fail(st, line,
			"'%s' is not a setting (key = value, a [section] "
			"header, or a comment starting with ; or #)",
			conf_echo(shown, sizeof(shown), s, end));
}

/*
 * Where inih's find_chars_or_comment() stops: at one of chars, or at an
 * inline comment (';' after whitespace), or at the end.
 */
static const char *
ini_find(const char *s, const char *end, const char *chars)
{
	int was_space = 0;

	while (s < end) {
		if (chars != NULL && strchr(chars, *s) != NULL)
			break;
		if (was_space && *s == ';')
			break;
		was_space = conf_is_blank(*s);
		s++;
	}
	return s;
}

/* Split a key line as inih would, and keep key and value aside. */
static int
ini_split_aside(struct ini_state *st, const char *s, const char *end)
{
	const char *sep, *k_end, *v, *v_end;

	sep = ini_find(s, end, "=:");
	if (sep == end || (*sep != '=' && *sep != ':'))
		return ini_fail_syntax(st, st->lineno, s, end);
	k_end = sep;
	while (k_end > s && conf_is_blank(k_end[-1]))
		k_end--;
	v = sep + 1;
	v_end = ini_find(v, end, NULL);
	while (v < v_end && conf_is_blank(*v))
		v++;
	while (v_end > v && conf_is_blank(v_end[-1]))
		v_end--;

	free(st->aside_key);
	free(st->aside_value);
	st->aside_key = xstrndup(s, (size_t)(k_end - s));
	st->aside_value = xstrndup(v, (size_t)(v_end - v));
	st->aside_line = st->lineno;
	return 0;
}

/* A section header: s is at '['; pass what is inside to the model. */
static int
ini_section(struct ini_state *st, const char *s, const char *end)
{
	char shown[CONF_ECHO_MAX + 8];
	const char *close, *p;
	char *inner;
	int r;

	close = memchr(s, ']', (size_t)(end - s));
	if (close == NULL)
		return ini_fail(st, st->lineno,
				"'%s' has no closing ']' (a section header "
				"such as [app] or [host \"web1\"])",
				conf_echo(shown, sizeof(shown), s, end));
	for (p = close + 1; p < end && conf_is_blank(*p); p++)
		;
	if (p < end && *p != ';' && *p != '#')
		return ini_fail(st, st->lineno,
				"'%s' has text after the section header "
				"(only a comment may follow the ']')",
				conf_echo(shown, sizeof(shown), s, end));

	inner = xstrndup(s + 1, (size_t)(close - s - 1));
	r = st->on_section(st->ctx, inner, st->lineno, st->err);
	free(inner);
	if (r != 0)
		st->fail_line = st->lineno;
	return r;
}

/* Hand inih one line of our choosing (fgets style, with the newline). */
static char *
ini_give(char *str, int num, const char *s, size_t len)
{
	if (num < 0 || len + 2 > (size_t)num)
		rf_bug("inih line buffer of %d bytes", num);
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* The ini_reader: one physical line per call, see the top of the file. */
static char *
ini_read_line(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	const char *line, *end, *p;

	if (st->fail_line != 0 || *st->pos == '\0')
		return NULL;
	line = st->pos;
	end = strchr(line, '\n');
	if (end == NULL)
		end = line + strlen(line);
	st->pos = *end == '\n' ? end + 1 : end;
	st->lineno++;

	if (end > line && end[-1] == '\r')
		end--;
	if (st->lineno == 1 && end - line >= 3 &&
	    memcmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3; /* UTF-8 byte order mark */

	for (p = line; p < end && conf_is_blank(*p); p++)
		;
	if (p == end || *p == ';' || *p == '#')
		return ini_give(str, num, "", 0);
	if (p > line) {
		ini_fail(st, st->lineno,
			 "indented line: a value cannot continue on the next "
			 "line (remove the leading whitespace; write each "
			 "key = value on one line)");
		return NULL;
	}
	if (*p == '[') {
		if (ini_section(st, p, end) != 0)
			return NULL;
		return ini_give(str, num, "", 0);
	}
	if ((size_t)(end - line) + 2 <= (size_t)num)
		return ini_give(str, num, line, (size_t)(end - line));
	if (ini_split_aside(st, line, end) != 0)
		return NULL;
	return ini_give(str, num, "x=", 2);
}

static int
ini_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;

	(void)section; /* the reader tracks sections, see the top */
	if (st->fail_line != 0)
		return 0;
	if (st->aside_line == st->lineno) {
		name = st->aside_key;
		value = st->aside_value;
	}
	if (st->on_key(st->ctx, name, value, st->lineno, st->err) != 0) {
		st->fail_line = st->lineno;
		return 0;
	}
	return 1;
}

/* The text of line n (1-based) of text, for a message. */
static void
ini_line_at(const char *text, int n, const char **s, const char **end)
{
	const char *p = text, *nl;

	for (; n > 1; n--) {
		nl = strchr(p, '\n');
		if (nl == NULL) {
			p += strlen(p);
			break;
		}
		p = nl + 1;
	}
	*s = p;
	*end = strchr(p, '\n');
	if (*end == NULL)
		*end = p + strlen(p);
	if (*end > p && (*end)[-1] == '\r')
		(*end)--;
	while (*s < *end && conf_is_blank(**s))
		(*s)++;
}

int
conf_ini_parse(const char *text, const char *file,
	       int (*on_section)(void *, const char *, int, struct rf_error *),
	       int (*on_key)(void *, const char *, const char *, int,
			     struct rf_error *),
	       void *ctx, struct rf_error *err)
{
	struct ini_state st;
	const char *s, *end;
	int r;

	memset(&st, 0, sizeof(st));
	st.file = file;
	st.text = text;
	st.pos = text;
	st.on_section = on_section;
	st.on_key = on_key;
	st.ctx = ctx;
	st.err = err;

	r = ini_parse_stream(ini_read_line, &st, ini_on_key, &st);

	free(st.aside_key);
	free(st.aside_value);
	if (r < 0)
		return rf_error_set(err, RF_EXIT_USAGE, NULL,
				    "%s: cannot parse the config (inih "
				    "returned %d)",
				    file, r);
	/* inih found a line without '=' before the first error of ours. */
	if (r > 0 && (st.fail_line == 0 || r < st.fail_line)) {
		ini_line_at(text, r, &s, &end);
		return ini_fail_syntax(&st, r, s, end);
	}
	return st.fail_line != 0 ? -1 : 0;
}
