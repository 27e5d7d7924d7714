/*
 * Release manifests: the entry list a validated artifact unpacks to, as
 * text the servers keep and compare. See include/manifest.h.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "manifest.h"
#include "xmalloc.h"

struct manifest_entry *
manifest_add(struct manifest *m, char type, const char *path)
{
	struct manifest_entry *e;

	if (m->n == m->alloc) {
		m->alloc = m->alloc == 0 ? 64 : m->alloc * 2;
		m->entries =
		    xreallocarray(m->entries, m->alloc, sizeof(*m->entries));
	}
	e = &m->entries[m->n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->path = xstrdup(path);
	e->mode = type == MANIFEST_LINK ? 0777 : 0;
	return e;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct manifest_entry *x = a, *y = b;

	return strcmp(x->path, y->path);
}

void
manifest_sort(struct manifest *m)
{
	if (m->n > 1)
		qsort(m->entries, m->n, sizeof(*m->entries), entry_cmp);
}

int
manifest_format_entry(const struct manifest_entry *e, struct buf *out)
{
	switch (e->type) {
	case MANIFEST_DIR:
		return buf_addf(out, "d\t%o\t-\t-\t%s\n", e->mode, e->path);
	case MANIFEST_FILE:
		return buf_addf(out, "f\t%o\t%llu\t%s\t%s\n", e->mode,
				(unsigned long long)e->size, e->sha256,
				e->path);
	case MANIFEST_LINK:
		return buf_addf(out, "l\t%o\t-\t%s\t%s\n", e->mode,
				e->target, e->path);
	default:
		rf_bug("manifest entry '%s' of type %d", e->path, e->type);
	}
}

int
manifest_format(const struct manifest *m, struct buf *out)
{
	size_t i;
	int r = 0;

	r |= buf_adds(out, MANIFEST_HEADER "\n");
	for (i = 0; i < m->n && r == 0; i++)
		r |= manifest_format_entry(&m->entries[i], out);
	r |= buf_addf(out, "# entries %zu\n", m->n);
	return r == 0 ? 0 : -1;
}

/* manifest_name_ok on len bytes. */
static int
name_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
			return 0;
	}
	return 1;
}

int
manifest_name_ok(const char *s)
{
	return name_ok(s, strlen(s));
}

/* Why a path is not one manifest_format writes, or NULL. */
static const char *
path_problem(const char *path, size_t len)
{
	const char *p = path, *end = path + len, *slash;
	size_t n;

	if (len == 0)
		return "empty path";
	if (len > MANIFEST_PATH_MAX)
		return "path longer than 4096 bytes";
	if (!name_ok(path, len))
		return "control character or backslash in the path";
	while (p < end) {
		slash = memchr(p, '/', (size_t)(end - p));
		n = slash != NULL ? (size_t)(slash - p) : (size_t)(end - p);
		if (n == 0)
			return "empty component in the path";
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return "'.' or '..' in the path";
		if (slash == NULL)
			break;
		p = slash + 1;
		if (p == end)
			return "path ends in '/'";
	}
	return NULL;
}

/*
 * A number in canonical form (no sign, no leading zero but for "0"), in
 * this base, at most max; -1 when it is not.
 */
