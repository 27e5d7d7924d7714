/*
 * The pull script of steps.h (step_pull_script), run for real with
 * /bin/sh -c in a temporary directory that plays the server, against fake
 * curl and wget (shell scripts that record their arguments, stdin and
 * environment and act as told) on a PATH of their own: resuming, the
 * header and URL kept off every command line, each failure's status, a
 * URL's query kept out of messages, and no value ever run as a command.
 */

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "artifact.h"
#include "buf.h"
#include "steps.h"

/* What the artifact is: 4000 bytes, and its SHA-256. */
#define SRC_SIZE 4000

/*
 * A fake curl: records, then does what $dir/mode says. Like curl, -C -
 * appends to -o's file from its size, and without it the file is
 * replaced; -w's code goes to stdout.
 */
static const char fake_curl[] =
    "#!/bin/sh\n"
    "d=$(dirname \"$0\")\n"
    "printf '%s\\n' \"$@\" > \"$d/curl.args\"\n"
    "cat > \"$d/curl.stdin\"\n"
    "env > \"$d/curl.env\"\n"
    "o=; c=0\n"
    "while [ $# -gt 0 ]; do case $1 in -o) o=$2; shift ;; -C) c=1; shift ;; "
    "esac; shift; done\n"
    "n=0; [ $c = 1 ] && [ -f \"$o\" ] && n=$(($(wc -c < \"$o\")))\n"
    "case $(cat \"$d/mode\") in\n"
    "ok) if [ $c = 1 ]; then tail -c +$((n + 1)) \"$d/src\" >> \"$o\"; "
    "else cat \"$d/src\" > \"$o\"; fi; printf 200 ;;\n"
    "404) echo 'curl: (22) The requested URL returned error: 404' >&2; "
    "printf 404; exit 22 ;;\n"
    "refused) echo \"curl: (7) Failed to connect to h port 1 after 0 ms: "
    "Couldn't connect to server\" >&2; printf 000; exit 7 ;;\n"
    "slow) head -c 100 \"$d/src\" >> \"$o\"; exec sleep 10 ;;\n"
    "norange) if [ $c = 1 ] && [ -f \"$o\" ]; then "
    "echo 'curl: (33) no ranges' >&2; exit 33; fi; "
    "cat \"$d/src\" > \"$o\"; printf 200 ;;\n"
    "leak) echo 'curl: (35) TLS error with https://u:pw@h/x?sig=SECRET9 "
    "here' >&2; exit 35 ;;\n"
    "esac\n";

/* A fake wget: the URL on stdin (-i -), -c resumes -O's file. */
static const char fake_wget[] =
    "#!/bin/sh\n"
    "d=$(dirname \"$0\")\n"
    "printf '%s\\n' \"$@\" > \"$d/wget.args\"\n"
    "cat > \"$d/wget.stdin\"\n"
    "o=\n"
    "while [ $# -gt 0 ]; do case $1 in -O) o=$2; shift ;; esac; shift; "
    "done\n"
    "n=0; [ -f \"$o\" ] && n=$(($(wc -c < \"$o\")))\n"
    "case $(cat \"$d/mode\") in\n"
    "ok) tail -c +$((n + 1)) \"$d/src\" >> \"$o\" ;;\n"
    "404) : > \"$o\"; echo 'http://h/x?sig=SECRET9:' >&2; "
    "echo '2026-01-01 10:00:00 ERROR 404: Not Found.' >&2; exit 8 ;;\n"
    "refused) echo 'failed: Connection refused.' >&2; exit 4 ;;\n"
    "esac\n";

/* The commands the script uses besides curl and wget. */
static const char *const tools[] = {
	"sh",  "sed",       "grep",    "tail",  "mktemp", "wc",
	"rm",  "sha256sum", "timeout", "cat",   "sleep",  "head",
	"env", "dirname",   "true",    "touch",
};

