/*
 * A scripted fake of struct remote_ops for unit tests: see remote-fake.h.
 */

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fakes/remote-fake.h"
#include "xmalloc.h"

struct fake_rule {
	char *match;
	int status;
	char *out;
	char *err;
	char *signal;
	int timed_out;
	char *exec_error;
	int times; /* left; 0: forever */
	int retired;
};

struct fake_call {
	char *cmd;
	char *stdin_data;
	double timeout;
};

struct fake {
	struct remote remote; /* first: remote.impl points back here */
	pthread_mutex_t mu;
	struct fake_rule *rules;
	size_t nrules;
	struct fake_call *calls;
	size_t ncalls;
	char *fail[FAKE_OP_EXEC + 1]; /* NULL: the op works */
	int puts;
	char *put_path;
	uint64_t put_bytes;
	int64_t file_size;
	uint64_t avail;
	int forward_port;
	int forwards;
};

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static struct fake *
fake_of(struct remote *r)
{
	return r->impl;
}

/* Hand text to on_line one line at a time, without the '\n'. */
static void
emit_lines(const struct exec_request *req, int is_stderr, const char *text)
{
	const char *p = text;

	if (text == NULL || req->on_line == NULL)
		return;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char *line = xstrndup(p, n);

		req->on_line(req->arg, is_stderr, line);
		free(line);
		p += n;
		if (*p == '\n')
			p++;
	}
}

static int
fake_exec(void *impl, const struct exec_request *req, struct exec_result *res,
	  struct rf_error *err)
{
	struct fake *f = impl;
	struct fake_rule rule = { 0 };
	struct fake_call *c;
	const char *fail;
	size_t i;
	int found = 0;

	pthread_mutex_lock(&f->mu);
	f->calls = xreallocarray(f->calls, f->ncalls + 1, sizeof(*f->calls));
	c = &f->calls[f->ncalls++];
	c->cmd = xstrdup(req->cmd != NULL ? req->cmd : "");
	c->stdin_data = req->stdin_data != NULL
			    ? xstrndup(req->stdin_data, req->stdin_len)
			    : NULL;
	c->timeout = req->timeout;
	fail = f->fail[FAKE_OP_EXEC];
	for (i = 0; i < f->nrules && fail == NULL; i++) {
		struct fake_rule *ru = &f->rules[i];

		if (ru->retired || strstr(c->cmd, ru->match) == NULL)
			continue;
		rule = *ru;
		found = 1;
		if (ru->times > 0 && --ru->times == 0)
			ru->retired = 1;
		break;
	}
	if (fail != NULL) {
		rf_error_set(err, RF_EXIT_CONNECT, NULL, "%s: %s",
			     f->remote.name, fail);
		pthread_mutex_unlock(&f->mu);
		return -1;
	}
	pthread_mutex_unlock(&f->mu);

	/* The rule's strings stay allocated until the fake is closed. */
	res->status = 0;
	res->signal[0] = '\0';
	res->timed_out = 0;
	if (!found)
		return 0;
	if (rule.exec_error != NULL)
		return rf_error_set(err, RF_EXIT_CONNECT, NULL, "%s",
				    rule.exec_error);
	emit_lines(req, 0, rule.out);
	emit_lines(req, 1, rule.err);
	res->status = rule.status;
	if (rule.signal != NULL) {
		snprintf(res->signal, sizeof(res->signal), "%s", rule.signal);
		res->status = -1;
	}
	if (rule.timed_out) {
		res->timed_out = 1;
		res->status = -1;
	}
	return 0;
}

