/*
 * Release tarballs with libarchive: validation before anything reaches a
 * server, and reproducible packing. The only file that includes
 * <archive.h>; see include/artifact.h for the API.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "artifact.h"
#include "error.h"
#include "xmalloc.h"

/* Every read and write of artifact bytes goes through a buffer this big. */
#define IO_BUFSZ (128 * 1024)

/*
 * The compression ratio is only checked once the unpacked size passes
 * this: a small tarball of repetitive text may compress very well and is
 * harmless, while a bomb declares hundreds of MiB from a few hundred KiB.
 */
#define RATIO_FLOOR (64ULL << 20)

/* Longer paths cannot be extracted on Linux anyway. */
#define ENTRY_PATH_MAX 4096

/* A name as shown in a message: escaped and cut to fit. */
#define SHOW_MAX 160

#define PACK_HINT "build the tarball with: relflip pack DIR -o FILE"

enum path_kind {
	KIND_FILE = 1,
	KIND_DIR,
	KIND_LINK,
};

/*
 * Thread-local C.UTF-8 for libarchive's name conversions: pax names are
 * UTF-8, and under LC_CTYPE=C they are unconvertible on read and written
 * as hdrcharset=BINARY on write. uselocale() leaves other threads alone.
 */
struct utf8_locale {
	locale_t loc;
	locale_t old;
};

static int
utf8_locale_enter(struct utf8_locale *l, const char *stage,
		  struct rf_error *err)
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

static void
utf8_locale_leave(struct utf8_locale *l)
{
	if (l->loc == (locale_t)0)
		return;
	uselocale(l->old);
	freelocale(l->loc);
	l->loc = (locale_t)0;
}

/* Whether s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int
utf8_valid(const char *s)
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
static void
show_name(char *dst, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int utf8 = utf8_valid(s), c1 = 0;
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
static void
show_size(char *dst, size_t len, uint64_t n)
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
static char *
path_normalise(const char *path, const char **why)
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
static const char *
symlink_check(const char *entry, const char *target)
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

/* The set of paths seen so far in an archive, with what each one is. */
struct path_slot {
	char *path;
	enum path_kind kind;
};

struct path_set {
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

	for (;;) {
		s = &set->slots[i];
		if (s->path == NULL ||
		    (strncmp(s->path, path, len) == 0 && s->path[len] == '\0'))
			return s;
		i = (i + 1) & (set->cap - 1);
	}
}

/* What the first len bytes of path are, or 0 when not in the set. */
static enum path_kind
path_set_get(struct path_set *set, const char *path, size_t len)
{
	struct path_slot *s;

	if (set->cap == 0)
		return 0;
	s = path_set_slot(set, path, len);
	return s->path == NULL ? 0 : s->kind;
}

static void
path_set_add(struct path_set *set, const char *path, enum path_kind kind)
{
	struct path_slot *old = set->slots, *s;
	size_t oldcap = set->cap, i;

	if ((set->n + 1) * 2 > set->cap) {
		set->cap = set->cap == 0 ? 256 : set->cap * 2;
		set->slots = xcalloc(set->cap, sizeof(*set->slots));
		for (i = 0; i < oldcap; i++) {
			if (old[i].path == NULL)
				continue;
			s = path_set_slot(set, old[i].path,
					  strlen(old[i].path));
			*s = old[i];
		}
		free(old);
	}
	s = path_set_slot(set, path, strlen(path));
	if (s->path == NULL) {
		s->path = xstrdup(path);
		set->n++;
	}
	s->kind = kind;
}

static void
path_set_clear(struct path_set *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slots[i].path);
	free(set->slots);
	set->slots = NULL;
	set->cap = set->n = 0;
}

/* The read side: our own callback, so one pass gives bytes and digest. */
struct reader {
	int fd;
	unsigned char *buf;
	EVP_MD_CTX *md;
	uint64_t nread;
	int stopped; /* interrupted, or the digest failed */
};

