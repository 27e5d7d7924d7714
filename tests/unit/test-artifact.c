/*
 * Unit tests for src/tar-validate.c and src/tar-pack.c: artifact_validate
 * against crafted archives (written with libarchive's writer, or block by
 * block), the differential corpus (each crafted archive is refused, or
 * GNU tar unpacks exactly its manifest), artifact_pack's reproducibility
 * and refusals, delta tarballs, file_sha256.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "artifact.h"
#include "buf.h"
#include "error.h"
#include "manifest.h"

#define TEST_MTIME 315532800LL

/* One temporary directory per test, removed in teardown. */
struct fx {
	char dir[1024];
	char paths[8][PATH_MAX];
	int next;
};

/* dir/rel in one of eight rotating buffers owned by the fixture. */
static const char *
fp(struct fx *f, const char *fmt, ...)
{
	char *p = f->paths[f->next];
	size_t len = strlen(f->dir);
	va_list ap;

	f->next = (f->next + 1) % 8;
	memcpy(p, f->dir, len);
	p[len++] = '/';
	va_start(ap, fmt);
	vsnprintf(p + len, PATH_MAX - len, fmt, ap);
	va_end(ap);
	return p;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/relflip-test-artifact-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (getenv("RELFLIP_KEEP_TMP") == NULL)
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t len = strlen(data);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
write_bytes(const char *path, const void *data, size_t len, int append)
{
	int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC),
		      0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Deterministic pseudo-random bytes: incompressible test data. */
static void
fill_random(unsigned char *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

/* Crafted archives. */

struct tent {
	const char *path;
	mode_t type;      /* AE_IFREG when 0 */
	mode_t perm;      /* 0644 (0755 for a directory) when 0 */
	const char *data; /* a regular file's bytes */
	const char *link; /* symlink target */
	const char *hard; /* hard link target */
	int64_t zeros;    /* declare this size and stream zeros */
};

enum tfilter {
	TF_NONE,
	TF_GZIP,
	TF_XZ,
	TF_ZSTD,
	TF_GZIP_GZIP,
};

static void
write_tar(const char *path, enum tfilter filter, const struct tent *ents)
{
	static char zeros[65536];
	locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old = uselocale(loc);
	struct archive *a = archive_write_new();
	struct archive_entry *e;
	const struct tent *t;
	int64_t left;
	size_t len, n;

	assert_true(loc != (locale_t)0);
	assert_non_null(a);
	switch (filter) {
	case TF_NONE:
		break;
	case TF_GZIP:
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
		break;
	case TF_XZ:
		assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
		break;
	case TF_ZSTD:
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
		break;
	case TF_GZIP_GZIP:
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
		break;
	}
	assert_int_equal(archive_write_set_format_pax_restricted(a),
			 ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (t = ents; t->path != NULL; t++) {
		e = archive_entry_new();
		archive_entry_set_pathname(e, t->path);
		archive_entry_set_filetype(e,
					   t->type != 0 ? t->type : AE_IFREG);
		archive_entry_set_perm(e, t->perm != 0          ? t->perm
					  : t->type == AE_IFDIR ? 0755
								: 0644);
		archive_entry_set_mtime(e, 1700000000, 0);
		if (t->type == AE_IFCHR || t->type == AE_IFBLK)
			archive_entry_set_rdev(e, 0x0103);
		if (t->link != NULL)
			archive_entry_set_symlink(e, t->link);
		if (t->hard != NULL)
			archive_entry_set_hardlink(e, t->hard);
		len = t->data != NULL ? strlen(t->data) : 0;
		if (t->zeros > 0)
			archive_entry_set_size(e, t->zeros);
		else
			archive_entry_set_size(e, (la_int64_t)len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (len > 0)
			assert_int_equal(archive_write_data(a, t->data, len),
					 (la_ssize_t)len);
		for (left = t->zeros; left > 0; left -= (int64_t)n) {
			n = left < (int64_t)sizeof(zeros) ? (size_t)left
							  : sizeof(zeros);
			assert_int_equal(archive_write_data(a, zeros, n),
					 (la_ssize_t)n);
		}
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	uselocale(old);
	freelocale(loc);
}

static const struct tent good_tree[] = {
	{ .path = "./", .type = AE_IFDIR, .perm = 0755 },
	{ .path = "./app/", .type = AE_IFDIR, .perm = 0755 },
	{ .path = "./app/main.py", .data = "print('hi')\n" },
	{ .path = "./bin/run", .perm = 0755, .data = "#!/bin/sh\n" },
	{ .path = "./lib", .type = AE_IFLNK, .perm = 0777, .link = "app" },
	{ .path = "./app/up", .type = AE_IFLNK, .link = "../bin/run" },
	{ .path = "./app/copy.py", .hard = "./app/main.py" },
	{ .path = "./private/", .type = AE_IFDIR, .perm = 0700 },
	{ NULL },
};

static void
expect_valid(const char *path, const char *compression)
{
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;
	char hex[65];
	struct stat st;

	if (artifact_validate(path, NULL, &info, &err) != 0)
		fail_msg("validate %s: %s", path, err.msg);
	assert_string_equal(info.compression, compression);
	assert_int_equal(info.entries, 8);
	assert_int_equal(info.files, 3);
	assert_int_equal(info.unpacked_size,
			 strlen("print('hi')\n") + strlen("#!/bin/sh\n"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(info.file_size, (uint64_t)st.st_size);
	assert_int_equal(file_sha256(path, hex, &err), 0);
	assert_string_equal(info.sha256, hex);
	assert_int_equal(strlen(info.sha256), 64);
}

static void
expect_refused(const char *path, const struct artifact_limits *lim,
	       const char *needle)
{
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;
	int r;

	r = artifact_validate(path, lim, &info, &err);
	print_message("  -> %s%s%s\n", err.msg, err.hint[0] ? " / hint: " : "",
		      err.hint);
	if (r != -1 || strstr(err.msg, needle) == NULL)
		fail_msg("validate %s: r=%d msg '%s', wanted '%s'", path, r,
			 err.msg, needle);
	assert_int_equal(err.code, RF_EXIT_ARTIFACT);
	assert_non_null(err.stage);
	assert_string_equal(err.stage, "validate");
	assert_string_equal(info.sha256, "");
}

static void
test_validate_good_tar(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "good.tar");

	write_tar(p, TF_NONE, good_tree);
	expect_valid(p, "none");
}

static void
test_validate_good_gzip(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "good.tar.gz");

	write_tar(p, TF_GZIP, good_tree);
	expect_valid(p, "gzip");
}

static void
test_validate_good_xz(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "good.tar.xz");

	write_tar(p, TF_XZ, good_tree);
	expect_valid(p, "xz");
}

static void
test_validate_good_zstd(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "good.tar.zst");

	write_tar(p, TF_ZSTD, good_tree);
	expect_valid(p, "zstd");
}

/* Data after the tar's end marker is still part of the digest. */
static void
test_validate_digest_covers_trailing_bytes(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "trailing.tar");
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info, before;
	unsigned char junk[300000];
	char hex[65];
	struct stat st;

	write_tar(p, TF_NONE, good_tree);
	assert_int_equal(artifact_validate(p, NULL, &before, &err), 0);
	fill_random(junk, sizeof(junk), 7);
	memset(junk, 0, 1024); /* still looks like end blocks first */
	write_bytes(p, junk, sizeof(junk), 1);
	assert_int_equal(artifact_validate(p, NULL, &info, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(info.file_size, (uint64_t)st.st_size);
	assert_int_equal(file_sha256(p, hex, &err), 0);
	assert_string_equal(info.sha256, hex);
	assert_string_not_equal(info.sha256, before.sha256);
}

struct refusal {
	const char *name;
	const char *needle;
	struct tent ents[6];
};

static const struct refusal refusals[] = {
	{ "empty path", "empty path", { { .path = "" }, { NULL } } },
	{ "absolute",
	  "entry '/etc/cron.d/x': absolute path",
	  { { .path = "/etc/cron.d/x", .data = "x" }, { NULL } } },
	{ "dotdot",
	  "entry 'a/../../x': path leaves the release ('..' component)",
	  { { .path = "a/../../x", .data = "x" }, { NULL } } },
	{ "dotdot alone",
	  "'..' component",
	  { { .path = "..", .type = AE_IFDIR }, { NULL } } },
	{ "duplicate",
	  "entry 'a': duplicate of an earlier entry",
	  { { .path = "./a", .data = "1" },
	    { .path = "a", .data = "2" },
	    { NULL } } },
	{ "duplicate dir",
	  "duplicate",
	  { { .path = "d/", .type = AE_IFDIR },
	    { .path = "./d//", .type = AE_IFDIR },
	    { NULL } } },
	{ "under symlink",
	  "entry 'l/x': path under the earlier symlink 'l'",
	  { { .path = "app/", .type = AE_IFDIR },
	    { .path = "l", .type = AE_IFLNK, .link = "app" },
	    { .path = "l/x", .data = "x" },
	    { NULL } } },
	{ "under symlink deep",
	  "entry './l/a/b/c': path under the earlier symlink 'l'",
	  { { .path = "./l", .type = AE_IFLNK, .link = "." },
	    { .path = "./l/a/b/c", .data = "x" },
	    { NULL } } },
	{ "under file",
	  "path under the earlier file 'f'",
	  { { .path = "f", .data = "x" },
	    { .path = "f/x", .data = "x" },
	    { NULL } } },
	{ "symlink absolute",
	  "entry 'passwd': symlink to '/etc/passwd': absolute target",
	  { { .path = "passwd", .type = AE_IFLNK, .link = "/etc/passwd" },
	    { NULL } } },
	{ "symlink up",
	  "entry 'a/l': symlink to '../../x': target leaves the release",
	  { { .path = "a/l", .type = AE_IFLNK, .link = "../../x" },
	    { NULL } } },
	{ "symlink up at top",
	  "target leaves the release",
	  { { .path = "l", .type = AE_IFLNK, .link = ".." }, { NULL } } },
	{ "symlink dotdot after name",
	  "'..' after a name",
	  { { .path = "l", .type = AE_IFLNK, .link = "d/../x" }, { NULL } } },
	{ "symlink empty",
	  "empty target",
	  { { .path = "l", .type = AE_IFLNK, .link = "" }, { NULL } } },
	{ "hardlink absolute",
	  "entry 'h': hard link to '/etc/shadow': absolute target",
	  { { .path = "h", .hard = "/etc/shadow" }, { NULL } } },
	{ "hardlink dotdot",
	  "hard link to '../outside/secret': target leaves the release",
	  { { .path = "h", .hard = "../outside/secret" }, { NULL } } },
	{ "hardlink forward",
	  "hard link to 'later': not an earlier regular file",
	  { { .path = "h", .hard = "later" },
	    { .path = "later", .data = "x" },
	    { NULL } } },
	{ "hardlink to dir",
	  "not an earlier regular file",
	  { { .path = "d", .type = AE_IFDIR },
	    { .path = "h", .hard = "d" },
	    { NULL } } },
	{ "hardlink to symlink",
	  "not an earlier regular file",
	  { { .path = "l", .type = AE_IFLNK, .link = "x" },
	    { .path = "h", .hard = "l" },
	    { NULL } } },
	{ "char device",
	  "entry 'dev/null': character device",
	  { { .path = "dev/null", .type = AE_IFCHR }, { NULL } } },
	{ "block device",
	  "entry 'sda': block device",
	  { { .path = "sda", .type = AE_IFBLK }, { NULL } } },
	{ "fifo",
	  "entry 'pipe': FIFO",
	  { { .path = "pipe", .type = AE_IFIFO }, { NULL } } },
	{ "setuid",
	  "entry 'bin/su': setuid bit (mode 4755)",
	  { { .path = "bin/su", .perm = 04755, .data = "x" }, { NULL } } },
	{ "setgid dir",
	  "entry 'shared/': setgid bit (mode 2775)",
	  { { .path = "shared", .type = AE_IFDIR, .perm = 02775 }, { NULL } } },
	{ "root as file",
	  "the release root must be a directory",
	  { { .path = ".", .data = "x" }, { NULL } } },
	{ "C1 control shown escaped",
	  "entry '\\xc2\\x9b2J/../x'",
	  { { .path = "\xc2\x9b"
		      "2J/../x",
	      .data = "x" },
	    { NULL } } },
	{ "control chars shown escaped",
	  "entry 'a\\x1b[2J/../x'",
	  { { .path = "a\x1b[2J/../x", .data = "x" }, { NULL } } },
	{ "sticky file",
	  "entry 'f': sticky bit (mode 1644)",
	  { { .path = "f", .perm = 01644, .data = "x" }, { NULL } } },
	{ "sticky dir",
	  "entry 'tmp/': sticky bit (mode 1777)",
	  { { .path = "tmp", .type = AE_IFDIR, .perm = 01777 }, { NULL } } },
	{ "dir not writable",
	  "entry 'ro/': directory mode 0555 lacks u+rwx: the deploy user "
	  "could not write into it",
	  { { .path = "ro", .type = AE_IFDIR, .perm = 0555 }, { NULL } } },
	{ "root not writable",
	  "entry './': directory mode 0500 lacks u+rwx",
	  { { .path = "./", .type = AE_IFDIR, .perm = 0500 }, { NULL } } },
	{ "file not readable",
	  "entry 'secret': file mode 0200 lacks u+r",
	  { { .path = "secret", .perm = 0200, .data = "x" }, { NULL } } },
	{ "tab in name",
	  "entry 'a\\x09b': name holds a control character, tab or backslash",
	  { { .path = "a\tb", .data = "x" }, { NULL } } },
	{ "newline in name",
	  "entry 'a\\x0ab': name holds a control character",
	  { { .path = "a\nb", .data = "x" }, { NULL } } },
	{ "backslash in name",
	  "entry 'a\\x5cb': name holds a control character, tab or backslash",
	  { { .path = "a\\b", .data = "x" }, { NULL } } },
	{ "DEL in name",
	  "name holds a control character",
	  { { .path = "a\x7f", .data = "x" }, { NULL } } },
	{ "tab in symlink target",
	  "entry 'l': link target holds a control character, tab or "
	  "backslash",
	  { { .path = "l", .type = AE_IFLNK, .link = "a\tb" }, { NULL } } },
	{ "file over implied directory",
	  "entry 'a': not a directory, but earlier entries are under it ('a')",
	  { { .path = "a/b", .data = "x" },
	    { .path = "a", .data = "y" },
	    { NULL } } },
	{ "symlink over implied directory",
	  "entry 'a': not a directory, but earlier entries are under it",
	  { { .path = "a/b", .data = "x" },
	    { .path = "a", .type = AE_IFLNK, .link = "c" },
	    { NULL } } },
};

static void
test_validate_refusals(void **state)
{
	struct fx *f = *state;
	size_t i;
	const char *p;

	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		p = fp(f, "refusal-%zu.tar", i);
		write_tar(p, TF_NONE, refusals[i].ents);
		print_message("refusal: %s\n", refusals[i].name);
		expect_refused(p, NULL, refusals[i].needle);
		/* The same through gzip. */
		p = fp(f, "refusal-%zu.tar.gz", i);
		write_tar(p, TF_GZIP, refusals[i].ents);
		expect_refused(p, NULL, refusals[i].needle);
	}
}

/*
 * The differential corpus: tar streams written block by block, for what
 * no writer produces. Each is either refused by the validator, or GNU
 * tar, run as the server runs it (umask 022, `tar -x --no-same-owner
 * --no-same-permissions -f FILE -C DIR` into an empty directory), makes
 * a tree whose listing (manifest_listing_script) is byte for byte the
 * validator's manifest.
 */

struct rawtar {
	unsigned char *p;
	size_t len, cap;
};

static void
raw_append(struct rawtar *t, const void *data, size_t len, int pad)
{
	size_t padded = pad ? (len + 511) / 512 * 512 : len;

	if (t->len + padded > t->cap) {
		t->cap = (t->len + padded) * 2 + 4096;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
	memcpy(t->p + t->len, data, len);
	memset(t->p + t->len + len, 0, padded - len);
	t->len += padded;
}

/* One header block; zero fields take the usual values. */
struct rh {
	const char *name;
	char type;         /* '0' when 0 */
	unsigned int mode; /* 0644, 0755 for '5', when 0 */
	uint64_t size;
	const char *link;
	const char *prefix;      /* the ustar prefix field */
	int gnu;                 /* GNU magic "ustar  \0" */
	int v7;                  /* no magic */
	const char *size_field;  /* the 12 bytes of the size field */
	const char *mode_field;  /* the 8 bytes of the mode field */
	unsigned char base256;   /* size in base-256, this first byte */
	int bad_sum, signed_sum; /* a wrong or a signed checksum */
	int gnu_realsize;        /* the GNU real size field set */
	int gnu_atime;           /* the GNU atime and ctime fields set */
};

/* width - 1 octal digits and a NUL, as tar writers fill a field. */
static void
octal(unsigned char *dst, size_t width, uint64_t v)
{
	size_t i;

	dst[width - 1] = '\0';
	for (i = width - 1; i > 0; i--, v >>= 3)
		dst[i - 1] = (unsigned char)('0' + (v & 7));
}

static void
raw_hdr(struct rawtar *t, const struct rh *h)
{
	unsigned char b[512];
	long sum = 0;
	size_t i;
	uint64_t v;
	char type = h->type != 0 ? h->type : '0';

	memset(b, 0, sizeof(b));
	memcpy(b, h->name, strnlen(h->name, 100));
	if (h->mode_field != NULL)
		memcpy(b + 100, h->mode_field, 8);
	else
		octal(b + 100, 8,
		      h->mode != 0  ? h->mode
		      : type == '5' ? 0755
				    : 0644);
	octal(b + 108, 8, 1000);
	octal(b + 116, 8, 1000);
	if (h->size_field != NULL)
		memcpy(b + 124, h->size_field, 12);
	else if (h->base256 != 0) {
		b[124] = h->base256;
		for (v = h->size, i = 135; i > 124; i--, v >>= 8)
			b[i] = (unsigned char)(v & 0xff);
	} else
		octal(b + 124, 12, h->size);
	octal(b + 136, 12, 1700000000);
	b[156] = (unsigned char)type;
	if (h->link != NULL)
		memcpy(b + 157, h->link, strnlen(h->link, 100));
	if (h->gnu)
		memcpy(b + 257, "ustar  \0", 8);
	else if (!h->v7)
		memcpy(b + 257,
		       "ustar\0"
		       "00",
		       8);
	if (!h->v7) {
		memcpy(b + 265, "deploy", 6);
		memcpy(b + 297, "deploy", 6);
	}
	if (h->prefix != NULL)
		memcpy(b + 345, h->prefix, strnlen(h->prefix, 155));
	if (h->gnu_atime) {
		octal(b + 345, 12, 1700000000);
		octal(b + 357, 12, 1700000000);
	}
	if (h->gnu_realsize)
		octal(b + 483, 12, 4096);
	memset(b + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += h->signed_sum ? (signed char)b[i] : b[i];
	octal(b + 148, 7, (uint64_t)(sum + (h->bad_sum ? 1 : 0)));
	b[155] = ' ';
	raw_append(t, b, sizeof(b), 0);
}

static void
raw_file(struct rawtar *t, const char *name, const char *data)
{
	struct rh h = { .name = name, .size = strlen(data) };

	raw_hdr(t, &h);
	raw_append(t, data, strlen(data), 1);
}

static void
raw_dir(struct rawtar *t, const char *name, unsigned int mode)
{
	struct rh h = { .name = name, .type = '5', .mode = mode };

	raw_hdr(t, &h);
}

static void
raw_link(struct rawtar *t, const char *name, char type, const char *link)
{
	struct rh h = {
		.name = name, .type = type, .mode = 0777, .link = link
	};

	raw_hdr(t, &h);
}

/* An extension header ('x', 'g', 'L', 'K') and its data, as given. */
static void
raw_ext(struct rawtar *t, char type, const void *data, size_t len)
{
	struct rh h = {
		.name = type == 'L' || type == 'K' ? "././@LongLink"
			: type == 'g'              ? "pax_global_header"
						   : "PaxHeader/x",
		.type = type,
		.size = len,
		.gnu = type == 'L' || type == 'K',
	};

	raw_hdr(t, &h);
	raw_append(t, data, len, 1);
}

/* A pax header from key, value pairs, ended by NULL. */
static void
raw_pax(struct rawtar *t, char type, ...)
{
	char data[8192];
	size_t o = 0, klen, vlen, len, digits;
	const char *k, *v;
	va_list ap;

	va_start(ap, type);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		klen = strlen(k);
		vlen = strlen(v);
		len = klen + vlen + 3;
		for (digits = 1;; digits++) {
			size_t n = len + digits, d = 0;

			for (; n > 0; n /= 10)
				d++;
			if (d == digits)
				break;
		}
		len += digits;
		o += (size_t)snprintf(data + o, sizeof(data) - o, "%zu %s=%s\n",
				      len, k, v);
	}
	va_end(ap);
	raw_ext(t, type, data, o);
}

static void
raw_end(struct rawtar *t)
{
	static const unsigned char zero[1024];

	raw_append(t, zero, sizeof(zero), 0);
}

/* A pax path that is not UTF-8 makes libarchive warn: refused. */
static void
test_validate_header_warning(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "badname.tar");
	struct rawtar t;

	memset(&t, 0, sizeof(t));
	raw_pax(&t, 'x', "path", "\xff\xfe.txt", NULL);
	raw_file(&t, "x", "");
	raw_end(&t);
	write_bytes(p, t.p, t.len, 0);
	free(t.p);
	expect_refused(p, NULL, "entry '\\xff\\xfe.txt'");
}

/* A symlink that stays inside, with leading "..", is fine. */
static void
test_validate_symlinks_inside(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "links.tar");
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;
	static const struct tent ents[] = {
		{ .path = "node_modules/.bin/x",
		  .type = AE_IFLNK,
		  .link = "../x/bin/x.js" },
		{ .path = "a/b/c", .type = AE_IFLNK, .link = "../../d" },
		{ .path = "top", .type = AE_IFLNK, .link = "./a/./b" },
		{ .path = "self", .type = AE_IFLNK, .link = "." },
		{ NULL },
	};

	write_tar(p, TF_GZIP, ents);
	if (artifact_validate(p, NULL, &info, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(info.entries, 4);
	assert_int_equal(info.files, 0);
}

static void
test_validate_not_tar(void **state)
{
	struct fx *f = *state;
	const char *zip = fp(f, "app.zip");
	const char *junk = fp(f, "junk.bin");
	const char *empty = fp(f, "empty.tar.gz");
	struct rf_error err = RF_ERROR_INIT;
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	unsigned char bytes[4096];

	assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, zip), ARCHIVE_OK);
	archive_entry_set_pathname(e, "a.txt");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 2);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, "hi", 2), 2);
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	expect_refused(zip, NULL,
		       "not a tar archive (gzip, zstd, xz or plain)");

	fill_random(bytes, sizeof(bytes), 42);
	write_bytes(junk, bytes, sizeof(bytes), 0);
	expect_refused(junk, NULL, "not a tar archive");

	write_bytes(empty, "", 0, 0);
	expect_refused(empty, NULL, "not a tar archive");

	expect_refused(fp(f, "missing.tar.gz"), NULL, "cannot open");

	/* A hint tells how to build a good one. */
	assert_int_equal(artifact_validate(junk, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.hint, "relflip pack"));
}

