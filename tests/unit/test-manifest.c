/*
 * Unit tests for src/manifest.c: the text format and its strict parser,
 * the diff delta deploys use, and the sh listing script run against real
 * trees (with /bin/sh, find, sha256sum, sort, awk), including trees made
 * to forge an approved listing.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "error.h"
#include "manifest.h"

#define SHA_ABC                                                                \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY                                                              \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static struct manifest_entry *
add(struct manifest *m, char type, const char *path, unsigned int mode,
    uint64_t size, const char *data)
{
	struct manifest_entry *e = manifest_add(m, type, path);

	if (type != MANIFEST_LINK)
		e->mode = mode;
	e->size = size;
	if (type == MANIFEST_FILE)
		snprintf(e->sha256, sizeof(e->sha256), "%s", data);
	if (type == MANIFEST_LINK)
		e->target = strdup(data);
	return e;
}

static char *
format(const struct manifest *m)
{
	struct buf b = BUF_INIT;

	assert_int_equal(manifest_format(m, &b), 0);
	return buf_detach(&b, NULL);
}

static const char sample_text[] =
    "# relflip manifest 1\n"
    "d\t755\t-\t-\tapp\n"
    "f\t755\t3\t" SHA_ABC "\tapp-run\n"
    "d\t700\t-\t-\tapp/data\n"
    "f\t644\t0\t" SHA_EMPTY "\tapp/data/\xc3\xa9t\xc3\xa9\n"
    "l\t777\t-\t../app-run\tapp/up\n"
    "# entries 5\n";

static void
sample(struct manifest *m)
{
	/* Out of order on purpose: manifest_sort puts "app-run" first. */
	add(m, MANIFEST_LINK, "app/up", 0, 0, "../app-run");
	add(m, MANIFEST_FILE, "app/data/\xc3\xa9t\xc3\xa9", 0644, 0, SHA_EMPTY);
	add(m, MANIFEST_DIR, "app/data", 0700, 0, NULL);
	add(m, MANIFEST_FILE, "app-run", 0755, 3, SHA_ABC);
	add(m, MANIFEST_DIR, "app", 0755, 0, NULL);
	manifest_sort(m);
}

