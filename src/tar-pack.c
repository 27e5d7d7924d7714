/*
 * Release tarballs, the writing half: reproducible packing. One of the
 * two files that include <archive.h>; see include/artifact.h for the API.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "artifact.h"
#include "error.h"
#include "git-files.h"
#include "manifest.h"
#include "tar-common.h"
#include "xmalloc.h"

struct pack_pattern {
	char *glob;
	int dir_only; /* it ended in '/' */
	int anchored; /* it started with '/' or had a '/' inside */
};

enum path_kind {
	KIND_FILE = 1,
	KIND_DIR,
	KIND_LINK,
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
	struct pack_pattern *inc; /* --include */
	size_t ninc;
	int git;                /* only what git tracks, and inc */
	struct strlist tracked; /* sorted */
	struct git_job others;  /* untracked files, listed meanwhile */
	struct pack_item *items;
	size_t nitems, aitems;
	uint64_t unpacked;
	struct stat skip[2]; /* the output and its .tmp, when in the tree */
	int nskip;
	char *revision_text;
};

static void
pattern_add(struct pack_pattern **pats, size_t *npats, const char *text)
{
	struct pack_pattern *p;
	size_t len = strlen(text);
	const char *s = text;

	if (len == 0)
		return;
	*pats = xreallocarray(*pats, *npats + 1, sizeof(**pats));
	p = &(*pats)[(*npats)++];
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
		pattern_add(&c->pats, &c->npats, line);
	}
	r = 0;
out:
	free(line);
	fclose(f);
	free(path);
	return r;
}

/* Does one of the patterns match rel (base its last part)? */
static int
pattern_match(const struct pack_pattern *pats, size_t n, const char *rel,
	      const char *base, int is_dir)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (pats[i].dir_only && !is_dir)
			continue;
		if (fnmatch(pats[i].glob, rel, FNM_PATHNAME) == 0)
			return 1;
		if (!pats[i].anchored && fnmatch(pats[i].glob, base, 0) == 0)
			return 1;
	}
	return 0;
}

/*
 * Could one of the patterns match something under the directory rel? An
 * unanchored one could match anywhere; an anchored one where its fixed
 * start (up to its first glob character) and rel/ agree.
 */
static int
pattern_may_match_below(const struct pack_pattern *pats, size_t n,
			const char *rel)
{
	size_t i, fixed, rl = strlen(rel);

	for (i = 0; i < n; i++) {
		if (!pats[i].anchored)
			return 1;
		fixed = strcspn(pats[i].glob, "*?[\\");
		if (fixed > rl ? strncmp(pats[i].glob, rel, rl) == 0 &&
				     pats[i].glob[rl] == '/'
			       : strncmp(pats[i].glob, rel, fixed) == 0)
			return 1;
	}
	return 0;
}

static int
pack_excluded(struct pack_ctx *c, const char *rel, const char *base, int is_dir)
{
	if (strcmp(base, ".git") == 0)
		return 1;
	if (c->opts->revision != NULL && strcmp(rel, "REVISION") == 0)
		return 1;
	return pattern_match(c->pats, c->npats, rel, base, is_dir);
}

const char *
artifact_secret_why(const char *base, const char *head)
{
	static const char *const templates[] = { ".example", ".sample",
						 ".template", ".dist" };
	size_t i, n = strlen(base);
	const char *end;

	if (strcmp(base, ".env") == 0)
		return "an .env file: secrets, as a rule";
	if (strncmp(base, ".env.", 5) == 0) {
		for (i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
			size_t t = strlen(templates[i]);

			if (n > t && strcmp(base + n - t, templates[i]) == 0)
				return NULL;
		}
		return "an .env file: secrets, as a rule";
	}
	if (head != NULL && strncmp(head, "-----BEGIN ", 11) == 0) {
		end = head + strcspn(head, "\r\n");
		if (end - head >= 27 &&
		    strncmp(end - 16, "PRIVATE KEY-----", 16) == 0)
			return "it holds a private key (-----BEGIN ... "
			       "PRIVATE KEY-----)";
	}
	if (strncmp(base, "id_", 3) == 0 &&
	    (n < 4 || strcmp(base + n - 4, ".pub") != 0))
		return "named like an SSH private key (id_*)";
	if (n > 4 && strcmp(base + n - 4, ".pem") == 0)
		return "a .pem file: a private key, or a certificate";
	if (n > 4 && strcmp(base + n - 4, ".key") == 0)
		return "a .key file: a private key, as a rule";
	return NULL;
}

