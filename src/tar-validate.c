/*
 * Release tarballs, the reading half: validation before anything reaches
 * a server, and the manifest of what the server's GNU tar will unpack.
 * One of the two files that include <archive.h>; see include/artifact.h
 * for the API.
 *
 * libarchive and GNU tar do not read every tarball alike: libarchive
 * ignores pax global headers and AppleDouble "._" entries, treats pax
 * linkpath on a file as a hard link, honours sizes GNU tar ignores, and
 * so on. So the decompressed stream is read twice in one pass: a walk of
 * the raw headers here accepts only what both read the same way, and
 * libarchive's entry list must then equal the walk's, entry by entry.
 *
 *	file -> reader 1 (filters, raw format) -> chain_read -> reader 2 (tar)
 *	                                              |
 *	                                          header walk
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "artifact.h"
#include "buf.h"
#include "error.h"
#include "manifest.h"
#include "tar-common.h"
#include "xmalloc.h"

/*
 * The compression ratio is only checked once the unpacked size passes
 * this: a small tarball of repetitive text may compress very well and is
 * harmless, while a bomb declares hundreds of MiB from a few hundred KiB.
 */
#define RATIO_FLOOR (64ULL << 20)

/*
 * The manifest's path names, parents included, in memory: a million
 * entries of 256 bytes. Far past any real release, it stops a tarball
 * whose every path implies thousands of new parent directories.
 */
#define NAMES_MAX (256ULL << 20)

/* A pax header holds a few names and numbers; no writer needs more. */
#define PAX_MAX (64 * 1024)

#define STRICT_HINT                                                            \
	"relflip reads plain ustar, pax and GNU tar entries only; " PACK_HINT

#define BLOCK 512

/* One entry as the raw headers give it, in archive order. */
struct walk_rec {
	char *path;        /* as the headers spell it */
	char *link;        /* hard link or symlink target; else NULL */
	uint64_t size;     /* data bytes after the header */
	unsigned int mode; /* the 07777 bits */
	char type;         /* '0' file, '1' hard link, '2' symlink, '5' dir */
	int hashed;        /* a file's data has all been seen */
	char sha256[65];
};

enum walk_state {
	W_HEADER, /* collecting a header block */
	W_EXT,    /* collecting the data of an extension header */
	W_DATA,   /* hashing a file's data */
	W_SKIP,   /* skipping padding */
	W_END,    /* after the end-of-archive block */
	W_FAILED, /* refused; later bytes only pass through */
};

/* The header walk: fed every byte reader 2 gets, before it gets them. */
struct walker {
	const char *shown;
	enum walk_state st;
	unsigned char hdr[BLOCK];
	size_t hlen;
	uint64_t headers; /* header blocks read, for messages */

	char ext_type; /* 'x', 'g', 'L' or 'K' */
	char ext_name[SHOW_MAX + 8];
	char *ext;
	size_t ext_len, ext_want;
	uint64_t left; /* W_DATA, W_SKIP: bytes still to come */

	/* What extension headers set for the next entry. */
	int have_x;
	char *x_path, *x_link;
	int x_has_size;
	uint64_t x_size;
	char *long_name, *long_link;

	/* Records walked, not yet matched: q[head] to q[n - 1]. */
	struct walk_rec *q;
	size_t head, n, cap;
	EVP_MD_CTX *md; /* the last record's data, in W_DATA */

	int failed;
	struct rf_error err;
};

enum path_kind {
	KIND_FILE = 1,
	KIND_DIR,
	KIND_LINK,
	KIND_PARENT, /* a directory only implied by the paths under it */
};

/* An index over the manifest being built: path -> entry and kind. */
struct path_slot {
	size_t idx; /* manifest index + 1; 0 for an empty slot */
	enum path_kind kind;
};

struct path_set {
	const struct manifest *man;
	struct path_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

static uint64_t
path_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot for the first len bytes of path: found, or the empty one. */
static struct path_slot *
path_set_slot(struct path_set *set, const char *path, size_t len)
{
	size_t i = (size_t)path_hash(path, len) & (set->cap - 1);
	struct path_slot *s;
	const char *p;

	for (;;) {
		s = &set->slots[i];
		if (s->idx == 0)
			return s;
		p = set->man->entries[s->idx - 1].path;
		if (strncmp(p, path, len) == 0 && p[len] == '\0')
			return s;
		i = (i + 1) & (set->cap - 1);
	}
}

/* The slot of the first len bytes of path, or NULL when not in the set. */
static struct path_slot *
path_set_get(struct path_set *set, const char *path, size_t len)
{
	struct path_slot *s;

	if (set->cap == 0)
		return NULL;
	s = path_set_slot(set, path, len);
	return s->idx == 0 ? NULL : s;
}

/* Index manifest entry idx, whose path is not in the set yet. */
static void
path_set_add(struct path_set *set, size_t idx, enum path_kind kind)
{
	struct path_slot *old = set->slots, *s;
	size_t oldcap = set->cap, i;
	const char *path;

	if ((set->n + 1) * 2 > set->cap) {
		set->cap = set->cap == 0 ? 256 : set->cap * 2;
		set->slots = xcalloc(set->cap, sizeof(*set->slots));
		for (i = 0; i < oldcap; i++) {
			if (old[i].idx == 0)
				continue;
			path = set->man->entries[old[i].idx - 1].path;
			s = path_set_slot(set, path, strlen(path));
			*s = old[i];
		}
		free(old);
	}
	path = set->man->entries[idx].path;
	s = path_set_slot(set, path, strlen(path));
	s->idx = idx + 1;
	s->kind = kind;
	set->n++;
}

static void
path_set_clear(struct path_set *set)
{
	free(set->slots);
	set->slots = NULL;
	set->cap = set->n = 0;
}

/*
 * The artifact as libarchive reads it: our own callback, so one pass
 * gives the bytes and their digest.
 */
static la_ssize_t
tar_file_read(struct archive *a, void *data, const void **out)
{
	struct tar_file *f = data;
	ssize_t n;

	for (;;) {
		if (interrupted) {
			f->stopped = 1;
			archive_set_error(a, EINTR, "interrupted");
			return -1;
		}
		n = read(f->fd, f->buf, IO_BUFSZ);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		archive_set_error(a, errno, "read error: %s", strerror(errno));
		return -1;
	}
	if (n > 0 && EVP_DigestUpdate(f->md, f->buf, (size_t)n) != 1) {
		f->stopped = 1;
		archive_set_error(a, EIO, "sha-256 update failed");
		return -1;
	}
	f->nread += (uint64_t)n;
	*out = f->buf;
	return n;
}

int
tar_file_open(struct tar_file *f, const char *path, const char *shown,
	      const char *stage, struct rf_error *err)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd == -1)
		return rf_error_set(err, RF_EXIT_ARTIFACT, stage,
				    "cannot open '%s': %s", shown,
				    strerror(errno));
	if (fstat(f->fd, &st) != 0)
		return rf_error_set(err, RF_EXIT_ARTIFACT, stage,
				    "cannot stat '%s': %s", shown,
				    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return rf_error_set(err, RF_EXIT_ARTIFACT, stage,
				    "'%s' is not a regular file", shown);
	f->size = (uint64_t)st.st_size;
	f->buf = xmalloc(IO_BUFSZ);
	f->md = EVP_MD_CTX_new();
	if (f->md == NULL || EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
		return rf_error_set(err, RF_EXIT_INTERNAL, stage,
				    "cannot start sha-256");
	return 0;
}

int
tar_read_format(struct archive *a)
{
	int rc = archive_read_support_format_tar(a);

	/*
	 * By default libarchive folds an entry named "._x" into the next
	 * one as macOS metadata: GNU tar unpacks it as a file.
	 */
	if (rc == ARCHIVE_OK)
		rc = archive_read_set_format_option(a, "tar", "mac-ext", NULL);
	return rc;
}

void
tar_read_filters(struct archive *a)
{
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_none(a);
}

int
tar_file_attach(struct archive *a, struct tar_file *f)
{
	return archive_read_open(a, f, NULL, tar_file_read, NULL);
}

/* Read and hash what libarchive left (trailing blocks), then the digest. */
int
tar_file_finish(struct tar_file *f, const char *shown, const char *stage,
		char hex[65], struct rf_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ssize_t n;

	for (;;) {
		if (interrupted)
			return rf_error_set(err, RF_EXIT_INTERRUPTED, stage,
					    "interrupted");
		n = read(f->fd, f->buf, IO_BUFSZ);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rf_error_set(err, RF_EXIT_ARTIFACT, stage,
					    "cannot read '%s': %s", shown,
					    strerror(errno));
		}
		if (EVP_DigestUpdate(f->md, f->buf, (size_t)n) != 1)
			return rf_error_set(err, RF_EXIT_INTERNAL, stage,
					    "sha-256 update failed");
		f->nread += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(f->md, md, &mdlen) != 1)
		return rf_error_set(err, RF_EXIT_INTERNAL, stage,
				    "sha-256 failed");
	tar_digest_hex(md, mdlen, hex);
	return 0;
}