static la_ssize_t
reader_read(struct archive *a, void *data, const void **out)
{
	struct reader *r = data;
	ssize_t n;

	for (;;) {
		if (interrupted) {
			r->stopped = 1;
			archive_set_error(a, EINTR, "interrupted");
			return -1;
		}
		n = read(r->fd, r->buf, IO_BUFSZ);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		archive_set_error(a, errno, "read error: %s", strerror(errno));
		return -1;
	}
	if (n > 0 && EVP_DigestUpdate(r->md, r->buf, (size_t)n) != 1) {
		r->stopped = 1;
		archive_set_error(a, EIO, "sha-256 update failed");
		return -1;
	}
	r->nread += (uint64_t)n;
	*out = r->buf;
	return n;
}

/* Read and hash what libarchive left: trailing blocks after the tar end. */
static int
reader_drain(struct reader *r, const char *shown, struct rf_error *err)
{
	ssize_t n;

	for (;;) {
		if (interrupted)
			return rf_error_set(err, RF_EXIT_INTERRUPTED,
					    "validate", "interrupted");
		n = read(r->fd, r->buf, IO_BUFSZ);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
					    "cannot read '%s': %s", shown,
					    strerror(errno));
		}
		if (EVP_DigestUpdate(r->md, r->buf, (size_t)n) != 1)
			return rf_error_set(err, RF_EXIT_INTERNAL, "validate",
					    "sha-256 update failed");
		r->nread += (uint64_t)n;
	}
}