/*
 * Say when a packed file looks like a secret: by its name, and by its
 * first n bytes at data (the first read of its packing, so that no file
 * is opened twice). A key is a few KB: a big file is no key file.
 */
static void
note_secret(struct pack_ctx *c, const struct pack_item *it,
	    const unsigned char *data, size_t n)
{
	const char *base = strrchr(it->path, '/'), *why;
	char head[128];
	char *line;

	if (c->opts->report == NULL)
		return;
	if (it->size > 64 * 1024 || data == NULL)
		n = 0;
	if (n > sizeof(head) - 1)
		n = sizeof(head) - 1;
	memcpy(head, data != NULL ? (const char *)data : "", n);
	head[n] = '\0';
	why = artifact_secret_why(base != NULL ? base + 1 : it->path, head);
	if (why == NULL)
		return;
	line = xasprintf("%s: %s", it->path, why);
	strlist_add(&c->opts->report->secrets, line);
	free(line);
}

/* In git mode, is this file or link packed? */
static int
pack_wanted(struct pack_ctx *c, const char *rel, const char *base, int all_in)
{
	return !c->git || all_in || git_files_has(&c->tracked, rel) ||
	       pattern_match(c->inc, c->ninc, rel, base, 0);
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

	tar_show_name(name, sizeof(name), full);
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
	why = tar_symlink_check(rel, target);
	if (why == NULL && !tar_utf8_valid(target))
		why = "target is not valid UTF-8";
	if (why == NULL && !manifest_name_ok(target))
		why = "target holds a control character, tab or backslash";
	if (why != NULL) {
		tar_show_name(shown, sizeof(shown), target);
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

/*
 * Collect what is under opts->dir/rel ("" for the top) into c->items. In
 * git mode, all_in: an --include pattern took the directory whole.
 */
static int
pack_walk(struct pack_ctx *c, const char *rel, int all_in, struct rf_error *err)
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
		if (!tar_utf8_valid(names[i])) {
			pack_refuse(cfull, "has a name that is not valid UTF-8",
				    "rename it, or exclude it", err);
			goto out;
		}
		if (!manifest_name_ok(names[i])) {
			pack_refuse(cfull,
				    "has a name with a control character, tab "
				    "or backslash (the release manifest lists "
				    "one entry a line, tab-separated)",
				    "rename it, or exclude it", err);
			goto out;
		}
		if (strlen(crel) > ENTRY_PATH_MAX) {
			pack_refuse(cfull, "has a path longer than 4096 bytes",
				    NULL, err);
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			int whole =
			    all_in ||
			    (c->git &&
			     pattern_match(c->inc, c->ninc, crel, names[i], 1));
			size_t before = c->nitems;

			/* Untracked and not included: not even walked. */
			if (c->git && !whole &&
			    !git_files_has_below(&c->tracked, crel) &&
			    !pattern_may_match_below(c->inc, c->ninc, crel))
				continue;
			it = pack_item_add(c, crel, KIND_DIR);
			it->perm = 0755;
			crel = NULL; /* transferred */
			if (pack_walk(c, it->path, whole, err) != 0)
				goto out;
			/* git has no empty directories: nor has its pack. */
			if (c->git && !whole && c->nitems == before + 1) {
				free(c->items[before].path);
				c->nitems = before;
			}
		} else if (!pack_wanted(c, crel, names[i], all_in)) {
			continue;
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
pack_file_data(struct pack_ctx *c, struct archive *a, const char *full,
	       const struct pack_item *it, unsigned char *buf,
	       struct rf_error *err)
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
		if (left == it->size)
			note_secret(c, it, buf, (size_t)n);
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

/* An entry with the normalised header fields: owner 0 root:root, mtime. */
static struct archive_entry *
norm_entry(const char *path, int64_t mtime)
{
	struct archive_entry *e = archive_entry_new();

	if (e == NULL)
		rf_bug("archive_entry_new failed");
	archive_entry_set_pathname_utf8(e, path);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname_utf8(e, "root");
	archive_entry_set_gname_utf8(e, "root");
	archive_entry_set_mtime(e, (time_t)mtime, 0);
	return e;
}

const char *
artifact_compression_for(const char *name)
{
	static const char *const map[][2] = {
		{ ".tar", "none" },  { ".tar.gz", "gzip" },
		{ ".tgz", "gzip" },  { ".tar.zst", "zstd" },
		{ ".tzst", "zstd" }, { ".tar.xz", "xz" },
		{ ".txz", "xz" },
	};
	size_t n = strlen(name), i, k;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		k = strlen(map[i][0]);
		if (n > k && strcmp(name + n - k, map[i][0]) == 0)
			return map[i][1];
	}
	return NULL;
}

/* The compressor, as reproducible as gzip: no timestamp, one thread. */
static int
writer_filter(struct archive *a, const char *compression)
{
	if (compression == NULL || strcmp(compression, "gzip") == 0)
		return archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
		       archive_write_set_filter_option(a, "gzip", "timestamp",
						       NULL) != ARCHIVE_OK;
	if (strcmp(compression, "zstd") == 0)
		return archive_write_add_filter_zstd(a) != ARCHIVE_OK;
	if (strcmp(compression, "xz") == 0)
		return archive_write_add_filter_xz(a) != ARCHIVE_OK;
	return archive_write_add_filter_none(a) != ARCHIVE_OK;
}

/*
 * The writer pack and delta tarballs share: compressed as asked (NULL:
 * gzip) without a timestamp, pax_restricted (plain ustar unless a name
 * needs pax), into fd.
 */
static int
writer_open(struct archive **out, int fd, const char *compression,
	    const char *stage, struct rf_error *err)
{
	struct archive *a = archive_write_new();

	*out = a;
	if (a == NULL)
		return rf_error_set(err, RF_EXIT_INTERNAL, stage,
				    "archive_write_new failed");
	if (writer_filter(a, compression) != 0 ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK)
		return rf_error_set(err, RF_EXIT_INTERNAL, stage,
				    "cannot set up the archive writer: %s",
				    archive_error_string(a));
	return 0;
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
		e = norm_entry(it->path, c->opts->mtime);
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
		if (it->kind != KIND_FILE)
			continue;
		if (it->size == 0 && it->content == NULL)
			note_secret(c, it, NULL, 0);
		if (it->size == 0)
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
		rc = pack_file_data(c, a, full, it, buf, err);
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
	struct tar_locale loc = { (locale_t)0, (locale_t)0 };
	struct archive *a = NULL;
	int r = -1;

	if (tar_locale_enter(&loc, "pack", err) != 0)
		return -1;
	if (writer_open(&a, fd, c->opts->compression, "pack", err) != 0 ||
	    pack_write_items(c, a, err) != 0)
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
	tar_locale_leave(&loc);
	return r;
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
	for (i = 0; i < c->ninc; i++)
		free(c->inc[i].glob);
	free(c->inc);
	strlist_free(&c->tracked);
	if (c->others.pid >= 0) {
		struct strlist unused = { NULL, 0 };
		struct rf_error ignored = RF_ERROR_INIT;

		/* Not asked for in the end: still reaped. */
		(void)git_files_finish(&c->others, c->opts->dir, &unused,
				       &ignored);
		strlist_free(&unused);
	}
	free(c->revision_text);
}

/*
 * In a git work tree, the file list is what git tracks there: a build's
 * output, a virtualenv, a key left lying around stay out unless an
 * --include asks for them. A directory where git tracks nothing (a build
 * directory it ignores) is packed whole, as outside a work tree.
 */
static int
pack_git(struct pack_ctx *c, struct rf_error *err)
{
	struct rf_error ignored = RF_ERROR_INIT;
	int r;

	/*
	 * The untracked files are only named in the report: git lists them
	 * on the other core while the tree is walked and read.
	 */
	if (c->opts->report != NULL)
		(void)git_files_start(c->opts->dir, GIT_OTHERS, &c->others,
				      &ignored);
	r = git_files(c->opts->dir, GIT_TRACKED, &c->tracked, err);

	if (r < 0)
		return -1;
	c->git = r == 1 && c->tracked.n > 0;
	if (!c->git)
		strlist_free(&c->tracked);
	if (c->opts->report != NULL)
		c->opts->report->git = c->git;
	return 0;
}

/* Does a pattern match path, or a directory it is in? */
static int
pattern_match_path(const struct pack_pattern *pats, size_t n, const char *path)
{
	char *dir = xstrdup(path), *slash;
	const char *base;
	int r = 0, is_dir = 0;

	for (;;) {
		slash = strrchr(dir, '/');
		base = slash != NULL ? slash + 1 : dir;
		if (pattern_match(pats, n, dir, base, is_dir)) {
			r = 1;
			break;
		}
		if (slash == NULL)
			break;
		*slash = '\0';
		is_dir = 1;
	}
	free(dir);
	return r;
}

/* The files git does not track and no --include took: named, not packed. */
static void
note_untracked(struct pack_ctx *c)
{
	struct pack_report *rep = c->opts->report;
	struct strlist others = { NULL, 0 };
	struct rf_error err = RF_ERROR_INIT;
	size_t i, used = 0;

	if (git_files_finish(&c->others, c->opts->dir, &others, &err) != 1)
		return;
	for (i = 0; i < others.n; i++) {
		if (pattern_match_path(c->inc, c->ninc, others.v[i]) ||
		    pattern_match_path(c->pats, c->npats, others.v[i]))
			continue;
		rep->untracked++;
		if (rep->untracked <= 3 && used + strlen(others.v[i]) + 2 <
					       sizeof(rep->untracked_some))
			used += (size_t)snprintf(
			    rep->untracked_some + used,
			    sizeof(rep->untracked_some) - used, "%s%s",
			    used ? " " : "", others.v[i]);
	}
	strlist_free(&others);
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
	c.others.pid = -1;
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
		pattern_add(&c.pats, &c.npats, opts->excludes[i]);
	for (i = 0; i < opts->nincludes; i++)
		pattern_add(&c.inc, &c.ninc, opts->includes[i]);
	if (read_ignore_file(&c, err) != 0)
		goto out;
	if (!opts->no_git && pack_git(&c, err) != 0)
		goto out;
	if (pack_walk(&c, "", 0, err) != 0)
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
	if (c.git && opts->report != NULL)
		note_untracked(&c);
	if (c.nitems > defaults.max_entries ||
	    c.unpacked > defaults.max_unpacked) {
		tar_show_size(size, sizeof(size), defaults.max_unpacked);
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
	/*
	 * Not synced to disk, as tar and git archive do not: the artifact
	 * is a build output, and waiting for the disk cost more than the
	 * rest of a small app's pack after its files (12 ms of 105 here).
	 * A killed pack never leaves a partial file under the output's
	 * name (the rename); close() still reports what a network file
	 * system only reports then.
	 */
	if (close(fd) != 0) {
		fd = -1;
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot write '%s': %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	/* Prove the result would deploy before it takes the output's name. */
	if (tar_validate_file(tmp, opts->output, NULL, info, NULL, err) != 0) {
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

/* Delta tarballs. */

struct subset {
	const char *shown;
	const struct manifest *select;
	unsigned char *seen; /* a flag per select entry */
	EVP_MD_CTX *md;
};

static int
subset_changed(struct subset *s, const char *path, const char *what,
	       struct rf_error *err)
{
	char name[SHOW_MAX + 8];

	tar_show_name(name, sizeof(name), path);
	rf_error_set(err, RF_EXIT_ARTIFACT, "upload",
		     "%s: entry '%s' is not the one validated (%s)", s->shown,
		     name, what);
	return rf_error_hint(err, "the artifact changed since it was "
				  "validated; deploy it again");
}

/* A selected file's data, hashed on the way, must match its entry. */
static int
subset_copy_data(struct subset *s, struct archive *in, struct archive *out,
		 const struct manifest_entry *me, struct rf_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const void *data;
	size_t len;
	la_int64_t off, want = 0;
	char hex[65];
	int rc;

	if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		return rf_error_set(err, RF_EXIT_INTERNAL, "upload",
				    "cannot start sha-256");
	for (;;) {
		if (interrupted)
			return rf_error_set(err, RF_EXIT_INTERRUPTED, "upload",
					    "interrupted");
		rc = archive_read_data_block(in, &data, &len, &off);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK)
			return rf_error_set(err, RF_EXIT_ARTIFACT, "upload",
					    "cannot read '%s': %s", s->shown,
					    archive_error_string(in));
		if (off != want)
			return subset_changed(s, me->path, "sparse data", err);
		if (EVP_DigestUpdate(s->md, data, len) != 1)
			return rf_error_set(err, RF_EXIT_INTERNAL, "upload",
					    "sha-256 update failed");
		if (archive_write_data(out, data, len) != (la_ssize_t)len)
			return rf_error_set(err, RF_EXIT_UPLOAD, "upload",
					    "cannot write the delta tarball: "
					    "%s",
					    archive_error_string(out));
		want += (la_int64_t)len;
	}
	if (EVP_DigestFinal_ex(s->md, md, &mdlen) != 1)
		return rf_error_set(err, RF_EXIT_INTERNAL, "upload",
				    "sha-256 failed");
	tar_digest_hex(md, mdlen, hex);
	if ((uint64_t)want != me->size || strcmp(hex, me->sha256) != 0)
		return subset_changed(s, me->path, "content", err);
	return 0;
}

/* Copy one artifact entry into the delta when select lists it. */
static int
subset_entry(struct subset *s, struct archive *in, struct archive_entry *e,
	     struct archive *out, struct rf_error *err)
{
	const char *raw = archive_entry_pathname(e), *why;
	const char *hard = archive_entry_hardlink(e);
	const char *sym = archive_entry_symlink(e);
	mode_t type = archive_entry_filetype(e);
	const struct manifest_entry *me;
	struct archive_entry *oe = NULL;
	char *norm = NULL, *hnorm = NULL, want;
	int r = -1;

	norm = tar_path_normalise(raw != NULL ? raw : "", &why);
	if (norm == NULL)
		return subset_changed(s, raw != NULL ? raw : "", why, err);
	me = norm[0] != '\0' ? manifest_find(s->select, norm) : NULL;
	if (me == NULL) {
		r = 0;
		goto out;
	}
	want = hard != NULL       ? MANIFEST_FILE
	       : type == AE_IFDIR ? MANIFEST_DIR
	       : type == AE_IFLNK ? MANIFEST_LINK
				  : MANIFEST_FILE;
	if (want != me->type || s->seen[me - s->select->entries] ||
	    (want == MANIFEST_LINK &&
	     (sym == NULL || strcmp(sym, me->target) != 0)) ||
	    (hard == NULL && want == MANIFEST_FILE &&
	     (uint64_t)archive_entry_size(e) != me->size)) {
		subset_changed(s, norm, "type, target or size", err);
		goto out;
	}
	s->seen[me - s->select->entries] = 1;
	oe = norm_entry(norm, archive_entry_mtime(e));
	archive_entry_set_perm(oe, me->mode);
	archive_entry_set_size(oe, 0);
	if (me->type == MANIFEST_DIR)
		archive_entry_set_filetype(oe, AE_IFDIR);
	else if (me->type == MANIFEST_LINK) {
		archive_entry_set_filetype(oe, AE_IFLNK);
		archive_entry_set_symlink_utf8(oe, me->target);
	} else {
		archive_entry_set_filetype(oe, AE_IFREG);
		if (hard != NULL) {
			hnorm = tar_path_normalise(hard, &why);
			if (hnorm == NULL || hnorm[0] == '\0') {
				subset_changed(s, norm, "hard link", err);
				goto out;
			}
			archive_entry_set_hardlink_utf8(oe, hnorm);
		} else
			archive_entry_set_size(oe, (la_int64_t)me->size);
	}
	if (archive_write_header(out, oe) != ARCHIVE_OK) {
		rf_error_set(err, RF_EXIT_UPLOAD, "upload",
			     "cannot write the delta tarball: %s",
			     archive_error_string(out));
		goto out;
	}
	if (me->type == MANIFEST_FILE && hard == NULL &&
	    subset_copy_data(s, in, out, me, err) != 0)
		goto out;
	r = 0;
out:
	if (oe != NULL)
		archive_entry_free(oe);
	free(norm);
	free(hnorm);
	return r;
}

/*
 * The directories select lists that the artifact does not (parents GNU
 * tar made): added last; anything else missing is an error.
 */
static int
subset_missing(struct subset *s, struct archive *out, struct rf_error *err)
{
	const struct manifest_entry *me;
	struct archive_entry *oe;
	time_t now = time(NULL);
	size_t i;
	int rc;

	for (i = 0; i < s->select->n; i++) {
		me = &s->select->entries[i];
		if (s->seen[i])
			continue;
		if (me->type != MANIFEST_DIR)
			return subset_changed(s, me->path,
					      "not in the artifact", err);
		oe = norm_entry(me->path, (int64_t)now);
		archive_entry_set_filetype(oe, AE_IFDIR);
		archive_entry_set_perm(oe, me->mode);
		archive_entry_set_size(oe, 0);
		rc = archive_write_header(out, oe);
		archive_entry_free(oe);
		if (rc != ARCHIVE_OK)
			return rf_error_set(err, RF_EXIT_UPLOAD, "upload",
					    "cannot write the delta tarball: "
					    "%s",
					    archive_error_string(out));
	}
	return 0;
}

int
artifact_write_subset(const char *path, const char *sha256,
		      const struct manifest *select, int fd,
		      struct rf_error *err)
{
	struct tar_locale loc = { (locale_t)0, (locale_t)0 };
	struct tar_file tf;
	struct subset s;
	struct archive *in = NULL, *out = NULL;
	struct archive_entry *e;
	char hex[65];
	int rc, r = -1;

	memset(&s, 0, sizeof(s));
	s.shown = path;
	s.select = select;
	s.seen = xcalloc(select->n > 0 ? select->n : 1, 1);
	if (tar_file_open(&tf, path, path, "upload", err) != 0)
		goto out;
	s.md = EVP_MD_CTX_new();
	if (s.md == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, "upload",
			     "cannot start sha-256");
		goto out;
	}
	if (tar_locale_enter(&loc, "upload", err) != 0)
		goto out;
	in = archive_read_new();
	if (in == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, "upload",
			     "archive_read_new failed");
		goto out;
	}
	tar_read_filters(in);
	if (tar_read_format(in) != ARCHIVE_OK ||
	    tar_file_attach(in, &tf) != ARCHIVE_OK) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "upload",
			     "cannot read '%s': %s", path,
			     archive_error_string(in));
		goto out;
	}
	if (writer_open(&out, fd, NULL, "upload", err) != 0)
		goto out;
	for (;;) {
		rc = archive_read_next_header(in, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK) {
			rf_error_set(err, RF_EXIT_ARTIFACT, "upload",
				     "cannot read '%s': %s", path,
				     archive_error_string(in));
			goto out;
		}
		if (subset_entry(&s, in, e, out, err) != 0)
			goto out;
	}
	if (tar_file_finish(&tf, path, "upload", hex, err) != 0)
		goto out;
	if (sha256 != NULL && strcmp(hex, sha256) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "upload",
			     "'%s' changed since it was validated (sha-256 "
			     "%.12s, was %.12s)",
			     path, hex, sha256);
		rf_error_hint(err, "deploy it again");
		goto out;
	}
	if (subset_missing(&s, out, err) != 0)
		goto out;
	if (archive_write_close(out) != ARCHIVE_OK) {
		rf_error_set(err, RF_EXIT_UPLOAD, "upload",
			     "cannot write the delta tarball: %s",
			     archive_error_string(out));
		goto out;
	}
	r = 0;
out:
	if (in != NULL)
		archive_read_free(in);
	if (out != NULL)
		archive_write_free(out);
	tar_locale_leave(&loc);
	tar_file_close(&tf);
	EVP_MD_CTX_free(s.md);
	free(s.seen);
	return r;
}