void
tar_file_close(struct tar_file *f)
{
	EVP_MD_CTX_free(f->md);
	free(f->buf);
	if (f->fd != -1)
		close(f->fd);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

/* The header walk. */

static void walk_fail(struct walker *w, const char *name, const char *hint,
		      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Refuse the archive at this header; later bytes are not read. */
static void
walk_fail(struct walker *w, const char *name, const char *hint, const char *fmt,
	  ...)
{
	char why[384], shown[SHOW_MAX + 8];
	va_list ap;

	if (w->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (name != NULL) {
		tar_show_name(shown, sizeof(shown), name);
		rf_error_set(&w->err, RF_EXIT_ARTIFACT, "validate",
			     "%s: entry '%s': %s", w->shown, shown, why);
	} else
		rf_error_set(&w->err, RF_EXIT_ARTIFACT, "validate",
			     "%s: header block %llu: %s", w->shown,
			     (unsigned long long)w->headers, why);
	if (hint != NULL)
		rf_error_hint(&w->err, "%s", hint);
	w->failed = 1;
	w->st = W_FAILED;
}

static void
walk_clear_ext(struct walker *w)
{
	free(w->x_path);
	free(w->x_link);
	free(w->long_name);
	free(w->long_link);
	w->x_path = w->x_link = w->long_name = w->long_link = NULL;
	w->have_x = w->x_has_size = 0;
	w->x_size = 0;
}

static int
block_is_zero(const unsigned char *b)
{
	size_t i;

	for (i = 0; i < BLOCK; i++) {
		if (b[i] != 0)
			return 0;
	}
	return 1;
}

/*
 * A numeric header field as GNU tar and libarchive both read it: leading
 * spaces, octal digits, then only NULs and spaces; or, where base256 is
 * set, base-256 with the first byte 0x80 (GNU tar's only positive form;
 * libarchive reads others too). A leading NUL is refused: GNU tar skips
 * it, libarchive reads 0. -1 when the field is anything else.
 */
static int
parse_field(const unsigned char *f, size_t len, int base256, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (base256 && f[0] == 0x80) {
		for (i = 1; i < len; i++) {
			if ((v >> 55) != 0)
				return -1;
			v = (v << 8) | f[i];
		}
		if (v > INT64_MAX)
			return -1;
		*out = v;
		return 0;
	}
	while (i < len && f[i] == ' ')
		i++;
	if (i == len || f[i] < '0' || f[i] > '7')
		return -1;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++)
		v = (v << 3) | (uint64_t)(f[i] - '0');
	for (; i < len; i++) {
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	}
	*out = v;
	return 0;
}

/* A time or id field: as parse_field, negative base-256 allowed too. */
static int
field_ok(const unsigned char *f, size_t len)
{
	uint64_t v;

	return f[0] == 0xff || parse_field(f, len, 1, &v) == 0;
}

static int
checksum_ok(const unsigned char *h)
{
	uint64_t want;
	long usum = 0, ssum = 0;
	size_t i;

	if (parse_field(h + 148, 8, 0, &want) != 0)
		return 0;
	for (i = 0; i < BLOCK; i++) {
		if (i >= 148 && i < 156) {
			usum += ' ';
			ssum += ' ';
		} else {
			usum += h[i];
			ssum += (signed char)h[i];
		}
	}
	return (uint64_t)usum == want || (ssum >= 0 && (uint64_t)ssum == want);
}

static size_t
field_len(const unsigned char *f, size_t max)
{
	const unsigned char *z = memchr(f, '\0', max);

	return z != NULL ? (size_t)(z - f) : max;
}

/* The name a header gives itself (ustar prefix/name, or name alone). */
static char *
header_name(const unsigned char *h, int gnu)
{
	size_t nlen = field_len(h, 100), plen;
	char *s;

	if (gnu || h[345] == '\0')
		return xstrndup((const char *)h, nlen);
	plen = field_len(h + 345, 155);
	s = xmalloc(plen + 1 + nlen + 1);
	memcpy(s, h + 345, plen);
	s[plen] = '/';
	memcpy(s + plen + 1, h, nlen);
	s[plen + 1 + nlen] = '\0';
	return s;
}

static const char *
type_name(char type)
{
	switch (type) {
	case '3':
		return "character device";
	case '4':
		return "block device";
	case '6':
		return "FIFO";
	case '7':
		return "contiguous file (type '7', not read alike)";
	case 'S':
		return "GNU sparse file";
	case 'M':
		return "GNU multivolume continuation";
	case 'V':
		return "GNU volume label";
	case 'N':
		return "old GNU long-names entry";
	case 'D':
		return "GNU incremental dump directory";
	case 'A':
		return "Solaris ACL header";
	case 'X':
		return "Solaris extended header";
	case 'E':
	case 'I':
		return "vendor extension header";
	default:
		return NULL;
	}
}

/* Push a record; its strings are handed over. */
static struct walk_rec *
walk_push(struct walker *w)
{
	struct walk_rec *r;

	if (w->n == w->cap) {
		w->cap = w->cap == 0 ? 64 : w->cap * 2;
		w->q = xreallocarray(w->q, w->cap, sizeof(*w->q));
	}
	r = &w->q[w->n++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* The oldest record not yet matched, or NULL. Valid until walk_pop. */
static struct walk_rec *
walk_peek(struct walker *w)
{
	return w->head < w->n ? &w->q[w->head] : NULL;
}

static void
walk_pop(struct walker *w)
{
	struct walk_rec *r = &w->q[w->head++];

	free(r->path);
	free(r->link);
	/* Reader 2 trails the walk by a buffer or so: keep the queue small. */
	if (w->head == w->n)
		w->head = w->n = 0;
	else if (w->head >= 64 && w->head * 2 >= w->n) {
		memmove(w->q, w->q + w->head, (w->n - w->head) * sizeof(*w->q));
		w->n -= w->head;
		w->head = 0;
	}
}

static void
walk_digest(struct walker *w, struct walk_rec *r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(w->md, md, &len) != 1) {
		walk_fail(w, r->path, NULL, "sha-256 failed");
		w->err.code = RF_EXIT_INTERNAL;
		return;
	}
	tar_digest_hex(md, len, r->sha256);
	r->hashed = 1;
}

static void
walk_after_data(struct walker *w, uint64_t size)
{
	w->left = (BLOCK - size % BLOCK) % BLOCK;
	w->st = w->left > 0 ? W_SKIP : W_HEADER;
}

/* A header of an entry: file, hard link, symlink or directory. */
static void
walk_entry(struct walker *w, const unsigned char *h, int gnu, char type,
	   uint64_t size)
{
	char *name = NULL, *link = NULL;
	uint64_t mode;
	size_t len, i;
	struct walk_rec *r;

	if (w->long_name != NULL) {
		name = w->long_name;
		w->long_name = NULL;
	} else if (w->x_path != NULL) {
		name = w->x_path;
		w->x_path = NULL;
	} else {
		name = header_name(h, gnu);
		/* libarchive adds no '/' after a prefix ending in one. */
		if (!gnu && h[345] != '\0' &&
		    (h[345 + field_len(h + 345, 155) - 1] == '/' ||
		     h[0] == '\0')) {
			walk_fail(w, name, STRICT_HINT,
				  "ustar prefix field ends in '/' or has no "
				  "name after it");
			goto out;
		}
	}
	if (w->long_link != NULL) {
		link = w->long_link;
		w->long_link = NULL;
	} else if (w->x_link != NULL) {
		link = w->x_link;
		w->x_link = NULL;
	} else if (h[157] != '\0' || type == '1' || type == '2')
		link = xstrndup((const char *)h + 157, field_len(h + 157, 100));

	if (gnu) {
		/* Offset, long names, sparse map, extended, real size. */
		for (i = 369; i < 500; i++) {
			if (h[i] != 0) {
				walk_fail(w, name, STRICT_HINT,
					  "GNU sparse or multivolume fields "
					  "are set");
				goto out;
			}
		}
	}
	if (parse_field(h + 100, 8, 0, &mode) != 0 || mode > 07777) {
		walk_fail(w, name, STRICT_HINT,
			  "mode field is not octal permission bits");
		goto out;
	}
	if (!field_ok(h + 108, 8) || !field_ok(h + 116, 8) ||
	    !field_ok(h + 136, 12)) {
		walk_fail(w, name, STRICT_HINT,
			  "uid, gid or mtime field is not a number");
		goto out;
	}
	if (w->x_has_size)
		size = w->x_size;
	len = strlen(name);
	if (type != '5' && len > 0 && name[len - 1] == '/') {
		walk_fail(w, name, STRICT_HINT,
			  "the name ends in '/' but the entry is not a "
			  "directory (GNU tar and libarchive differ on it)");
		goto out;
	}
	if ((type == '0' || type == '\0' || type == '5') && link != NULL) {
		walk_fail(w, name, STRICT_HINT,
			  "a %s entry carries a link name",
			  type == '5' ? "directory" : "file");
		goto out;
	}
	if (type != '0' && type != '\0' && (size != 0 || w->x_has_size)) {
		walk_fail(w, name, STRICT_HINT,
			  "a %s entry declares %llu bytes of data (GNU tar "
			  "and libarchive differ on it)",
			  type == '1'   ? "hard link"
			  : type == '2' ? "symlink"
					: "directory",
			  (unsigned long long)size);
		goto out;
	}

	r = walk_push(w);
	r->path = name;
	r->link = link;
	name = link = NULL; /* transferred */
	r->size = size;
	r->mode = (unsigned int)mode;
	r->type = type == '\0' ? '0' : type;
	walk_clear_ext(w);
	if (r->type != '0') {
		w->st = W_HEADER;
		goto out;
	}
	if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		walk_fail(w, r->path, NULL, "cannot start sha-256");
		w->err.code = RF_EXIT_INTERNAL;
		goto out;
	}
	if (size == 0) {
		walk_digest(w, r);
		if (!w->failed)
			w->st = W_HEADER;
		goto out;
	}
	w->left = size;
	w->st = W_DATA;
out:
	free(name);
	free(link);
}

/* The next "LEN KEY=VALUE\n" record of a pax header: 1, 0 at end, -1. */
static int
pax_next(const char **pp, const char *end, const char **key, size_t *klen,
	 const char **val, size_t *vlen)
{
	const char *p = *pp, *start = *pp, *rec_end, *eq;
	size_t len = 0;

	if (p == end)
		return 0;
	if (*p < '1' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		len = len * 10 + (size_t)(*p - '0');
		if (len > PAX_MAX)
			return -1;
		p++;
	}
	if (p == end || *p != ' ' || len > (size_t)(end - start))
		return -1;
	p++;
	rec_end = start + len;
	if (rec_end <= p || rec_end[-1] != '\n')
		return -1;
	eq = memchr(p, '=', (size_t)(rec_end - 1 - p));
	if (eq == NULL || eq == p)
		return -1;
	*key = p;
	*klen = (size_t)(eq - p);
	*val = eq + 1;
	*vlen = (size_t)(rec_end - 1 - (eq + 1));
	*pp = rec_end;
	return 1;
}

static int
key_is(const char *key, size_t klen, const char *name)
{
	return klen == strlen(name) && memcmp(key, name, klen) == 0;
}

static int
key_has_prefix(const char *key, size_t klen, const char *prefix)
{
	return klen >= strlen(prefix) &&
	       memcmp(key, prefix, strlen(prefix)) == 0;
}

/* Decimal digits, at most max: the form GNU tar's pax decoder accepts. */
static int
pax_number(const char *v, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || len > 19)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n > max)
		return -1;
	*out = n;
	return 0;
}