static void
digest_hex(const unsigned char *md, unsigned int len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned int i;

	for (i = 0; i < len && i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[2 * i] = '\0';
}

/* State of one validation pass. */
struct vstate {
	const char *shown; /* the artifact as named in messages */
	struct artifact_limits lim;
	uint64_t disk_size; /* from fstat, for the ratio */
	struct path_set seen;
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

static const char *
filetype_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR:
		return "character device";
	case AE_IFBLK:
		return "block device";
	case AE_IFIFO:
		return "FIFO";
	case AE_IFSOCK:
		return "socket";
	default:
		return "unknown file type";
	}
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
		show_size(a, sizeof(a), vs->lim.max_unpacked);
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
		show_size(a, sizeof(a), total);
		show_size(b, sizeof(b), vs->disk_size);
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

/* Every check on one header, as it arrives. */
static int
check_entry(struct vstate *vs, struct archive_entry *e, struct rf_error *err)
{
	char name[SHOW_MAX + 8], other[SHOW_MAX + 8], what[SHOW_MAX + 96];
	const char *raw, *hard, *why, *target;
	char *norm = NULL, *hnorm = NULL, *slash;
	mode_t type, mode;
	la_int64_t size;
	enum path_kind kind;
	int r = -1;

	raw = archive_entry_pathname(e);
	if (raw == NULL)
		raw = "";
	show_name(name, sizeof(name), raw);
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
	norm = path_normalise(raw, &why);
	if (norm == NULL)
		return refuse(vs, name, why, NULL, NULL, err);

	type = archive_entry_filetype(e);
	mode = archive_entry_mode(e);
	hard = archive_entry_hardlink(e);
	if (hard == NULL && type != AE_IFREG && type != AE_IFDIR &&
	    type != AE_IFLNK) {
		refuse(vs, name, filetype_name(type), NULL,
		       "only files, directories and symlinks can be "
		       "deployed",
		       err);
		goto out;
	}
	if ((mode & 06000) != 0) {
		snprintf(other, sizeof(other), "%s bit (mode %04o)",
			 (mode & 04000) != 0 ? "setuid" : "setgid",
			 (unsigned int)(mode & 07777));
		refuse(vs, name, other, NULL, PACK_HINT, err);
		goto out;
	}
	if (norm[0] == '\0') {
		/* "./", as `tar -C dir .` writes it: the release itself. */
		if (hard != NULL || type != AE_IFDIR) {
			refuse(vs, name, "the release root must be a directory",
			       NULL, NULL, err);
			goto out;
		}
		r = 0;
		goto out;
	}

	/* Nothing may be written through a link or below a file. */
	for (slash = strchr(norm, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		kind = path_set_get(&vs->seen, norm, (size_t)(slash - norm));
		if (kind == KIND_LINK || kind == KIND_FILE) {
			*slash = '\0';
			show_name(other, sizeof(other), norm);
			snprintf(what, sizeof(what),
				 "path under the earlier %s '%s'",
				 kind == KIND_LINK ? "symlink" : "file", other);
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
	}
	if (path_set_get(&vs->seen, norm, strlen(norm)) != 0) {
		show_name(other, sizeof(other), norm);
		refuse(vs, name, "duplicate of an earlier entry", other,
		       PACK_HINT, err);
		goto out;
	}

	if (hard != NULL) {
		show_name(other, sizeof(other), hard);
		hnorm = path_normalise(hard, &why);
		if (hnorm == NULL) {
			snprintf(what, sizeof(what), "hard link to '%s': %s",
				 other,
				 hard[0] == '/' ? "absolute target"
						: "target leaves the release "
						  "('..' component)");
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
		if (hnorm[0] == '\0' ||
		    path_set_get(&vs->seen, hnorm, strlen(hnorm)) !=
			KIND_FILE) {
			snprintf(what, sizeof(what),
				 "hard link to '%s': not an earlier regular "
				 "file",
				 other);
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
		kind = KIND_FILE;
	} else if (type == AE_IFREG)
		kind = KIND_FILE;
	else if (type == AE_IFDIR)
		kind = KIND_DIR;
	else {
		target = archive_entry_symlink(e);
		why = symlink_check(norm, target);
		if (why != NULL) {
			show_name(other, sizeof(other),
				  target != NULL ? target : "");
			snprintf(what, sizeof(what), "symlink to '%s': %s",
				 other, why);
			refuse(vs, name, what, NULL,
			       "make the link relative and inside the "
			       "release",
			       err);
			goto out;
		}
		kind = KIND_LINK;
	}
	path_set_add(&vs->seen, norm, kind);

	if (kind == KIND_FILE) {
		vs->info.files++;
		size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
		if (check_limits(vs, name, size > 0 ? (uint64_t)size : 0,
				 err) != 0)
			goto out;
	}
	r = 0;
out:
	free(norm);
	free(hnorm);
	return r;
}

/* A failed open or header read: not a tar, or a damaged one. */
static int
read_failure(struct archive *a, struct vstate *vs, struct reader *rd,
	     struct rf_error *err)
{
	const char *msg = archive_error_string(a);

	if (msg == NULL)
		msg = "unknown error";
	if (rd->stopped && interrupted)
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

static int
compression_name(struct archive *a, struct vstate *vs, struct rf_error *err)
{
	const char *name;
	int n = archive_filter_count(a);

	/* Filter 0 feeds the tar reader; the last one reads the raw file. */
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

/* artifact_validate, naming the file `shown` in messages. */
static int
validate_file(const char *path, const char *shown,
	      const struct artifact_limits *limits, struct artifact_info *info,
	      struct rf_error *err)
{
	static const struct artifact_limits defaults = ARTIFACT_LIMITS_DEFAULT;
	struct utf8_locale loc = { (locale_t)0, (locale_t)0 };
	struct reader rd;
	struct vstate vs;
	struct archive *a = NULL;
	struct archive_entry *e;
	struct stat st;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char name[SHOW_MAX + 8];
	const char *raw, *why;
	int rc, r = -1;

	memset(&rd, 0, sizeof(rd));
	memset(&vs, 0, sizeof(vs));
	rd.fd = -1;
	vs.shown = shown;
	vs.lim = limits != NULL ? *limits : defaults;
	if (info != NULL)
		memset(info, 0, sizeof(*info));

	rd.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd.fd == -1)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				    "cannot open '%s': %s", shown,
				    strerror(errno));
	if (fstat(rd.fd, &st) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "cannot stat '%s': %s", shown, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "'%s' is not a regular file", shown);
		goto out;
	}
	vs.disk_size = (uint64_t)st.st_size;
	rd.buf = xmalloc(IO_BUFSZ);
	rd.md = EVP_MD_CTX_new();
	if (rd.md == NULL ||
	    EVP_DigestInit_ex(rd.md, EVP_sha256(), NULL) != 1) {
		rf_error_set(err, RF_EXIT_INTERNAL, "validate",
			     "cannot start sha-256");
		goto out;
	}
	if (utf8_locale_enter(&loc, "validate", err) != 0)
		goto out;

	a = archive_read_new();
	if (a == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, "validate",
			     "archive_read_new failed");
		goto out;
	}
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	if (archive_read_open(a, &rd, NULL, reader_read, NULL) != ARCHIVE_OK) {
		read_failure(a, &vs, &rd, err);
		goto out;
	}
	if (compression_name(a, &vs, err) != 0)
		goto out;
	for (;;) {
		rc = archive_read_next_header(a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc == ARCHIVE_WARN) {
			/* A name that cannot be converted, for one. */
			raw = archive_entry_pathname(e);
			why = archive_error_string(a);
			show_name(name, sizeof(name), raw != NULL ? raw : "");
			refuse(&vs, name,
			       why != NULL ? why : "unreadable header", NULL,
			       NULL, err);
			goto out;
		}
		if (rc != ARCHIVE_OK) {
			read_failure(a, &vs, &rd, err);
			goto out;
		}
		if (check_entry(&vs, e, err) != 0)
			goto out;
		rc = archive_read_data_skip(a);
		if (rc != ARCHIVE_OK) {
			read_failure(a, &vs, &rd, err);
			goto out;
		}
	}
	if (vs.info.entries == 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s: the archive has no entries", shown);
		goto out;
	}
	if (reader_drain(&rd, shown, err) != 0)
		goto out;
	if (EVP_DigestFinal_ex(rd.md, md, &mdlen) != 1) {
		rf_error_set(err, RF_EXIT_INTERNAL, "validate",
			     "sha-256 failed");
		goto out;
	}
	digest_hex(md, mdlen, vs.info.sha256);
	vs.info.file_size = rd.nread;
	if (info != NULL)
		*info = vs.info;
	r = 0;
out:
	if (a != NULL)
		archive_read_free(a);
	utf8_locale_leave(&loc);
	EVP_MD_CTX_free(rd.md);
	free(rd.buf);
	if (rd.fd != -1)
		close(rd.fd);
	path_set_clear(&vs.seen);
	return r;
}

int
artifact_validate(const char *path, const struct artifact_limits *limits,
		  struct artifact_info *info, struct rf_error *err)
{
	return validate_file(path, path, limits, info, err);
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
	digest_hex(md, mdlen, hex);
	r = 0;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	close(fd);
	return r;
}

/* Packing. */

struct pack_pattern {
	char *glob;
	int dir_only; /* it ended in '/' */
	int anchored; /* it started with '/' or had a '/' inside */
};

struct pack_item {
	char *path; /* relative to opts->dir, no "./" */
	enum path_kind kind;
	mode_t perm;
	uint64_t size;
	char *target;        /* symlinks */
	const char *content; /* the REVISION file, from memory */
};

struct pack_ctx {
	const struct pack_options *opts;
	struct pack_pattern *pats;
	size_t npats;
	struct pack_item *items;
	size_t nitems, aitems;
	uint64_t unpacked;
	struct stat skip[2]; /* the output and its .tmp, when in the tree */
	int nskip;
	char *revision_text;
};

static void
pattern_add(struct pack_ctx *c, const char *text)
{
	struct pack_pattern *p;
	size_t len = strlen(text);
	const char *s = text;

	if (len == 0)
		return;
	c->pats = xreallocarray(c->pats, c->npats + 1, sizeof(*c->pats));
	p = &c->pats[c->npats++];
	memset(p, 0, sizeof(*p));
	if (len > 1 && text[len - 1] == '/') {
		p->dir_only = 1;
		len--;
	}
	if (s[0] == '/' && len > 1) {
		s++;
		len--;
		p->anchored = 1;
	}
	p->glob = xstrndup(s, len);
	if (strchr(p->glob, '/') != NULL)
		p->anchored = 1;
}

/* DIR/.relflipignore: one glob a line, '#' comments, blank lines. */
static int
read_ignore_file(struct pack_ctx *c, struct rf_error *err)
{
	char *path = xasprintf("%s/.relflipignore", c->opts->dir);
	char *line = NULL;
	size_t cap = 0, len;
	ssize_t n;
	unsigned long lineno = 0;
	FILE *f;
	int r = -1;

	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT) {
			free(path);
			return 0;
		}
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot read '%s': %s", path, strerror(errno));
		free(path);
		return -1;
	}
	for (;;) {
		errno = 0;
		n = getline(&line, &cap, f);
		if (n < 0) {
			if (ferror(f)) {
				rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
					     "cannot read '%s': %s", path,
					     strerror(errno));
				goto out;
			}
			break;
		}
		lineno++;
		len = (size_t)n;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r' ||
			line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		line[len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (line[0] == '!') {
			rf_error_set(err, RF_EXIT_USAGE, "pack",
				     "%s:%lu: negated patterns ('!') are not "
				     "supported",
				     path, lineno);
			goto out;
		}
		pattern_add(c, line);
	}
	r = 0;
out:
	free(line);
	fclose(f);
	free(path);
	return r;
}

static int
pack_excluded(struct pack_ctx *c, const char *rel, const char *base, int is_dir)
{
	size_t i;
	struct pack_pattern *p;

	if (strcmp(base, ".git") == 0)
		return 1;
	if (c->opts->revision != NULL && strcmp(rel, "REVISION") == 0)
		return 1;
	for (i = 0; i < c->npats; i++) {
		p = &c->pats[i];
		if (p->dir_only && !is_dir)
			continue;
		if (fnmatch(p->glob, rel, FNM_PATHNAME) == 0)
			return 1;
		if (!p->anchored && fnmatch(p->glob, base, 0) == 0)
			return 1;
	}
	return 0;
}

static struct pack_item *
pack_item_add(struct pack_ctx *c, char *path, enum path_kind kind)
{
	struct pack_item *it;

	if (c->nitems == c->aitems) {
		c->aitems = c->aitems == 0 ? 64 : c->aitems * 2;
		c->items =
		    xreallocarray(c->items, c->aitems, sizeof(*c->items));
	}
	it = &c->items[c->nitems++];
	memset(it, 0, sizeof(*it));
	it->path = path;
	it->kind = kind;
	return it;
}

static int
pack_skipped(struct pack_ctx *c, const struct stat *st)
{
	int i;

	for (i = 0; i < c->nskip; i++) {
		if (c->skip[i].st_dev == st->st_dev &&
		    c->skip[i].st_ino == st->st_ino)
			return 1;
	}
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a directory, sorted, so no descriptor stays open below. */
static int
read_names(const char *full, char ***names, size_t *n, struct rf_error *err)
{
	DIR *d;
	struct dirent *de;
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	d = opendir(full);
	if (d == NULL)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				    "cannot read directory '%s': %s", full,
				    strerror(errno));
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
					     "cannot read directory '%s': %s",
					     full, strerror(errno));
				closedir(d);
				return -1;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			*names = xreallocarray(*names, cap, sizeof(**names));
		}
		(*names)[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), name_cmp);
	return 0;
}