static void
test_format_and_parse(void **state)
{
	struct manifest m = MANIFEST_INIT, back = MANIFEST_INIT;
	struct rf_error err = RF_ERROR_INIT;
	const struct manifest_entry *e;
	char *text, *again;

	(void)state;
	sample(&m);
	text = format(&m);
	assert_string_equal(text, sample_text);

	if (manifest_parse(&back, text, strlen(text), 100, "t", &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(back.n, 5);
	again = format(&back);
	assert_string_equal(again, text);

	e = manifest_find(&back, "app/up");
	assert_non_null(e);
	assert_int_equal(e->type, MANIFEST_LINK);
	assert_int_equal(e->mode, 0777);
	assert_string_equal(e->target, "../app-run");
	e = manifest_find(&back, "app-run");
	assert_non_null(e);
	assert_int_equal(e->size, 3);
	assert_string_equal(e->sha256, SHA_ABC);
	assert_null(manifest_find(&back, "app/"));
	assert_null(manifest_find(&back, "zzz"));
	assert_null(manifest_find(&back, ""));

	free(text);
	free(again);
	manifest_release(&m);
	manifest_release(&back);

	/* An empty manifest is a valid one. */
	text = format(&m);
	assert_string_equal(text, "# relflip manifest 1\n# entries 0\n");
	assert_int_equal(
	    manifest_parse(&back, text, strlen(text), 1, "t", &err), 0);
	assert_int_equal(back.n, 0);
	free(text);
}

static void
test_format_bounded(void **state)
{
	struct manifest m = MANIFEST_INIT;
	struct buf b = BUF_INIT;

	(void)state;
	sample(&m);
	b.max = 64;
	assert_int_equal(manifest_format(&m, &b), -1);
	buf_release(&b);
	manifest_release(&m);
}

struct bad {
	const char *text;
	const char *needle;
};

#define H "# relflip manifest 1\n"
#define D(p) "d\t755\t-\t-\t" p "\n"

static const struct bad bad_texts[] = {
	{ "", "t:1: no '# entries N' line" },
	{ "# relflip manifest 2\n# entries 0\n", "t:1: not a manifest" },
	{ H "# entries 0", "t:2: the last line does not end in a newline" },
	{ H, "t:2: no '# entries N' line" },
	{ H D("a") "# entries 2\n", "t:3: the entry count is wrong" },
	{ H D("a") "# entries 01\n", "t:3: the entry count is wrong" },
	{ H D("a") "# entries 1\n\n", "t:3: text after the '# entries' line" },
	{ H D("b") D("a") "# entries 2\n", "t:3: not sorted by path" },
	{ H D("a") D("a") "# entries 2\n", "t:3: not sorted by path, or a path "
					   "listed twice" },
	{ H "x\t755\t-\t-\ta\n# entries 1\n", "t:2: type is not d, f or l" },
	{ H "dd\t755\t-\t-\ta\n# entries 1\n", "type is not d, f or l" },
	{ H "d\t0755\t-\t-\ta\n# entries 1\n", "mode is not octal" },
	{ H "d\t758\t-\t-\ta\n# entries 1\n", "mode is not octal" },
	{ H "d\t17777\t-\t-\ta\n# entries 1\n", "mode is not octal" },
	{ H "d\t\t-\t-\ta\n# entries 1\n", "mode is not octal" },
	{ H "l\t755\t-\tx\ta\n# entries 1\n", "a symlink's mode is not 777" },
	{ H "f\t644\t-\t" SHA_ABC "\ta\n# entries 1\n",
	  "size is not a decimal number" },
	{ H "f\t644\t03\t" SHA_ABC "\ta\n# entries 1\n",
	  "size is not a decimal number" },
	{ H "f\t644\t99999999999999999999\t" SHA_ABC "\ta\n# entries 1\n",
	  "size is not a decimal number" },
	{ H "f\t644\t3\tBA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF6"
	    "1F20015AD\ta\n# entries 1\n",
	  "digest is not 64 lowercase hex digits" },
	{ H "f\t644\t3\tabc\ta\n# entries 1\n", "digest is not 64" },
	{ H "d\t755\t0\t-\ta\n# entries 1\n",
	  "size of a directory or symlink" },
	{ H "d\t755\t-\tx\ta\n# entries 1\n",
	  "data of a directory is not '-'" },
	{ H "l\t777\t-\t\ta\n# entries 1\n", "symlink target is empty" },
	{ H "l\t777\t-\ta\\b\ta\n# entries 1\n",
	  "control character or backslash in the symlink target" },
	{ H "d\t755\t-\t-\t./a\n# entries 1\n", "'.' or '..' in the path" },
	{ H "d\t755\t-\t-\t..\n# entries 1\n", "'.' or '..' in the path" },
	{ H "d\t755\t-\t-\t/a\n# entries 1\n", "empty component in the path" },
	{ H D("a") "d\t755\t-\t-\ta//b\n# entries 2\n", "empty component" },
	{ H "d\t755\t-\t-\ta/\n# entries 1\n", "path ends in '/'" },
	{ H "d\t755\t-\t-\t\n# entries 1\n", "empty path" },
	{ H "d\t755\t-\t-\ta\tb\n# entries 1\n",
	  "not five tab-separated fields" },
	{ H "d\t755\t-\ta\n# entries 1\n", "not five tab-separated fields" },
	{ H "d\t755\t-\t-\ta\x01\n# entries 1\n",
	  "control character or backslash in the path" },
	{ H "d\t755\t-\t-\ta/b\n# entries 1\n", "t:2: parent directory not "
						"listed" },
	{ H "f\t644\t3\t" SHA_ABC "\ta\n" D("a/b") "# entries 2\n",
	  "t:3: parent is not a directory" },
	{ H D("a") D("b") D("c") "# entries 3\n", "t:4: too many entries" },
};

static void
test_parse_refuses(void **state)
{
	struct manifest m = MANIFEST_INIT;
	struct rf_error err = RF_ERROR_INIT;
	static const char nul[] = H "d\t755\t-\t-\ta\0\n# entries 1\n";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++) {
		rf_error_clear(&err);
		if (manifest_parse(&m, bad_texts[i].text,
				   strlen(bad_texts[i].text), 2, "t",
				   &err) != -1 ||
		    strstr(err.msg, bad_texts[i].needle) == NULL)
			fail_msg("text %zu: msg '%s', wanted '%s'", i, err.msg,
				 bad_texts[i].needle);
		assert_int_equal(err.code, RF_EXIT_UPLOAD);
		assert_string_equal(err.stage, "upload");
		assert_int_equal(m.n, 0);
		assert_null(m.entries);
	}
	assert_int_equal(manifest_parse(&m, nul, sizeof(nul) - 1, 2, "t", &err),
			 -1);
	assert_non_null(strstr(err.msg, "NUL byte"));
}

static void
test_name_ok(void **state)
{
	(void)state;
	assert_true(manifest_name_ok("app/\xc3\xa9t\xc3\xa9 x.txt"));
	assert_true(manifest_name_ok("\xc2\x9b"));
	assert_false(manifest_name_ok("a\tb"));
	assert_false(manifest_name_ok("a\nb"));
	assert_false(manifest_name_ok("a\rb"));
	assert_false(manifest_name_ok("a\\b"));
	assert_false(manifest_name_ok("a\x7f"));
	assert_false(manifest_name_ok("\x1b[2J"));
}

static void
paths(const struct manifest *m, char *out, size_t len)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < m->n; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? " " : "",
				      m->entries[i].path);
}