/* [-]digits[.digits]: a pax time. */
static int
pax_time_ok(const char *v, size_t len)
{
	size_t i = 0, digits = 0;

	if (i < len && v[i] == '-')
		i++;
	for (; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		digits++;
	if (digits == 0 || digits > 19)
		return 0;
	if (i == len)
		return 1;
	if (v[i++] != '.' || i == len)
		return 0;
	for (; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
	}
	return 1;
}

/* A pax key for a message, escaped. */
static void
show_key(char *dst, size_t len, const char *key, size_t klen)
{
	char raw[SHOW_MAX + 1];

	snprintf(raw, sizeof(raw), "%.*s",
		 (int)(klen < SHOW_MAX ? klen : SHOW_MAX), key);
	tar_show_name(dst, len, raw);
}

/* Why a pax key of a local header is refused, or NULL. */
static const char *
pax_key_refused(const char *key, size_t klen)
{
	static const char *const plain[] = {
		"atime", "comment", "ctime", "gid",      "gname", "mtime",
		"uid",   "uname",   "path",  "linkpath", "size",
	};
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		if (key_is(key, klen, plain[i]))
			return NULL;
	}
	if (key_has_prefix(key, klen, "GNU.sparse."))
		return "GNU sparse file";
	if (key_is(key, klen, "hdrcharset") || key_is(key, klen, "charset"))
		return "changes how names are read";
	if (key_has_prefix(key, klen, "SCHILY.xattr.") ||
	    key_has_prefix(key, klen, "LIBARCHIVE.xattr."))
		return "an extended attribute: the server's tar does not "
		       "restore it and the manifest cannot show it";
	return "not a key relflip reads alike with GNU tar";
}