static int
pack_refuse(const char *full, const char *what, const char *hint,
	    struct rf_error *err)
{
	char name[SHOW_MAX + 8];

	show_name(name, sizeof(name), full);
	rf_error_set(err, RF_EXIT_ARTIFACT, "pack", "'%s' %s", name, what);
	if (hint != NULL)
		rf_error_hint(err, "%s", hint);
	return -1;
}

static int
pack_symlink(struct pack_ctx *c, const char *full, char *rel,
	     const struct stat *st, struct rf_error *err)
{
	size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : PATH_MAX;
	char *target = NULL, what[SHOW_MAX * 2];
	char shown[SHOW_MAX + 8];
	const char *why;
	ssize_t n;

	for (;;) {
		target = xrealloc(target, cap);
		n = readlink(full, target, cap);
		if (n < 0) {
			free(target);
			return rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
					    "cannot read symlink '%s': %s",
					    full, strerror(errno));
		}
		if ((size_t)n < cap)
			break;
		cap *= 2;
	}
	target[n] = '\0';
	why = symlink_check(rel, target);
	if (why == NULL && !utf8_valid(target))
		why = "target is not valid UTF-8";
	if (why != NULL) {
		show_name(shown, sizeof(shown), target);
		snprintf(what, sizeof(what), "is a symlink to '%s': %s", shown,
			 why);
		free(target);
		return pack_refuse(full, what,
				   "make the link relative and inside the "
				   "tree, or exclude it",
				   err);
	}
	pack_item_add(c, rel, KIND_LINK)->target = target;
	return 0;
}

