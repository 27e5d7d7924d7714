/*
 * Commands on the runner (runner.h): stdin handed over, variables added
 * or replaced, output split into lines on both streams, exit statuses and
 * signals, and the time limit ending the command's whole process group.
 */

#include <setjmp.h>
#include <signal.h>
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
#include "out.h"
#include "runner.h"

/*
 * Stderr's lines, apart from stdout's: the two pipes are read in turn, so
 * only the order within each is known.
 */
static struct buf errlines = BUF_INIT;

/* Every line, "1:" or "2:" first for the stream, one a line. */
static void
collect(void *arg, int is_stderr, const char *line)
{
	struct buf *b = is_stderr ? &errlines : arg;

	buf_addf(b, "%d:%s\n", is_stderr ? 2 : 1, line);
}

static int
run(const char *command, const char *input, const char *const *env,
    double timeout, struct buf *lines, struct runner_result *res)
{
	struct runner_cmd c = {
		.command = command,
		.env = env,
		.input = input,
		.timeout = timeout,
		.on_line = collect,
		.arg = lines,
	};
	struct rf_error err = RF_ERROR_INIT;

	return runner_exec(&c, res, &err);
}

static void
test_stdin_env_and_lines(void **state)
{
	const char *env[] = { "RELFLIP_RESULT=ok", "HOME=/nowhere", NULL };
	struct buf lines = BUF_INIT;
	struct runner_result res;

	(void)state;
	setenv("RELFLIP_TEST_KEPT", "kept", 1);
	assert_int_equal(run("cat; echo \"$RELFLIP_RESULT $HOME "
			     "$RELFLIP_TEST_KEPT\"; echo oops >&2; echo; "
			     "printf 'no newline'",
			     "{\"event\": \"result\"}\n", env, 10, &lines,
			     &res),
			 0);
	assert_int_equal(res.status, 0);
	assert_false(res.timed_out);
	assert_string_equal(buf_str(&lines), "1:{\"event\": \"result\"}\n"
					     "1:ok /nowhere kept\n"
					     "1:\n"
					     "1:no newline\n");
	assert_string_equal(buf_str(&errlines), "2:oops\n");
	buf_release(&errlines);
	buf_release(&lines);
}

