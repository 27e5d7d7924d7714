/*
 * The agent (src/agent.c) run for real: its shell script under /bin/sh on
 * this machine, behind a transport whose stream is a child process with
 * pipes, as sshd gives a command. What is tested is what the server does:
 * replies framed by the marker, time limits, and the step's whole process
 * group ended when the channel closes.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#include "agent.h"
#include "buf.h"
#include "quote.h"
#include "remote.h"
#include "xmalloc.h"

/* ---- a local transport: sh -c CMD with three pipes ---- */

struct local_stream {
	pid_t pid;
	int in, out, err; /* -1 once closed */
};

struct local {
	struct remote remote;
	int opens;
	size_t written; /* bytes relflip wrote to the agent's stdin */
	struct local_stream *last;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
local_open(void *impl, const char *cmd, void **out, struct rf_error *err)
{
	struct local *l = impl;
	struct local_stream *st = xcalloc(1, sizeof(*st));
	int pin[2], pout[2], perr[2];

	(void)err;
	assert_int_equal(pipe(pin), 0);
	assert_int_equal(pipe(pout), 0);
	assert_int_equal(pipe(perr), 0);
	st->pid = fork();
	assert_true(st->pid >= 0);
	if (st->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		close(pin[0]);
		close(pin[1]);
		close(pout[0]);
		close(pout[1]);
		close(perr[0]);
		close(perr[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	st->in = pin[1];
	st->out = pout[0];
	st->err = perr[0];
	fcntl(st->in, F_SETFL, O_NONBLOCK);
	l->opens++;
	l->last = st;
	*out = st;
	return 0;
}

static int
local_io(void *impl, void *stream, const struct stream_request *req,
	 struct stream_result *res, struct rf_error *err)
{
	struct local *l = impl;
	struct local_stream *st = stream;
	const char *data = req->data;
	size_t off = 0;
	long long deadline = req->timeout > 0
				 ? mono_ms() + (long long)(req->timeout * 1000)
				 : -1;
	char buf[4096];

	int armed = !interrupted;

		memset(res, 0, sizeof(*res));
	for (;;) {
		struct pollfd p[3];
		int n = 0, i, left = 100;

		if (res->done || (st->out < 0 && st->err < 0)) {
			res->closed = st->out < 0 && st->err < 0;
			return 0;
		}
		if (armed && interrupted)
			return rf_error_set(err, RF_EXIT_INTERRUPTED, NULL,
					    "interrupted");
		if (deadline >= 0 && mono_ms() >= deadline) {
			res->timed_out = 1;
			return 0;
		}
		if (st->in >= 0 && off == req->len && req->eof) {
			close(st->in);
			st->in = -1;
		}
		if (st->in >= 0 && off < req->len) {
			p[n].fd = st->in;
			p[n++].events = POLLOUT;
		}
		if (st->out >= 0) {
			p[n].fd = st->out;
			p[n++].events = POLLIN;
		}
		if (st->err >= 0) {
			p[n].fd = st->err;
			p[n++].events = POLLIN;
		}
		poll(p, (nfds_t)n, left);
		for (i = 0; i < n; i++) {
			ssize_t k;

			if (p[i].revents == 0)
				continue;
			if (p[i].fd == st->in) {
				k = write(st->in, data + off, req->len - off);
				if (k > 0) {
					off += (size_t)k;
					l->written += (size_t)k;
				}
				continue;
			}
			k = read(p[i].fd, buf, sizeof(buf));
			if (k <= 0) {
				if (p[i].fd == st->out) {
					close(st->out);
					st->out = -1;
				} else {
					close(st->err);
					st->err = -1;
				}
				continue;
			}
			if (req->on_data(req->arg, p[i].fd == st->err, buf,
					 (size_t)k))
				res->done = 1;
		}
	}
}

static void
local_close_stream(void *impl, void *stream)
{
	struct local_stream *st = stream;

	(void)impl;
	if (st->in >= 0)
		close(st->in);
	if (st->out >= 0)
		close(st->out);
	if (st->err >= 0)
		close(st->err);
	/* The agent exits on EOF; reap it within a bound. */
	{
		long long end = mono_ms() + 10000;

		while (waitpid(st->pid, NULL, WNOHANG) == 0 &&
		       mono_ms() < end)
			usleep(10000);
	}
	free(st);
}

static void
local_close(void *impl)
{
	(void)impl;
}

static const struct remote_ops local_ops = {
	.stream_open = local_open,
	.stream_io = local_io,
	.stream_close = local_close_stream,
	.close = local_close,
};

struct fx {
	struct local l;
	char tmp[64];
};

static int
setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof(*fx));

	fx->l.remote.ops = &local_ops;
	fx->l.remote.impl = &fx->l;
	snprintf(fx->l.remote.name, sizeof(fx->l.remote.name), "web1");
	snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/relflip-agent-test.XXXXXX");
	assert_non_null(mkdtemp(fx->tmp));
	/* The agents' own directories go here, where teardown looks for them.
	 */
	assert_int_equal(setenv("TMPDIR", fx->tmp, 1), 0);
	*state = fx;
	return 0;
}

/* How many agent directories ($T) are left in DIR. */
static int
agent_dirs_left(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "relflip-agent.", 14) == 0)
			n++;
	closedir(d);
	return n;
}