/* The records of a pax 'x' header, for the next entry. */
static void
walk_pax_local(struct walker *w)
{
	const char *p = w->ext, *end = w->ext + w->ext_len, *key, *val;
	char shown[SHOW_MAX + 8];
	size_t klen, vlen;
	unsigned int seen = 0, bit;
	uint64_t n;
	const char *why;
	int rc;

	w->have_x = 1;
	while ((rc = pax_next(&p, end, &key, &klen, &val, &vlen)) == 1) {
		why = pax_key_refused(key, klen);
		if (why != NULL) {
			show_key(shown, sizeof(shown), key, klen);
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "pax key '%s': %s", shown, why);
			return;
		}
		bit = key_is(key, klen, "path")       ? 1
		      : key_is(key, klen, "linkpath") ? 2
		      : key_is(key, klen, "size")     ? 4
						      : 0;
		if ((seen & bit) != 0) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "pax key '%.*s' given twice", (int)klen, key);
			return;
		}
		seen |= bit;
		if (bit == 1 || bit == 2) {
			if (vlen == 0) {
				/* libarchive would keep the header's name. */
				walk_fail(w, w->ext_name, STRICT_HINT,
					  "empty pax '%.*s'", (int)klen, key);
				return;
			}
			if (bit == 1)
				w->x_path = xstrndup(val, vlen);
			else
				w->x_link = xstrndup(val, vlen);
		} else if (bit == 4) {
			if (pax_number(val, vlen, INT64_MAX, &n) != 0) {
				walk_fail(w, w->ext_name, STRICT_HINT,
					  "pax size is not a decimal number");
				return;
			}
			w->x_has_size = 1;
			w->x_size = n;
		} else if ((key_is(key, klen, "mtime") ||
			    key_is(key, klen, "atime") ||
			    key_is(key, klen, "ctime")) &&
			   !pax_time_ok(val, vlen)) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "pax '%.*s' is not a time", (int)klen, key);
			return;
		} else if ((key_is(key, klen, "uid") ||
			    key_is(key, klen, "gid")) &&
			   pax_number(val, vlen, INT64_MAX, &n) != 0) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "pax '%.*s' is not a number", (int)klen, key);
			return;
		}
	}
	if (rc < 0)
		walk_fail(w, w->ext_name, STRICT_HINT,
			  "malformed pax extended header");
}

/*
 * A pax global header applies to every later entry in GNU tar and to
 * none in libarchive: only one that sets nothing but comments, as `git
 * archive` writes with the commit id, reads the same in both.
 */
static void
walk_pax_global(struct walker *w)
{
	const char *p = w->ext, *end = w->ext + w->ext_len, *key, *val;
	char shown[SHOW_MAX + 8];
	size_t klen, vlen;
	int rc;

	while ((rc = pax_next(&p, end, &key, &klen, &val, &vlen)) == 1) {
		if (key_is(key, klen, "comment"))
			continue;
		show_key(shown, sizeof(shown), key, klen);
		walk_fail(w, w->ext_name, STRICT_HINT,
			  "pax global header sets '%s' for every later entry "
			  "(GNU tar applies it, libarchive ignores it)",
			  shown);
		return;
	}
	if (rc < 0)
		walk_fail(w, w->ext_name, STRICT_HINT,
			  "malformed pax global header");
}

/* An extension header's data is all in w->ext. */
static void
walk_ext_done(struct walker *w)
{
	char **slot;

	switch (w->ext_type) {
	case 'x':
	case 'g':
		if (memchr(w->ext, '\0', w->ext_len) != NULL) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "NUL byte in a pax header");
			return;
		}
		if (w->ext_type == 'x')
			walk_pax_local(w);
		else
			walk_pax_global(w);
		break;
	default:
		/* GNU writes the name and one NUL; readers stop at a NUL. */
		if (w->ext_len < 2 || w->ext[w->ext_len - 1] != '\0' ||
		    memchr(w->ext, '\0', w->ext_len - 1) != NULL) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "GNU long %s is not one NUL-terminated name",
				  w->ext_type == 'L' ? "name" : "link");
			return;
		}
		slot = w->ext_type == 'L' ? &w->long_name : &w->long_link;
		*slot = xstrndup(w->ext, w->ext_len - 1);
		break;
	}
	if (!w->failed)
		walk_after_data(w, w->ext_len);
}

static void
walk_ext_start(struct walker *w, const unsigned char *h, char type,
	       uint64_t size)
{
	char *name = header_name(h, 1);

	snprintf(w->ext_name, sizeof(w->ext_name), "%s", name);
	free(name);
	if (type == 'x' || type == 'g') {
		if (w->have_x || w->long_name != NULL || w->long_link != NULL) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "a pax header after another extended "
				  "header for the same entry");
			return;
		}
		if (size > PAX_MAX) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "pax header of %llu bytes (at most 64 KiB)",
				  (unsigned long long)size);
			return;
		}
	} else {
		if (w->have_x ||
		    (type == 'L' ? w->long_name : w->long_link) != NULL) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "GNU long %s after another extended header "
				  "for the same entry",
				  type == 'L' ? "name" : "link");
			return;
		}
		if (size > ENTRY_PATH_MAX + 1) {
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "GNU long %s of %llu bytes (at most 4096)",
				  type == 'L' ? "name" : "link",
				  (unsigned long long)size);
			return;
		}
	}
	w->ext_type = type;
	w->ext_len = 0;
	w->ext_want = (size_t)size;
	if (size == 0)
		walk_ext_done(w);
	else
		w->st = W_EXT;
}

