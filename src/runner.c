/*
 * Commands on the runner, the machine relflip runs on: fork, exec
 * /bin/sh -c, feed stdin, split stdout and stderr into lines, and end the
 * command's process group at its time limit or on an interruption.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "out.h"
#include "runner.h"
#include "xmalloc.h"

extern char **environ;

/* How long a TERMed group has before it is KILLed, and the poll tick. */
#define RUNNER_GRACE_MS 2000
#define RUNNER_TICK_MS 100
/* Reads of one stream in a row, so that a flood cannot pass the limit. */
#define RUNNER_READS 16

/* One output stream: its pipe and the line being gathered. */
struct runner_stream {
	int fd; /* -1 once at EOF */
	int is_stderr;
	int split; /* the line before was cut at RUNNER_LINE_MAX */
	size_t len;
	char line[RUNNER_LINE_MAX + 1];
};

static int
env_name_eq(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");

	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* relflip's environment with c->env added, each replacing its name. */
static char **
runner_envp(const struct runner_cmd *c)
{
	size_t n = 0, extra = 0, i, k, at = 0;
	char **envp;

	while (environ != NULL && environ[n] != NULL)
		n++;
	while (c->env != NULL && c->env[extra] != NULL)
		extra++;
	envp = xcalloc(n + extra + 1, sizeof(*envp));
	for (i = 0; i < n; i++) {
		for (k = 0; k < extra; k++) {
			if (env_name_eq(c->env[k], environ[i]))
				break;
		}
		if (k == extra)
			envp[at++] = environ[i];
	}
	for (k = 0; k < extra; k++)
		envp[at++] = (char *)c->env[k];
	envp[at] = NULL;
	return envp;
}

/* Hand over the line gathered (a newline or EOF ends it). */
static void
stream_line(const struct runner_cmd *c, struct runner_stream *s)
{
	/* The newline after a line cut at the maximum ends nothing new. */
	if (s->len == 0 && s->split) {
		s->split = 0;
		return;
	}
	s->line[s->len] = '\0';
	if (s->len > 0 && s->line[s->len - 1] == '\r')
		s->line[s->len - 1] = '\0';
	if (c->on_line != NULL)
		c->on_line(c->arg, s->is_stderr, s->line);
	s->len = 0;
	s->split = 0;
}

/* Read what the stream has; at EOF (or an error) close it. */
static void
stream_read(const struct runner_cmd *c, struct runner_stream *s)
{
	char chunk[4096];
	ssize_t got, i;
	int reads;

	for (reads = 0; reads < RUNNER_READS; reads++) {
		got = read(s->fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (got <= 0) {
			if (s->len > 0)
				stream_line(c, s);
			close(s->fd);
			s->fd = -1;
			return;
		}
		for (i = 0; i < got; i++) {
			if (chunk[i] == '\n') {
				stream_line(c, s);
				continue;
			}
			s->split = 0;
			s->line[s->len++] = chunk[i];
			if (s->len == RUNNER_LINE_MAX) {
				stream_line(c, s);
				s->split = 1;
			}
		}
	}
}

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* The child's side: its own group, the pipes as 0 1 2, signals reset. */
static void __attribute__((noreturn))
runner_child(const char *command, char **envp, int in, int out, int err)
{
	struct sigaction dfl;
	char *argv[4];
	sigset_t none;

	setpgid(0, 0);
	/* relflip ignores SIGPIPE; an ignored signal stays ignored in exec. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)command;
	argv[3] = NULL;
	execve("/bin/sh", argv, envp);
	_exit(127);
}

int
runner_exec(const struct runner_cmd *c, struct runner_result *res,
	    struct rf_error *err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct runner_stream so = { -1, 0, 0, 0, "" }, se = { -1, 1, 0, 0, "" };
	const char *input = c->input != NULL ? c->input : "";
	size_t ilen = strlen(input), ioff = 0;
	long long deadline, kill_at = 0;
	char **envp;
	pid_t pid;
	int wstatus = 0, reaped = 0;

	memset(res, 0, sizeof(*res));
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(errp, O_CLOEXEC) != 0) {
		rf_error_set(err, RF_EXIT_INTERNAL, NULL,
			     "cannot make pipes for a command on the runner: "
			     "%m");
		goto fail;
	}
	envp = runner_envp(c);
	pid = fork();
	if (pid == 0)
		runner_child(c->command, envp, in[0], out[1], errp[1]);
	free(envp);
	if (pid < 0) {
		rf_error_set(err, RF_EXIT_INTERNAL, NULL,
			     "cannot start a command on the runner: %m");
		goto fail;
	}
	/* Both sides set the group, so that a kill cannot come before it. */
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	so.fd = out[0];
	se.fd = errp[0];
	set_nonblock(in[1]);
	set_nonblock(so.fd);
	set_nonblock(se.fd);
	if (ilen == 0) {
		close(in[1]);
		in[1] = -1;
	}
	deadline = c->timeout > 0
		       ? out_now_ms() + (long long)(c->timeout * 1000.0)
		       : 0;

	while (!reaped) {
		struct pollfd pfd[3];
		nfds_t n = 0;
		long long now;
		int wait_ms = RUNNER_TICK_MS;
		pid_t w;

		if (in[1] >= 0)
			pfd[n++] = (struct pollfd){ in[1], POLLOUT, 0 };
		if (so.fd >= 0)
			pfd[n++] = (struct pollfd){ so.fd, POLLIN, 0 };
		if (se.fd >= 0)
			pfd[n++] = (struct pollfd){ se.fd, POLLIN, 0 };
		now = out_now_ms();
		if (deadline > 0 && deadline - now < wait_ms)
			wait_ms = deadline > now ? (int)(deadline - now) : 0;
		if (poll(pfd, n, wait_ms) < 0 && errno != EINTR)
			break;
		if (in[1] >= 0) {
			ssize_t wr = write(in[1], input + ioff, ilen - ioff);

			if (wr > 0)
				ioff += (size_t)wr;
			/* Done, or it stopped reading (EPIPE): EOF either way.
			 */
			if (ioff == ilen ||
			    (wr < 0 && errno != EAGAIN && errno != EINTR)) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (so.fd >= 0)
			stream_read(c, &so);
		if (se.fd >= 0)
			stream_read(c, &se);
		w = waitpid(pid, &wstatus, WNOHANG);
		if (w == pid) {
			reaped = 1;
			break;
		}
		now = out_now_ms();
		if (kill_at == 0 && deadline > 0 && now >= deadline) {
			res->timed_out = 1;
			kill(-pid, SIGTERM);
			kill_at = now + RUNNER_GRACE_MS;
		} else if (kill_at == 0 && interrupted) {
			res->interrupted = 1;
			kill(-pid, SIGTERM);
			kill_at = now + RUNNER_GRACE_MS;
		} else if (kill_at > 0 && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = now + RUNNER_GRACE_MS;
		}
	}
	if (!reaped) {
		/* poll itself failed: end the command rather than wait blind.
		 */
		kill(-pid, SIGKILL);
		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
	}
	/*
	 * What it wrote before it ended is in the pipes; a background child
	 * that still holds them open is not waited for.
	 */
	if (so.fd >= 0)
		stream_read(c, &so);
	if (se.fd >= 0)
		stream_read(c, &se);
	if (so.len > 0)
		stream_line(c, &so);
	if (se.len > 0)
		stream_line(c, &se);
	if (WIFEXITED(wstatus)) {
		res->status = WEXITSTATUS(wstatus);
	} else if (WIFSIGNALED(wstatus)) {
		res->signal = WTERMSIG(wstatus);
		res->status = 128 + res->signal;
	}
	if (in[1] >= 0)
		close(in[1]);
	if (so.fd >= 0)
		close(so.fd);
	if (se.fd >= 0)
		close(se.fd);
	return 0;

fail:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
	return -1;
}