struct fx {
	char dir[64];       /* the "server" */
	char bin[128];      /* the fakes */
	char path[512];     /* PATH for the script */
	char src[256];      /* what the URL serves */
	char incoming[256]; /* where the download goes */
	char sha256[65];    /* of the artifact validated */
};

static char *
path_of(const struct fx *fx, const char *name)
{
	static char p[4][512];
	static int next;
	char *s = p[next++ % 4];

	snprintf(s, sizeof(p[0]), "%s/%s", fx->dir, name);
	return s;
}

static void
write_file(const char *path, const char *text, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

/* The file's contents (NUL-terminated), or NULL when it is not there. */
static char *
slurp(const char *path, size_t *len)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	close(fd);
	if (len != NULL)
		*len = b.len;
	return buf_detach(&b, NULL);
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Who the fakes are: "curl wget", "wget" or "" (neither). */
static void
fx_tools(struct fx *fx, const char *which)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/curl", fx->bin);
	unlink(p);
	if (strstr(which, "curl") != NULL)
		write_file(p, fake_curl, strlen(fake_curl), 0755);
	snprintf(p, sizeof(p), "%s/wget", fx->bin);
	unlink(p);
	if (strstr(which, "wget") != NULL)
		write_file(p, fake_wget, strlen(fake_wget), 0755);
}

static void
fx_mode(struct fx *fx, const char *mode)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/mode", fx->bin);
	write_file(p, mode, strlen(mode), 0644);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct rf_error err = RF_ERROR_INIT;
	char data[SRC_SIZE], p[512], tdir[128];
	size_t i;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/relflip-pull.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->bin, sizeof(fx->bin), "%s/bin", fx->dir);
	snprintf(tdir, sizeof(tdir), "%s/tools", fx->dir);
	assert_int_equal(mkdir(fx->bin, 0755), 0);
	assert_int_equal(mkdir(tdir, 0755), 0);
	snprintf(p, sizeof(p), "%s/app/.relflip/incoming", fx->dir);
	assert_int_equal(mkdir(path_of(fx, "app"), 0755), 0);
	assert_int_equal(mkdir(path_of(fx, "app/.relflip"), 0755), 0);
	assert_int_equal(mkdir(p, 0755), 0);
	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		char real[256];

		snprintf(real, sizeof(real), "/usr/bin/%s", tools[i]);
		if (access(real, X_OK) != 0)
			snprintf(real, sizeof(real), "/bin/%s", tools[i]);
		snprintf(p, sizeof(p), "%s/%s", tdir, tools[i]);
		assert_int_equal(symlink(real, p), 0);
	}
	snprintf(fx->path, sizeof(fx->path), "%s:%s", fx->bin, tdir);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + (i * 7 + i / 13) % 26);
	snprintf(fx->src, sizeof(fx->src), "%s/src", fx->bin);
	write_file(fx->src, data, sizeof(data), 0644);
	assert_int_equal(file_sha256(fx->src, fx->sha256, &err), 0);
	snprintf(fx->incoming, sizeof(fx->incoming),
		 "%s/app/.relflip/incoming/v1.%.12s.tar", fx->dir, fx->sha256);
	fx_tools(fx, "curl wget");
	fx_mode(fx, "ok");
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

struct run {
	struct buf out;
	struct buf err;
	int status;
	double secs;
};

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sh -c SCRIPT in fx->dir, stdin from `in`, PATH the fakes' and tools'. */
static void
run_script(const struct fx *fx, const char *script, const char *in,
	   struct run *r)
{
	int po[2], pe[2];
	struct pollfd pfd[2];
	double t0 = now_mono();
	pid_t pid;
	int st, open_fds = 2;