static int
fake_put(void *impl, const struct put_request *req, struct rf_error *err)
{
	struct fake *f = impl;
	char b[65536];
	uint64_t off = req->offset;
	ssize_t n;

	if (f->fail[FAKE_OP_PUT] != NULL)
		return rf_error_set(err, RF_EXIT_UPLOAD, "upload", "%s",
				    f->fail[FAKE_OP_PUT]);
	while (off < req->size) {
		size_t want = req->size - off < sizeof(b)
				  ? (size_t)(req->size - off)
				  : sizeof(b);

		n = pread(req->fd, b, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return rf_error_set(err, RF_EXIT_UPLOAD, "upload",
					    "the fake cannot read the local "
					    "file at %llu: %s",
					    (unsigned long long)off,
					    n == 0 ? "end of file"
						   : strerror(errno));
		off += (uint64_t)n;
		if (req->on_progress != NULL)
			req->on_progress(req->arg, off, req->size);
	}
	pthread_mutex_lock(&f->mu);
	f->puts++;
	free(f->put_path);
	f->put_path = dup_or_null(req->path);
	f->put_bytes += req->size - req->offset;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int
fake_file_size(void *impl, const char *path, int64_t *size,
	       struct rf_error *err)
{
	struct fake *f = impl;

	(void)path;
	if (f->fail[FAKE_OP_FILE_SIZE] != NULL)
		return rf_error_set(err, RF_EXIT_UPLOAD, "upload", "%s",
				    f->fail[FAKE_OP_FILE_SIZE]);
	*size = f->file_size;
	return 0;
}

static int
fake_statvfs(void *impl, const char *path, uint64_t *avail,
	     struct rf_error *err)
{
	struct fake *f = impl;

	(void)path;
	if (f->fail[FAKE_OP_STATVFS] != NULL)
		return rf_error_set(err, RF_EXIT_UPLOAD, "preflight", "%s",
				    f->fail[FAKE_OP_STATVFS]);
	*avail = f->avail;
	return 0;
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy what is readable on from into to; 1 at EOF, -1 on error. */
static int
pump_once(int from, int to)
{
	char b[16384];
	ssize_t n;

	n = recv(from, b, sizeof(b), 0);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0)
		return -1;
	if (n == 0)
		return 1;
	return send_all(to, b, (size_t)n);
}

static int
fake_forward(void *impl, const char *host, int port, int fd, double timeout,
	     struct rf_error *err)
{
	struct fake *f = impl;
	struct sockaddr_in sin;
	struct pollfd pfd[2];
	double end = now_mono() + (timeout > 0 ? timeout : 30);
	const char *to_host = "127.0.0.1";
	int to_port, tfd = -1, tcp_eof = 0, n;

	pthread_mutex_lock(&f->mu);
	f->forwards++;
	to_port = f->forward_port;
	pthread_mutex_unlock(&f->mu);
	if (f->fail[FAKE_OP_FORWARD] != NULL)
		return rf_error_set(err, RF_EXIT_HEALTH, "health", "%s",
				    f->fail[FAKE_OP_FORWARD]);
	if (to_port == REMOTE_FAKE_PASS) {
		to_host = host;
		to_port = port;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)(to_port > 0 ? to_port : 0));
	if (to_port <= 0 || inet_pton(AF_INET, to_host, &sin.sin_addr) != 1)
		goto refused;
	tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tfd == -1 ||
	    connect(tfd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		goto refused;
	for (;;) {
		double left = end - now_mono();

		if (left <= 0)
			break;
		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = tcp_eof ? -1 : tfd;
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, 2, (int)(left * 1000) + 1);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pfd[0].revents != 0 && pump_once(fd, tfd) != 0)
			break; /* the local side closed: done */
		if (pfd[1].revents != 0) {
			n = pump_once(tfd, fd);
			if (n == 1) {
				tcp_eof = 1;
				shutdown(fd, SHUT_WR);
			} else if (n != 0) {
				break;
			}
		}
	}
	close(tfd);
	return 0;
refused:
	if (tfd != -1)
		close(tfd);
	/* As libssh2 reports a direct-tcpip open the server refused. */
	return rf_error_set(err, RF_EXIT_HEALTH, "health",
			    "cannot open a tunnel to %s:%d on %s: nothing "
			    "listens there (channel open failure: connect "
			    "failed)",
			    host, port, f->remote.name);
}