static void
walk_header(struct walker *w)
{
	const unsigned char *h = w->hdr;
	char type = (char)h[156];
	uint64_t size;
	const char *what;
	char *name;
	int gnu;

	w->headers++;
	if (block_is_zero(h)) {
		if (w->have_x || w->long_name != NULL || w->long_link != NULL)
			walk_fail(w, w->ext_name, STRICT_HINT,
				  "an extended header with no entry after it");
		else
			w->st = W_END;
		return;
	}
	if (!checksum_ok(h)) {
		walk_fail(w, NULL,
			  "the file is damaged or not a tar archive; build "
			  "or download it again",
			  "bad header checksum");
		return;
	}
	if (memcmp(h + 257,
		   "ustar\0"
		   "00",
		   8) == 0)
		gnu = 0;
	else if (memcmp(h + 257, "ustar  \0", 8) == 0)
		gnu = 1;
	else {
		name = header_name(h, 1);
		walk_fail(w, name, STRICT_HINT,
			  "not a POSIX ustar or GNU tar header (an older tar "
			  "format)");
		free(name);
		return;
	}
	if (parse_field(h + 124, 12, 1, &size) != 0) {
		name = header_name(h, gnu);
		walk_fail(w, name, STRICT_HINT,
			  "size field is not a number GNU tar and libarchive "
			  "read alike");
		free(name);
		return;
	}
	switch (type) {
	case 'x':
	case 'g':
	case 'L':
	case 'K':
		walk_ext_start(w, h, type, size);
		return;
	case '0':
	case '\0':
	case '1':
	case '2':
	case '5':
		walk_entry(w, h, gnu, type, size);
		return;
	}
	name = w->long_name != NULL ? xstrdup(w->long_name)
	       : w->x_path != NULL  ? xstrdup(w->x_path)
				    : header_name(h, gnu);
	what = type_name(type);
	if (type == '3' || type == '4' || type == '6')
		walk_fail(w, name,
			  "only files, directories and symlinks can be "
			  "deployed",
			  "%s", what);
	else if (what != NULL)
		walk_fail(w, name, STRICT_HINT, "%s", what);
	else if (type > 0x20 && type < 0x7f)
		walk_fail(w, name, STRICT_HINT, "unknown entry type '%c'",
			  type);
	else
		walk_fail(w, name, STRICT_HINT, "unknown entry type 0x%02x",
			  (unsigned char)type);
	free(name);
}

/* Walk n more bytes of the decompressed stream. */
static void
walk_feed(struct walker *w, const unsigned char *p, size_t n)
{
	struct walk_rec *r;
	size_t k;

	while (n > 0) {
		switch (w->st) {
		case W_HEADER:
			k = BLOCK - w->hlen < n ? BLOCK - w->hlen : n;
			memcpy(w->hdr + w->hlen, p, k);
			w->hlen += k;
			if (w->hlen == BLOCK) {
				w->hlen = 0;
				walk_header(w);
			}
			break;
		case W_EXT:
			k = w->ext_want - w->ext_len < n
				? w->ext_want - w->ext_len
				: n;
			memcpy(w->ext + w->ext_len, p, k);
			w->ext_len += k;
			if (w->ext_len == w->ext_want)
				walk_ext_done(w);
			break;
		case W_DATA:
			k = w->left < n ? (size_t)w->left : n;
			r = &w->q[w->n - 1];
			if (EVP_DigestUpdate(w->md, p, k) != 1) {
				walk_fail(w, r->path, NULL,
					  "sha-256 update failed");
				w->err.code = RF_EXIT_INTERNAL;
				return;
			}
			w->left -= k;
			if (w->left == 0) {
				walk_digest(w, r);
				if (!w->failed)
					walk_after_data(w, r->size);
			}
			break;
		case W_SKIP:
			k = w->left < n ? (size_t)w->left : n;
			w->left -= k;
			if (w->left == 0)
				w->st = W_HEADER;
			break;
		default:
			return;
		}
		p += k;
		n -= k;
	}
}

static void
walk_free(struct walker *w)
{
	while (walk_peek(w) != NULL)
		walk_pop(w);
	free(w->q);
	free(w->ext);
	walk_clear_ext(w);
	EVP_MD_CTX_free(w->md);
}

/* Reader 2's source: reader 1's decompressed bytes, walked on the way. */
struct chain {
	struct archive *raw;
	struct walker *w;
	la_int64_t offset;
};

static la_ssize_t
chain_read(struct archive *a, void *data, const void **out)
{
	struct chain *c = data;
	const void *buf;
	size_t size = 0;
	la_int64_t off;
	const char *msg;
	int rc;

	do {
		if (interrupted) {
			archive_set_error(a, EINTR, "interrupted");
			return -1;
		}
		rc = archive_read_data_block(c->raw, &buf, &size, &off);
		if (rc == ARCHIVE_EOF)
			return 0;
		if (rc != ARCHIVE_OK) {
			msg = archive_error_string(c->raw);
			archive_set_error(
			    a,
			    archive_errno(c->raw) != 0 ? archive_errno(c->raw)
						       : EIO,
			    "%s", msg != NULL ? msg : "read error");
			return -1;
		}
		if (off != c->offset) {
			archive_set_error(a, EIO,
					  "decompressed stream has a "
					  "hole");
			return -1;
		}
		c->offset += (la_int64_t)size;
	} while (size == 0);
	walk_feed(c->w, buf, size);
	*out = buf;
	return (la_ssize_t)size;
}

/* State of one validation pass. */
struct vstate {
	const char *shown; /* the artifact as named in messages */
	struct artifact_limits lim;
	uint64_t disk_size; /* from fstat, for the ratio */
	struct manifest *man;
	struct path_set seen;
	uint64_t names; /* bytes of the manifest's paths */
	struct artifact_info info;
	char last[SHOW_MAX + 8]; /* the last entry read, for messages */
};

static int
refuse(struct vstate *vs, const char *name, const char *why, const char *detail,
       const char *hint, struct rf_error *err)
{
	if (detail != NULL)
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: entry '%s': %s ('%s')", vs->shown, name, why,
			     detail);
	else
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: entry '%s': %s", vs->shown, name, why);
	if (hint != NULL)
		rf_error_hint(err, "%s", hint);
	return -1;
}

/* The size and ratio caps, against the sizes declared so far. */
static int
check_limits(struct vstate *vs, const char *name, uint64_t add,
	     struct rf_error *err)
{
	char a[32], b[32];
	uint64_t total;

	if (vs->lim.max_unpacked != 0 &&
	    (add > vs->lim.max_unpacked ||
	     vs->info.unpacked_size > vs->lim.max_unpacked - add)) {
		tar_show_size(a, sizeof(a), vs->lim.max_unpacked);
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: unpacked size passes the limit of %s at "
			     "entry '%s'",
			     vs->shown, a, name);
		return -1;
	}
	total = vs->info.unpacked_size + add;
	vs->info.unpacked_size = total;
	if (vs->lim.max_ratio > 0 && total > RATIO_FLOOR &&
	    (double)total > vs->lim.max_ratio * (double)vs->disk_size) {
		tar_show_size(a, sizeof(a), total);
		tar_show_size(b, sizeof(b), vs->disk_size);
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: compression ratio over %g: entry '%s' "
			     "brings the unpacked size to %s from %s on disk",
			     vs->shown, vs->lim.max_ratio, name, a, b);
		rf_error_hint(err, "a decompression bomb? a real tree this "
				   "compressible is better built on the "
				   "server by the install hook");
		return -1;
	}
	return 0;
}