static void
test_diff(void **state)
{
	struct manifest base = MANIFEST_INIT, next = MANIFEST_INIT;
	struct manifest keep = MANIFEST_INIT, send = MANIFEST_INIT;
	char got[512];

	(void)state;
	add(&base, MANIFEST_DIR, "a", 0755, 0, NULL);
	add(&base, MANIFEST_FILE, "a/same", 0644, 3, SHA_ABC);
	add(&base, MANIFEST_FILE, "a/content", 0644, 3, SHA_ABC);
	add(&base, MANIFEST_FILE, "a/mode", 0644, 3, SHA_ABC);
	add(&base, MANIFEST_LINK, "a/link", 0, 0, "same");
	add(&base, MANIFEST_LINK, "a/retarget", 0, 0, "same");
	add(&base, MANIFEST_FILE, "a/typed", 0644, 3, SHA_ABC);
	add(&base, MANIFEST_DIR, "d", 0755, 0, NULL);
	add(&base, MANIFEST_FILE, "gone", 0644, 3, SHA_ABC);
	manifest_sort(&base);

	add(&next, MANIFEST_DIR, "a", 0755, 0, NULL);
	add(&next, MANIFEST_FILE, "a/same", 0644, 3, SHA_ABC);
	add(&next, MANIFEST_FILE, "a/content", 0644, 0, SHA_EMPTY);
	add(&next, MANIFEST_FILE, "a/mode", 0755, 3, SHA_ABC);
	add(&next, MANIFEST_LINK, "a/link", 0, 0, "same");
	add(&next, MANIFEST_LINK, "a/retarget", 0, 0, "other");
	add(&next, MANIFEST_DIR, "a/typed", 0755, 0, NULL);
	add(&next, MANIFEST_DIR, "d", 0700, 0, NULL);
	add(&next, MANIFEST_FILE, "new", 0644, 3, SHA_ABC);
	manifest_sort(&next);

	manifest_diff(&base, &next, &keep, &send);
	paths(&keep, got, sizeof(got));
	assert_string_equal(got, "a a/link a/same");
	paths(&send, got, sizeof(got));
	assert_string_equal(got, "a/content a/mode a/retarget a/typed d new");
	assert_string_equal(manifest_find(&keep, "a/link")->target, "same");
	assert_string_equal(manifest_find(&send, "a/content")->sha256,
			    SHA_EMPTY);

	/* Against an empty base, everything is sent. */
	manifest_release(&keep);
	manifest_release(&send);
	manifest_release(&base);
	manifest_diff(&base, &next, &keep, &send);
	assert_int_equal(keep.n, 0);
	assert_int_equal(send.n, next.n);

	manifest_release(&keep);
	manifest_release(&send);
	manifest_release(&next);
}

