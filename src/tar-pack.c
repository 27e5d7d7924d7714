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
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "artifact.h"
#include "error.h"
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
	struct tar_locale loc = { (locale_t)0, (locale_t)0 };
	struct archive *a = NULL;
	int r = -1;

	if (tar_locale_enter(&loc, "pack", err) != 0)
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
	tar_locale_leave(&loc);
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