/* Collect what is under opts->dir/rel ("" for the top) into c->items. */
static int
pack_walk(struct pack_ctx *c, const char *rel, struct rf_error *err)
{
	char *full = rel[0] != '\0' ? xasprintf("%s/%s", c->opts->dir, rel)
				    : xstrdup(c->opts->dir);
	char **names = NULL, *crel = NULL, *cfull = NULL;
	char what[128];
	size_t n = 0, i;
	struct stat st;
	struct pack_item *it;
	int r = -1;

	if (read_names(full, &names, &n, err) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		free(cfull);
		cfull = xasprintf("%s/%s", full, names[i]);
		free(crel);
		crel = rel[0] != '\0' ? xasprintf("%s/%s", rel, names[i])
				      : xstrdup(names[i]);
		if (lstat(cfull, &st) != 0) {
			rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				     "cannot stat '%s': %s", cfull,
				     strerror(errno));
			goto out;
		}
		if (pack_excluded(c, crel, names[i], S_ISDIR(st.st_mode)) ||
		    (S_ISREG(st.st_mode) && pack_skipped(c, &st)))
			continue;
		if (!utf8_valid(names[i])) {
			pack_refuse(cfull, "has a name that is not valid UTF-8",
				    "rename it, or exclude it", err);
			goto out;
		}
		if (strlen(crel) > ENTRY_PATH_MAX) {
			pack_refuse(cfull, "has a path longer than 4096 bytes",
				    NULL, err);
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			it = pack_item_add(c, crel, KIND_DIR);
			it->perm = 0755;
			crel = NULL; /* transferred */
			if (pack_walk(c, it->path, err) != 0)
				goto out;
		} else if (S_ISREG(st.st_mode)) {
			if ((st.st_mode & 06000) != 0) {
				snprintf(what, sizeof(what),
					 "is %s (mode %04o)",
					 (st.st_mode & 04000) != 0 ? "setuid"
								   : "setgid",
					 (unsigned int)(st.st_mode & 07777));
				pack_refuse(cfull, what,
					    "clear the bit (chmod u-s,g-s), "
					    "or exclude it",
					    err);
				goto out;
			}
			it = pack_item_add(c, crel, KIND_FILE);
			crel = NULL; /* transferred */
			it->perm = (st.st_mode & 0111) != 0 ? 0755 : 0644;
			it->size = (uint64_t)st.st_size;
			c->unpacked += it->size;
		} else if (S_ISLNK(st.st_mode)) {
			if (pack_symlink(c, cfull, crel, &st, err) != 0)
				goto out;
			crel = NULL; /* transferred */
		} else {
			snprintf(what, sizeof(what),
				 "is a %s (only files, directories and "
				 "symlinks can be packed)",
				 S_ISFIFO(st.st_mode)   ? "FIFO"
				 : S_ISSOCK(st.st_mode) ? "socket"
				 : S_ISCHR(st.st_mode)  ? "character device"
				 : S_ISBLK(st.st_mode)  ? "block device"
							: "special file");
			pack_refuse(cfull, what,
				    "exclude it with --exclude or "
				    ".relflipignore",
				    err);
			goto out;
		}
	}
	r = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(crel);
	free(cfull);
	free(full);
	return r;
}