static void
test_validate_empty_archive(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "none.tar");
	static const struct tent ents[] = { { NULL } };

	write_tar(p, TF_GZIP, ents);
	expect_refused(p, NULL, "no entries");
}

static void
test_validate_nested_gzip(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "double.tar.gz.gz");

	write_tar(p, TF_GZIP_GZIP, good_tree);
	expect_refused(p, NULL, "nested compression");
}

static void
test_validate_truncated(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "cut.tar.gz");
	static unsigned char data[400001];
	struct tent ents[3];
	struct rf_error err = RF_ERROR_INIT;
	struct stat st;
	size_t i;

	fill_random(data, sizeof(data) - 1, 1);
	/* Keep the bytes NUL-free so they work as a string. */
	for (i = 0; i < sizeof(data) - 1; i++)
		data[i] |= 1;
	memset(ents, 0, sizeof(ents));
	ents[0].path = "first.txt";
	ents[0].data = "one\n";
	ents[1].path = "big.bin";
	ents[1].data = (const char *)data;
	write_tar(p, TF_GZIP, ents);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size / 2), 0);
	expect_refused(p, NULL, "cannot read the archive");
	assert_int_equal(artifact_validate(p, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.hint, "truncated"));

	/* Cut inside the gzip header: refused at open. */
	assert_int_equal(truncate(p, 100), 0);
	expect_refused(p, NULL, "cannot read the archive");
}