/*
 * Every agent is gone by now (its stream's close reaps it), and none left
 * its directory behind on the server, whichever way its channel ended.
 */
static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];
	int left;

	agent_close(&fx->l.remote);
	unsetenv("TMPDIR");
	left = agent_dirs_left(fx->tmp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->tmp);
	assert_int_equal(system(cmd), 0);
	free(fx);
	assert_int_equal(left, 0);
	return 0;
}

/* What a step printed, line by line. */
struct lines {
	struct buf out;
	struct buf err;
};

static void
on_line(void *arg, int is_stderr, const char *line)
{
	struct lines *ls = arg;
	struct buf *b = is_stderr ? &ls->err : &ls->out;

	buf_adds(b, line);
	buf_addch(b, '|');
}

static int
run(struct fx *fx, const char *script, const char *input, double limit,
    struct lines *ls, struct exec_result *res)
{
	struct exec_request req = {
		.cmd = script,
		.stdin_data = input,
		.stdin_len = input ? strlen(input) : 0,
		.timeout = limit,
		.on_line = on_line,
		.arg = ls,
	};
	struct rf_error err = RF_ERROR_INIT;

	buf_reset(&ls->out);
	buf_reset(&ls->err);
	return agent_exec(&fx->l.remote, &req, res, &err);
}

static void
lines_release(struct lines *ls)
{
	buf_release(&ls->out);
	buf_release(&ls->err);
}