static int
item_cmp(const void *a, const void *b)
{
	const struct pack_item *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* Stream one file's bytes into the archive with the fixed buffer. */
static int
pack_file_data(struct archive *a, const char *full, const struct pack_item *it,
	       unsigned char *buf, struct rf_error *err)
{
	uint64_t left = it->size;
	struct stat st;
	ssize_t n;
	size_t want;
	int fd, r = -1;

	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				    "cannot open '%s': %s", full,
				    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != it->size) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "'%s' changed while packing", full);
		goto out;
	}
	while (left > 0) {
		if (interrupted) {
			rf_error_set(err, RF_EXIT_INTERRUPTED, "pack",
				     "interrupted");
			goto out;
		}
		want = left < IO_BUFSZ ? (size_t)left : IO_BUFSZ;
		n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				     "cannot read '%s': %s", full,
				     strerror(errno));
			goto out;
		}
		if (n == 0) {
			rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				     "'%s' changed while packing", full);
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)n) != n) {
			rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				     "cannot write the archive: %s",
				     archive_error_string(a));
			goto out;
		}
		left -= (uint64_t)n;
	}
	r = 0;
out:
	close(fd);
	return r;
}

/* Write every item, in order, into the open archive. */
static int
pack_write_items(struct pack_ctx *c, struct archive *a, struct rf_error *err)
{
	struct archive_entry *e;
	unsigned char *buf = xmalloc(IO_BUFSZ);
	struct pack_item *it;
	char *full;
	size_t i;
	int rc, r = -1;

	for (i = 0; i < c->nitems; i++) {
		it = &c->items[i];
		e = archive_entry_new();
		if (e == NULL)
			rf_bug("archive_entry_new failed");
		archive_entry_set_pathname_utf8(e, it->path);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_uname_utf8(e, "root");
		archive_entry_set_gname_utf8(e, "root");
		archive_entry_set_mtime(e, (time_t)c->opts->mtime, 0);
		switch (it->kind) {
		case KIND_DIR:
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			archive_entry_set_size(e, 0);
			break;
		case KIND_LINK:
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_size(e, 0);
			archive_entry_set_symlink_utf8(e, it->target);
			break;
		case KIND_FILE:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, it->perm);
			archive_entry_set_size(e, (la_int64_t)it->size);
			break;
		}
		rc = archive_write_header(a, e);
		archive_entry_free(e);
		if (rc != ARCHIVE_OK) {
			rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				     "cannot write entry '%s': %s", it->path,
				     archive_error_string(a));
			goto out;
		}
		if (it->kind != KIND_FILE || it->size == 0)
			continue;
		if (it->content != NULL) {
			if (archive_write_data(a, it->content, it->size) !=
			    (la_ssize_t)it->size) {
				rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
					     "cannot write the archive: %s",
					     archive_error_string(a));
				goto out;
			}
			continue;
		}
		full = xasprintf("%s/%s", c->opts->dir, it->path);
		rc = pack_file_data(a, full, it, buf, err);
		free(full);
		if (rc != 0)
			goto out;
	}
	r = 0;