/*
 * The mode bits that would make the unpacked tree other than the one the
 * manifest lists, or that the deploy user could not work with.
 */
static const char *
mode_problem(char type, unsigned int mode, char *buf, size_t len)
{
	if ((mode & 07000) != 0)
		snprintf(buf, len, "%s bit (mode %04o)",
			 (mode & 04000) != 0   ? "setuid"
			 : (mode & 02000) != 0 ? "setgid"
					       : "sticky",
			 mode);
	else if (type == '5' && (mode & 0700) != 0700)
		snprintf(buf, len,
			 "directory mode %04o lacks u+rwx: the deploy user "
			 "could not write into it",
			 mode);
	else if (type == '0' && (mode & 0400) == 0)
		snprintf(buf, len,
			 "file mode %04o lacks u+r: the deploy user could "
			 "not read it",
			 mode);
	else
		return NULL;
	return buf;
}

/* Add path (normalised) to the manifest and the index, within limits. */
static struct manifest_entry *
add_entry(struct vstate *vs, char type, const char *path, enum path_kind kind,
	  size_t *idx, struct rf_error *err)
{
	struct manifest_entry *e;

	vs->names += strlen(path) + 1;
	if ((vs->lim.max_entries != 0 && vs->man->n >= vs->lim.max_entries) ||
	    vs->names > NAMES_MAX) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: more than %llu entries or 256 MiB of path "
			     "names, counting the parent directories they "
			     "imply, at entry '%s'",
			     vs->shown, (unsigned long long)vs->lim.max_entries,
			     vs->last);
		return NULL;
	}
	e = manifest_add(vs->man, type, path);
	*idx = vs->man->n - 1;
	path_set_add(&vs->seen, *idx, kind);
	return e;
}

/*
 * Every check on one entry, as the walk and libarchive agree it reads,
 * and its line in the manifest. *digest_to is set to the index of the
 * manifest entry that takes the file's digest, or SIZE_MAX.
 */
static int
check_entry(struct vstate *vs, const struct walk_rec *rec, size_t *digest_to,
	    struct rf_error *err)
{
	char name[SHOW_MAX + 8], other[SHOW_MAX + 8], what[SHOW_MAX + 96];
	const char *raw = rec->path, *why;
	char *norm = NULL, *hnorm = NULL, *slash;
	struct path_slot *slot;
	struct manifest_entry *me;
	const struct manifest_entry *target;
	enum path_kind kind;
	size_t idx;
	char mtype;
	int r = -1;