static void
test_validate_limit_entries(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "many.tar");
	struct artifact_limits lim = ARTIFACT_LIMITS_DEFAULT;

	write_tar(p, TF_NONE, good_tree);
	lim.max_entries = 3;
	expect_refused(p, &lim, "more than 3 entries");
	lim.max_entries = 8;
	{
		struct rf_error err = RF_ERROR_INIT;

		assert_int_equal(artifact_validate(p, &lim, NULL, &err), 0);
	}
}

static void
test_validate_limit_size(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "big.tar.gz");
	struct artifact_limits lim = ARTIFACT_LIMITS_DEFAULT;
	static const struct tent ents[] = {
		{ .path = "a", .zeros = 3000 },
		{ .path = "b", .zeros = 3000 },
		{ NULL },
	};

	write_tar(p, TF_GZIP, ents);
	lim.max_unpacked = 5000;
	expect_refused(p, &lim, "unpacked size passes the limit");
	expect_refused(p, &lim, "at entry 'b'");
}

/*
 * 256 MiB of zeros gzip to about 260 KB: ratio ~1000, refused from the
 * header alone. The same shape at 1 MiB is under the ratio floor: fine.
 */
static void
test_validate_limit_ratio(void **state)
{
	struct fx *f = *state;
	const char *bomb = fp(f, "bomb.tar.gz");
	const char *tiny = fp(f, "tiny.tar.gz");
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;
	struct artifact_limits lim = ARTIFACT_LIMITS_DEFAULT;
	static const struct tent big[] = {
		{ .path = "zeros", .zeros = 256LL << 20 },
		{ NULL },
	};
	static const struct tent small[] = {
		{ .path = "zeros", .zeros = 1LL << 20 },
		{ NULL },
	};
	struct stat st;

	write_tar(bomb, TF_GZIP, big);
	assert_int_equal(stat(bomb, &st), 0);
	assert_true(st.st_size < (1 << 20));
	expect_refused(bomb, NULL, "compression ratio over 200");

	/* With the ratio check off, the declared size is accepted. */
	lim.max_ratio = 0;
	assert_int_equal(artifact_validate(bomb, &lim, &info, &err), 0);
	assert_int_equal(info.unpacked_size, 256ULL << 20);

	write_tar(tiny, TF_GZIP, small);
	if (artifact_validate(tiny, NULL, &info, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(info.unpacked_size, 1ULL << 20);
}

static void
test_file_sha256(void **state)
{
	struct fx *f = *state;
	const char *p = fp(f, "abc");
	struct rf_error err = RF_ERROR_INIT;
	char hex[65];

	write_file(p, "abc", 0644);
	assert_int_equal(file_sha256(p, hex, &err), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad");
	write_file(p, "", 0644);
	assert_int_equal(file_sha256(p, hex, &err), 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	assert_int_equal(file_sha256(fp(f, "nope"), hex, &err), -1);
	assert_int_equal(err.code, RF_EXIT_ARTIFACT);
}

/* Packing. */

static void
mkdir_or_fail(const char *path)
{
	if (mkdir(path, 0777) != 0)
		fail_msg("mkdir %s: %s", path, strerror(errno));
}

/*
 * The sample tree under f->dir/name, created in the given order, with the
 * process umask deciding the modes (no chmod).
 */
static void
make_tree(struct fx *f, const char *name, int reverse)
{
	static const char *const files[][2] = {
		{ "README", "readme\n" },
		{ "app/main.py", "print('hi')\n" },
		{ "app/data/\xc3\xa9t\xc3\xa9.txt", "unicode\n" },
		{ "app/z.txt", "z\n" },
		{ "app/a.txt", "a\n" },
		{ ".git/HEAD", "ref: refs/heads/main\n" },
		{ "sub/.git", "gitdir: ../.git/modules/sub\n" },
		{ "sub/file", "sub\n" },
	};
	size_t n = sizeof(files) / sizeof(files[0]), i, k;

	mkdir_or_fail(fp(f, "%s", name));
	mkdir_or_fail(fp(f, "%s/app", name));
	mkdir_or_fail(fp(f, "%s/app/data", name));
	mkdir_or_fail(fp(f, "%s/.git", name));
	mkdir_or_fail(fp(f, "%s/sub", name));
	if (!reverse)
		mkdir_or_fail(fp(f, "%s/empty", name));
	mkdir_or_fail(fp(f, "%s/bin", name));
	if (reverse)
		mkdir_or_fail(fp(f, "%s/empty", name));
	for (k = 0; k < n; k++) {
		i = reverse ? n - 1 - k : k;
		write_file(fp(f, "%s/%s", name, files[i][0]), files[i][1],
			   0666);
	}
	write_file(fp(f, "%s/bin/run", name), "#!/bin/sh\necho run\n", 0777);
	assert_int_equal(symlink("app", fp(f, "%s/lib", name)), 0);
	assert_int_equal(symlink("../README", fp(f, "%s/app/up", name)), 0);
}

static int
pack_into(struct fx *f, const char *tree, const char *out, const char *revision,
	  const char *const *excludes, size_t nex, struct artifact_info *info,
	  struct rf_error *err)
{
	struct pack_options o;
	char dir[PATH_MAX], output[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", fp(f, "%s", tree));
	snprintf(output, sizeof(output), "%s", fp(f, "%s", out));
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.output = output;
	o.revision = revision;
	o.excludes = excludes;
	o.nexcludes = nex;
	o.mtime = TEST_MTIME;
	return artifact_pack(&o, info, err);
}

static void
pack_ok(struct fx *f, const char *tree, const char *out, const char *rev,
	const char *const *ex, size_t nex, struct artifact_info *info)
{
	struct rf_error err = RF_ERROR_INIT;

	if (pack_into(f, tree, out, rev, ex, nex, info, &err) != 0)
		fail_msg("pack %s: %s (hint: %s)", tree, err.msg, err.hint);
}

/*
 * Every entry as "path type perm uid/gid uname:gname mtime [-> target]",
 * one a line, in archive order, read under C.UTF-8.
 */
static char *
list_archive(const char *path)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	char name[PATH_MAX];
	size_t n;
	int r;

	assert_non_null(m);
	assert_true(loc != (locale_t)0);
	old = uselocale(loc);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536),
			 ARCHIVE_OK);
	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		assert_int_equal(r, ARCHIVE_OK);
		snprintf(name, sizeof(name), "%s", archive_entry_pathname(e));
		n = strlen(name);
		if (n > 1 && name[n - 1] == '/')
			name[n - 1] = '\0';
		fprintf(m, "%s %c %04o %lld/%lld %s:%s %lld", name,
			archive_entry_filetype(e) == AE_IFDIR   ? 'd'
			: archive_entry_filetype(e) == AE_IFLNK ? 'l'
								: 'f',
			(unsigned int)archive_entry_perm(e),
			(long long)archive_entry_uid(e),
			(long long)archive_entry_gid(e), archive_entry_uname(e),
			archive_entry_gname(e),
			(long long)archive_entry_mtime(e));
		if (archive_entry_symlink(e) != NULL)
			fprintf(m, " -> %s", archive_entry_symlink(e));
		fputc('\n', m);
	}
	archive_read_free(a);
	uselocale(old);
	freelocale(loc);
	fclose(m);
	return out;
}

/* The bytes of one member, NUL-terminated; NULL when absent. */
static char *
read_member(const char *path, const char *member, size_t *lenp)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *buf = NULL;
	size_t len = 0;
	la_ssize_t n;
	char chunk[65536];

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536),
			 ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (strcmp(archive_entry_pathname(e), member) != 0)
			continue;
		buf = malloc(1);
		assert_non_null(buf);
		for (;;) {
			n = archive_read_data(a, chunk, sizeof(chunk));
			assert_true(n >= 0);
			if (n == 0)
				break;
			buf = realloc(buf, len + (size_t)n + 1);
			assert_non_null(buf);
			memcpy(buf + len, chunk, (size_t)n);
			len += (size_t)n;
		}
		buf[len] = '\0';
		break;
	}
	archive_read_free(a);
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