out:
	free(buf);
	return r;
}

/* Write the sorted items as a reproducible .tar.gz to fd. */
static int
pack_write(struct pack_ctx *c, int fd, struct rf_error *err)
{
	struct utf8_locale loc = { (locale_t)0, (locale_t)0 };
	struct archive *a = NULL;
	int r = -1;

	if (utf8_locale_enter(&loc, "pack", err) != 0)
		return -1;
	a = archive_write_new();
	if (a == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, "pack",
			     "archive_write_new failed");
		goto out;
	}
	if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) !=
		ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		rf_error_set(err, RF_EXIT_INTERNAL, "pack",
			     "cannot set up the archive writer: %s",
			     archive_error_string(a));
		goto out;
	}
	if (pack_write_items(c, a, err) != 0)
		goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot write '%s': %s", c->opts->output,
			     archive_error_string(a));
		goto out;
	}
	r = 0;
out:
	if (a != NULL)
		archive_write_free(a);
	utf8_locale_leave(&loc);
	return r;
}

/* fsync the directory holding path, so the rename is durable. */
static void
sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

static void
pack_ctx_clear(struct pack_ctx *c)
{
	size_t i;

	for (i = 0; i < c->nitems; i++) {
		free(c->items[i].path);
		free(c->items[i].target);
	}
	free(c->items);
	for (i = 0; i < c->npats; i++)
		free(c->pats[i].glob);
	free(c->pats);
	free(c->revision_text);
}