/* The listing script against real trees. */

struct fx {
	char dir[1024];
};

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
	snprintf(f->dir, sizeof(f->dir), "%s/relflip-test-manifest-XXXXXX",
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

static const char *
at(struct fx *f, const char *rel)
{
	static char p[4][PATH_MAX];
	static int next;
	char *s = p[next];

	next = (next + 1) % 4;
	snprintf(s, PATH_MAX, "%s/t/%s", f->dir, rel);
	return s;
}

static void
put(struct fx *f, const char *rel, const char *data, mode_t mode)
{
	int fd = open(at(f, rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void
mk(struct fx *f, const char *rel, mode_t mode)
{
	assert_int_equal(mkdir(at(f, rel), 0700), 0);
	assert_int_equal(chmod(at(f, rel), mode), 0);
}

/* Run the listing script in dir; its stdout, owned by the caller. */
static char *
listing_in(const char *dir)
{
	struct buf script = BUF_INIT, out = BUF_INIT, scratch = BUF_INIT;
	char chunk[4096];
	int po[2], st;
	ssize_t n;
	pid_t pid;

	/* Outside the tree listed, as the steps' scripts keep it. */
	buf_addf(&scratch, "/tmp/relflip-test-listing.%ld", (long)getpid());
	buf_adds(&out, "'");
	buf_adds(&out, buf_str(&scratch));
	buf_adds(&out, "'");
	assert_int_equal(
	    manifest_listing_script(&script, buf_str(&out), NULL, NULL), 0);
	buf_reset(&out);
	assert_int_equal(pipe(po), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(po[1], 1);
		close(po[0]);
		close(po[1]);
		if (chdir(dir) != 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", buf_str(&script), (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	for (;;) {
		n = read(po[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_int_equal(buf_add(&out, chunk, (size_t)n), 0);
	}
	close(po[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	unlink(buf_str(&scratch));
	buf_release(&scratch);
	buf_release(&script);
	return buf_detach(&out, NULL);
}

static char *
listing(struct fx *f)
{
	return listing_in(at(f, "."));
}

/* The sample tree: what sample_text lists, and a hard link. */
static void
make_sample(struct fx *f, struct manifest *m)
{
	mk(f, "", 0755);
	mk(f, "app", 0755);
	put(f, "app-run", "abc", 0755);
	mk(f, "app/data", 0700);
	put(f, "app/data/\xc3\xa9t\xc3\xa9", "", 0644);
	assert_int_equal(symlink("../app-run", at(f, "app/up")), 0);
	assert_int_equal(link(at(f, "app-run"), at(f, "app/hard")), 0);
	sample(m);
	add(m, MANIFEST_FILE, "app/hard", 0755, 3, SHA_ABC);
	manifest_sort(m);
}

static void
test_listing_matches(void **state)
{
	struct fx *f = *state;
	struct manifest m = MANIFEST_INIT;
	char *want, *got;

	make_sample(f, &m);
	want = format(&m);
	got = listing(f);
	assert_string_equal(got, want);
	free(want);
	free(got);
	manifest_release(&m);

	/* An empty tree lists nothing. */
	mk(f, "empty", 0755);
	got = listing_in(at(f, "empty"));
	assert_string_equal(got, "# relflip manifest 1\n# entries 0\n");
	free(got);
}

/* Each change to the tree changes the listing. */
static void
expect_differs(struct fx *f, const char *want, const char *what)
{
	char *got = listing(f);

	if (strcmp(got, want) == 0)
		fail_msg("%s: the listing did not change", what);
	free(got);
}

static void
test_listing_sees_changes(void **state)
{
	struct fx *f = *state;
	struct manifest m = MANIFEST_INIT;
	char *want;

	make_sample(f, &m);
	want = format(&m);

	assert_int_equal(chmod(at(f, "app/data"), 0755), 0);
	expect_differs(f, want, "a directory's mode");
	assert_int_equal(chmod(at(f, "app/data"), 0700), 0);

	put(f, "app-run", "abd", 0755);
	expect_differs(f, want, "a file's content");
	put(f, "app-run", "abc", 0755);

	assert_int_equal(mkfifo(at(f, "app/pipe"), 0644), 0);
	expect_differs(f, want, "a FIFO");
	assert_int_equal(unlink(at(f, "app/pipe")), 0);

	mk(f, "extra", 0755);
	expect_differs(f, want, "an empty directory");
	assert_int_equal(rmdir(at(f, "extra")), 0);

	assert_int_equal(unlink(at(f, "app/up")), 0);
	assert_int_equal(symlink("/etc/passwd", at(f, "app/up")), 0);
	expect_differs(f, want, "a retargeted symlink");
	assert_int_equal(unlink(at(f, "app/up")), 0);
	assert_int_equal(symlink("../app-run", at(f, "app/up")), 0);

	put(f, "back\\slash", "abc", 0644);
	expect_differs(f, want, "a name with a backslash");
	assert_int_equal(unlink(at(f, "back\\slash")), 0);

	/* Unchanged again: the same text. */
	{
		char *got = listing(f);

		assert_string_equal(got, want);
		free(got);
	}
	free(want);
	manifest_release(&m);
}

/*
 * A forgery: an approved tree of a file x and a symlink l -> t. The
 * hostile tree has no l, but a file whose name, after a newline, spells
 * l's line, and a FIFO to make the entry count right. It must not list
 * as the approved tree.
 */
static void
test_listing_forgery(void **state)
{
	struct fx *f = *state;
	struct manifest m = MANIFEST_INIT;
	char *want, *got;

	mk(f, "", 0755);
	put(f, "x", "abc", 0644);
	assert_int_equal(symlink("t", at(f, "l")), 0);
	add(&m, MANIFEST_FILE, "x", 0644, 3, SHA_ABC);
	add(&m, MANIFEST_LINK, "l", 0, 0, "t");
	manifest_sort(&m);
	want = format(&m);
	got = listing(f);
	assert_string_equal(got, want);
	free(got);

	assert_int_equal(unlink(at(f, "l")), 0);
	assert_int_equal(rename(at(f, "x"), at(f, "x\nl\t777\t-\tt\tl")), 0);
	assert_int_equal(mkfifo(at(f, "p"), 0644), 0);
	expect_differs(f, want, "a newline in a name and a FIFO");

	/* A tab in a name spelling more fields. */
	assert_int_equal(unlink(at(f, "p")), 0);
	assert_int_equal(rename(at(f, "x\nl\t777\t-\tt\tl"), at(f, "x")), 0);
	assert_int_equal(symlink("t", at(f, "l\t777\t-\tt\tl")), 0);
	expect_differs(f, want, "a tab in a name");
	free(want);
	manifest_release(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_parse),
		cmocka_unit_test(test_format_bounded),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_diff),
		cmocka_unit_test_setup_teardown(test_listing_matches, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_listing_sees_changes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_forgery, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