	*digest_to = SIZE_MAX;
	tar_show_name(name, sizeof(name), raw);
	memcpy(vs->last, name, sizeof(vs->last));
	vs->info.entries++;
	if (vs->lim.max_entries != 0 && vs->info.entries > vs->lim.max_entries)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				    "%s: more than %llu entries", vs->shown,
				    (unsigned long long)vs->lim.max_entries);
	if (raw[0] == '\0')
		return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				    "%s: entry %llu has an empty path",
				    vs->shown,
				    (unsigned long long)vs->info.entries);
	if (strlen(raw) > ENTRY_PATH_MAX)
		return refuse(vs, name, "path longer than 4096 bytes", NULL,
			      NULL, err);
	norm = tar_path_normalise(raw, &why);
	if (norm == NULL)
		return refuse(vs, name, why, NULL, NULL, err);
	if (!manifest_name_ok(raw) ||
	    (rec->link != NULL && !manifest_name_ok(rec->link))) {
		refuse(vs, name,
		       !manifest_name_ok(raw)
			   ? "name holds a control character, tab or "
			     "backslash"
			   : "link target holds a control character, tab or "
			     "backslash",
		       NULL,
		       "the release manifest lists one entry a line, "
		       "tab-separated: rename the file",
		       err);
		goto out;
	}
	if (mode_problem(rec->type, rec->mode, other, sizeof(other)) != NULL) {
		refuse(vs, name, other, NULL, PACK_HINT, err);
		goto out;
	}
	if (norm[0] == '\0') {
		/* "./", as `tar -C dir .` writes it: the release itself. */
		if (rec->type != '5')
			refuse(vs, name, "the release root must be a directory",
			       NULL, NULL, err);
		else
			r = 0;
		goto out;
	}

	/* Nothing may be written through a link or below a file. */
	for (slash = strchr(norm, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		slot = path_set_get(&vs->seen, norm, (size_t)(slash - norm));
		if (slot == NULL)
			continue;
		if (slot->kind == KIND_LINK || slot->kind == KIND_FILE) {
			*slash = '\0';
			tar_show_name(other, sizeof(other), norm);
			snprintf(what, sizeof(what),
				 "path under the earlier %s '%s'",
				 slot->kind == KIND_LINK ? "symlink" : "file",
				 other);
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
	}
	slot = path_set_get(&vs->seen, norm, strlen(norm));
	if (slot != NULL && !(slot->kind == KIND_PARENT && rec->type == '5')) {
		tar_show_name(other, sizeof(other), norm);
		if (slot->kind == KIND_PARENT)
			refuse(vs, name,
			       "not a directory, but earlier entries are "
			       "under it",
			       other, NULL, err);
		else
			refuse(vs, name, "duplicate of an earlier entry", other,
			       PACK_HINT, err);
		goto out;
	}

	if (rec->type == '1') {
		tar_show_name(other, sizeof(other), rec->link);
		hnorm = tar_path_normalise(rec->link, &why);
		if (hnorm == NULL) {
			snprintf(what, sizeof(what), "hard link to '%s': %s",
				 other,
				 rec->link[0] == '/'
				     ? "absolute target"
				     : "target leaves the release ('..' "
				       "component)");
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
		slot = hnorm[0] != '\0'
			   ? path_set_get(&vs->seen, hnorm, strlen(hnorm))
			   : NULL;
		if (slot == NULL || slot->kind != KIND_FILE) {
			snprintf(what, sizeof(what),
				 "hard link to '%s': not an earlier regular "
				 "file",
				 other);
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
	} else if (rec->type == '2') {
		why = tar_symlink_check(norm, rec->link);
		if (why != NULL) {
			tar_show_name(other, sizeof(other),
				      rec->link != NULL ? rec->link : "");
			snprintf(what, sizeof(what), "symlink to '%s': %s",
				 other, why);
			refuse(vs, name, what, NULL,
			       "make the link relative and inside the "
			       "release",
			       err);
			goto out;
		}
	}

	/* GNU tar makes missing parents, mode 0777 & ~umask. */
	for (slash = strchr(norm, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (path_set_get(&vs->seen, norm, strlen(norm)) == NULL) {
			me = add_entry(vs, MANIFEST_DIR, norm, KIND_PARENT,
				       &idx, err);
			if (me == NULL)
				goto out;
			me->mode = 0755;
		}
		*slash = '/';
	}

	kind = rec->type == '5'   ? KIND_DIR
	       : rec->type == '2' ? KIND_LINK
				  : KIND_FILE;
	mtype = rec->type == '5'   ? MANIFEST_DIR
		: rec->type == '2' ? MANIFEST_LINK
				   : MANIFEST_FILE;
	slot = path_set_get(&vs->seen, norm, strlen(norm));
	if (slot != NULL) {
		/* A directory listed after entries under it. */
		slot->kind = KIND_DIR;
		vs->man->entries[slot->idx - 1].mode = rec->mode & 0755;
		r = 0;
		goto out;
	}
	me = add_entry(vs, mtype, norm, kind, &idx, err);
	if (me == NULL)
		goto out;
	switch (rec->type) {
	case '5':
		me->mode = rec->mode & 0755;
		break;
	case '2':
		me->target = xstrdup(rec->link);
		break;
	case '1':
		/* The same inode: the target's mode, size and digest. */
		slot = path_set_get(&vs->seen, hnorm, strlen(hnorm));
		target = &vs->man->entries[slot->idx - 1];
		me->mode = target->mode;
		me->size = target->size;
		memcpy(me->sha256, target->sha256, sizeof(me->sha256));
		break;
	default:
		me->mode = rec->mode & 0755;
		me->size = rec->size;
		*digest_to = idx;
		vs->info.files++;
		if (check_limits(vs, name, rec->size, err) != 0)
			goto out;
		break;
	}
	if (rec->type == '1')
		vs->info.files++;
	r = 0;
out:
	free(norm);
	free(hnorm);
	return r;
}

/* libarchive's entry must be the one the walk read, field by field. */
static int
match_entry(struct vstate *vs, struct walker *w, struct archive_entry *e,
	    struct rf_error *err)
{
	struct walk_rec *rec = walk_peek(w);
	const char *path = archive_entry_pathname(e);
	const char *hard = archive_entry_hardlink(e);
	const char *sym = archive_entry_symlink(e);
	mode_t type = archive_entry_filetype(e);
	char name[SHOW_MAX + 8];
	const char *what = NULL;

	if (rec == NULL && w->failed) {
		*err = w->err;
		return -1;
	}
	tar_show_name(name, sizeof(name), path != NULL ? path : "");
	if (rec == NULL)
		return refuse(vs, name,
			      "libarchive reads an entry the header walk does "
			      "not see",
			      NULL, STRICT_HINT, err);
	if (strcmp(path != NULL ? path : "", rec->path) != 0)
		what = "path";
	else if (rec->type == '0' &&
		 (type != AE_IFREG || hard != NULL || sym != NULL))
		what = "type";
	else if (rec->type == '1' &&
		 (hard == NULL || strcmp(hard, rec->link) != 0) &&
		 !(hard == NULL && rec->link[0] == '\0'))
		what = "hard link target";
	else if (rec->type == '2' &&
		 (type != AE_IFLNK ||
		  strcmp(sym != NULL ? sym : "", rec->link) != 0))
		what = "symlink target";
	else if (rec->type == '5' && (type != AE_IFDIR || hard != NULL))
		what = "type";
	else if (rec->type != '1' &&
		 (archive_entry_perm(e) & 07777) != rec->mode)
		what = "mode";
	else if ((uint64_t)archive_entry_size(e) != rec->size ||
		 (rec->type == '0' && !archive_entry_size_is_set(e)))
		what = "size";
	if (what == NULL)
		return 0;
	return refuse(vs, name,
		      "libarchive and GNU tar would read this entry "
		      "differently",
		      what, STRICT_HINT, err);
}

/* A failed open or header read: not a tar, or a damaged one. */
static int
read_failure(struct archive *a, struct vstate *vs, struct rf_error *err)
{
	const char *msg = archive_error_string(a);

	if (msg == NULL)
		msg = "unknown error";
	/* The reading callbacks stop on a signal. */
	if (interrupted)
		return rf_error_set(err, RF_EXIT_INTERRUPTED, "validate",
				    "interrupted");
	if (vs->info.entries == 0 && archive_format(a) == 0 &&
	    archive_errno(a) == EILSEQ) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: not a tar archive (gzip, zstd, xz or plain)",
			     vs->shown);
		return rf_error_hint(err, PACK_HINT);
	}
	if (vs->info.entries == 0)
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: cannot read the archive: %s", vs->shown, msg);
	else
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: cannot read the archive after entry '%s': %s",
			     vs->shown, vs->last, msg);
	return rf_error_hint(err, "the file may be truncated or damaged; "
				  "build or download it again");
}

/* A reader 2 failure: the walk's refusal when it came first. */
static int
stream_failure(struct archive *a, struct vstate *vs, struct walker *w,
	       struct rf_error *err)
{
	if (w->failed && walk_peek(w) == NULL && !interrupted) {
		*err = w->err;
		return -1;
	}
	return read_failure(a, vs, err);
}

static int
compression_name(struct archive *a, struct vstate *vs, struct rf_error *err)
{
	const char *name;
	int n = archive_filter_count(a);

	/* Filter 0 feeds the format reader; the last one reads the file. */
	if (n > 2) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: nested compression (%s inside %s)", vs->shown,
			     archive_filter_name(a, 0),
			     archive_filter_name(a, 1));
		return rf_error_hint(err, PACK_HINT);
	}
	switch (archive_filter_code(a, 0)) {
	case ARCHIVE_FILTER_NONE:
		name = "none";
		break;
	case ARCHIVE_FILTER_GZIP:
		name = "gzip";
		break;
	case ARCHIVE_FILTER_ZSTD:
		name = "zstd";
		break;
	case ARCHIVE_FILTER_XZ:
		name = "xz";
		break;
	default:
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: unsupported compression '%s' (gzip, zstd, "
			     "xz or plain)",
			     vs->shown, archive_filter_name(a, 0));
		return rf_error_hint(err, PACK_HINT);
	}
	snprintf(vs->info.compression, sizeof(vs->info.compression), "%s",
		 name);
	return 0;
}