int
artifact_pack(const struct pack_options *opts, struct artifact_info *info,
	      struct rf_error *err)
{
	static const struct artifact_limits defaults = ARTIFACT_LIMITS_DEFAULT;
	struct pack_ctx c;
	struct pack_item *it;
	struct stat st;
	char *tmp = NULL;
	char size[32];
	size_t i;
	int fd = -1, r = -1;

	memset(&c, 0, sizeof(c));
	c.opts = opts;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (stat(opts->dir, &st) != 0)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				    "cannot read '%s': %s", opts->dir,
				    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
				    "'%s' is not a directory", opts->dir);
	tmp = xasprintf("%s.tmp", opts->output);
	/* Never pack an earlier output that sits inside the tree. */
	if (stat(opts->output, &c.skip[c.nskip]) == 0)
		c.nskip++;
	if (stat(tmp, &c.skip[c.nskip]) == 0)
		c.nskip++;

	for (i = 0; i < opts->nexcludes; i++)
		pattern_add(&c, opts->excludes[i]);
	if (read_ignore_file(&c, err) != 0)
		goto out;
	if (pack_walk(&c, "", err) != 0)
		goto out;
	if (opts->revision != NULL) {
		c.revision_text = xasprintf("%s\n", opts->revision);
		it = pack_item_add(&c, xstrdup("REVISION"), KIND_FILE);
		it->perm = 0644;
		it->size = strlen(c.revision_text);
		it->content = c.revision_text;
	}
	if (c.nitems == 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "nothing to pack in '%s'", opts->dir);
		rf_error_hint(err, "check --exclude and .relflipignore");
		goto out;
	}
	if (c.nitems > defaults.max_entries ||
	    c.unpacked > defaults.max_unpacked) {
		show_size(size, sizeof(size), defaults.max_unpacked);
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "'%s' is too big to deploy: %zu entries, %llu "
			     "bytes (limits: %llu entries, %s)",
			     opts->dir, c.nitems,
			     (unsigned long long)c.unpacked,
			     (unsigned long long)defaults.max_entries, size);
		goto out;
	}
	qsort(c.items, c.nitems, sizeof(*c.items), item_cmp);

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot create '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (pack_write(&c, fd, err) != 0)
		goto fail;
	if (fsync(fd) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot write '%s': %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot write '%s': %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	/* Prove the result would deploy before it takes the output's name. */
	if (validate_file(tmp, opts->output, NULL, info, err) != 0) {
		if (err != NULL && err->code == RF_EXIT_ARTIFACT)
			err->stage = "pack";
		goto fail;
	}
	if (rename(tmp, opts->output) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot rename '%s' to '%s': %s", tmp,
			     opts->output, strerror(errno));
		goto fail;
	}
	sync_parent(opts->output);
	r = 0;
	goto out;
fail:
	if (fd != -1)
		close(fd);
	fd = -1;
	unlink(tmp);
	if (info != NULL)
		memset(info, 0, sizeof(*info));
out:
	if (fd != -1)
		close(fd);
	free(tmp);
	pack_ctx_clear(&c);
	return r;
}