static void
test_steps_share_one_agent(void **state)
{
	struct fx *fx = *state;
	struct lines ls = { BUF_INIT, BUF_INIT };
	struct exec_result res;

	assert_int_equal(run(fx, "echo one; echo two >&2; exit 3", NULL, 5,
			     &ls, &res),
			 0);
	assert_int_equal(res.status, 3);
	assert_string_equal(buf_str(&ls.out), "one|");
	assert_string_equal(buf_str(&ls.err), "two|");

	/* No newline at the end, empty lines kept, a CR dropped. */
	assert_int_equal(run(fx, "printf 'a\\n\\n\\nb'", NULL, 5, &ls, &res),
			 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(buf_str(&ls.out), "a|||b|");
	assert_int_equal(run(fx, "printf 'x\\r\\n\\n'", NULL, 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "x||");

	/* stdin data reaches the step, and only that step. */
	assert_int_equal(run(fx, "cat; echo end", "in 1\nin 2\n", 5, &ls, &res),
			 0);
	assert_string_equal(buf_str(&ls.out), "in 1|in 2|end|");
	assert_int_equal(run(fx, "cat; echo end", NULL, 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "end|");

	/* A marker with another nonce is output like any other line. */
	assert_int_equal(run(fx, "echo 'RFA0123 0'; echo RFA; exit 4", NULL, 5,
			     &ls, &res),
			 0);
	assert_int_equal(res.status, 4);
	assert_string_equal(buf_str(&ls.out), "RFA0123 0|RFA|");

	/* A step runs with umask 022, in a process group of its own. */
	assert_int_equal(run(fx, "umask; ps -o pgid= -p $$ | tr -d ' '; "
				 "echo $$",
			     NULL, 5, &ls, &res),
			 0);
	assert_int_equal(strncmp(buf_str(&ls.out), "0022|", 5), 0);
	assert_int_equal(fx->l.opens, 1);
	lines_release(&ls);
}

/*
 * The first step goes with the agent's command, in its environment: one
 * channel, nothing written to it, and the step does not see the variables.
 * A first step with stdin, or too long for a command, goes the usual way.
 */
static void
test_first_step_travels_with_the_start(void **state)
{
	struct fx *fx = *state;
	struct lines ls = { BUF_INIT, BUF_INIT };
	struct exec_result res;
	struct buf big = BUF_INIT;

	assert_int_equal(run(fx, "echo \"${RF_STEP1-unset} "
				 "${RF_STEP1_LIMIT-unset}\"; "
				 "echo 'it'\\''s'; exit 5",
			     NULL, 5, &ls, &res),
			 0);
	assert_int_equal(res.status, 5);
	assert_string_equal(buf_str(&ls.out), "unset unset|it's|");
	assert_int_equal(fx->l.opens, 1);
	assert_int_equal(fx->l.written, 0);
	assert_int_equal(run(fx, "echo two", NULL, 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "two|");
	assert_true(fx->l.written > 0);

	agent_close(&fx->l.remote);
	assert_int_equal(run(fx, "cat", "in\n", 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "in|");
	assert_int_equal(fx->l.opens, 2);

	agent_close(&fx->l.remote);
	fx->l.written = 0;
	while (big.len < 40 * 1024)
		buf_adds(&big, "# a long step\n");
	buf_adds(&big, "echo big");
	assert_int_equal(run(fx, buf_str(&big), NULL, 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "big|");
	assert_true(fx->l.written > big.len);
	buf_release(&big);
	lines_release(&ls);
}

static void
test_large_output_both_streams(void **state)
{
	struct fx *fx = *state;
	struct lines ls = { BUF_INIT, BUF_INIT };
	struct exec_result res;

	/* 2 MB on stderr while stdout also talks: nothing blocks. */
	assert_int_equal(run(fx, "head -c 2000000 /dev/zero | tr '\\0' x | "
				 "fold -w 1000 >&2; echo done",
			     NULL, 20, &ls, &res),
			 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(buf_str(&ls.out), "done|");
	assert_int_equal(ls.err.len, 2000 * 1001);
	lines_release(&ls);
}

static void
test_time_limit_ends_the_group(void **state)
{
	struct fx *fx = *state;
	struct lines ls = { BUF_INIT, BUF_INIT };
	struct exec_result res;
	long long t0 = mono_ms();

	/* The background child holding the output goes too. */
	assert_int_equal(run(fx, "sleep 30 & sleep 30; wait", NULL, 1, &ls,
			     &res),
			 0);
	assert_int_equal(res.status, STEP_TIME_LIMIT);
	assert_true(mono_ms() - t0 < 5000);

	/* The agent is still there for the next step. */
	assert_int_equal(run(fx, "echo after", NULL, 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "after|");
	assert_int_equal(fx->l.opens, 1);
	lines_release(&ls);
}

/* Whether pid is alive, polled until it is not or the bound passes. */
static int
gone_within(pid_t pid, long long ms)
{
	long long end = mono_ms() + ms;

	while (mono_ms() < end) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return 1;
		usleep(20000);
	}
	return 0;
}

static pid_t
read_pid(const char *path, long long ms)
{
	long long end = mono_ms() + ms;
	long pid = 0;

	while (mono_ms() < end) {
		FILE *f = fopen(path, "r");

		if (f != NULL) {
			if (fscanf(f, "%ld", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid > 0)
			return (pid_t)pid;
		usleep(10000);
	}
	return 0;
}

static int
ignore_data(void *arg, int is_stderr, const char *data, size_t n)
{
	(void)arg;
	(void)is_stderr;
	(void)data;
	(void)n;
	return 0;
}

/* A step that leaves a child in the background and one that ignores TERM. */
static void
stubborn_step(struct fx *fx, struct buf *script, char *pidfile,
	      char *toughfile, size_t len)
{
	snprintf(pidfile, len, "%s/child.pid", fx->tmp);
	snprintf(toughfile, len, "%s/tough.pid", fx->tmp);
	buf_addf(script,
		 "sleep 60 & echo $! > %s; "
		 "sh -c 'trap \"\" TERM; echo $$ > %s; "
		 "while :; do sleep 1; done' & wait",
		 pidfile, toughfile);
}

/*
 * relflip killed mid-step (kill -9): the channel just closes, and
 * everything the step started ends, even what ignores SIGTERM.
 */
static void
test_closed_channel_ends_the_step(void **state)
{
	struct fx *fx = *state;
	struct buf script = BUF_INIT, msg = BUF_INIT, cmd = BUF_INIT;
	struct stream_request sreq = { 0 };
	struct stream_result sres;
	struct rf_error err = RF_ERROR_INIT;
	char pidfile[128], toughfile[128];
	void *stream;
	pid_t child, tough;

	agent_command(&cmd, "RFAtest");
	assert_int_equal(local_open(&fx->l, buf_str(&cmd), &stream, &err), 0);
	stubborn_step(fx, &script, pidfile, toughfile, sizeof(pidfile));
	buf_addf(&msg, "run %zu 0 60\n%s", script.len, buf_str(&script));
	sreq.data = msg.buf;
	sreq.len = msg.len;
	sreq.timeout = 0.3;
	sreq.on_data = ignore_data;
	local_io(&fx->l, stream, &sreq, &sres, &err);
	child = read_pid(pidfile, 5000);
	tough = read_pid(toughfile, 5000);
	assert_true(child > 0);
	assert_true(tough > 0);
	local_close_stream(&fx->l, stream);
	assert_true(gone_within(child, 5000));
	assert_true(gone_within(tough, 8000));
	buf_release(&script);
	buf_release(&msg);
	buf_release(&cmd);
}

struct interrupter {
	const char *pidfile;
};

static void *
interrupt_when_started(void *arg)
{
	struct interrupter *in = arg;

	if (read_pid(in->pidfile, 5000) > 0)
		usleep(100000);
	interrupted = 1;
	return NULL;
}

/*
 * SIGINT while a step runs: relflip lets go of it, and the agent ends the
 * step on the server before relflip goes on; the next step gets a new
 * agent.
 */
static void
test_interrupt_ends_the_step(void **state)
{
	struct fx *fx = *state;
	struct lines ls = { BUF_INIT, BUF_INIT };
	struct buf script = BUF_INIT;
	struct exec_result res;
	struct exec_request req = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	struct interrupter in;
	char pidfile[128], toughfile[128];
	pthread_t t;
	pid_t child, tough;

	stubborn_step(fx, &script, pidfile, toughfile, sizeof(pidfile));
	in.pidfile = toughfile;
	req.cmd = buf_str(&script);
	req.timeout = 60;
	req.on_line = on_line;
	req.arg = &ls;
	interrupted = 0;
	assert_int_equal(pthread_create(&t, NULL, interrupt_when_started, &in),
			 0);
	assert_int_equal(agent_exec(&fx->l.remote, &req, &res, &err), -1);
	pthread_join(t, NULL);
	assert_int_equal(err.code, RF_EXIT_INTERRUPTED);
	child = read_pid(pidfile, 100);
	tough = read_pid(toughfile, 100);
	assert_true(gone_within(child, 5000));
	assert_true(gone_within(tough, 8000));
	assert_null(fx->l.remote.agent);
	/* Clean-up after a signal still runs, in a new agent. */
	assert_int_equal(run(fx, "echo cleanup", NULL, 5, &ls, &res), 0);
	assert_string_equal(buf_str(&ls.out), "cleanup|");
	interrupted = 0;
	assert_int_equal(fx->l.opens, 2);
	buf_release(&script);
	lines_release(&ls);
}

/* Which agent the group runs: the step's parent says. */
static const char *agent_parent;
static int agent_has_time;

static void
test_the_agent_is_the_one_asked_for(void **state)
{
	struct fx *fx = *state;
	struct lines ls = { BUF_INIT, BUF_INIT };
	struct exec_result res;

	assert_int_equal(run(fx, "cat /proc/$PPID/comm", NULL, 5, &ls, &res),
			 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(buf_str(&ls.out), agent_parent);

	/* The Perl agent gives each step the server's time; the shell none. */
	assert_int_equal(run(fx,
			     "t=${RF_STEP_TIME:-none}; n=$(date +%s); "
			     "case $t in none) echo none ;; "
			     "*) [ $((n - t)) -le 2 ] && echo now ;; esac",
			     NULL, 5, &ls, &res),
			 0);
	assert_string_equal(buf_str(&ls.out),
			    agent_has_time ? "now|" : "none|");
	lines_release(&ls);
}

/* The Perl agent, where perl is installed (it is where Debian is). */
static int
perl_group(void **state)
{
	(void)state;
	agent_parent = "relflip-agent|";
	agent_has_time = 1;
	return unsetenv("RELFLIP_AGENT");
}

/* The shell's agent: steps run under timeout(1). */
static int
sh_group(void **state)
{
	(void)state;
	agent_parent = "timeout|";
	agent_has_time = 0;
	return setenv("RELFLIP_AGENT", "sh", 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_the_agent_is_the_one_asked_for, setup, teardown),
		cmocka_unit_test_setup_teardown(test_steps_share_one_agent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_first_step_travels_with_the_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_output_both_streams,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_limit_ends_the_group,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_closed_channel_ends_the_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_ends_the_step,
						setup, teardown),
	};

	int failed;

	failed =
	    cmocka_run_group_tests_name("perl agent", tests, perl_group, NULL);
	failed +=
	    cmocka_run_group_tests_name("shell agent", tests, sh_group, NULL);
	return failed;
}