/* Reader 1: the file through the filters, out as raw bytes. */
static int
open_raw(struct archive **out, struct tar_file *rd, struct vstate *vs,
	 struct rf_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;

	*out = a;
	if (a == NULL)
		return rf_error_set(err, RF_EXIT_INTERNAL, "validate",
				    "archive_read_new failed");
	tar_read_filters(a);
	archive_read_support_format_raw(a);
	if (tar_file_attach(a, rd) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		return read_failure(a, vs, err);
	return compression_name(a, vs, err);
}

/* Reader 2: the tar format alone, fed by chain_read. */
static int
open_tar(struct archive **out, struct chain *c, struct vstate *vs,
	 struct rf_error *err)
{
	struct archive *a = archive_read_new();

	*out = a;
	if (a == NULL)
		return rf_error_set(err, RF_EXIT_INTERNAL, "validate",
				    "archive_read_new failed");
	if (tar_read_format(a) != ARCHIVE_OK)
		return rf_error_set(err, RF_EXIT_INTERNAL, "validate",
				    "cannot set up the tar reader: %s",
				    archive_error_string(a));
	if (archive_read_open(a, c, NULL, chain_read, NULL) != ARCHIVE_OK)
		return read_failure(a, vs, err);
	return 0;
}

/* Read every entry of reader 2, matched with the walk and checked. */
static int
read_entries(struct archive *a, struct vstate *vs, struct walker *w,
	     struct rf_error *err)
{
	struct archive_entry *e;
	struct walk_rec *rec;
	char name[SHOW_MAX + 8];
	const char *raw, *why;
	size_t to;
	int rc;

	for (;;) {
		rc = archive_read_next_header(a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc == ARCHIVE_WARN &&
		    !(w->failed && walk_peek(w) == NULL)) {
			/* A name that cannot be converted, for one. */
			raw = archive_entry_pathname(e);
			why = archive_error_string(a);
			tar_show_name(name, sizeof(name),
				      raw != NULL ? raw : "");
			return refuse(vs, name,
				      why != NULL ? why : "unreadable header",
				      NULL, NULL, err);
		}
		if (rc != ARCHIVE_OK)
			return stream_failure(a, vs, w, err);
		if (match_entry(vs, w, e, err) != 0 ||
		    check_entry(vs, walk_peek(w), &to, err) != 0)
			return -1;
		if (archive_read_data_skip(a) != ARCHIVE_OK)
			return stream_failure(a, vs, w, err);
		rec = walk_peek(w);
		if (rec->type == '0' && !rec->hashed) {
			if (w->failed) {
				*err = w->err;
				return -1;
			}
			return refuse(vs, vs->last,
				      "libarchive and the header walk read "
				      "its data differently",
				      NULL, STRICT_HINT, err);
		}
		if (to != SIZE_MAX)
			memcpy(vs->man->entries[to].sha256, rec->sha256,
			       sizeof(rec->sha256));
		walk_pop(w);
	}
	if (w->failed) {
		*err = w->err;
		return -1;
	}
	rec = walk_peek(w);
	if (rec != NULL) {
		tar_show_name(name, sizeof(name), rec->path);
		return refuse(vs, name,
			      "libarchive does not report this entry, GNU tar "
			      "would unpack it",
			      NULL, STRICT_HINT, err);
	}
	if (w->st != W_END) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: the archive ends without its end-of-archive "
			     "blocks",
			     vs->shown);
		return rf_error_hint(err, "the file may be truncated or "
					  "damaged; build or download it "
					  "again");
	}
	return 0;
}

int
tar_validate_file(const char *path, const char *shown,
		  const struct artifact_limits *limits,
		  struct artifact_info *info, struct manifest *manifest,
		  struct rf_error *err)
{
	static const struct artifact_limits defaults = ARTIFACT_LIMITS_DEFAULT;
	struct tar_locale loc = { (locale_t)0, (locale_t)0 };
	struct manifest local = MANIFEST_INIT;
	struct tar_file rd;
	struct walker w;
	struct chain chain;
	struct vstate vs;
	struct archive *raw = NULL, *tar = NULL;
	int r = -1;

	memset(&w, 0, sizeof(w));
	memset(&vs, 0, sizeof(vs));
	vs.shown = shown;
	vs.lim = limits != NULL ? *limits : defaults;
	vs.man = manifest != NULL ? manifest : &local;
	manifest_release(vs.man);
	vs.seen.man = vs.man;
	w.shown = shown;
	if (info != NULL)
		memset(info, 0, sizeof(*info));

	if (tar_file_open(&rd, path, shown, "validate", err) != 0)
		goto out;
	vs.disk_size = rd.size;
	w.ext = xmalloc(PAX_MAX + 1);
	w.md = EVP_MD_CTX_new();
	if (w.md == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, "validate",
			     "cannot start sha-256");
		goto out;
	}
	if (tar_locale_enter(&loc, "validate", err) != 0)
		goto out;
	if (open_raw(&raw, &rd, &vs, err) != 0)
		goto out;
	chain.raw = raw;
	chain.w = &w;
	chain.offset = 0;
	if (open_tar(&tar, &chain, &vs, err) != 0 ||
	    read_entries(tar, &vs, &w, err) != 0)
		goto out;
	if (vs.info.entries == 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: the archive has no entries", shown);
		goto out;
	}
	if (tar_file_finish(&rd, shown, "validate", vs.info.sha256, err) != 0)
		goto out;
	vs.info.file_size = rd.nread;
	path_set_clear(&vs.seen);
	manifest_sort(vs.man);
	if (info != NULL)
		*info = vs.info;
	r = 0;
out:
	if (tar != NULL)
		archive_read_free(tar);
	if (raw != NULL)
		archive_read_free(raw);
	tar_locale_leave(&loc);
	tar_file_close(&rd);
	walk_free(&w);
	path_set_clear(&vs.seen);
	if (r != 0)
		manifest_release(vs.man);
	manifest_release(&local);
	return r;
}

int
artifact_validate(const char *path, const struct artifact_limits *limits,
		  struct artifact_info *info, struct rf_error *err)
{
	return tar_validate_file(path, path, limits, info, NULL, err);
}

int
artifact_manifest(const char *path, const struct artifact_limits *limits,
		  struct artifact_info *info, struct manifest *manifest,
		  struct rf_error *err)
{
	return tar_validate_file(path, path, limits, info, manifest, err);
}

int
file_sha256(const char *path, char hex[65], struct rf_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	ssize_t n;
	int fd, r = -1;

	hex[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				    "cannot open '%s': %s", path,
				    strerror(errno));
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rf_error_set(err, RF_EXIT_INTERNAL, "validate",
			     "cannot start sha-256");
		goto out;
	}
	buf = xmalloc(IO_BUFSZ);
	for (;;) {
		if (interrupted) {
			rf_error_set(err, RF_EXIT_INTERRUPTED, "validate",
				     "interrupted");
			goto out;
		}
		n = read(fd, buf, IO_BUFSZ);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				     "cannot read '%s': %s", path,
				     strerror(errno));
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rf_error_set(err, RF_EXIT_INTERNAL, "validate",
				     "sha-256 update failed");
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		rf_error_set(err, RF_EXIT_INTERNAL, "validate",
			     "sha-256 failed");
		goto out;
	}
	tar_digest_hex(md, mdlen, hex);
	r = 0;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return r;
}

int
sha256_hex_mem(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	hex[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int
gunzip_mem(const void *data, size_t len, struct buf *out,
	   struct rf_error *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char chunk[16384];
	la_ssize_t n;
	int rc = -1;

	if (a == NULL)
		return rf_error_set(err, RF_EXIT_INTERNAL, NULL,
				    "out of memory for libarchive");
	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		rf_error_set(err, RF_EXIT_UPLOAD, NULL, "not gzip data: %s",
			     archive_error_string(a) ? archive_error_string(a)
						     : "unknown");
		goto out;
	}
	while ((n = archive_read_data(a, chunk, sizeof(chunk))) > 0) {
		if (buf_add(out, chunk, (size_t)n) != 0) {
			rf_error_set(err, RF_EXIT_UPLOAD, NULL,
				     "gzip data larger than %zu bytes",
				     out->max);
			goto out;
		}
	}
	if (n < 0) {
		rf_error_set(err, RF_EXIT_UPLOAD, NULL, "broken gzip data: %s",
			     archive_error_string(a));
		goto out;
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}