static int
parse_number(const char *s, size_t len, unsigned int base, uint64_t max,
	     uint64_t *out)
{
	uint64_t v = 0, d;
	size_t i;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] >= (char)('0' + base))
			return -1;
		d = (uint64_t)(s[i] - '0');
		if (v > (max - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

static int
is_hex64(const char *s, size_t len)
{
	size_t i;

	if (len != 64)
		return 0;
	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* One entry line (without its newline) into m; NULL or why not. */
static const char *
parse_entry(struct manifest *m, const char *line, size_t len)
{
	const char *f[5], *p = line, *end = line + len, *tab;
	size_t flen[5], i;
	uint64_t mode, size = 0;
	struct manifest_entry *e;
	char *path, *target = NULL;
	const char *why;

	for (i = 0; i < 5; i++) {
		tab = i < 4 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
		if (i < 4 && tab == NULL)
			return "not five tab-separated fields";
		f[i] = p;
		flen[i] = i < 4 ? (size_t)(tab - p) : (size_t)(end - p);
		p = i < 4 ? tab + 1 : end;
	}
	if (memchr(f[4], '\t', flen[4]) != NULL)
		return "not five tab-separated fields";
	if (flen[0] != 1 ||
	    (f[0][0] != MANIFEST_DIR && f[0][0] != MANIFEST_FILE &&
	     f[0][0] != MANIFEST_LINK))
		return "type is not d, f or l";
	if (parse_number(f[1], flen[1], 8, 07777, &mode) != 0)
		return "mode is not octal permission bits";
	if (f[0][0] == MANIFEST_LINK && mode != 0777)
		return "a symlink's mode is not 777";
	if (f[0][0] == MANIFEST_FILE) {
		if (parse_number(f[2], flen[2], 10, INT64_MAX, &size) != 0)
			return "size is not a decimal number";
		if (!is_hex64(f[3], flen[3]))
			return "digest is not 64 lowercase hex digits";
	} else if (flen[2] != 1 || f[2][0] != '-')
		return "size of a directory or symlink is not '-'";
	if (f[0][0] == MANIFEST_DIR && (flen[3] != 1 || f[3][0] != '-'))
		return "data of a directory is not '-'";
	if (f[0][0] == MANIFEST_LINK) {
		if (flen[3] == 0 || flen[3] > MANIFEST_PATH_MAX)
			return "symlink target is empty or too long";
		if (!name_ok(f[3], flen[3]))
			return "control character or backslash in the "
			       "symlink target";
		target = xstrndup(f[3], flen[3]);
	}
	why = path_problem(f[4], flen[4]);
	if (why != NULL) {
		free(target);
		return why;
	}
	path = xstrndup(f[4], flen[4]);
	if (m->n > 0 && strcmp(m->entries[m->n - 1].path, path) >= 0) {
		free(path);
		free(target);
		return "not sorted by path, or a path listed twice";
	}
	e = manifest_add(m, f[0][0], path);
	free(path);
	e->mode = (unsigned int)mode;
	e->size = size;
	e->target = target;
	if (e->type == MANIFEST_FILE) {
		memcpy(e->sha256, f[3], 64);
		e->sha256[64] = '\0';
	}
	return NULL;
}

/* Every parent directory is listed, as a directory. */
static const char *
check_parents(const struct manifest *m, size_t *bad)
{
	const struct manifest_entry *e, *parent;
	char *dir, *slash;
	size_t i;

	for (i = 0; i < m->n; i++) {
		e = &m->entries[i];
		slash = strrchr(e->path, '/');
		if (slash == NULL)
			continue;
		dir = xstrndup(e->path, (size_t)(slash - e->path));
		parent = manifest_find(m, dir);
		free(dir);
		if (parent == NULL || parent->type != MANIFEST_DIR) {
			*bad = i;
			return parent == NULL ? "parent directory not listed"
					      : "parent is not a directory";
		}
	}
	return NULL;
}

int
manifest_parse(struct manifest *m, const char *text, size_t len,
	       size_t max_entries, const char *source, struct rf_error *err)
{
	static const char trailer[] = "# entries ";
	const char *p = text, *end = text + len, *nl, *why = NULL;
	size_t lineno = 0, llen, bad;
	uint64_t count;

	manifest_release(m);
	if (memchr(text, '\0', len) != NULL)
		return rf_error_set(err, RF_EXIT_UPLOAD, "upload",
				    "%s: not a manifest (a NUL byte)", source);
	for (;;) {
		if (p == end) {
			lineno++;
			why = "no '# entries N' line at the end";
			break;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		lineno++;
		if (nl == NULL) {
			why = "the last line does not end in a newline";
			break;
		}
		llen = (size_t)(nl - p);
		if (lineno == 1) {
			if (llen != strlen(MANIFEST_HEADER) ||
			    memcmp(p, MANIFEST_HEADER, llen) != 0) {
				why = "not a manifest (no '" MANIFEST_HEADER
				      "' line)";
				break;
			}
		} else if (llen >= sizeof(trailer) - 1 &&
			   memcmp(p, trailer, sizeof(trailer) - 1) == 0) {
			if (parse_number(p + sizeof(trailer) - 1,
					 llen - (sizeof(trailer) - 1), 10,
					 SIZE_MAX, &count) != 0 ||
			    count != m->n)
				why = "the entry count is wrong";
			else if (nl + 1 != end)
				why = "text after the '# entries' line";
			break;
		} else if (m->n >= max_entries) {
			why = "too many entries";
			break;
		} else {
			why = parse_entry(m, p, llen);
			if (why != NULL)
				break;
		}
		p = nl + 1;
	}
	if (why == NULL) {
		why = check_parents(m, &bad);
		if (why != NULL)
			lineno = bad + 2;
	}
	if (why != NULL) {
		manifest_release(m);
		return rf_error_set(err, RF_EXIT_UPLOAD, "upload", "%s:%zu: %s",
				    source, lineno, why);
	}
	return 0;
}

const struct manifest_entry *
manifest_find(const struct manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(path, m->entries[mid].path);
		if (c == 0)
			return &m->entries[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int
manifest_entry_same(const struct manifest_entry *a,
		    const struct manifest_entry *b)
{
	if (a->type != b->type || a->mode != b->mode)
		return 0;
	switch (a->type) {
	case MANIFEST_FILE:
		return a->size == b->size && strcmp(a->sha256, b->sha256) == 0;
	case MANIFEST_LINK:
		return strcmp(a->target, b->target) == 0;
	default:
		return 1;
	}
}

static void
copy_entry(struct manifest *m, const struct manifest_entry *from)
{
	struct manifest_entry *e = manifest_add(m, from->type, from->path);

	e->mode = from->mode;
	e->size = from->size;
	memcpy(e->sha256, from->sha256, sizeof(e->sha256));
	if (from->target != NULL)
		e->target = xstrdup(from->target);
}

void
manifest_diff(const struct manifest *base, const struct manifest *next,
	      struct manifest *keep, struct manifest *send)
{
	size_t i, j = 0;
	int c = 1;

	for (i = 0; i < next->n; i++) {
		/* Both are sorted: one pass over each. */
		while (j < base->n && (c = strcmp(base->entries[j].path,
						  next->entries[i].path)) < 0)
			j++;
		if (j < base->n && c == 0 &&
		    manifest_entry_same(&base->entries[j], &next->entries[i]))
			copy_entry(keep, &next->entries[i]);
		else
			copy_entry(send, &next->entries[i]);
	}
}

/*
 * The listing, in three parts read by one awk: sha256sum's lines for the
 * regular files, a "=" line (sha256sum never prints one), then one line
 * per entry from find, sorted on the fifth field, the path, into the
 * scratch file while the files are hashed (two cores: the walk and sort
 * cost no time of their own), and read by awk once stdin has ended, which
 * is after the sort has. sha256sum escapes a name holding a newline or a
 * backslash by starting its line with "\", so such a file gets no digest
 * and prints "?"; a name holding a newline or a tab prints lines with other
 * than five fields, which become "?" lines too, and no "?" line matches an
 * approved manifest. Entries of other types print their find type letter.
 * Every process here costs a server about 4 ms: no subshells beyond the
 * pipeline's, the count from awk, the tab written as itself.
 */
static const char listing_head[] =
    "{ printf '%s\\n' '" MANIFEST_HEADER "'\n"
    "{\n"
    "\tfind . -mindepth 1 -printf '%y\\t%m\\t%s\\t%l\\t%P\\n'";
static const char listing_sort[] = " | LC_ALL=C sort -t '\t' -k 5 >";
static const char listing_mid[] =
    "\n"
    "\twait $LJ\n"
    "\techo =\n"
    "} | LC_ALL=C awk -F '\\t' '\n"
    "\t!m && $0 == \"=\" { m = 1; next }\n"
    "\t!m { if (substr($0, 65, 4) == \"  ./\") "
    "h[substr($0, 69)] = substr($0, 1, 64); next }\n"
    "\t{ n++ }\n"
    "\tNF != 5 { print \"?\\t?\\t?\\t?\\t\" $0; next }\n"
    "\t$1 == \"d\" { print \"d\\t\" $2 \"\\t-\\t-\\t\" $5; next }\n"
    "\t$1 == \"l\" { print \"l\\t\" $2 \"\\t-\\t\" $4 \"\\t\" $5; next }\n"
    "\t$1 == \"f\" && ($5 in h) "
    "{ print \"f\\t\" $2 \"\\t\" $3 \"\\t\" h[$5] \"\\t\" $5; next }\n"
    "\t{ print $1 \"\\t\" $2 \"\\t?\\t?\\t\" $5 }\n"
    "\tEND { printf \"# entries %d\\n\", n }\n"
    "' - ";

int
manifest_listing_script(struct buf *out, const char *scratch,
			const char *snapshot, const char *hashes)
{
	if (buf_adds(out, listing_head) != 0)
		return -1;
	if (snapshot != NULL &&
	    (buf_adds(out, " -type f -fprintf ") != 0 ||
	     buf_adds(out, snapshot) != 0 ||
	     buf_adds(out, " '" MANIFEST_SNAPSHOT_FORMAT "'") != 0))
		return -1;
	if (buf_adds(out, listing_sort) != 0 || buf_adds(out, scratch) != 0 ||
	    buf_adds(out, " & LJ=$!\n\t") != 0 ||
	    buf_adds(out, hashes != NULL ? hashes : MANIFEST_HASH_ALL) != 0 ||
	    buf_adds(out, listing_mid) != 0 || buf_adds(out, scratch) != 0)
		return -1;
	return buf_adds(out, "; }");
}

void
manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->entries[i].path);
		free(m->entries[i].target);
	}
	free(m->entries);
	m->entries = NULL;
	m->n = m->alloc = 0;
}