	memset(r, 0, sizeof(*r));
	write_file(path_of(fx, ".stdin"), in, strlen(in), 0600);
	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path_of(fx, ".stdin"), O_RDONLY);

		if (fd < 0 || dup2(fd, 0) < 0 || chdir(fx->dir) != 0)
			_exit(125);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		setenv("PATH", fx->path, 1);
		setenv("TMPDIR", fx->dir, 1);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	pfd[0].fd = po[0];
	pfd[1].fd = pe[0];
	pfd[0].events = pfd[1].events = POLLIN;
	while (open_fds > 0) {
		int i, n;

		if (now_mono() - t0 > 20) {
			kill(pid, SIGKILL);
			fail_msg("a script ran for more than 20 s");
		}
		n = poll(pfd, 2, 1000);
		if (n < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (i = 0; n > 0 && i < 2; i++) {
			char b[4096];
			ssize_t k;

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			k = read(pfd[i].fd, b, sizeof(b));
			if (k > 0) {
				buf_add(i == 0 ? &r->out : &r->err, b,
					(size_t)k);
			} else if (k == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
			}
		}
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r->secs = now_mono() - t0;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
run_release(struct run *r)
{
	buf_release(&r->out);
	buf_release(&r->err);
}

/* The pull script for fx, with url and a header or not, run with in. */
static void
pull(const struct fx *fx, const char *url, const char *header, double limit,
     int status, struct run *r)
{
	struct step_pull p;
	struct buf script = BUF_INIT, in = BUF_INIT;
	char app[128];

	snprintf(app, sizeof(app), "%s/app", fx->dir);
	memset(&p, 0, sizeof(p));
	p.app = app;
	p.id = "v1";
	p.sha256 = fx->sha256;
	p.size = SRC_SIZE;
	p.url = url;
	p.limit = limit;
	p.header = header != NULL;
	step_pull_script(&script, &p);
	if (header != NULL)
		buf_addf(&in, "%s\n", header);
	run_script(fx, buf_str(&script), buf_str(&in), r);
	if (r->status != status)
		fail_msg("exit %d, expected %d; stdout: %s; stderr: %s",
			 r->status, status, buf_str(&r->out), buf_str(&r->err));
	buf_release(&script);
	buf_release(&in);
}

/* The downloaded file is the whole artifact. */
static void
assert_downloaded(const struct fx *fx)
{
	size_t n = 0;
	char *got = slurp(fx->incoming, &n);
	char *want = slurp(fx->src, NULL);

	assert_non_null(got);
	assert_int_equal(n, SRC_SIZE);
	assert_memory_equal(got, want, SRC_SIZE);
	free(got);
	free(want);
}

static void
test_curl_gets_url_and_header_on_stdin_only(void **state)
{
	struct fx *fx = *state;
	const char *url = "http://h/a\"b\\c/$(touch pwned)`touch pwned`";
	const char *header = "Authorization: Bearer t\"o\\k $(touch pwned)";
	char *args, *in, *env;
	struct run r;

	pull(fx, url, header, 10, 0, &r);
	assert_string_equal(buf_str(&r.out), "from=0\n");
	assert_downloaded(fx);
	args = slurp(path_of(fx, "bin/curl.args"), NULL);
	in = slurp(path_of(fx, "bin/curl.stdin"), NULL);
	env = slurp(path_of(fx, "bin/curl.env"), NULL);
	assert_non_null(args);
	assert_non_null(in);
	assert_non_null(env);
	/* curl's config quotes " and \ with a backslash. */
	assert_non_null(strstr(in, "url = \"http://h/a\\\"b\\\\c/$(touch "
				   "pwned)`touch pwned`\"\n"));
	assert_non_null(strstr(in, "header = \"Accept: "
				   "application/octet-stream\"\n"));
	assert_non_null(strstr(in, "header = \"Authorization: Bearer "
				   "t\\\"o\\\\k $(touch pwned)\"\n"));
	/* Neither on the command line nor in the environment (not "h/a",
	 * which a temporary directory ending in h and then app/ contains). */
	assert_null(strstr(args, "http://"));
	assert_null(strstr(args, "Bearer"));
	assert_null(strstr(env, "Bearer"));
	assert_non_null(strstr(args, "-K\n-\n"));
	assert_non_null(strstr(args, "--retry\n3\n"));
	assert_false(exists(path_of(fx, "pwned")));
	free(args);
	free(in);
	free(env);
	run_release(&r);
}

static void
test_partial_file_is_resumed(void **state)
{
	struct fx *fx = *state;
	char *src = slurp(fx->src, NULL);
	char *args;
	struct run r;

	write_file(fx->incoming, src, 1000, 0644);
	pull(fx, "http://h/x", NULL, 10, 0, &r);
	assert_string_equal(buf_str(&r.out), "from=1000\n");
	assert_downloaded(fx);
	args = slurp(path_of(fx, "bin/curl.args"), NULL);
	assert_non_null(strstr(args, "-C\n-\n"));
	free(args);
	free(src);
	run_release(&r);
}

static void
test_complete_file_is_not_fetched(void **state)
{
	struct fx *fx = *state;
	char *src = slurp(fx->src, NULL);
	struct run r;

	write_file(fx->incoming, src, SRC_SIZE, 0644);
	pull(fx, "http://h/x", NULL, 10, 0, &r);
	assert_string_equal(buf_str(&r.out), "from=4000\n");
	assert_false(exists(path_of(fx, "bin/curl.args")));
	assert_downloaded(fx);
	free(src);
	run_release(&r);
}

static void
test_longer_file_starts_again(void **state)
{
	struct fx *fx = *state;
	char big[SRC_SIZE + 10];
	struct run r;

	memset(big, 'x', sizeof(big));
	write_file(fx->incoming, big, sizeof(big), 0644);
	pull(fx, "http://h/x", NULL, 10, 0, &r);
	assert_string_equal(buf_str(&r.out), "from=0\n");
	assert_downloaded(fx);
	run_release(&r);
}

static void
test_no_range_support_downloads_again(void **state)
{
	struct fx *fx = *state;
	char *src = slurp(fx->src, NULL);
	struct run r;

	write_file(fx->incoming, src, 1000, 0644);
	fx_mode(fx, "norange");
	pull(fx, "http://h/x", NULL, 10, 0, &r);
	assert_downloaded(fx);
	free(src);
	run_release(&r);
}

static void
test_http_error_is_85_with_its_status(void **state)
{
	struct fx *fx = *state;
	struct run r;

	fx_mode(fx, "404");
	pull(fx, "http://h/x", NULL, 10, STEP_PULL_HTTP, &r);
	assert_string_equal(buf_str(&r.out), "http=404\n");
	assert_non_null(strstr(buf_str(&r.err), "returned error: 404"));
	assert_false(exists(fx->incoming));
	run_release(&r);
}

static void
test_refused_is_86(void **state)
{
	struct fx *fx = *state;
	struct run r;

	fx_mode(fx, "refused");
	pull(fx, "http://h:1/x", NULL, 10, STEP_PULL_CONNECT, &r);
	assert_non_null(strstr(buf_str(&r.err), "Couldn't connect"));
	run_release(&r);
}

static void
test_time_limit_is_87_and_keeps_the_part(void **state)
{
	struct fx *fx = *state;
	size_t n = 0;
	char *got;
	struct run r;

	/*
	 * The limit leaves the fake curl time to write its first bytes on a
	 * machine busy with the whole suite (0.5 s did not, once); it still
	 * ends the download long before the fake's 10 s sleep would.
	 */
	fx_mode(fx, "slow");
	pull(fx, "http://h/x", NULL, 3, STEP_PULL_SLOW, &r);
	assert_true(r.secs < 9);
	got = slurp(fx->incoming, &n);
	assert_non_null(got);
	assert_int_equal(n, 100);
	free(got);
	run_release(&r);
}

static void
test_other_bytes_are_77_and_removed(void **state)
{
	struct fx *fx = *state;
	struct rf_error err = RF_ERROR_INIT;
	char other[65], want[80];
	struct run r;

	write_file(fx->src, "other bytes", 11, 0644);
	assert_int_equal(file_sha256(fx->src, other, &err), 0);
	pull(fx, "http://h/x", NULL, 10, STEP_CHECKSUM, &r);
	snprintf(want, sizeof(want), "sha256=%s\n", other);
	assert_string_equal(buf_str(&r.out), want);
	assert_false(exists(fx->incoming));
	run_release(&r);
}

static void
test_messages_lose_query_and_user(void **state)
{
	struct fx *fx = *state;
	struct run r;

	fx_mode(fx, "leak");
	pull(fx, "https://u:pw@h/x?sig=SECRET9", NULL, 10, STEP_PULL_FAILED,
	     &r);
	assert_non_null(strstr(buf_str(&r.err), "TLS error with https://h/x"));
	assert_null(strstr(buf_str(&r.err), "SECRET9"));
	assert_null(strstr(buf_str(&r.err), "pw@"));
	run_release(&r);
}

static void
test_wget_without_curl(void **state)
{
	struct fx *fx = *state;
	char *src = slurp(fx->src, NULL);
	char *args, *in;
	struct run r;

	fx_tools(fx, "wget");
	write_file(fx->incoming, src, 1000, 0644);
	pull(fx, "http://h/x?sig=SECRET9", NULL, 10, 0, &r);
	assert_string_equal(buf_str(&r.out), "from=1000\n");
	assert_downloaded(fx);
	args = slurp(path_of(fx, "bin/wget.args"), NULL);
	in = slurp(path_of(fx, "bin/wget.stdin"), NULL);
	assert_string_equal(in, "http://h/x?sig=SECRET9\n");
	assert_null(strstr(args, "http://"));
	assert_non_null(strstr(args, "-c\n"));
	assert_non_null(strstr(args, "-i\n-\n"));
	free(args);
	free(in);
	free(src);
	run_release(&r);
}

static void
test_wget_http_error_and_refused(void **state)
{
	struct fx *fx = *state;
	struct run r;

	fx_tools(fx, "wget");
	fx_mode(fx, "404");
	pull(fx, "http://h/x?sig=SECRET9", NULL, 10, STEP_PULL_HTTP, &r);
	assert_string_equal(buf_str(&r.out), "http=404\n");
	assert_null(strstr(buf_str(&r.err), "SECRET9"));
	/* wget leaves an empty file behind: not a part worth resuming. */
	assert_false(exists(fx->incoming));
	run_release(&r);
	fx_mode(fx, "refused");
	pull(fx, "http://h/x", NULL, 10, STEP_PULL_CONNECT, &r);
	run_release(&r);
}

static void
test_header_needs_curl(void **state)
{
	struct fx *fx = *state;
	struct run r;

	fx_tools(fx, "wget");
	pull(fx, "http://h/x", "Authorization: Bearer t", 10, STEP_PULL_TOOL,
	     &r);
	assert_false(exists(path_of(fx, "bin/wget.args")));
	run_release(&r);
}

static void
test_no_tool_is_84(void **state)
{
	struct fx *fx = *state;
	struct run r;

	fx_tools(fx, "");
	pull(fx, "http://h/x", NULL, 10, STEP_PULL_TOOL, &r);
	assert_non_null(strstr(buf_str(&r.err), "no curl or wget"));
	run_release(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_curl_gets_url_and_header_on_stdin_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_partial_file_is_resumed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_complete_file_is_not_fetched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longer_file_starts_again,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_no_range_support_downloads_again, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_http_error_is_85_with_its_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_is_86, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_time_limit_is_87_and_keeps_the_part, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_other_bytes_are_77_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_messages_lose_query_and_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wget_without_curl, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_wget_http_error_and_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_needs_curl, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_tool_is_84, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