/* Whether the decompressed tar stream contains needle. */
static int
tar_contains(const char *path, const char *needle)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	la_ssize_t n;
	int found;

	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536),
			 ARCHIVE_OK);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	for (;;) {
		if (cap - len < 65536) {
			cap = cap * 2 + 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = archive_read_data(a, buf + len, 65536);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	archive_read_free(a);
	found = memmem(buf, len, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

static const char expected_listing[] =
    "README f 0644 0/0 root:root 315532800\n"
    "app d 0755 0/0 root:root 315532800\n"
    "app/a.txt f 0644 0/0 root:root 315532800\n"
    "app/data d 0755 0/0 root:root 315532800\n"
    "app/data/\xc3\xa9t\xc3\xa9.txt f 0644 0/0 root:root 315532800\n"
    "app/main.py f 0644 0/0 root:root 315532800\n"
    "app/up l 0777 0/0 root:root 315532800 -> ../README\n"
    "app/z.txt f 0644 0/0 root:root 315532800\n"
    "bin d 0755 0/0 root:root 315532800\n"
    "bin/run f 0755 0/0 root:root 315532800\n"
    "empty d 0755 0/0 root:root 315532800\n"
    "lib l 0777 0/0 root:root 315532800 -> app\n"
    "sub d 0755 0/0 root:root 315532800\n"
    "sub/file f 0644 0/0 root:root 315532800\n";

static void
test_pack_contents(void **state)
{
	struct fx *f = *state;
	struct artifact_info info, again;
	struct rf_error err = RF_ERROR_INIT;
	unsigned char head[10];
	char *listing;
	char hex[65];
	int fd;

	make_tree(f, "t", 0);
	pack_ok(f, "t", "app.tar.gz", NULL, NULL, 0, &info);
	listing = list_archive(fp(f, "app.tar.gz"));
	assert_string_equal(listing, expected_listing);
	free(listing);

	assert_string_equal(info.compression, "gzip");
	assert_int_equal(info.entries, 14);
	assert_int_equal(info.files, 7);
	assert_int_equal(file_sha256(fp(f, "app.tar.gz"), hex, &err), 0);
	assert_string_equal(info.sha256, hex);
	assert_int_equal(
	    artifact_validate(fp(f, "app.tar.gz"), NULL, &again, &err), 0);
	assert_memory_equal(&info, &again, sizeof(info));

	/* gzip header: magic, then a zero MTIME field. */
	fd = open(fp(f, "app.tar.gz"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	close(fd);
	assert_int_equal(head[0], 0x1f);
	assert_int_equal(head[1], 0x8b);
	assert_int_equal(head[4] | head[5] | head[6] | head[7], 0);

	/* Non-ASCII names are plain UTF-8, not hdrcharset=BINARY. */
	assert_false(tar_contains(fp(f, "app.tar.gz"), "hdrcharset"));
	/* No temporary file is left behind. */
	assert_int_equal(access(fp(f, "app.tar.gz.tmp"), F_OK), -1);
}

static void
test_pack_ignores_file_mtimes(void **state)
{
	struct fx *f = *state;
	struct artifact_info a, b;
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	make_tree(f, "t", 0);
	pack_ok(f, "t", "a.tar.gz", NULL, NULL, 0, &a);
	assert_int_equal(utimensat(AT_FDCWD, fp(f, "t/README"), ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, fp(f, "t/app"), ts, 0), 0);
	ts[0].tv_sec = ts[1].tv_sec = 1234567890;
	assert_int_equal(
	    utimensat(AT_FDCWD, fp(f, "t/lib"), ts, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(utimensat(AT_FDCWD, fp(f, "t/bin/run"), ts, 0), 0);
	pack_ok(f, "t", "b.tar.gz", NULL, NULL, 0, &b);
	assert_string_equal(a.sha256, b.sha256);
}

static void
test_pack_normalises_modes(void **state)
{
	struct fx *f = *state;
	struct artifact_info a, b, c;

	make_tree(f, "t", 0);
	assert_int_equal(chmod(fp(f, "t/README"), 0644), 0);
	assert_int_equal(chmod(fp(f, "t/bin/run"), 0755), 0);
	pack_ok(f, "t", "a.tar.gz", NULL, NULL, 0, &a);
	assert_int_equal(chmod(fp(f, "t/README"), 0600), 0);
	assert_int_equal(chmod(fp(f, "t/bin/run"), 0700), 0);
	assert_int_equal(chmod(fp(f, "t/app"), 0700), 0);
	pack_ok(f, "t", "b.tar.gz", NULL, NULL, 0, &b);
	assert_string_equal(a.sha256, b.sha256);

	/* An executable bit is content: it changes the bytes. */
	assert_int_equal(chmod(fp(f, "t/README"), 0744), 0);
	pack_ok(f, "t", "c.tar.gz", NULL, NULL, 0, &c);
	assert_string_not_equal(a.sha256, c.sha256);
}

static void
test_pack_ignores_umask_and_readdir_order(void **state)
{
	struct fx *f = *state;
	struct artifact_info a, b;
	mode_t old = umask(077);

	make_tree(f, "one", 0);
	umask(002);
	make_tree(f, "two", 1);
	umask(old);
	pack_ok(f, "one", "one.tar.gz", NULL, NULL, 0, &a);
	pack_ok(f, "two", "two.tar.gz", NULL, NULL, 0, &b);
	assert_string_equal(a.sha256, b.sha256);
}

static void
test_pack_ignores_locale(void **state)
{
	struct fx *f = *state;
	struct artifact_info a, b;
	char *saved = strdup(setlocale(LC_ALL, NULL));
	char *listing;

	assert_non_null(saved);
	make_tree(f, "t", 0);
	assert_non_null(setlocale(LC_ALL, "C"));
	pack_ok(f, "t", "c.tar.gz", NULL, NULL, 0, &a);
	assert_non_null(setlocale(LC_ALL, "C.UTF-8"));
	pack_ok(f, "t", "utf8.tar.gz", NULL, NULL, 0, &b);
	/* And a packed artifact validates under the C locale too. */
	assert_non_null(setlocale(LC_ALL, "C"));
	{
		struct rf_error err = RF_ERROR_INIT;

		if (artifact_validate(fp(f, "utf8.tar.gz"), NULL, NULL, &err) !=
		    0)
			fail_msg("%s", err.msg);
	}
	setlocale(LC_ALL, saved);
	free(saved);
	assert_string_equal(a.sha256, b.sha256);
	assert_false(tar_contains(fp(f, "c.tar.gz"), "hdrcharset"));
	listing = list_archive(fp(f, "c.tar.gz"));
	assert_string_equal(listing, expected_listing);
	free(listing);
}

static void
test_pack_excludes(void **state)
{
	struct fx *f = *state;
	struct artifact_info info;
	static const char *const ex[] = { "*.log", "build/", "/docs/secret.txt",
					  "tmp" };
	char *listing;

	mkdir_or_fail(fp(f, "t"));
	mkdir_or_fail(fp(f, "t/.git"));
	write_file(fp(f, "t/.git/config"), "x\n", 0644);
	mkdir_or_fail(fp(f, "t/logs"));
	write_file(fp(f, "t/logs/a.log"), "x\n", 0644);
	write_file(fp(f, "t/x.log"), "x\n", 0644);
	write_file(fp(f, "t/keep.txt"), "x\n", 0644);
	write_file(fp(f, "t/build"), "a file named build stays\n", 0644);
	mkdir_or_fail(fp(f, "t/sub"));
	mkdir_or_fail(fp(f, "t/sub/build"));
	write_file(fp(f, "t/sub/build/out.o"), "x\n", 0644);
	mkdir_or_fail(fp(f, "t/docs"));
	write_file(fp(f, "t/docs/secret.txt"), "x\n", 0644);
	write_file(fp(f, "t/sub/secret.txt"), "stays\n", 0644);
	/* A FIFO in an excluded directory is never looked at. */
	mkdir_or_fail(fp(f, "t/tmp"));
	assert_int_equal(mkfifo(fp(f, "t/tmp/fifo"), 0644), 0);
	/* .relflipignore: comments, blank lines, CRLF, trailing blanks. */
	write_file(fp(f, "t/.relflipignore"),
		   "# caches\n\n*.bak  \r\ncache/\n   \n", 0644);
	write_file(fp(f, "t/a.bak"), "x\n", 0644);
	mkdir_or_fail(fp(f, "t/sub/cache"));
	write_file(fp(f, "t/sub/cache/c"), "x\n", 0644);

	pack_ok(f, "t", "out.tar.gz", NULL, ex, 4, &info);
	listing = list_archive(fp(f, "out.tar.gz"));
	assert_string_equal(listing,
			    ".relflipignore f 0644 0/0 root:root 315532800\n"
			    "build f 0644 0/0 root:root 315532800\n"
			    "docs d 0755 0/0 root:root 315532800\n"
			    "keep.txt f 0644 0/0 root:root 315532800\n"
			    "logs d 0755 0/0 root:root 315532800\n"
			    "sub d 0755 0/0 root:root 315532800\n"
			    "sub/secret.txt f 0644 0/0 root:root 315532800\n");
	free(listing);
}

static int run_sh(const char *dir, const char *script);

/*
 * In a git work tree pack takes what git tracks, plus --include; the
 * untracked files it left out are counted, and what looks like a secret
 * is reported whether git tracks it or not.
 */
static void
test_pack_git_tracked_and_included(void **state)
{
	struct fx *f = *state;
	struct pack_report rep;
	struct pack_options o;
	struct artifact_info info;
	struct rf_error err = RF_ERROR_INIT;
	static const char *const inc[] = { "dist/", "*.css" };
	static const char script[] =
	    "set -e\n"
	    "mkdir repo && cd repo\n"
	    "git init -q\n"
	    "mkdir -p app static venv/lib dist/js build\n"
	    "echo 'print(1)' > app/main.py\n"
	    "echo 'flask' > requirements.txt\n"
	    "printf '%s\\n' '-----BEGIN OPENSSH PRIVATE KEY-----' x > "
	    "app/notes\n"
	    "echo '/venv/' > .gitignore\n"
	    "git add .\n"
	    "git -c user.email=ci@example.com -c user.name=ci commit -qm v1\n"
	    "echo 'x' > venv/lib/site.py\n"
	    "echo 'k' > id_ed25519\n"
	    "echo 'SECRET=1' > .env\n"
	    "echo 'new' > new.py\n"
	    "echo 'b' > dist/js/app.js\n"
	    "echo 'c' > static/site.css\n"
	    "echo 'o' > build/out.o\n";
	char dir[PATH_MAX], out[PATH_MAX];
	char *listing;

	if (run_sh(f->dir, script) != 0)
		skip();
	snprintf(dir, sizeof(dir), "%s", fp(f, "repo"));
	snprintf(out, sizeof(out), "%s", fp(f, "a.tar.gz"));
	memset(&o, 0, sizeof(o));
	memset(&rep, 0, sizeof(rep));
	o.dir = dir;
	o.output = out;
	o.includes = inc;
	o.nincludes = 2;
	o.mtime = TEST_MTIME;
	o.report = &rep;
	if (artifact_pack(&o, &info, &err) != 0)
		fail_msg("pack: %s", err.msg);
	listing = list_archive(out);
	assert_string_equal(listing,
			    ".gitignore f 0644 0/0 root:root 315532800\n"
			    "app d 0755 0/0 root:root 315532800\n"
			    "app/main.py f 0644 0/0 root:root 315532800\n"
			    "app/notes f 0644 0/0 root:root 315532800\n"
			    "dist d 0755 0/0 root:root 315532800\n"
			    "dist/js d 0755 0/0 root:root 315532800\n"
			    "dist/js/app.js f 0644 0/0 root:root 315532800\n"
			    "requirements.txt f 0644 0/0 root:root 315532800\n"
			    "static d 0755 0/0 root:root 315532800\n"
			    "static/site.css f 0644 0/0 root:root 315532800\n");
	free(listing);
	assert_true(rep.git);
	/* .env, id_ed25519, new.py, build/out.o; venv/ is ignored. */
	assert_int_equal(rep.untracked, 4);
	assert_string_equal(rep.untracked_some, ".env build/out.o id_ed25519");
	assert_int_equal(rep.secrets.n, 1);
	assert_string_equal(rep.secrets.v[0],
			    "app/notes: it holds a private key (-----BEGIN ... "
			    "PRIVATE KEY-----)");
	strlist_free(&rep.secrets);

	/* --no-git: everything, the secrets named. */
	memset(&rep, 0, sizeof(rep));
	o.no_git = 1;
	o.includes = NULL;
	o.nincludes = 0;
	if (artifact_pack(&o, &info, &err) != 0)
		fail_msg("pack --no-git: %s", err.msg);
	assert_false(rep.git);
	assert_int_equal(rep.secrets.n, 3);
	assert_true(tar_contains(out, "venv/lib/site.py"));
	strlist_free(&rep.secrets);
	/* A directory git tracks nothing in (a build's output): all of it. */
	memset(&rep, 0, sizeof(rep));
	o.no_git = 0;
	snprintf(dir, sizeof(dir), "%s", fp(f, "repo/build"));
	if (artifact_pack(&o, &info, &err) != 0)
		fail_msg("pack build/: %s", err.msg);
	assert_false(rep.git);
	assert_true(tar_contains(out, "out.o"));
	strlist_free(&rep.secrets);
}

static void
test_pack_secret_names(void **state)
{
	(void)state;
	assert_non_null(artifact_secret_why(".env", ""));
	assert_non_null(artifact_secret_why(".env.production", ""));
	assert_null(artifact_secret_why(".env.example", ""));
	assert_null(artifact_secret_why(".envrc", ""));
	assert_non_null(artifact_secret_why("id_rsa", ""));
	assert_non_null(artifact_secret_why("id_ed25519", ""));
	assert_null(artifact_secret_why("id_ed25519.pub", ""));
	assert_non_null(artifact_secret_why("server.pem", ""));
	assert_non_null(artifact_secret_why("tls.key", ""));
	assert_null(artifact_secret_why("keys.txt", "just text\n"));
	assert_non_null(artifact_secret_why(
	    "deploy_key", "-----BEGIN RSA PRIVATE KEY-----\nMII"));
	assert_null(artifact_secret_why("cert.txt",
					"-----BEGIN CERTIFICATE-----\nMII"));
}

/* The output's name picks the compression; the bytes stay reproducible. */
static void
test_pack_compression_from_the_name(void **state)
{
	struct fx *f = *state;
	struct artifact_info a, b;
	struct pack_options o;
	struct rf_error err = RF_ERROR_INIT;
	static const char *const names[][2] = {
		{ "p.tar", "none" },  { "p.tar.gz", "gzip" },
		{ "p.tgz", "gzip" },  { "p.tar.zst", "zstd" },
		{ "p.tar.xz", "xz" },
	};
	char dir[PATH_MAX], out[PATH_MAX];
	size_t i;

	assert_null(artifact_compression_for("p.zip"));
	assert_null(artifact_compression_for("p.gz"));
	assert_null(artifact_compression_for("tar"));
	make_tree(f, "t", 0);
	snprintf(dir, sizeof(dir), "%s", fp(f, "t"));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(artifact_compression_for(names[i][0]),
				    names[i][1]);
		snprintf(out, sizeof(out), "%s", fp(f, "%s", names[i][0]));
		memset(&o, 0, sizeof(o));
		o.dir = dir;
		o.output = out;
		o.compression = names[i][1];
		o.mtime = TEST_MTIME;
		if (artifact_pack(&o, &a, &err) != 0 ||
		    artifact_pack(&o, &b, &err) != 0)
			fail_msg("pack %s: %s", names[i][0], err.msg);
		assert_string_equal(a.compression, names[i][1]);
		assert_string_equal(a.sha256, b.sha256);
	}
}

static void
test_pack_negated_ignore_is_an_error(void **state)
{
	struct fx *f = *state;
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;

	mkdir_or_fail(fp(f, "t"));
	write_file(fp(f, "t/a"), "x\n", 0644);
	write_file(fp(f, "t/.relflipignore"), "*.log\n!keep.log\n", 0644);
	assert_int_equal(
	    pack_into(f, "t", "o.tar.gz", NULL, NULL, 0, &info, &err), -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	assert_non_null(strstr(err.msg, ".relflipignore:2:"));
}

static void
test_pack_revision(void **state)
{
	struct fx *f = *state;
	struct artifact_info info;
	char *text, *listing;

	mkdir_or_fail(fp(f, "t"));
	write_file(fp(f, "t/REVISION"), "old\n", 0644);
	write_file(fp(f, "t/app.py"), "x\n", 0644);
	pack_ok(f, "t", "r.tar.gz", "3f2c1ab", NULL, 0, &info);
	text = read_member(fp(f, "r.tar.gz"), "REVISION", NULL);
	assert_non_null(text);
	assert_string_equal(text, "3f2c1ab\n");
	free(text);
	listing = list_archive(fp(f, "r.tar.gz"));
	assert_string_equal(listing, "REVISION f 0644 0/0 root:root 315532800\n"
				     "app.py f 0644 0/0 root:root 315532800\n");
	free(listing);

	/* Without a revision, the tree's own REVISION is kept. */
	pack_ok(f, "t", "n.tar.gz", NULL, NULL, 0, &info);
	text = read_member(fp(f, "n.tar.gz"), "REVISION", NULL);
	assert_non_null(text);
	assert_string_equal(text, "old\n");
	free(text);
}

/* A file bigger than the copy buffer arrives whole. */
static void
test_pack_streams_large_file(void **state)
{
	struct fx *f = *state;
	struct artifact_info info;
	static unsigned char data[1000003];
	char *back;
	size_t len;

	fill_random(data, sizeof(data), 99);
	mkdir_or_fail(fp(f, "t"));
	write_bytes(fp(f, "t/blob"), data, sizeof(data), 0);
	pack_ok(f, "t", "big.tar.gz", NULL, NULL, 0, &info);
	assert_int_equal(info.unpacked_size, sizeof(data));
	back = read_member(fp(f, "big.tar.gz"), "blob", &len);
	assert_non_null(back);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(back, data, sizeof(data));
	free(back);
}

/* `relflip pack . -o app.tar.gz` twice: the old output is not packed. */
static void
test_pack_output_inside_tree(void **state)
{
	struct fx *f = *state;
	struct artifact_info a, b;

	make_tree(f, "t", 0);
	pack_ok(f, "t", "t/app.tar.gz", NULL, NULL, 0, &a);
	pack_ok(f, "t", "t/app.tar.gz", NULL, NULL, 0, &b);
	assert_string_equal(a.sha256, b.sha256);
}

static void
expect_pack_refused(struct fx *f, const char *tree, const char *needle)
{
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;
	int r;

	r = pack_into(f, tree, "out.tar.gz", NULL, NULL, 0, &info, &err);
	print_message("  -> %s%s%s\n", err.msg, err.hint[0] ? " / hint: " : "",
		      err.hint);
	if (r != -1 || strstr(err.msg, needle) == NULL)
		fail_msg("pack %s: r=%d msg '%s', wanted '%s'", tree, r,
			 err.msg, needle);
	assert_int_equal(err.code, RF_EXIT_ARTIFACT);
	assert_string_equal(err.stage, "pack");
	assert_int_equal(access(fp(f, "out.tar.gz"), F_OK), -1);
	assert_int_equal(access(fp(f, "out.tar.gz.tmp"), F_OK), -1);
}

static void
test_pack_refuses_hostile_trees(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un addr;
	int s;

	mkdir_or_fail(fp(f, "abs"));
	assert_int_equal(symlink("/etc/passwd", fp(f, "abs/passwd")), 0);
	expect_pack_refused(f, "abs",
			    "is a symlink to '/etc/passwd': absolute target");

	mkdir_or_fail(fp(f, "up"));
	mkdir_or_fail(fp(f, "up/sub"));
	assert_int_equal(symlink("../../x", fp(f, "up/sub/l")), 0);
	expect_pack_refused(f, "up", "target leaves the release");

	mkdir_or_fail(fp(f, "fifo"));
	assert_int_equal(mkfifo(fp(f, "fifo/pipe"), 0644), 0);
	expect_pack_refused(f, "fifo", "is a FIFO");

	mkdir_or_fail(fp(f, "suid"));
	write_file(fp(f, "suid/tool"), "x\n", 0755);
	assert_int_equal(chmod(fp(f, "suid/tool"), 04755), 0);
	expect_pack_refused(f, "suid", "is setuid (mode 4755)");

	mkdir_or_fail(fp(f, "sock"));
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", fp(f, "sock/s"));
	if (strlen(fp(f, "sock/s")) < sizeof(addr.sun_path) &&
	    bind(s, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		expect_pack_refused(f, "sock", "is a socket");
	close(s);

	mkdir_or_fail(fp(f, "tab"));
	write_file(fp(f, "tab/a\tb"), "x\n", 0644);
	expect_pack_refused(f, "tab", "control character, tab or backslash");

	mkdir_or_fail(fp(f, "nl"));
	write_file(fp(f, "nl/a\nb"), "x\n", 0644);
	expect_pack_refused(f, "nl", "control character, tab or backslash");

	mkdir_or_fail(fp(f, "bs"));
	assert_int_equal(symlink("a\\b", fp(f, "bs/l")), 0);
	expect_pack_refused(f, "bs", "target holds a control character");

	mkdir_or_fail(fp(f, "empty"));
	expect_pack_refused(f, "empty", "nothing to pack");
	expect_pack_refused(f, "missing", "cannot read");
}

/* Run a shell script in dir; its exit status. */
static int
run_sh(const char *dir, const char *script)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The file's bytes, NUL-terminated; owned by the caller. */
static char *
slurp(const char *path)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size),
			 (ssize_t)st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	return buf;
}

/*
 * Unpack archive (over what tree already holds) as the server does and
 * list tree; the listing, owned by the caller.
 */
static char *
unpack_and_list(struct fx *f, const char *archive, const char *tree)
{
	struct buf s = BUF_INIT;
	char *listing;

	buf_addf(&s,
		 "mkdir -p '%s' && umask 022 && tar -x --no-same-owner "
		 "--no-same-permissions -f '%s' -C '%s' 2>'%s.err' || "
		 "exit 9\ncd '%s' || exit 9\n",
		 tree, archive, tree, archive, tree);
	{
		char scratch[PATH_MAX + 16];

		snprintf(scratch, sizeof(scratch), "'%s.entries'", archive);
		manifest_listing_script(&s, scratch, NULL, NULL);
	}
	buf_addf(&s, " >'%s.listing'\n", archive);
	if (run_sh(f->dir, buf_str(&s)) != 0) {
		listing = slurp(fp(f, "%s.err", archive + strlen(f->dir) + 1));
		fail_msg("GNU tar failed on %s: %s", archive, listing);
	}
	buf_release(&s);
	return slurp(fp(f, "%s.listing", archive + strlen(f->dir) + 1));
}

static char *
manifest_text(const struct manifest *m)
{
	struct buf b = BUF_INIT;

	assert_int_equal(manifest_format(m, &b), 0);
	return buf_detach(&b, NULL);
}

/*
 * Validate the archive; when accepted, unpack it with GNU tar and
 * compare. Returns 1 when refused (its message in err), 0 when accepted.
 */
static int
differential(struct fx *f, const char *path, struct rf_error *err)
{
	struct manifest m = MANIFEST_INIT;
	struct artifact_info info;
	char *want, *got, tree[PATH_MAX];

	if (artifact_manifest(path, NULL, &info, &m, err) != 0) {
		assert_int_equal(err->code, RF_EXIT_ARTIFACT);
		assert_string_equal(err->stage, "validate");
		assert_int_equal(m.n, 0);
		return 1;
	}
	snprintf(tree, sizeof(tree), "%s.tree", path);
	want = manifest_text(&m);
	got = unpack_and_list(f, path, tree);
	if (strcmp(want, got) != 0)
		fail_msg("%s: GNU tar unpacked another tree than the manifest "
			 "says\n--- manifest\n%s--- GNU tar\n%s",
			 path, want, got);
	free(want);
	free(got);
	manifest_release(&m);
	return 0;
}

struct kind {
	const char *name;
	void (*build)(struct rawtar *);
	const char *refused; /* a part of the message, or NULL: accepted */
};

static void
k_plain(struct rawtar *t)
{
	raw_dir(t, "app/", 0755);
	raw_file(t, "app/main.py", "print('hi')\n");
	raw_link(t, "app/up", '2', "../bin/run");
	raw_dir(t, "bin/", 0750);
	raw_file(t, "bin/run", "#!/bin/sh\n");
	raw_link(t, "bin/copy", '1', "bin/run");
}

static void
k_gnu_plain(struct rawtar *t)
{
	struct rh d = { .name = "d/", .type = '5', .gnu = 1, .gnu_atime = 1 };
	struct rh h = { .name = "d/f", .size = 2, .gnu = 1 };

	raw_hdr(t, &d);
	raw_hdr(t, &h);
	raw_append(t, "hi", 2, 1);
}

static void
k_global_comment(struct rawtar *t)
{
	raw_pax(t, 'g', "comment", "3f2c1ab0e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9",
		NULL);
	k_plain(t);
}

static void
k_global_path(struct rawtar *t)
{
	raw_pax(t, 'g', "path", "REVISION", NULL);
	raw_file(t, "a", "x");
}

static void
k_global_size(struct rawtar *t)
{
	raw_pax(t, 'g', "size", "0", NULL);
	raw_file(t, "a", "hidden\n");
}

static void
k_global_linkpath(struct rawtar *t)
{
	raw_pax(t, 'g', "linkpath", "/etc/passwd", NULL);
	raw_link(t, "REVISION", '2', "ok");
}

static void
k_global_uname(struct rawtar *t)
{
	raw_pax(t, 'g', "uname", "root", NULL);
	raw_file(t, "a", "x");
}

static void
k_global_comment_then_mtime(struct rawtar *t)
{
	raw_pax(t, 'g', "comment", "x", "mtime", "0", NULL);
	raw_file(t, "a", "x");
}

static void
k_global_after_local(struct rawtar *t)
{
	raw_pax(t, 'x', "path", "b", NULL);
	raw_pax(t, 'g', "comment", "x", NULL);
	raw_file(t, "a", "x");
}

static void
k_type(struct rawtar *t, char type)
{
	struct rh h = { .name = "odd", .type = type };

	raw_hdr(t, &h);
}

static void
k_sparse_S(struct rawtar *t)
{
	struct rh h = { .name = "sparse", .type = 'S', .gnu = 1, .size = 0 };

	raw_hdr(t, &h);
}

static void
k_sparse_pax(struct rawtar *t)
{
	raw_pax(t, 'x', "GNU.sparse.major", "1", "GNU.sparse.minor", "0",
		"GNU.sparse.name", "big", "GNU.sparse.realsize", "1048576",
		NULL);
	raw_file(t, "GNUSparseFile.0/big", "1\n0\n0\n");
}

static void
k_multivolume(struct rawtar *t)
{
	struct rh h = { .name = "part", .type = 'M', .gnu = 1, .size = 5 };

	raw_hdr(t, &h);
	raw_append(t, "tail\n", 5, 1);
}

static void
k_volume(struct rawtar *t)
{
	k_type(t, 'V');
	raw_file(t, "a", "x");
}

static void
k_oldgnu_N(struct rawtar *t)
{
	struct rh h = { .name = "names", .type = 'N', .gnu = 1, .size = 3 };

	raw_hdr(t, &h);
	raw_append(t, "x\n\n", 3, 1);
}

static void
k_unknown_Z(struct rawtar *t)
{
	struct rh h = { .name = "z", .type = 'Z', .size = 2 };

	raw_hdr(t, &h);
	raw_append(t, "zz", 2, 1);
}

static void
k_contiguous(struct rawtar *t)
{
	struct rh h = { .name = "c", .type = '7', .size = 2 };

	raw_hdr(t, &h);
	raw_append(t, "cc", 2, 1);
}

static void
k_dumpdir(struct rawtar *t)
{
	struct rh h = { .name = "d/", .type = 'D', .gnu = 1, .size = 4 };

	raw_hdr(t, &h);
	raw_append(t, "Ya\0\0", 4, 1);
}

static void
k_solaris_X(struct rawtar *t)
{
	raw_ext(t, 'X', "12 path=abc\n", 12);
	raw_file(t, "a", "x");
}

static void
k_chardev(struct rawtar *t)
{
	k_type(t, '3');
}

static void
k_fifo(struct rawtar *t)
{
	k_type(t, '6');
}

static const char long_name[] =
    "a-directory-name-of-sixty-characters-so-that-the-path-is-long/"
    "and-another-one-of-sixty-characters-to-pass-a-hundred-bytes/file.txt";

static void
k_long_L(struct rawtar *t)
{
	raw_ext(t, 'L', long_name, sizeof(long_name));
	raw_file(t, "a-directory-name-of-sixty-characters-so-that-the-path-i",
		 "long\n");
}

static void
k_long_K(struct rawtar *t)
{
	raw_ext(t, 'K', long_name, sizeof(long_name));
	raw_link(t, "l", '2', "truncated");
}

static void
k_long_L_twice(struct rawtar *t)
{
	raw_ext(t, 'L', "first", 6);
	raw_ext(t, 'L', "second", 7);
	raw_file(t, "x", "x");
}

static void
k_long_L_unterminated(struct rawtar *t)
{
	raw_ext(t, 'L', "abc", 3);
	raw_file(t, "x", "x");
}

static void
k_long_L_on_pax(struct rawtar *t)
{
	raw_ext(t, 'L', "from-L", 7);
	raw_pax(t, 'x', "path", "from-pax", NULL);
	raw_file(t, "x", "x");
}

static void
k_pax_path(struct rawtar *t)
{
	raw_pax(t, 'x', "path", "real-name.txt", "mtime", "1700000000.5", "uid",
		"4000000000", "uname", "someone", NULL);
	raw_file(t, "ustar-name.txt", "data\n");
	raw_pax(t, 'x', "path", "d/", NULL);
	raw_dir(t, "ustar-dir/", 0755);
}

static void
k_pax_size_conflict(struct rawtar *t)
{
	struct rh h = { .name = "f", .size = 1024 };

	raw_pax(t, 'x', "size", "3", NULL);
	raw_hdr(t, &h);
	raw_append(t, "abc", 3, 1);
	raw_file(t, "g", "after\n");
}

static void
k_pax_size_symlink(struct rawtar *t)
{
	raw_pax(t, 'x', "size", "512", NULL);
	raw_link(t, "l", '2', "t");
	raw_file(t, "hidden", "inside the symlink's data\n");
}

static void
k_size_on_dir(struct rawtar *t)
{
	struct rh h = { .name = "d/", .type = '5', .size = 512 };

	raw_hdr(t, &h);
	raw_file(t, "hidden", "x");
}

static void
k_hardlink_size(struct rawtar *t)
{
	struct rh h = { .name = "h", .type = '1', .link = "a", .size = 512 };

	raw_file(t, "a", "x");
	raw_hdr(t, &h);
	raw_file(t, "hidden", "x");
}

static void
k_hardlink_dot(struct rawtar *t)
{
	raw_file(t, "./a", "x");
	raw_link(t, "./h", '1', "./a");
	raw_link(t, "h2", '1', "a");
}

static void
k_base256(struct rawtar *t)
{
	struct rh h = { .name = "b", .size = 5, .base256 = 0x80 };

	raw_hdr(t, &h);
	raw_append(t, "big?\n", 5, 1);
}

static void
k_base256_odd(struct rawtar *t)
{
	struct rh h = { .name = "b", .size = 5, .base256 = 0x81 };

	raw_file(t, "first", "libarchive must open the archive");
	raw_hdr(t, &h);
	raw_append(t, "big?\n", 5, 1);
}

static void
k_size_leading_nul(struct rawtar *t)
{
	struct rh h = { .name = "n",
			.size_field = "\0"
				      "0000000001\0" };

	raw_file(t, "first", "libarchive must open the archive");
	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_size_garbage(struct rawtar *t)
{
	struct rh h = { .name = "n", .size_field = "00000000001x" };

	raw_file(t, "first", "libarchive must open the archive");
	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_dot_prefixes(struct rawtar *t)
{
	raw_dir(t, "./", 0755);
	raw_dir(t, "./d/", 0755);
	raw_file(t, "./d/f", "x");
	raw_file(t, "./.hidden", "y");
}

static void
k_missing_parents(struct rawtar *t)
{
	raw_file(t, "a/b/c/file", "deep\n");
	raw_link(t, "x/y/l", '2', "../../a/b");
}

static void
k_parent_later(struct rawtar *t)
{
	raw_file(t, "a/f", "x");
	raw_dir(t, "a/", 0700);
	raw_file(t, "a/b/g", "y");
}

static void
k_dup_spelling(struct rawtar *t)
{
	raw_file(t, "./a", "1");
	raw_file(t, "a", "2");
}

static void
k_dup_dir_spelling(struct rawtar *t)
{
	raw_dir(t, "d/", 0755);
	raw_dir(t, "./d//", 0700);
}

static void
k_dup_via_pax(struct rawtar *t)
{
	raw_file(t, "a", "1");
	raw_pax(t, 'x', "path", "./a", NULL);
	raw_file(t, "b", "2");
}

static void
k_newline(struct rawtar *t)
{
	raw_file(t, "a\nf\t644\t1\tx", "x");
}

static void
k_tab(struct rawtar *t)
{
	raw_file(t, "a\tb", "x");
}

static void
k_backslash(struct rawtar *t)
{
	raw_file(t, "a\\nb", "x");
}

static void
k_under_symlink(struct rawtar *t)
{
	raw_dir(t, "d/", 0755);
	raw_link(t, "l", '2', "d");
	raw_file(t, "l/f", "through the link");
}

static void
k_appledouble(struct rawtar *t)
{
	raw_file(t, "._meta", "libarchive used to fold this away");
	raw_file(t, "meta", "x");
}

static void
k_appledouble_link(struct rawtar *t)
{
	raw_link(t, "._x", '2', "/etc/passwd");
	raw_file(t, "x", "x");
}

static void
k_pax_linkpath_file(struct rawtar *t)
{
	raw_file(t, "a", "x");
	raw_pax(t, 'x', "linkpath", "a", NULL);
	raw_file(t, "b", "y");
}

static void
k_K_on_file(struct rawtar *t)
{
	raw_ext(t, 'K', "a", 2);
	raw_file(t, "b", "y");
}

static void
k_linkname_on_file(struct rawtar *t)
{
	struct rh h = { .name = "f", .link = "other", .size = 1 };

	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_slash_file(struct rawtar *t)
{
	raw_file(t, "notadir/", "x");
}

static void
k_prefix(struct rawtar *t)
{
	struct rh h = { .name = "file.txt",
			.prefix = "some/deep/dir",
			.size = 2 };

	raw_hdr(t, &h);
	raw_append(t, "p\n", 2, 1);
}

static void
k_prefix_slash(struct rawtar *t)
{
	struct rh h = { .name = "file.txt", .prefix = "dir/", .size = 2 };

	raw_hdr(t, &h);
	raw_append(t, "p\n", 2, 1);
}

static void
k_v7(struct rawtar *t)
{
	struct rh h = { .name = "old", .v7 = 1, .size = 1 };

	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_bad_checksum(struct rawtar *t)
{
	struct rh h = { .name = "bad", .bad_sum = 1, .size = 1 };

	raw_file(t, "good", "x");
	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_signed_checksum(struct rawtar *t)
{
	struct rh h = { .name = "\xc3\xa9t\xc3\xa9",
			.signed_sum = 1,
			.size = 1 };

	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_lone_zero_block(struct rawtar *t)
{
	static const unsigned char zero[512];

	raw_file(t, "seen", "x");
	raw_append(t, zero, sizeof(zero), 0);
	raw_file(t, "after-the-end", "neither tar reads this");
}

static void
k_no_end(struct rawtar *t)
{
	raw_file(t, "a", "x");
	/* The caller adds the end blocks: these cases leave them out. */
}

static void
k_trailing_garbage(struct rawtar *t)
{
	raw_file(t, "a", "x");
	raw_end(t);
	raw_file(t, "after", "not read");
}

static void
k_pax_unknown(struct rawtar *t)
{
	raw_pax(t, 'x', "foo.bar", "1", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_hdrcharset(struct rawtar *t)
{
	raw_pax(t, 'x', "hdrcharset", "BINARY", "path", "\xff", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_schily_xattr(struct rawtar *t)
{
	raw_pax(t, 'x', "SCHILY.xattr.security.capability", "x", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_libarchive_xattr(struct rawtar *t)
{
	raw_pax(t, 'x', "LIBARCHIVE.xattr.user.x", "eA==", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_malformed(struct rawtar *t)
{
	raw_ext(t, 'x', "99 path=a\n", 10);
	raw_file(t, "a", "x");
}

static void
k_pax_nul(struct rawtar *t)
{
	raw_ext(t, 'x', "13 path=a\0bc\n", 13);
	raw_file(t, "a", "x");
}

static void
k_pax_empty_path(struct rawtar *t)
{
	raw_pax(t, 'x', "path", "", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_twice(struct rawtar *t)
{
	raw_pax(t, 'x', "path", "b", NULL);
	raw_pax(t, 'x', "path", "c", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_dup_key(struct rawtar *t)
{
	raw_pax(t, 'x', "path", "b", "path", "c", NULL);
	raw_file(t, "a", "x");
}

static void
k_pax_at_end(struct rawtar *t)
{
	raw_file(t, "a", "x");
	raw_pax(t, 'x', "path", "b", NULL);
}

static void
k_pax_dotdot(struct rawtar *t)
{
	raw_pax(t, 'x', "path", "../escape", NULL);
	raw_file(t, "a", "x");
}

static void
k_mode_type_bits(struct rawtar *t)
{
	struct rh h = { .name = "f", .mode_field = "0100644", .size = 1 };

	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_setuid(struct rawtar *t)
{
	struct rh h = { .name = "su", .mode = 04755, .size = 1 };

	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_sticky(struct rawtar *t)
{
	raw_dir(t, "tmp/", 01777);
}

static void
k_dir_0555(struct rawtar *t)
{
	raw_dir(t, "ro/", 0555);
}

static void
k_modes(struct rawtar *t)
{
	struct rh a = { .name = "group-write", .mode = 0664, .size = 1 };
	struct rh b = { .name = "private", .mode = 0600, .size = 1 };
	struct rh c = { .name = "all-exec", .mode = 0777, .size = 1 };
	struct rh d = { .name = "read-only", .mode = 0444, .size = 1 };

	raw_hdr(t, &a);
	raw_append(t, "a", 1, 1);
	raw_hdr(t, &b);
	raw_append(t, "b", 1, 1);
	raw_hdr(t, &c);
	raw_append(t, "c", 1, 1);
	raw_hdr(t, &d);
	raw_append(t, "d", 1, 1);
	raw_dir(t, "shared/", 0775);
	raw_dir(t, "private-dir/", 0700);
}

static void
k_absolute(struct rawtar *t)
{
	raw_file(t, "/etc/cron.d/x", "x");
}

static void
k_dotdot(struct rawtar *t)
{
	raw_file(t, "a/../../x", "x");
}

static void
k_sizes(struct rawtar *t)
{
	static char big[70000];
	struct rh h = { .name = "big", .size = sizeof(big) };
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	raw_file(t, "empty", "");
	raw_file(t, "one-block", "x");
	raw_hdr(t, &h);
	raw_append(t, big, sizeof(big), 1);
}

static void
k_realsize(struct rawtar *t)
{
	struct rh h = { .name = "f", .gnu = 1, .gnu_realsize = 1, .size = 1 };

	raw_hdr(t, &h);
	raw_append(t, "x", 1, 1);
}

static void
k_symlink_dotdot_inside(struct rawtar *t)
{
	raw_dir(t, "a/", 0755);
	raw_dir(t, "a/b/", 0755);
	raw_link(t, "a/b/l", '2', "../../top");
	raw_file(t, "top", "t");
}

static void
k_file_over_parent(struct rawtar *t)
{
	raw_file(t, "a/b", "x");
	raw_file(t, "a", "y");
}

static void
k_root_entries(struct rawtar *t)
{
	raw_dir(t, "./", 0700);
	raw_dir(t, ".", 0755);
	raw_file(t, "f", "x");
}

static void
k_empty_name(struct rawtar *t)
{
	raw_file(t, "", "x");
}

static void
k_hardlink_forward(struct rawtar *t)
{
	raw_link(t, "h", '1', "later");
	raw_file(t, "later", "x");
}

static void
k_hardlink_to_dir(struct rawtar *t)
{
	raw_dir(t, "d/", 0755);
	raw_link(t, "h", '1', "d");
}

static const struct kind kinds[] = {
	{ "plain ustar: dir, file, symlink, hard link", k_plain, NULL },
	{ "GNU format with atime and ctime", k_gnu_plain, NULL },
	{ "pax global header with a comment (git archive)", k_global_comment,
	  NULL },
	{ "pax global path", k_global_path,
	  "pax global header sets 'path' for every later entry" },
	{ "pax global size", k_global_size, "sets 'size'" },
	{ "pax global linkpath", k_global_linkpath, "sets 'linkpath'" },
	{ "pax global uname", k_global_uname, "sets 'uname'" },
	{ "pax global comment and mtime", k_global_comment_then_mtime,
	  "sets 'mtime'" },
	{ "pax global between x and its entry", k_global_after_local,
	  "after another extended header" },
	{ "GNU sparse 'S'", k_sparse_S, "GNU sparse file" },
	{ "GNU sparse pax keys", k_sparse_pax,
	  "'GNU.sparse.major': GNU sparse" },
	{ "GNU multivolume 'M'", k_multivolume, "GNU multivolume" },
	{ "GNU volume label 'V'", k_volume, "GNU volume label" },
	{ "old GNU names 'N'", k_oldgnu_N, "old GNU long-names entry" },
	{ "unknown type 'Z'", k_unknown_Z, "unknown entry type 'Z'" },
	{ "contiguous file '7'", k_contiguous, "contiguous file" },
	{ "GNU dumpdir 'D'", k_dumpdir, "GNU incremental dump directory" },
	{ "Solaris extended header 'X'", k_solaris_X, "Solaris extended" },
	{ "character device", k_chardev, "entry 'odd': character device" },
	{ "FIFO", k_fifo, "entry 'odd': FIFO" },
	{ "GNU long name 'L'", k_long_L, NULL },
	{ "GNU long link 'K'", k_long_K, NULL },
	{ "two GNU long names", k_long_L_twice, "GNU long name after another" },
	{ "GNU long name without NUL", k_long_L_unterminated,
	  "not one NUL-terminated name" },
	{ "GNU long name and pax path", k_long_L_on_pax,
	  "a pax header after another extended header" },
	{ "pax path over the ustar name", k_pax_path, NULL },
	{ "pax size against header size", k_pax_size_conflict, NULL },
	{ "pax size on a symlink", k_pax_size_symlink,
	  "a symlink entry declares 512 bytes of data" },
	{ "size on a directory", k_size_on_dir,
	  "a directory entry declares 512 bytes" },
	{ "size on a hard link", k_hardlink_size,
	  "a hard link entry declares 512 bytes" },
	{ "hard links spelled with ./", k_hardlink_dot, NULL },
	{ "hard link to a later file", k_hardlink_forward,
	  "not an earlier regular file" },
	{ "hard link to a directory", k_hardlink_to_dir,
	  "not an earlier regular file" },
	{ "base-256 size", k_base256, NULL },
	{ "base-256 size, odd first byte", k_base256_odd,
	  "size field is not a number" },
	{ "size field with a leading NUL", k_size_leading_nul,
	  "size field is not a number" },
	{ "size field with garbage", k_size_garbage,
	  "size field is not a number" },
	{ "./ prefixes and the root", k_dot_prefixes, NULL },
	{ "missing parent directories", k_missing_parents, NULL },
	{ "directory listed after its files", k_parent_later, NULL },
	{ "duplicate: ./a and a", k_dup_spelling, "duplicate" },
	{ "duplicate: d/ and ./d//", k_dup_dir_spelling, "duplicate" },
	{ "duplicate through a pax path", k_dup_via_pax, "duplicate" },
	{ "newline in a name", k_newline, "name holds a control character" },
	{ "tab in a name", k_tab, "name holds a control character, tab" },
	{ "backslash in a name", k_backslash, "or backslash" },
	{ "file under a symlink", k_under_symlink,
	  "path under the earlier symlink 'l'" },
	{ "AppleDouble ._ name", k_appledouble, NULL },
	{ "AppleDouble ._ symlink outside", k_appledouble_link,
	  "entry '._x': symlink to '/etc/passwd': absolute target" },
	{ "pax linkpath on a file", k_pax_linkpath_file,
	  "a file entry carries a link name" },
	{ "GNU long link on a file", k_K_on_file,
	  "a file entry carries a link name" },
	{ "link name field on a file", k_linkname_on_file,
	  "a file entry carries a link name" },
	{ "file name ending in /", k_slash_file,
	  "ends in '/' but the entry is not a directory" },
	{ "ustar prefix field", k_prefix, NULL },
	{ "ustar prefix ending in /", k_prefix_slash, "prefix field ends in" },
	{ "v7 header, no magic", k_v7, "not a POSIX ustar or GNU tar header" },
	{ "bad checksum", k_bad_checksum, "bad header checksum" },
	{ "signed checksum", k_signed_checksum, NULL },
	{ "lone zero block, entries after it", k_lone_zero_block, NULL },
	{ "trailing garbage after the end", k_trailing_garbage, NULL },
	{ "pax unknown key", k_pax_unknown,
	  "pax key 'foo.bar': not a key relflip reads" },
	{ "pax hdrcharset", k_pax_hdrcharset, "changes how names are read" },
	{ "pax SCHILY.xattr", k_pax_schily_xattr, "an extended attribute" },
	{ "pax LIBARCHIVE.xattr", k_pax_libarchive_xattr,
	  "an extended attribute" },
	{ "malformed pax record", k_pax_malformed,
	  "malformed pax extended header" },
	{ "NUL in a pax record", k_pax_nul, "NUL byte in a pax header" },
	{ "empty pax path", k_pax_empty_path, "empty pax 'path'" },
	{ "two pax headers for one entry", k_pax_twice,
	  "a pax header after another" },
	{ "pax key twice", k_pax_dup_key, "pax key 'path' given twice" },
	{ "pax header at the end", k_pax_at_end,
	  "an extended header with no entry after it" },
	{ "pax path with ..", k_pax_dotdot, "'..' component" },
	{ "file type bits in the mode", k_mode_type_bits,
	  "mode field is not octal permission bits" },
	{ "setuid", k_setuid, "setuid bit (mode 4755)" },
	{ "sticky directory", k_sticky, "sticky bit (mode 1777)" },
	{ "directory without u+w", k_dir_0555, "lacks u+rwx" },
	{ "modes under umask 022", k_modes, NULL },
	{ "absolute path", k_absolute, "absolute path" },
	{ "dotdot path", k_dotdot, "'..' component" },
	{ "empty, one-block and multi-block files", k_sizes, NULL },
	{ "GNU real size field", k_realsize, "GNU sparse or multivolume" },
	{ "symlink with leading .. inside", k_symlink_dotdot_inside, NULL },
	{ "file over an implied directory", k_file_over_parent,
	  "not a directory, but earlier entries are under it" },
	{ "root entries . and ./", k_root_entries, NULL },
	{ "empty name", k_empty_name, "empty path" },
	{ "no end-of-archive blocks", k_no_end,
	  "ends without its end-of-archive blocks" },
};

static void
test_differential_corpus(void **state)
{
	struct fx *f = *state;
	struct rf_error err;
	struct rawtar t;
	size_t i, refused = 0, accepted = 0;
	const char *p;
	int r;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		memset(&t, 0, sizeof(t));
		kinds[i].build(&t);
		if (kinds[i].build != k_no_end)
			raw_end(&t);
		p = fp(f, "kind-%02zu.tar", i);
		write_bytes(p, t.p, t.len, 0);
		free(t.p);
		rf_error_clear(&err);
		r = differential(f, p, &err);
		print_message("%-48s %s%s\n", kinds[i].name,
			      r ? "refused: " : "accepted, same tree",
			      r ? err.msg + strlen(p) + 2 : "");
		if (r && kinds[i].refused == NULL)
			fail_msg("%s: refused: %s", kinds[i].name, err.msg);
		if (!r && kinds[i].refused != NULL)
			fail_msg("%s: accepted", kinds[i].name);
		if (r && strstr(err.msg, kinds[i].refused) == NULL)
			fail_msg("%s: '%s', wanted '%s'", kinds[i].name,
				 err.msg, kinds[i].refused);
		if (r)
			refused++;
		else
			accepted++;
	}
	print_message("differential corpus: %zu kinds, %zu refused, %zu "
		      "accepted and unpacked by GNU tar to their manifest\n",
		      refused + accepted, refused, accepted);
}

/* The same crafted archive refused through each compression. */
static void
test_differential_compressed(void **state)
{
	struct fx *f = *state;
	struct rf_error err = RF_ERROR_INIT;
	struct rawtar t;
	struct buf s = BUF_INIT;
	static const char *const tools[] = { "gzip", "xz", "zstd -q" };
	size_t i;

	memset(&t, 0, sizeof(t));
	k_global_size(&t);
	raw_end(&t);
	write_bytes(fp(f, "g.tar"), t.p, t.len, 0);
	free(t.p);
	memset(&t, 0, sizeof(t));
	k_plain(&t);
	raw_end(&t);
	write_bytes(fp(f, "ok.tar"), t.p, t.len, 0);
	free(t.p);
	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		buf_reset(&s);
		buf_addf(&s, "%s -c g.tar > g.z && %s -c ok.tar > ok.z",
			 tools[i], tools[i]);
		assert_int_equal(run_sh(f->dir, buf_str(&s)), 0);
		assert_int_equal(differential(f, fp(f, "g.z"), &err), 1);
		assert_non_null(strstr(err.msg, "sets 'size'"));
		if (differential(f, fp(f, "ok.z"), &err) != 0)
			fail_msg("%s: %s", tools[i], err.msg);
		assert_int_equal(run_sh(f->dir, "rm -rf ok.z.tree"), 0);
	}
	buf_release(&s);
}

/* `git archive` writes a comment-only pax global header: accepted. */
static void
test_differential_git_archive(void **state)
{
	struct fx *f = *state;
	struct rf_error err = RF_ERROR_INIT;
	static const char script[] =
	    "set -e\n"
	    "mkdir repo && cd repo\n"
	    "git init -q\n"
	    "mkdir -p src/pkg empty-not-in-git\n"
	    "echo 'print(1)' > src/pkg/main.py\n"
	    "printf '#!/bin/sh\\n' > run && chmod 755 run\n"
	    "ln -s src/pkg lib\n"
	    "git add .\n"
	    "git -c user.email=ci@example.com -c user.name=ci commit -qm v1\n"
	    "git archive --format=tar HEAD > ../git.tar\n"
	    "git archive --format=tar.gz --prefix=app/ HEAD > ../git.tgz\n";

	if (run_sh(f->dir, script) != 0)
		skip();
	assert_true(tar_contains(fp(f, "git.tar"), "pax_global_header"));
	if (differential(f, fp(f, "git.tar"), &err) != 0)
		fail_msg("git.tar: %s", err.msg);
	if (differential(f, fp(f, "git.tgz"), &err) != 0)
		fail_msg("git.tgz: %s", err.msg);
}

/*
 * A delta deploy, as the servers will run it: copy what the new
 * manifest keeps from the base release, unpack the delta tarball over
 * it, and the tree lists as the new manifest.
 */
static void
test_delta_subset(void **state)
{
	struct fx *f = *state;
	struct rf_error err = RF_ERROR_INIT;
	struct manifest base = MANIFEST_INIT, next = MANIFEST_INIT;
	struct manifest keep = MANIFEST_INIT, send = MANIFEST_INIT;
	struct artifact_info binfo, ninfo;
	struct rawtar t;
	struct buf s = BUF_INIT;
	const struct manifest_entry *e;
	char *want, *got, *member;
	size_t i;
	int fd;

	memset(&t, 0, sizeof(t));
	raw_dir(&t, "app/", 0755);
	raw_file(&t, "app/same.py", "unchanged\n");
	raw_file(&t, "app/changed.py", "v1\n");
	raw_file(&t, "app/gone.py", "removed in v2\n");
	raw_file(&t, "app/chmod", "mode changes\n");
	raw_link(&t, "app/link", '2', "same.py");
	raw_link(&t, "app/retarget", '2', "same.py");
	raw_file(&t, "app/becomes-dir", "a file in v1\n");
	raw_dir(&t, "conf/", 0755);
	raw_file(&t, "conf/keep.ini", "k\n");
	raw_end(&t);
	write_bytes(fp(f, "v1.tar"), t.p, t.len, 0);
	free(t.p);

	memset(&t, 0, sizeof(t));
	raw_pax(&t, 'g', "comment", "v2", NULL);
	raw_dir(&t, "app/", 0755);
	raw_file(&t, "app/same.py", "unchanged\n");
	raw_file(&t, "app/changed.py", "v2\n");
	{
		struct rh h = { .name = "app/chmod", .mode = 0755, .size = 13 };

		raw_hdr(&t, &h);
		raw_append(&t, "mode changes\n", 13, 1);
	}
	raw_link(&t, "app/link", '2', "same.py");
	raw_link(&t, "app/retarget", '2', "changed.py");
	raw_dir(&t, "app/becomes-dir/", 0755);
	raw_file(&t, "app/becomes-dir/x", "now a dir\n");
	raw_link(&t, "app/hard-same", '1', "app/same.py");
	raw_link(&t, "app/hard-new", '1', "app/changed.py");
	raw_file(&t, "new/deep/file.txt", "implied parents\n");
	raw_dir(&t, "conf/", 0700);
	raw_file(&t, "conf/keep.ini", "k\n");
	raw_end(&t);
	write_bytes(fp(f, "v2.tar"), t.p, t.len, 0);
	free(t.p);

	if (artifact_manifest(fp(f, "v1.tar"), NULL, &binfo, &base, &err) !=
		0 ||
	    artifact_manifest(fp(f, "v2.tar"), NULL, &ninfo, &next, &err) != 0)
		fail_msg("%s", err.msg);
	free(unpack_and_list(f, fp(f, "v1.tar"), fp(f, "base")));
	manifest_diff(&base, &next, &keep, &send);
	for (i = 0; i < send.n; i++)
		print_message("send %s\n", send.entries[i].path);

	fd = open(fp(f, "delta.tar.gz"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	if (artifact_write_subset(fp(f, "v2.tar"), ninfo.sha256, &send, fd,
				  &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(close(fd), 0);
	/*
	 * Only what changed: app/hard-same stays a hard link to the kept
	 * app/same.py; the implied directories come last.
	 */
	got = list_archive(fp(f, "delta.tar.gz"));
	print_message("%s", got);
	assert_non_null(strstr(got, "app/changed.py f 0644 0/0 root:root"));
	assert_non_null(strstr(got, "app/chmod f 0755 0/0 root:root"));
	assert_non_null(strstr(got, "conf d 0700 0/0 root:root"));
	assert_non_null(strstr(got, "new/deep d 0755 0/0 root:root"));
	assert_null(strstr(got, "app/same.py"));
	assert_null(strstr(got, "keep.ini"));
	free(got);
	member = read_member(fp(f, "delta.tar.gz"), "app/changed.py", NULL);
	assert_string_equal(member, "v2\n");
	free(member);

	/* The copy step, from the keep list: dirs, files, links. */
	buf_addf(&s, "set -e\nmkdir new\n");
	for (i = 0; i < keep.n; i++) {
		e = &keep.entries[i];
		switch (e->type) {
		case MANIFEST_DIR:
			buf_addf(&s, "mkdir -p 'new/%s'; chmod %o 'new/%s'\n",
				 e->path, e->mode, e->path);
			break;
		case MANIFEST_FILE:
			buf_addf(&s,
				 "mkdir -p \"$(dirname 'new/%s')\"; cp -p "
				 "'base/%s' 'new/%s'\n",
				 e->path, e->path, e->path);
			break;
		default:
			buf_addf(&s,
				 "mkdir -p \"$(dirname 'new/%s')\"; ln -s '%s' "
				 "'new/%s'\n",
				 e->path, e->target, e->path);
			break;
		}
	}
	assert_int_equal(run_sh(f->dir, buf_str(&s)), 0);
	got = unpack_and_list(f, fp(f, "delta.tar.gz"), fp(f, "new"));
	want = manifest_text(&next);
	assert_string_equal(got, want);
	free(got);
	free(want);

	/* The artifact must still be the one validated. */
	fd = open(fp(f, "delta2.tar.gz"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(artifact_write_subset(fp(f, "v2.tar"), binfo.sha256,
					       &send, fd, &err),
			 -1);
	assert_int_equal(err.code, RF_EXIT_ARTIFACT);
	assert_non_null(strstr(err.msg, "changed since it was validated"));
	/* And hold every entry selected. */
	assert_int_equal(
	    artifact_write_subset(fp(f, "v1.tar"), NULL, &send, fd, &err), -1);
	assert_int_equal(err.code, RF_EXIT_ARTIFACT);
	assert_non_null(strstr(err.msg, "is not the one validated"));
	close(fd);

	buf_release(&s);
	manifest_release(&base);
	manifest_release(&next);
	manifest_release(&keep);
	manifest_release(&send);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_validate_good_tar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_good_gzip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_good_xz, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_good_zstd, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_validate_digest_covers_trailing_bytes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_validate_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_header_warning,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_symlinks_inside,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_not_tar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_empty_archive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_nested_gzip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_truncated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_limit_entries,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_limit_size, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_validate_limit_ratio,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_sha256, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pack_contents, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pack_ignores_file_mtimes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_normalises_modes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pack_ignores_umask_and_readdir_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_ignores_locale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pack_excludes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_pack_negated_ignore_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_revision, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pack_streams_large_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_output_inside_tree,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_refuses_hostile_trees,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_differential_corpus, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_differential_compressed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pack_git_tracked_and_included, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_secret_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_pack_compression_from_the_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_differential_git_archive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_subset, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