static void
fake_close(void *impl)
{
	struct fake *f = impl;
	size_t i;

	for (i = 0; i < f->nrules; i++) {
		free(f->rules[i].match);
		free(f->rules[i].out);
		free(f->rules[i].err);
		free(f->rules[i].signal);
		free(f->rules[i].exec_error);
	}
	free(f->rules);
	for (i = 0; i < f->ncalls; i++) {
		free(f->calls[i].cmd);
		free(f->calls[i].stdin_data);
	}
	free(f->calls);
	for (i = 0; i <= FAKE_OP_EXEC; i++)
		free(f->fail[i]);
	free(f->put_path);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static const struct remote_ops fake_ops = {
	.exec = fake_exec,
	.put = fake_put,
	.file_size = fake_file_size,
	.statvfs = fake_statvfs,
	.forward = fake_forward,
	.close = fake_close,
};

struct remote *
remote_fake_new(const char *name)
{
	struct fake *f = xcalloc(1, sizeof(*f));

	pthread_mutex_init(&f->mu, NULL);
	f->remote.ops = &fake_ops;
	f->remote.impl = f;
	snprintf(f->remote.name, sizeof(f->remote.name), "%s",
		 name != NULL ? name : "fake");
	f->file_size = -1;
	f->avail = (uint64_t)1 << 40;
	return &f->remote;
}

void
remote_fake_add(struct remote *r, const struct remote_fake_rule *rule)
{
	struct fake *f = fake_of(r);
	struct fake_rule *ru;

	pthread_mutex_lock(&f->mu);
	f->rules = xreallocarray(f->rules, f->nrules + 1, sizeof(*f->rules));
	ru = &f->rules[f->nrules++];
	memset(ru, 0, sizeof(*ru));
	ru->match = xstrdup(rule->match != NULL ? rule->match : "");
	ru->status = rule->status;
	ru->out = dup_or_null(rule->out);
	ru->err = dup_or_null(rule->err);
	ru->signal = dup_or_null(rule->signal);
	ru->timed_out = rule->timed_out;
	ru->exec_error = dup_or_null(rule->exec_error);
	ru->times = rule->times;
	pthread_mutex_unlock(&f->mu);
}

void
remote_fake_on(struct remote *r, const char *cmd_substring, int status,
	       const char *stdout_text)
{
	struct remote_fake_rule rule = {
		.match = cmd_substring,
		.status = status,
		.out = stdout_text,
	};

	remote_fake_add(r, &rule);
}

int
remote_fake_count(struct remote *r, const char *substring)
{
	struct fake *f = fake_of(r);
	size_t i;
	int n = 0;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->ncalls; i++) {
		if (substring == NULL || strstr(f->calls[i].cmd, substring))
			n++;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

const char *
remote_fake_command(struct remote *r, size_t i)
{
	struct fake *f = fake_of(r);
	const char *s;

	pthread_mutex_lock(&f->mu);
	s = i < f->ncalls ? f->calls[i].cmd : NULL;
	pthread_mutex_unlock(&f->mu);
	return s;
}

const char *
remote_fake_stdin(struct remote *r, size_t i)
{
	struct fake *f = fake_of(r);
	const char *s;

	pthread_mutex_lock(&f->mu);
	s = i < f->ncalls ? f->calls[i].stdin_data : NULL;
	pthread_mutex_unlock(&f->mu);
	return s;
}

double
remote_fake_timeout(struct remote *r, size_t i)
{
	struct fake *f = fake_of(r);
	double t;

	pthread_mutex_lock(&f->mu);
	t = i < f->ncalls ? f->calls[i].timeout : -1;
	pthread_mutex_unlock(&f->mu);
	return t;
}

void
remote_fake_fail(struct remote *r, enum remote_fake_op op, const char *msg)
{
	struct fake *f = fake_of(r);

	pthread_mutex_lock(&f->mu);
	free(f->fail[op]);
	f->fail[op] = dup_or_null(msg);
	pthread_mutex_unlock(&f->mu);
}

int
remote_fake_put_count(struct remote *r)
{
	return fake_of(r)->puts;
}

const char *
remote_fake_put_path(struct remote *r)
{
	return fake_of(r)->put_path;
}

uint64_t
remote_fake_put_bytes(struct remote *r)
{
	return fake_of(r)->put_bytes;
}

void
remote_fake_set_file_size(struct remote *r, int64_t size)
{
	fake_of(r)->file_size = size;
}

void
remote_fake_set_avail(struct remote *r, uint64_t avail)
{
	fake_of(r)->avail = avail;
}

void
remote_fake_set_forward(struct remote *r, int port)
{
	struct fake *f = fake_of(r);

	pthread_mutex_lock(&f->mu);
	f->forward_port = port;
	pthread_mutex_unlock(&f->mu);
}

int
remote_fake_forward_count(struct remote *r)
{
	struct fake *f = fake_of(r);
	int n;

	pthread_mutex_lock(&f->mu);
	n = f->forwards;
	pthread_mutex_unlock(&f->mu);
	return n;
}