static void
test_status_and_signal(void **state)
{
	struct buf lines = BUF_INIT;
	struct runner_result res;

	(void)state;
	assert_int_equal(run("exit 3", NULL, NULL, 10, &lines, &res), 0);
	assert_int_equal(res.status, 3);
	assert_int_equal(res.signal, 0);
	assert_int_equal(run("kill -KILL $$", NULL, NULL, 10, &lines, &res), 0);
	assert_int_equal(res.signal, SIGKILL);
	assert_int_equal(res.status, 128 + SIGKILL);
	assert_int_equal(run("exit 0", NULL, NULL, 10, &lines, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(lines.len, 0);
	buf_release(&lines);
}

static void
test_input_not_read(void **state)
{
	struct buf lines = BUF_INIT, big = BUF_INIT;
	struct runner_result res;
	size_t i;

	(void)state;
	/* More than a pipe holds, to a command that never reads it. */
	for (i = 0; i < 300000; i++)
		buf_addch(&big, 'x');
	assert_int_equal(
	    run("echo done", buf_str(&big), NULL, 10, &lines, &res), 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(buf_str(&lines), "1:done\n");
	buf_release(&lines);
	buf_release(&big);
}

static void
test_long_lines_are_cut(void **state)
{
	struct buf lines = BUF_INIT, cmd = BUF_INIT;
	struct runner_result res;
	const char *nl;

	(void)state;
	buf_addf(&cmd, "head -c %d /dev/zero | tr '\\0' a; echo; echo next",
		 RUNNER_LINE_MAX + 10);
	assert_int_equal(run(buf_str(&cmd), NULL, NULL, 10, &lines, &res), 0);
	/* A full piece, the rest, then the next line: no empty line. */
	nl = strchr(buf_str(&lines), '\n');
	assert_non_null(nl);
	assert_int_equal(nl - buf_str(&lines), 2 + RUNNER_LINE_MAX);
	assert_string_equal(nl + 1, "1:aaaaaaaaaa\n1:next\n");
	buf_release(&lines);
	buf_release(&cmd);

	/* A line of exactly the maximum gives no empty line after it. */
	buf_addf(&cmd, "head -c %d /dev/zero | tr '\\0' b; echo; echo next",
		 RUNNER_LINE_MAX);
	assert_int_equal(run(buf_str(&cmd), NULL, NULL, 10, &lines, &res), 0);
	nl = strchr(buf_str(&lines), '\n');
	assert_non_null(nl);
	assert_string_equal(nl + 1, "1:next\n");
	buf_release(&lines);
	buf_release(&cmd);
}

/* Is the pid in file running (alive and not a zombie)? -1: unknown. */
static int
pid_in_file_alive(const char *file)
{
	char path[64], stat[512], *state;
	FILE *fp = fopen(file, "r");
	long pid = 0;
	size_t n;
	int got;

	if (fp == NULL)
		return -1;
	got = fscanf(fp, "%ld", &pid);
	fclose(fp);
	if (got != 1 || pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	n = fread(stat, 1, sizeof(stat) - 1, fp);
	fclose(fp);
	stat[n] = '\0';
	state = strrchr(stat, ')');
	return state != NULL && state[1] == ' ' && state[2] != 'Z';
}

static void
test_time_limit_ends_the_group(void **state)
{
	struct buf lines = BUF_INIT, cmd = BUF_INIT;
	struct runner_result res;
	char pidfile[] = "/tmp/relflip-runner.XXXXXX";
	long long t0;
	int fd, i, alive = 1;

	(void)state;
	fd = mkstemp(pidfile);
	assert_true(fd >= 0);
	close(fd);
	/* A background child in the group, then a wait that never ends. */
	buf_addf(&cmd, "sleep 60 & echo $! > '%s'; echo started; wait",
		 pidfile);
	t0 = out_now_ms();
	assert_int_equal(run(buf_str(&cmd), NULL, NULL, 0.4, &lines, &res), 0);
	assert_true(res.timed_out);
	assert_true(res.status != 0);
	assert_true(out_now_ms() - t0 < 3000);
	assert_string_equal(buf_str(&lines), "1:started\n");
	/* The background sleep got the TERM too (reaped by init: poll). */
	for (i = 0; i < 100 && alive; i++) {
		alive = pid_in_file_alive(pidfile) == 1;
		if (alive)
			usleep(20000);
	}
	assert_false(alive);
	unlink(pidfile);
	buf_release(&lines);
	buf_release(&cmd);
}

static void
test_ignoring_term_gets_kill(void **state)
{
	struct buf lines = BUF_INIT;
	struct runner_result res;
	long long t0 = out_now_ms();

	(void)state;
	assert_int_equal(run("trap '' TERM; echo ready; while :; do sleep 1; "
			     "done",
			     NULL, NULL, 0.3, &lines, &res),
			 0);
	assert_true(res.timed_out);
	assert_int_equal(res.signal, SIGKILL);
	/* 0.3 s, then 2 s of grace, then KILL. */
	assert_true(out_now_ms() - t0 < 4000);
	buf_release(&lines);
}

static void
test_interrupted_ends_it(void **state)
{
	struct buf lines = BUF_INIT;
	struct runner_result res;
	long long t0 = out_now_ms();

	(void)state;
	interrupted = 1;
	assert_int_equal(run("sleep 30", NULL, NULL, 0, &lines, &res), 0);
	interrupted = 0;
	assert_true(res.interrupted);
	assert_false(res.timed_out);
	assert_true(out_now_ms() - t0 < 2000);
	buf_release(&lines);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdin_env_and_lines),
		cmocka_unit_test(test_status_and_signal),
		cmocka_unit_test(test_input_not_read),
		cmocka_unit_test(test_long_lines_are_cut),
		cmocka_unit_test(test_time_limit_ends_the_group),
		cmocka_unit_test(test_ignoring_term_gets_kill),
		cmocka_unit_test(test_interrupted_ends_it),
	};

	/* As relflip runs: SIGPIPE ignored (the child must not inherit it). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
