/*
 * The step scripts of steps.h, built with an app path and values full of
 * shell metacharacters, then run for real with /bin/sh -c against a
 * temporary directory that plays the server (no SSH). Nothing they are
 * given may ever run as a command: no "pwned" file may appear.
 */

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
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
#include <utime.h>

#include <cmocka.h>

#include "artifact.h"
#include "buf.h"
#include "conf.h"
#include "manifest.h"
#include "layout.h"
#include "record.h"
#include "quote.h"
#include "steps.h"

/* Whether /tmp/pwned was there before we started (not ours to judge). */
static int pwned_before;

/* What the next script run gets on stdin (NULL: this test's own). */
static const char *run_stdin;

struct fx {
	char tmp[64];     /* the "server" */
	char app[512];    /* APP, with metacharacters in it */
	char marker[128]; /* a file a leaked substitution would create */
};

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- running a script as a server would: sh -c SCRIPT ---- */

struct run {
	struct buf out;
	struct buf err;
	int status; /* exit status, or 128 + signal */
	double secs;
};

static void
run_release(struct run *r)
{
	buf_release(&r->out);
	buf_release(&r->err);
}

static void
run_script(const struct fx *fx, const char *script, struct run *r)
{
	int po[2], pe[2];
	struct pollfd pfd[2];
	double t0 = now_mono();
	pid_t pid;
	int st, open_fds = 2;

	memset(r, 0, sizeof(*r));
	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	if (run_stdin != NULL) {
		char path[128];
		FILE *in;

		snprintf(path, sizeof(path), "%s/.stdin", fx->tmp);
		in = fopen(path, "w");
		assert_non_null(in);
		fputs(run_stdin, in);
		fclose(in);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (run_stdin != NULL) {
			char path[128];
			int fd;

			snprintf(path, sizeof(path), "%s/.stdin", fx->tmp);
			fd = open(path, O_RDONLY);
			if (fd < 0 || dup2(fd, 0) < 0)
				_exit(125);
			close(fd);
		}
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		if (chdir(fx->tmp) != 0)
			_exit(126);
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

/* Run the script and expect status; returns its stdout (borrowed by r). */
static const char *
run_expect(const struct fx *fx, const char *script, int status, struct run *r)
{
	run_script(fx, script, r);
	if (r->status != status)
		fail_msg("exit %d, expected %d; stderr: %s\nscript:\n%s",
			 r->status, status, buf_str(&r->err), script);
	return buf_str(&r->out);
}

/* Open a block whose stdin is input, as relflip sends a step its list. */
static void
fed(struct buf *cmd, const char *input)
{
	buf_adds(cmd, "printf '%s' ");
	sh_quote(cmd, input);
	buf_adds(cmd, " | {\n");
}

/* ---- files ---- */

static char *path_of(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *
path_of(const char *fmt, ...)
{
	static char bufs[4][1024];
	static int next;
	char *p = bufs[next++ % 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return p;
}

/* The whole file, or NULL when it cannot be read. Caller frees. */
static char *
slurp(const char *path)
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
	return buf_detach(&b, NULL);
}

static void
spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/*
 * Script that the step's own shell runs first, so that names holding $$
 * are the step's: in DIR, a link to TARGET named LINK, and a FIFO named
 * FIFO unless NULL.
 */
static void
plant(struct buf *cmd, const char *dir, const char *target, const char *link,
      const char *fifo)
{
	buf_adds(cmd, "cd ");
	sh_quote(cmd, dir);
	buf_adds(cmd, " && ln -s ");
	sh_quote(cmd, target);
	buf_addf(cmd, " %s", link);
	if (fifo != NULL)
		buf_addf(cmd, " && mkfifo %s", fifo);
	buf_adds(cmd, " || exit 99\n");
}

static void
assert_file(const char *path, const char *want)
{
	char *got = slurp(path);

	if (got == NULL)
		fail_msg("cannot read %s", path);
	assert_string_equal(got, want);
	free(got);
}

static int
is_link(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static int
is_dir(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Entries in a directory (not . and ..), -1 when it cannot be read. */
static int
entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
assert_link_to(const char *path, const char *want)
{
	char t[1024];
	ssize_t n;

	if (!is_link(path))
		fail_msg("%s is not a symlink", path);
	n = readlink(path, t, sizeof(t) - 1);
	assert_true(n > 0);
	t[n] = '\0';
	assert_string_equal(t, want);
}

static void sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh_ok(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

static void
sha256_hex(const char *path, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		EVP_DigestUpdate(ctx, chunk, (size_t)n);
	close(fd);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void
copy_file(const char *from, const char *to)
{
	char *s;
	int fd;
	size_t len;
	struct stat sb;

	assert_int_equal(stat(from, &sb), 0);
	s = slurp(from);
	assert_non_null(s);
	len = (size_t)sb.st_size;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, len), (ssize_t)len);
	close(fd);
	free(s);
}

/* ---- fixture ---- */

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/test-steps-XXXXXX");
	assert_non_null(mkdtemp(fx->tmp));
	snprintf(fx->marker, sizeof(fx->marker), "%s/pwned2", fx->tmp);
	/* Every kind of substitution and quote a shell knows. */
	snprintf(fx->app, sizeof(fx->app),
		 "%s/srv/it's $(touch /tmp/pwned) `touch %s` \"q\" & $HOME; "
		 "app",
		 fx->tmp, fx->marker);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	/* Nothing that was a value ever ran as a command. */
	if (!pwned_before)
		assert_false(exists("/tmp/pwned"));
	assert_false(exists(fx->marker));
	sh_ok("rm -rf '%s'", fx->tmp);
	free(fx);
	return 0;
}

static int
group_setup(void **state)
{
	(void)state;
	pwned_before = exists("/tmp/pwned");
	if (pwned_before)
		fprintf(stderr, "note: /tmp/pwned exists already; relying on "
				"this test's own marker files\n");
	return 0;
}

static const char *
lock_info(void)
{
	return "user=me@box\nrunner=box\npid=4242\nrun_url=\nrevision=r1\n"
	       "command=deploy\ntoken=TOKEN1\nnote=$(touch /tmp/pwned) it's\n";
}

/* Take the lock, which creates the layout. */
static void
make_layout(const struct fx *fx)
{
	struct buf cmd = BUF_INIT;
	struct run r;

	step_lock_script(&cmd, fx->app, lock_info());
	run_expect(fx, buf_str(&cmd), 0, &r);
	assert_true(strncmp(buf_str(&r.out), "locked=1\n", 9) == 0);
	run_release(&r);
	buf_release(&cmd);
}

/* ---- lock, renew, unlock ---- */

static void
test_lock_creates_layout_once(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT, unlock = BUF_INIT;
	struct layout_state st;
	struct run r;
	char *info;
	long long since;

	step_lock_script(&cmd, fx->app, lock_info());
	layout_probe_script(&cmd, fx->app, LAYOUT_RECORDS, NULL);

	run_expect(fx, buf_str(&cmd), 0, &r);
	assert_true(strncmp(buf_str(&r.out), "locked=1\n", 9) == 0);
	assert_true(is_dir(path_of("%s/releases", fx->app)));
	assert_true(is_dir(path_of("%s/shared", fx->app)));
	assert_true(is_dir(path_of("%s/.relflip/releases", fx->app)));
	assert_true(is_dir(path_of("%s/.relflip/incoming", fx->app)));
	assert_true(is_dir(path_of("%s/.relflip/lock", fx->app)));
	info = slurp(path_of("%s/.relflip/lock/info", fx->app));
	assert_non_null(info);
	assert_true(strncmp(info, lock_info(), strlen(lock_info())) == 0);
	assert_non_null(strstr(info, "\nsince="));
	since = strtoll(strstr(info, "\nsince=") + 7, NULL, 10);
	free(info);
	/*
	 * The probe after it sees the lock held, and does not read back the
	 * holder it has just written (two processes fewer on every run).
	 */
	layout_parse(buf_str(&r.out), &st);
	assert_int_equal(st.app_exists, 1);
	assert_int_equal(st.lock.held, 1);
	assert_null(strstr(buf_str(&r.out), "lock_user="));
	assert_true(since > 1700000000LL);
	/* One date(1) for both. */
	assert_int_equal(st.server_now, since);
	assert_int_equal(st.current, CURRENT_NONE);
	layout_state_release(&st);
	run_release(&r);

	/* The second time the lock is held: locked=0, the info untouched. */
	run_expect(fx, buf_str(&cmd), 0, &r);
	assert_true(strncmp(buf_str(&r.out), "locked=0\n", 9) == 0);
	info = slurp(path_of("%s/.relflip/lock/info", fx->app));
	assert_non_null(strstr(info, "token=TOKEN1\n"));
	free(info);
	run_release(&r);

	/* Someone else's token does not unlock it. */
	step_unlock_script(&unlock, fx->app, "OTHER", 0);
	run_expect(fx, buf_str(&unlock), 0, &r);
	run_release(&r);
	assert_true(is_dir(path_of("%s/.relflip/lock", fx->app)));
	/* Nor does a prefix of ours. */
	buf_reset(&unlock);
	step_unlock_script(&unlock, fx->app, "TOKEN", 0);
	run_expect(fx, buf_str(&unlock), 0, &r);
	run_release(&r);
	assert_true(is_dir(path_of("%s/.relflip/lock", fx->app)));

	/* Ours does. */
	buf_reset(&unlock);
	step_unlock_script(&unlock, fx->app, "TOKEN1", 0);
	run_expect(fx, buf_str(&unlock), 0, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/.relflip/lock", fx->app)));

	/* Locked again; --force removes anyone's. */
	run_expect(fx, buf_str(&cmd), 0, &r);
	assert_true(strncmp(buf_str(&r.out), "locked=1\n", 9) == 0);
	run_release(&r);
	buf_reset(&unlock);
	step_unlock_script(&unlock, fx->app, NULL, 1);
	run_expect(fx, buf_str(&unlock), 0, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/.relflip/lock", fx->app)));
	/* The layout stays. */
	assert_true(is_dir(path_of("%s/releases", fx->app)));

	buf_release(&cmd);
	buf_release(&unlock);
}

static void
test_lock_cannot_create_layout(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	struct run r;
	char app[600];

	/* The app path runs through a regular file. */
	spit(path_of("%s/file", fx->tmp), "x");
	snprintf(app, sizeof(app), "%s/file/it's app", fx->tmp);
	step_lock_script(&cmd, app, lock_info());
	run_expect(fx, buf_str(&cmd), STEP_LAYOUT, &r);
	assert_null(strstr(buf_str(&r.out), "locked=1"));
	run_release(&r);
	buf_release(&cmd);
}

static void
test_renew_writes_the_step_pid(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	struct stat sb;
	struct run r;
	char job[1024], *text;

	make_layout(fx);
	snprintf(job, sizeof(job), "%s/.relflip/lock/job", fx->app);
	step_renew(&cmd, fx->app);
	buf_adds(&cmd, "echo $$\n");
	run_expect(fx, buf_str(&cmd), 0, &r);
	/* The step's own pid: what unlock looks for, and its time. */
	text = slurp(job);
	assert_string_equal(text, buf_str(&r.out));
	free(text);
	run_release(&r);
	assert_int_equal(stat(job, &sb), 0);
	assert_true(sb.st_mtime > 1700000000);

	/* Without a lock, renewing makes none and the step still runs. */
	assert_int_equal(rename(path_of("%s/.relflip/lock", fx->app),
				path_of("%s/gone", fx->tmp)),
			 0);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/.relflip/lock", fx->app)));
	buf_release(&cmd);
}

/* ---- switch ---- */

struct watcher {
	const char *current;
	volatile int stop;
	long looks;
	long missing;
};

static void *
watch_current(void *p)
{
	struct watcher *w = p;
	char t[1024];

	while (!w->stop) {
		w->looks++;
		if (readlink(w->current, t, sizeof(t)) < 0)
			w->missing++;
	}
	return NULL;
}

static void
test_switch_is_atomic(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT, to1 = BUF_INIT, to2 = BUF_INIT;
	struct watcher w = { 0 };
	char current[1024];
	pthread_t tid;
	struct run r;
	int i;

	make_layout(fx);
	snprintf(current, sizeof(current), "%s/current", fx->app);
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	assert_int_equal(mkdir(path_of("%s/releases/r2", fx->app), 0755), 0);
	spit(path_of("%s/releases/r1/which", fx->app), "one");
	spit(path_of("%s/releases/r2/which", fx->app), "two");

	/* The first switch creates current. */
	step_switch_script(&to1, fx->app, "r1");
	assert_string_equal(run_expect(fx, buf_str(&to1), 0, &r),
			    "releases/r1\n");
	run_release(&r);
	assert_link_to(current, "releases/r1");
	assert_file(path_of("%s/current/which", fx->app), "one");

	/* Switch back and forth while another thread keeps reading it. */
	step_switch_script(&to2, fx->app, "r2");
	w.current = current;
	assert_int_equal(pthread_create(&tid, NULL, watch_current, &w), 0);
	for (i = 0; i < 20; i++) {
		run_expect(fx, buf_str(i % 2 == 0 ? &to2 : &to1), 0, &r);
		run_release(&r);
	}
	w.stop = 1;
	pthread_join(tid, NULL);
	assert_true(w.looks > 0);
	assert_int_equal(w.missing, 0);
	assert_link_to(current, "releases/r1");

	run_expect(fx, buf_str(&to2), 0, &r);
	run_release(&r);
	assert_link_to(current, "releases/r2");
	assert_file(path_of("%s/current/which", fx->app), "two");
	/* No temporary link is left next to it. */
	assert_false(exists(path_of("%s/.current.relflip-tmp", fx->app)));
	assert_int_equal(entries(fx->app),
			 4); /* releases shared .relflip current */

	/* NULL removes current; twice is harmless. */
	step_switch_script(&cmd, fx->app, NULL);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_false(exists(current));
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_true(is_dir(path_of("%s/releases/r2", fx->app)));

	buf_release(&cmd);
	buf_release(&to1);
	buf_release(&to2);
}

static void
test_switch_never_replaces_real_dir(void **state)
{
	struct fx *fx = *state;
	struct buf to1 = BUF_INIT, none = BUF_INIT;
	struct run r;

	make_layout(fx);
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	/* A current that is a real directory (set up by hand). */
	assert_int_equal(mkdir(path_of("%s/current", fx->app), 0755), 0);
	spit(path_of("%s/current/index.html", fx->app), "hand made");

	step_switch_script(&to1, fx->app, "r1");
	run_script(fx, buf_str(&to1), &r);
	assert_int_not_equal(r.status, 0);
	run_release(&r);
	assert_true(is_dir(path_of("%s/current", fx->app)));
	assert_file(path_of("%s/current/index.html", fx->app), "hand made");

	step_switch_script(&none, fx->app, NULL);
	run_expect(fx, buf_str(&none), 0, &r);
	run_release(&r);
	assert_file(path_of("%s/current/index.html", fx->app), "hand made");
	buf_release(&to1);
	buf_release(&none);
}

/* ---- unpack ---- */

/* A tarball of a small tree at tmp/NAME; its sha256 in hex. */
static void
make_tar(const struct fx *fx, const char *name, const char *tar_flags,
	 char hex[65])
{
	sh_ok("cd '%s' && rm -rf src && mkdir -p 'src/sub dir' && "
	      "printf 'hello\\n' > src/hello.txt && "
	      "printf 'quoted' > \"src/sub dir/it's \\$(x).txt\" && "
	      "tar -c%sf '%s' -C src .",
	      fx->tmp, tar_flags, name);
	sha256_hex(path_of("%s/%s", fx->tmp, name), hex);
}

/* The manifest validation approves for tmp/NAME, as text (the caller's). */
static char *
manifest_of(const struct fx *fx, const char *name)
{
	struct artifact_limits limits = ARTIFACT_LIMITS_DEFAULT;
	struct artifact_info info;
	struct manifest m = MANIFEST_INIT;
	struct rf_error err = RF_ERROR_INIT;
	struct buf text = BUF_INIT;

	assert_int_equal(artifact_manifest(path_of("%s/%s", fx->tmp, name),
					   &limits, &info, &m, &err),
			 0);
	manifest_format(&m, &text);
	manifest_release(&m);
	return buf_detach(&text, NULL);
}

/* Unpack tmp/NAME as release id; the script's status, the run in r. */
static int
unpack_as(const struct fx *fx, const char *name, const char *id,
	  const char *sha, const char *manifest, struct run *r)
{
	struct buf cmd = BUF_INIT;
	char json[128];

	snprintf(json, sizeof(json), "{\"id\": \"%s\", \"status\": \"staged\"}",
		 id);
	step_unpack_script(&cmd, fx->app, id, sha, "TOKEN1", json);
	run_stdin = manifest;
	run_script(fx, buf_str(&cmd), r);
	run_stdin = NULL;
	buf_release(&cmd);
	(void)name;
	return r->status;
}

/* Put tmp/NAME where the upload of id with checksum sha goes. */
static char *
place_upload(const struct fx *fx, const char *name, const char *id,
	     const char *sha)
{
	struct buf in = BUF_INIT;

	step_incoming_path(&in, fx->app, id, sha);
	copy_file(path_of("%s/%s", fx->tmp, name), buf_str(&in));
	return buf_detach(&in, NULL);
}

static void
test_unpack_verified(void **state)
{
	struct fx *fx = *state;
	char hex[65], line[96];
	char *in, *m, *kept;
	struct run r;
	struct stat st;

	make_layout(fx);
	make_tar(fx, "a.tar", "", hex);
	in = place_upload(fx, "a.tar", "r1", hex);
	/* The incoming name carries the id and 12 hex of the checksum. */
	assert_non_null(strstr(in, "/.relflip/incoming/r1."));
	assert_int_equal(strlen(strrchr(in, '/')), strlen("/r1.") + 12 + 4);

	m = manifest_of(fx, "a.tar");
	assert_int_equal(unpack_as(fx, "a.tar", "r1", hex, m, &r), 0);
	run_release(&r);
	assert_file(path_of("%s/releases/r1/hello.txt", fx->app), "hello\n");
	assert_file(path_of("%s/releases/r1/sub dir/it's $(x).txt", fx->app),
		    "quoted");
	/* Only the release is there: no temporary directory, no upload. */
	assert_int_equal(entries(path_of("%s/releases", fx->app)), 1);
	assert_int_equal(entries(path_of("%s/.relflip/incoming", fx->app)), 0);
	/* Its manifest and its record are kept beside it. */
	kept = slurp(path_of("%s/.relflip/releases/r1.manifest", fx->app));
	assert_string_equal(kept, m);
	assert_file(path_of("%s/.relflip/releases/r1.json", fx->app),
		    "{\"id\": \"r1\", \"status\": \"staged\"}\n");
	free(kept);
	/* And its snapshot: each file's inode and ctime as it was hashed. */
	assert_int_equal(
	    stat(path_of("%s/releases/r1/hello.txt", fx->app), &st), 0);
	kept = slurp(path_of("%s/.relflip/releases/r1.stat", fx->app));
	snprintf(line, sizeof(line), "%ju\t%jd.%09ld", (uintmax_t)st.st_ino,
		 (intmax_t)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	assert_non_null(strstr(kept, line));
	assert_non_null(strstr(strstr(kept, line), "\thello.txt\n"));
	free(kept);
	free(m);
	free(in);

	/* A gzipped tarball unpacks the same way. */
	make_tar(fx, "b.tar.gz", "z", hex);
	in = place_upload(fx, "b.tar.gz", "r2", hex);
	m = manifest_of(fx, "b.tar.gz");
	assert_int_equal(unpack_as(fx, "b.tar.gz", "r2", hex, m, &r), 0);
	run_release(&r);
	assert_file(path_of("%s/releases/r2/hello.txt", fx->app), "hello\n");
	assert_int_equal(entries(path_of("%s/releases", fx->app)), 2);
	free(m);
	free(in);
}

/*
 * The tree tar made differs from the approved one (here: the manifest of
 * another tarball): nothing gets the release's name, no record, and the
 * temporary tree is gone.
 */
static void
test_unpack_manifest_mismatch(void **state)
{
	struct fx *fx = *state;
	char hex[65], other[65];
	char *in, *m;
	struct run r;

	make_layout(fx);
	make_tar(fx, "a.tar", "", hex);
	sh_ok("cd '%s' && mkdir -p o && printf 'evil' > o/hello.txt && "
	      "tar -cf other.tar -C o .",
	      fx->tmp);
	sha256_hex(path_of("%s/other.tar", fx->tmp), other);
	m = manifest_of(fx, "other.tar");
	in = place_upload(fx, "a.tar", "r1", hex);
	assert_int_equal(unpack_as(fx, "a.tar", "r1", hex, m, &r),
			 STEP_MANIFEST);
	assert_non_null(strstr(buf_str(&r.err), "approved:"));
	run_release(&r);
	assert_int_equal(entries(path_of("%s/releases", fx->app)), 0);
	assert_false(exists(path_of("%s/.relflip/releases/r1.json", fx->app)));
	assert_false(
	    exists(path_of("%s/.relflip/releases/r1.manifest", fx->app)));
	assert_false(exists(path_of("%s/.relflip/releases/r1.stat", fx->app)));
	assert_int_equal(entries(path_of("%s/.relflip/incoming", fx->app)), 1);
	free(m);
	free(in);
}

static void
test_unpack_wrong_checksum(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	char hex[65], wrong[65];
	char *in;
	struct run r;

	make_layout(fx);
	make_tar(fx, "a.tar", "", hex);
	/* The same first 12 digits, so the file is found; the rest differs. */
	snprintf(wrong, sizeof(wrong), "%.12s%052d", hex, 0);
	assert_string_not_equal(wrong, hex);
	in = place_upload(fx, "a.tar", "r1", wrong);
	assert_int_equal(unpack_as(fx, "a.tar", "r1", wrong, "", &r),
			 STEP_CHECKSUM);
	/* The server says what it computed. */
	assert_non_null(strstr(buf_str(&r.err), hex));
	run_release(&r);
	assert_int_equal(entries(path_of("%s/releases", fx->app)), 0);
	/* The bad upload is not kept for a resume. */
	assert_false(exists(in));
	assert_int_equal(entries(path_of("%s/.relflip/incoming", fx->app)), 0);
	free(in);
	buf_release(&cmd);
}

static void
test_unpack_not_a_tar(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	char hex[65];
	char *in;
	struct run r;

	make_layout(fx);
	spit(path_of("%s/junk.tar", fx->tmp), "this is not a tarball\n");
	sha256_hex(path_of("%s/junk.tar", fx->tmp), hex);
	in = place_upload(fx, "junk.tar", "r1", hex);
	assert_int_equal(unpack_as(fx, "junk.tar", "r1", hex, "", &r),
			 STEP_UNPACK);
	run_release(&r);
	assert_int_equal(entries(path_of("%s/releases", fx->app)), 0);
	free(in);
	buf_release(&cmd);
}

static void
test_unpack_release_exists(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	char hex[65];
	char *in;
	struct run r;

	make_layout(fx);
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	spit(path_of("%s/releases/r1/keep", fx->app), "old");
	make_tar(fx, "a.tar", "", hex);
	in = place_upload(fx, "a.tar", "r1", hex);
	assert_int_equal(unpack_as(fx, "a.tar", "r1", hex, "", &r),
			 STEP_RENAME);
	run_release(&r);
	/* The release there is untouched; no temporary directory is left. */
	assert_file(path_of("%s/releases/r1/keep", fx->app), "old");
	assert_false(exists(path_of("%s/releases/r1/hello.txt", fx->app)));
	assert_int_equal(entries(path_of("%s/releases", fx->app)), 1);
	/* Nor is a link in its place replaced, or written through. */
	assert_int_equal(symlink("/tmp", path_of("%s/releases/r2", fx->app)),
			 0);
	free(in);
	in = place_upload(fx, "a.tar", "r2", hex);
	assert_int_equal(unpack_as(fx, "a.tar", "r2", hex, "", &r),
			 STEP_RENAME);
	run_release(&r);
	assert_link_to(path_of("%s/releases/r2", fx->app), "/tmp");
	assert_false(exists(path_of("%s/.relflip/releases/r2.json", fx->app)));
	free(in);
	buf_release(&cmd);
}

/* ---- link ---- */

static void
test_link_shared_and_record(void **state)
{
	struct fx *fx = *state;
	char d1[] = "uploads", d2[] = "log dir", d3[] = "public/system";
	char f1[] = ".env", f2[] = "config/it's $(x).yml";
	char *dirs[] = { d1, d2, d3 };
	char *files[] = { f1, f2 };
	struct conf conf;
	struct release_record rec, back;
	struct buf json = BUF_INIT, cmd = BUF_INIT;
	const char *p;
	char *text;
	struct run r;
	size_t i;
	int pass;

	make_layout(fx);
	memset(&conf, 0, sizeof(conf));
	conf.app_path = fx->app;
	conf.shared_dirs.v = dirs;
	conf.shared_dirs.n = 3;
	conf.shared_files.v = files;
	conf.shared_files.n = 2;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "r1");
	rec.status = RS_STAGED;
	snprintf(rec.ref, sizeof(rec.ref), "refs/heads/it's \"$(x)\"\n%%s");
	rec.created = 1767225600;
	record_format(&rec, &json);

	/* The release ships a log dir of its own, which shared/ replaces. */
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	assert_int_equal(
	    mkdir(path_of("%s/releases/r1/log dir", fx->app), 0755), 0);
	spit(path_of("%s/releases/r1/log dir/old.log", fx->app), "old");
	/* Shared files are there already, and keep their content. */
	spit(path_of("%s/shared/.env", fx->app), "SECRET=1\n");
	assert_int_equal(mkdir(path_of("%s/shared/config", fx->app), 0755), 0);
	spit(path_of("%s/shared/config/it's $(x).yml", fx->app), "");

	step_link_script(&cmd, &conf, "r1", buf_str(&json));
	for (pass = 0; pass < 2; pass++) {
		/* Twice: the second run (a retry) changes nothing. */
		run_expect(fx, buf_str(&cmd), 0, &r);
		run_release(&r);
		for (i = 0; i < 3; i++) {
			assert_link_to(
			    path_of("%s/releases/r1/%s", fx->app, dirs[i]),
			    path_of("%s/shared/%s", fx->app, dirs[i]));
			assert_true(
			    is_dir(path_of("%s/shared/%s", fx->app, dirs[i])));
		}
		for (i = 0; i < 2; i++) {
			struct stat sb;

			assert_link_to(
			    path_of("%s/releases/r1/%s", fx->app, files[i]),
			    path_of("%s/shared/%s", fx->app, files[i]));
			assert_int_equal(
			    lstat(path_of("%s/shared/%s", fx->app, files[i]),
				  &sb),
			    0);
			assert_true(S_ISREG(sb.st_mode));
		}
		assert_file(path_of("%s/shared/.env", fx->app), "SECRET=1\n");
		assert_file(path_of("%s/releases/r1/.env", fx->app),
			    "SECRET=1\n");
		assert_file(path_of("%s/shared/config/it's $(x).yml", fx->app),
			    "");
		assert_false(
		    exists(path_of("%s/shared/log dir/old.log", fx->app)));
		assert_file(path_of("%s/releases/r1/REVISION", fx->app),
			    "r1\n");
		text = slurp(path_of("%s/releases/r1/DEPLOYED_AT", fx->app));
		assert_non_null(text);
		assert_int_equal(strlen(text), 21);
		assert_true(text[4] == '-' && text[10] == 'T' &&
			    text[19] == 'Z' && text[20] == '\n');
		free(text);
		/* The staged record, exactly the JSON given, one line. */
		text = slurp(path_of("%s/.relflip/releases/r1.json", fx->app));
		assert_non_null(text);
		p = buf_str(&json);
		assert_int_equal(strlen(text), strlen(p) + 1);
		assert_memory_equal(text, p, strlen(p));
		assert_int_equal(record_parse(text, &back), 0);
		assert_string_equal(back.ref, rec.ref);
		assert_int_equal(back.status, RS_STAGED);
		free(text);
		/* Nothing temporary is left beside the record. */
		assert_int_equal(
		    entries(path_of("%s/.relflip/releases", fx->app)), 1);
	}
	buf_release(&json);
	buf_release(&cmd);
}

/*
 * An artifact's own links never carry relflip's writes out of the
 * release: REVISION replaces a link there, a shared path below a link is
 * refused, and a missing shared file is an error, never created empty.
 */
static void
test_link_never_writes_through_links(void **state)
{
	struct fx *fx = *state;
	char d1[] = "conf/uploads", f1[] = ".env";
	char *dirs[] = { d1 }, *files[] = { f1 };
	struct conf conf;
	struct buf cmd = BUF_INIT;
	struct run r;

	make_layout(fx);
	memset(&conf, 0, sizeof(conf));
	conf.app_path = fx->app;
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	assert_int_equal(mkdir(path_of("%s/outside", fx->tmp), 0755), 0);
	spit(path_of("%s/outside/victim", fx->tmp), "precious");
	assert_int_equal(symlink(path_of("%s/outside/victim", fx->tmp),
				 path_of("%s/releases/r1/REVISION", fx->app)),
			 0);

	step_link_script(&cmd, &conf, "r1", "{}");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_file(path_of("%s/outside/victim", fx->tmp), "precious");
	assert_file(path_of("%s/releases/r1/REVISION", fx->app), "r1\n");

	/*
	 * The names the new REVISION and DEPLOYED_AT are written under
	 * (named by the step's pid), planted first as a link out and a FIFO
	 * by the same shell: replaced, never opened.
	 */
	buf_reset(&cmd);
	plant(&cmd, path_of("%s/releases/r1", fx->app),
	      path_of("%s/outside/victim", fx->tmp), ".relflip-$$.REVISION",
	      ".relflip-$$.DEPLOYED_AT");
	step_link_script(&cmd, &conf, "r1", "{}");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_file(path_of("%s/outside/victim", fx->tmp), "precious");
	assert_file(path_of("%s/releases/r1/REVISION", fx->app), "r1\n");
	assert_int_equal(entries(path_of("%s/releases/r1", fx->app)), 2);

	/* A parent of a shared path that is a link: refused, nothing moves. */
	assert_int_equal(symlink(path_of("%s/outside", fx->tmp),
				 path_of("%s/releases/r1/conf", fx->app)),
			 0);
	spit(path_of("%s/outside/uploads", fx->tmp), "keep me");
	conf.shared_dirs.v = dirs;
	conf.shared_dirs.n = 1;
	buf_reset(&cmd);
	step_link_script(&cmd, &conf, "r1", "{}");
	run_expect(fx, buf_str(&cmd), STEP_LINK, &r);
	assert_non_null(strstr(buf_str(&r.err), "symbolic link"));
	run_release(&r);
	assert_file(path_of("%s/outside/uploads", fx->tmp), "keep me");

	/* A missing shared file stops the link; it is not made up. */
	conf.shared_dirs.n = 0;
	conf.shared_files.v = files;
	conf.shared_files.n = 1;
	buf_reset(&cmd);
	step_link_script(&cmd, &conf, "r1", "{}");
	run_expect(fx, buf_str(&cmd), STEP_SHARED_MISSING, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/shared/.env", fx->app)));
	buf_release(&cmd);
}

static ino_t
inode(const char *path)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_ino;
}

/*
 * What already holds the right text is left as it is: a REVISION that
 * says exactly the id (as `relflip pack --revision` writes it) and a
 * record that already says this. Anything else is replaced: another id,
 * a second line, another record.
 */
/* The link step for r1 with record json, which must succeed. */
static void
link_ok(struct fx *fx, const struct conf *conf, const char *json)
{
	struct buf cmd = BUF_INIT;
	struct run r;

	step_link_script(&cmd, conf, "r1", json);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	buf_release(&cmd);
}

static void
test_link_leaves_what_is_already_right(void **state)
{
	struct fx *fx = *state;
	struct conf conf;
	char rev[1024], rec[1024];
	ino_t ino;

	make_layout(fx);
	memset(&conf, 0, sizeof(conf));
	conf.app_path = fx->app;
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	/* Copies: path_of's buffers are reused. */
	snprintf(rev, sizeof(rev), "%s/releases/r1/REVISION", fx->app);
	snprintf(rec, sizeof(rec), "%s/.relflip/releases/r1.json", fx->app);

	/* A new release: both written in place, nothing left aside. */
	link_ok(fx, &conf, "{\"id\": \"r1\"}");
	assert_file(rev, "r1\n");
	assert_file(rec, "{\"id\": \"r1\"}\n");
	assert_int_equal(entries(path_of("%s/releases/r1", fx->app)), 2);

	/* Linked again: REVISION and the record are the same files. */
	ino = inode(rev);
	link_ok(fx, &conf, "{\"id\": \"r1\"}");
	assert_true(inode(rev) == ino);
	assert_file(rev, "r1\n");
	ino = inode(rec);
	link_ok(fx, &conf, "{\"id\": \"r1\", \"x\": 1}");
	assert_true(inode(rec) != ino);
	assert_file(rec, "{\"id\": \"r1\", \"x\": 1}\n");

	/* Another id, or more than the id: replaced by exactly the id. */
	spit(rev, "r0\n");
	link_ok(fx, &conf, "{}");
	assert_file(rev, "r1\n");
	spit(rev, "r1\nr2\n");
	link_ok(fx, &conf, "{}");
	assert_file(rev, "r1\n");
	assert_int_equal(entries(path_of("%s/releases/r1", fx->app)), 2);
}

/* A record that cannot be written is an error, and leaves nothing. */
static void
test_record_write_failure(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	struct run r;

	make_layout(fx);
	assert_int_equal(rmdir(path_of("%s/.relflip/releases", fx->app)), 0);
	spit(path_of("%s/.relflip/releases", fx->app), "not a directory");
	step_write_record(&cmd, fx->app, "r1", "{}");
	run_expect(fx, buf_str(&cmd), STEP_RECORD, &r);
	assert_non_null(strstr(buf_str(&r.err), "cannot write the record"));
	run_release(&r);
	assert_int_equal(entries(path_of("%s/.relflip", fx->app)), 3);
	buf_release(&cmd);
}

/* ---- hooks ---- */

static char *
env_value(const char *env_text, const char *name)
{
	struct buf key = BUF_INIT;
	const char *p;
	char *v;
	size_t n;

	buf_addf(&key, "%s=", name);
	p = strstr(env_text, buf_str(&key));
	/* The key must start a line. */
	while (p != NULL && p != env_text && p[-1] != '\n')
		p = strstr(p + 1, buf_str(&key));
	if (p == NULL) {
		buf_release(&key);
		return NULL;
	}
	p += key.len;
	n = strcspn(p, "\n");
	v = strndup(p, n);
	buf_release(&key);
	return v;
}

static void
assert_env(const char *env_text, const char *name, const char *want)
{
	char *v = env_value(env_text, name);

	if (v == NULL)
		fail_msg("%s is not in the hook's environment", name);
	assert_string_equal(v, want);
	free(v);
}

static void
test_hook_env_and_quoting(void **state)
{
	struct fx *fx = *state;
	struct step_env env = {
		.app = fx->app,
		.release = "r1",
		.previous = "r0",
		.host = "web'1 $(touch /tmp/pwned)",
	};
	struct buf cmd = BUF_INIT;
	char dir[1024];
	char *text;
	struct run r;

	make_layout(fx);
	snprintf(dir, sizeof(dir), "%s/releases/r1", fx->app);
	assert_int_equal(mkdir(dir, 0755), 0);

	step_hook_script(&cmd, dir, &env, "env > out.txt");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	text = slurp(path_of("%s/releases/r1/out.txt", fx->app));
	assert_non_null(text);
	assert_env(text, "RELFLIP_RELEASE_PATH", dir);
	assert_env(text, "RELFLIP_REVISION", "r1");
	assert_env(text, "RELFLIP_APP_PATH", fx->app);
	assert_env(text, "RELFLIP_HOST", "web'1 $(touch /tmp/pwned)");
	assert_env(text, "RELFLIP_PREVIOUS_REVISION", "r0");
	free(text);

	/* Hook text with quotes of both kinds, run in the release. */
	buf_reset(&cmd);
	step_hook_script(&cmd, dir, &env,
			 "printf '%s|%s|%s\\n' \"it's \\\"q\\\"\" "
			 "\"$RELFLIP_REVISION\" \"$(basename \"$PWD\")\" "
			 "> q.txt");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_file(path_of("%s/q.txt", dir), "it's \"q\"|r1|r1\n");

	/* No previous release: the variable is there, empty. */
	env.previous = NULL;
	buf_reset(&cmd);
	step_hook_script(&cmd, dir, &env, "env > out2.txt");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	text = slurp(path_of("%s/out2.txt", dir));
	assert_env(text, "RELFLIP_PREVIOUS_REVISION", "");
	free(text);

	/* Its status and both streams come back. */
	buf_reset(&cmd);
	step_hook_script(&cmd, dir, &env, "echo out; echo err >&2; exit 3");
	run_expect(fx, buf_str(&cmd), 3, &r);
	assert_string_equal(buf_str(&r.out), "out\n");
	assert_string_equal(buf_str(&r.err), "err\n");
	run_release(&r);

	/* A directory that is not there fails; nothing runs elsewhere. */
	buf_reset(&cmd);
	step_hook_script(&cmd, path_of("%s/releases/nope", fx->app), &env,
			 "touch ran-here");
	run_script(fx, buf_str(&cmd), &r);
	assert_int_not_equal(r.status, 0);
	run_release(&r);
	assert_false(exists(path_of("%s/ran-here", fx->tmp)));
	buf_release(&cmd);
}

/*
 * A failed hook's hint says how to run it again by hand: that line, run
 * in a shell, gives the hook the directory and the variables relflip did.
 */
static void
test_hook_repro_runs_like_the_hook(void **state)
{
	struct fx *fx = *state;
	struct step_env env = {
		.app = fx->app,
		.release = "r1",
		.previous = "r0",
		.host = "web'1 $(touch /tmp/pwned)",
	};
	struct buf cmd = BUF_INIT;
	char dir[1024];
	char *ran, *again;
	struct run r;

	make_layout(fx);
	snprintf(dir, sizeof(dir), "%s/releases/r1", fx->app);
	assert_int_equal(mkdir(dir, 0755), 0);
	step_hook_script(&cmd, dir, &env, "env | grep ^RELFLIP_ | sort > a");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	buf_reset(&cmd);
	step_hook_repro(&cmd, dir, &env, "env | grep ^RELFLIP_ | sort > b");
	assert_null(strchr(buf_str(&cmd), '\n'));
	assert_true(strncmp(buf_str(&cmd), "cd '", 4) == 0);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	ran = slurp(path_of("%s/a", dir));
	again = slurp(path_of("%s/b", dir));
	assert_non_null(ran);
	assert_non_null(again);
	assert_string_equal(ran, again);
	free(ran);
	free(again);

	/* No previous release: the variable is left out, not shown empty. */
	env.previous = "";
	buf_reset(&cmd);
	step_hook_repro(&cmd, dir, &env, "true");
	assert_null(strstr(buf_str(&cmd), "PREVIOUS"));
	buf_release(&cmd);
}

/* ---- records, log, removal ---- */

static void
test_write_record_and_log(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT;
	const char *one =
	    "{\"id\": \"r1\", \"ref\": \"it's $(touch /tmp/pwned) "
	    "%s \\\\n `x`\"}";
	const char *two = "{\"id\": \"r1\", \"status\": \"good\"}";
	struct run r;
	char want[512];

	make_layout(fx);
	step_write_record(&cmd, fx->app, "r1", one);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	snprintf(want, sizeof(want), "%s\n", one);
	assert_file(path_of("%s/.relflip/releases/r1.json", fx->app), want);

	/* Rewritten whole, through a temporary file that does not stay. */
	buf_reset(&cmd);
	step_write_record(&cmd, fx->app, "r1", two);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	snprintf(want, sizeof(want), "%s\n", two);
	assert_file(path_of("%s/.relflip/releases/r1.json", fx->app), want);
	assert_int_equal(entries(path_of("%s/.relflip/releases", fx->app)), 1);

	/*
	 * The temporary name (the step's pid in it) held by a link out, as
	 * a killed step or a planter could leave it: replaced, not written
	 * through.
	 */
	assert_int_equal(mkdir(path_of("%s/outside", fx->tmp), 0755), 0);
	spit(path_of("%s/outside/victim", fx->tmp), "precious");
	buf_reset(&cmd);
	plant(&cmd, path_of("%s/.relflip/releases", fx->app),
	      path_of("%s/outside/victim", fx->tmp), ".r1.relflip-$$-F", NULL);
	step_write_record(&cmd, fx->app, "r1", one);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_file(path_of("%s/outside/victim", fx->tmp), "precious");
	snprintf(want, sizeof(want), "%s\n", one);
	assert_file(path_of("%s/.relflip/releases/r1.json", fx->app), want);
	assert_int_equal(entries(path_of("%s/.relflip/releases", fx->app)), 1);

	/* The log is appended to, never rewritten. */
	buf_reset(&cmd);
	step_append_log(&cmd, fx->app, one);
	step_append_log(&cmd, fx->app, two);
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	snprintf(want, sizeof(want), "%s\n%s\n", one, two);
	assert_file(path_of("%s/.relflip/log.jsonl", fx->app), want);
	buf_reset(&cmd);
	step_append_log(&cmd, fx->app, "{}");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	snprintf(want, sizeof(want), "%s\n%s\n{}\n", one, two);
	assert_file(path_of("%s/.relflip/log.jsonl", fx->app), want);
	buf_release(&cmd);
}

static void
test_remove_release(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT, list = BUF_INIT;
	struct run r;

	make_layout(fx);
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	assert_int_equal(mkdir(path_of("%s/releases/r1/deep", fx->app), 0755),
			 0);
	spit(path_of("%s/releases/r1/deep/f", fx->app), "x");
	assert_int_equal(mkdir(path_of("%s/releases/r2", fx->app), 0755), 0);
	spit(path_of("%s/.relflip/releases/r1.json", fx->app), "{}\n");
	spit(path_of("%s/.relflip/releases/r2.json", fx->app), "{}\n");

	/* The list arrives on stdin, as relflip sends it. */
	step_list_release(&list, "r1");
	fed(&cmd, buf_str(&list));
	step_remove_listed(&cmd, fx->app, 1);
	buf_adds(&cmd, "}\n");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/releases/r1", fx->app)));
	assert_false(exists(path_of("%s/.relflip/releases/r1.json", fx->app)));
	assert_true(is_dir(path_of("%s/releases/r2", fx->app)));
	assert_true(exists(path_of("%s/.relflip/releases/r2.json", fx->app)));

	/* Gone already: still fine. */
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	buf_release(&cmd);
	buf_release(&list);
}

/*
 * The deploy's prune: the listed paths leave their places at once, two of
 * the same name included, a missing one is skipped, the rest stays; the
 * detached rm then empties trash/ (polled, bounded: it is not waited for).
 */
static void
test_discard_release(void **state)
{
	struct fx *fx = *state;
	struct buf cmd = BUF_INIT, list = BUF_INIT;
	const char *trash;
	struct run r;
	int i;

	make_layout(fx);
	assert_int_equal(mkdir(path_of("%s/releases/r1", fx->app), 0755), 0);
	spit(path_of("%s/releases/r1/f", fx->app), "x");
	assert_int_equal(mkdir(path_of("%s/releases/r2", fx->app), 0755), 0);
	spit(path_of("%s/.relflip/releases/r1.json", fx->app), "{}\n");
	spit(path_of("%s/.relflip/releases/r2.json", fx->app), "{}\n");
	assert_int_equal(mkdir(path_of("%s/.relflip/trash", fx->app), 0755), 0);
	assert_int_equal(mkdir(path_of("%s/.relflip/trash/r1", fx->app), 0755),
			 0);

	/* The list on stdin, as relflip sends it: r1 twice by its name. */
	step_list_release(&list, "r1");
	buf_adds(&list, ".relflip/trash/r1\n");
	fed(&cmd, buf_str(&list));
	step_discard_listed(&cmd, fx->app, "TOKEN");
	buf_adds(&cmd, "}\n");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/releases/r1", fx->app)));
	assert_false(exists(path_of("%s/.relflip/releases/r1.json", fx->app)));
	assert_false(exists(path_of("%s/.relflip/trash/r1", fx->app)));
	assert_true(is_dir(path_of("%s/releases/r2", fx->app)));
	assert_true(exists(path_of("%s/.relflip/releases/r2.json", fx->app)));
	trash = path_of("%s/.relflip/trash/TOKEN", fx->app);
	for (i = 0; i < 500 && exists(trash); i++)
		usleep(10000);
	assert_false(exists(trash));

	/* An empty list makes no trash directory. */
	buf_reset(&cmd);
	buf_adds(&cmd, "printf '' | {\n");
	step_discard_listed(&cmd, fx->app, "TOKEN2");
	buf_adds(&cmd, "}\n");
	run_expect(fx, buf_str(&cmd), 0, &r);
	run_release(&r);
	assert_false(exists(path_of("%s/.relflip/trash/TOKEN2", fx->app)));
	buf_release(&cmd);
	buf_release(&list);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lock_creates_layout_once,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_cannot_create_layout,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_renew_writes_the_step_pid,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_switch_is_atomic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_switch_never_replaces_real_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_verified, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unpack_manifest_mismatch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_wrong_checksum,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpack_not_a_tar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unpack_release_exists,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_shared_and_record,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_env_and_quoting,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hook_repro_runs_like_the_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_link_never_writes_through_links, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_link_leaves_what_is_already_right, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_write_failure,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_record_and_log,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_release, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_discard_release, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
