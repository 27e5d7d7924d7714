/*
 * Release tarballs, the reading half: validation before anything reaches
 * a server. One of the two files that include <archive.h>; see
 * include/artifact.h for the API.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "tar-common.h"
#include "xmalloc.h"

/*
 * The compression ratio is only checked once the unpacked size passes
 * this: a small tarball of repetitive text may compress very well and is
 * harmless, while a bomb declares hundreds of MiB from a few hundred KiB.
 */
#define RATIO_FLOOR (64ULL << 20)

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
			tar_show_name(other, sizeof(other), norm);
			snprintf(what, sizeof(what),
				 "path under the earlier %s '%s'",
				 kind == KIND_LINK ? "symlink" : "file", other);
			refuse(vs, name, what, NULL, NULL, err);
			goto out;
		}
	}
	if (path_set_get(&vs->seen, norm, strlen(norm)) != 0) {
		tar_show_name(other, sizeof(other), norm);
		refuse(vs, name, "duplicate of an earlier entry", other,
		       PACK_HINT, err);
		goto out;
	}

	if (hard != NULL) {
		tar_show_name(other, sizeof(other), hard);
		hnorm = tar_path_normalise(hard, &why);
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
		why = tar_symlink_check(norm, target);
		if (why != NULL) {
			tar_show_name(other, sizeof(other),
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

int
tar_validate_file(const char *path, const char *shown,
		  const struct artifact_limits *limits,
		  struct artifact_info *info, struct rf_error *err)
{
	static const struct artifact_limits defaults = ARTIFACT_LIMITS_DEFAULT;
	struct tar_locale loc = { (locale_t)0, (locale_t)0 };
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
	if (tar_locale_enter(&loc, "validate", err) != 0)
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
			tar_show_name(name, sizeof(name),
				      raw != NULL ? raw : "");
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
	tar_digest_hex(md, mdlen, vs.info.sha256);
	vs.info.file_size = rd.nread;
	if (info != NULL)
		*info = vs.info;
	r = 0;
out:
	if (a != NULL)
		archive_read_free(a);
	tar_locale_leave(&loc);
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
	return tar_validate_file(path, path, limits, info, err);
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
