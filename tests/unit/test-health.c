/*
 * Health checks: health_judge, http_get against a scripted HTTP server on
 * 127.0.0.1, and the SSH bridge of health_check_remote through a fake
 * remote whose forward connects locally and pumps bytes with poll.
 */

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#include "conf.h"
#include "error.h"
#include "health.h"
#include "http.h"
#include "remote.h"

/* A scripted HTTP server in a thread. */

struct reply {
	int status; /* 0: read the request, then never answer */
	const char *body;
};

struct server {
	int lfd;
	int port;
	int stop[2];
	pthread_t tid;
	const struct reply *script;
	size_t nscript; /* the last reply repeats */
	pthread_mutex_t mu;
	int served;
	double accepted[16]; /* when each request came in */
	int delay_ms;        /* before each answer: a slow app or a far link */
};

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

/* Wait up to ms for fd to be readable, or for the server's stop pipe. */
static int
wait_readable(struct server *s, int fd, int ms)
{
	struct pollfd pfd[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = s->stop[0], .events = POLLIN },
	};

	if (poll(pfd, 2, ms) <= 0 || pfd[1].revents != 0)
		return -1;
	return 0;
}

static void
serve_one(struct server *s, int fd, const struct reply *rep)
{
	char req[4096];
	size_t len = 0;
	ssize_t n;
	char head[256];
	int hl;

	/* Read the request head. */
	while (len < sizeof(req) - 1) {
		if (wait_readable(s, fd, 2000) != 0)
			return;
		n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if (rep->status == 0) {
		/* Hang until the client gives up. */
		while (wait_readable(s, fd, 3000) == 0) {
			n = recv(fd, req, sizeof(req), 0);
			if (n <= 0)
				return;
		}
		return;
	}
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d Whatever\r\nContent-Type: text/plain\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      rep->status, strlen(rep->body));
	if (send_all(fd, head, (size_t)hl) == 0)
		send_all(fd, rep->body, strlen(rep->body));
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	const struct reply *rep;
	int fd, i, delay_ms;

	for (;;) {
		if (wait_readable(s, s->lfd, 10000) != 0)
			return NULL;
		fd = accept(s->lfd, NULL, NULL);
		if (fd == -1)
			continue;
		pthread_mutex_lock(&s->mu);
		i = s->served++;
		if ((size_t)i < sizeof(s->accepted) / sizeof(s->accepted[0]))
			s->accepted[i] = now_mono();
		delay_ms = s->delay_ms;
		pthread_mutex_unlock(&s->mu);
		rep = &s->script[(size_t)i < s->nscript ? (size_t)i
							: s->nscript - 1];
		if (delay_ms > 0)
			poll(NULL, 0, delay_ms);
		serve_one(s, fd, rep);
		close(fd);
	}
}

static int
bind_loopback(int *port, int do_listen)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
server_start(struct server *s, const struct reply *script, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->script = script;
	s->nscript = n;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = bind_loopback(&s->port, 1);
	assert_int_equal(pipe(s->stop), 0);
	assert_int_equal(pthread_create(&s->tid, NULL, server_main, s), 0);
}

static int
server_stop(struct server *s)
{
	int served;

	assert_int_equal(write(s->stop[1], "x", 1), 1);
	pthread_join(s->tid, NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	served = s->served;
	pthread_mutex_destroy(&s->mu);
	return served;
}

/* A port on 127.0.0.1 where nothing listens. */
static int
closed_port(void)
{
	int port;
	int fd = bind_loopback(&port, 0);

	close(fd);
	return port;
}

/*
 * The fake remote: forward connects to host:port on this machine and pumps
 * bytes between the two sockets; the other operations fail. It runs in
 * health.c's pump thread, so it records problems instead of asserting.
 */

struct fake {
	char name[64];
	int record_only; /* fail every forward, noting host and port */
	int busy;        /* a forward is running */
	int overlapped;  /* two forwards ran at once */
	int forwards;
	int bad_timeout;
	char last_host[256];
	int last_port;
	pthread_mutex_t mu;
};

static int
fake_unsupported(struct rf_error *err)
{
	return rf_error_set(err, RF_EXIT_INTERNAL, NULL,
			    "the health test's fake remote cannot do that");
}

static int
fake_exec(void *impl, const struct exec_request *req, struct exec_result *res,
	  struct rf_error *err)
{
	(void)impl;
	(void)req;
	(void)res;
	return fake_unsupported(err);
}

static int
fake_put(void *impl, const struct put_request *req, struct rf_error *err)
{
	(void)impl;
	(void)req;
	return fake_unsupported(err);
}

static int
fake_file_size(void *impl, const char *path, int64_t *size,
	       struct rf_error *err)
{
	(void)impl;
	(void)path;
	(void)size;
	return fake_unsupported(err);
}

static int
fake_statvfs(void *impl, const char *path, uint64_t *avail,
	     struct rf_error *err)
{
	(void)impl;
	(void)path;
	(void)avail;
	return fake_unsupported(err);
}

static void
fake_close(void *impl)
{
	(void)impl;
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
	double end = now_mono() + timeout;
	int tfd = -1, rc = -1, tcp_eof = 0, n;

	pthread_mutex_lock(&f->mu);
	if (f->busy)
		f->overlapped = 1;
	f->busy = 1;
	f->forwards++;
	snprintf(f->last_host, sizeof(f->last_host), "%s", host);
	f->last_port = port;
	if (timeout <= 0)
		f->bad_timeout = 1;
	pthread_mutex_unlock(&f->mu);

	if (f->record_only) {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "the fake only records");
		goto out;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "the fake cannot resolve %s", host);
		goto out;
	}
	tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tfd == -1 ||
	    connect(tfd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "nothing listens on %s:%d on %s", host, port,
			     f->name);
		goto out;
	}
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
		if (pfd[0].revents != 0) {
			/* The local side (libcurl) closing ends the pump. */
			if (pump_once(fd, tfd) != 0)
				break;
		}
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
	rc = 0;
out:
	if (tfd != -1)
		close(tfd);
	pthread_mutex_lock(&f->mu);
	f->busy = 0;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static const struct remote_ops fake_ops = {
	.exec = fake_exec,
	.put = fake_put,
	.file_size = fake_file_size,
	.statvfs = fake_statvfs,
	.forward = fake_forward,
	.close = fake_close,
};

struct fixture {
	struct fake fake;
	struct remote remote;
	struct conf conf;
	struct server srv;
	int srv_running;
	char url[128];
	char tmpdir[64];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	pthread_mutex_init(&fx->fake.mu, NULL);
	snprintf(fx->fake.name, sizeof(fx->fake.name), "web1");
	fx->remote.ops = &fake_ops;
	fx->remote.impl = &fx->fake;
	snprintf(fx->remote.name, sizeof(fx->remote.name), "web1");
	fx->conf.has_health = 1;
	fx->conf.expect_status = 200;
	fx->conf.health_timeout = 2;
	fx->conf.health_interval = 0.01;
	fx->conf.health_retries = 10;
	fx->conf.health_deadline = 4;

	/* A TMPDIR of our own, to see that every socket dir is removed. */
	snprintf(fx->tmpdir, sizeof(fx->tmpdir), "/tmp/test-health-XXXXXX");
	assert_non_null(mkdtemp(fx->tmpdir));
	setenv("TMPDIR", fx->tmpdir, 1);
	interrupted = 0;
	*state = fx;
	return 0;
}

static int
dir_entries(const char *path)
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

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->srv_running)
		server_stop(&fx->srv);
	/* Every health_check_remote cleans up its socket and directory. */
	assert_int_equal(dir_entries(fx->tmpdir), 0);
	rmdir(fx->tmpdir);
	unsetenv("TMPDIR");
	pthread_mutex_destroy(&fx->fake.mu);
	interrupted = 0;
	free(fx);
	return 0;
}

static void
start(struct fixture *fx, const struct reply *script, size_t n)
{
	server_start(&fx->srv, script, n);
	fx->srv_running = 1;
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d/health",
		 fx->srv.port);
	fx->conf.health_url = fx->url;
	fx->conf.public_url = fx->url;
}

static int
stop(struct fixture *fx)
{
	fx->srv_running = 0;
	return server_stop(&fx->srv);
}

#define NREPLIES(a) (sizeof(a) / sizeof((a)[0]))

/* health_judge */

static void
test_judge_ok(void **state)
{
	struct fixture *fx = *state;
	char why[256];

	assert_int_equal(
	    health_judge(&fx->conf, "3f2c1ab", 200, "ok", why, sizeof(why)), 1);
	assert_string_equal(why, "");
}

static void
test_judge_server_error(void **state)
{
	struct fixture *fx = *state;
	char why[256];

	assert_int_equal(
	    health_judge(&fx->conf, NULL, 503, "", why, sizeof(why)), 0);
	assert_string_equal(why, "503 Service Unavailable");
	assert_int_equal(
	    health_judge(&fx->conf, NULL, 502, "", why, sizeof(why)), 0);
	assert_string_equal(why, "502 Bad Gateway");
}

static void
test_judge_wrong_status(void **state)
{
	struct fixture *fx = *state;
	char why[256];

	assert_int_equal(
	    health_judge(&fx->conf, NULL, 404, "", why, sizeof(why)), 0);
	assert_string_equal(why, "got 404 Not Found instead of 200");
	assert_int_equal(
	    health_judge(&fx->conf, NULL, 299, "", why, sizeof(why)), 0);
	assert_string_equal(why, "got 299 instead of 200");
	assert_int_equal(
	    health_judge(&fx->conf, NULL, 599, "", why, sizeof(why)), 0);
	assert_string_equal(why, "got 599 instead of 200");

	fx->conf.expect_status = 204;
	assert_int_equal(
	    health_judge(&fx->conf, NULL, 204, "", why, sizeof(why)), 1);
	assert_int_equal(
	    health_judge(&fx->conf, NULL, 200, "", why, sizeof(why)), 0);
	assert_string_equal(why, "got 200 OK instead of 204");
}

static void
test_judge_revision(void **state)
{
	struct fixture *fx = *state;
	char why[256];

	fx->conf.expect_revision = 1;
	assert_int_equal(health_judge(&fx->conf, "3f2c1ab", 200,
				      "{\"revision\": \"3f2c1ab\"}", why,
				      sizeof(why)),
			 1);
	assert_int_equal(health_judge(&fx->conf, "3f2c1ab", 200,
				      "{\"revision\": \"9e1d2c0\"}", why,
				      sizeof(why)),
			 0);
	assert_string_equal(why, "200 but the body does not mention 3f2c1ab: "
				 "the app still serves the old release");
	/* The status is judged first. */
	assert_int_equal(health_judge(&fx->conf, "3f2c1ab", 503, "3f2c1ab", why,
				      sizeof(why)),
			 0);
	assert_string_equal(why, "503 Service Unavailable");
	/* Without expect_revision the body does not matter. */
	fx->conf.expect_revision = 0;
	assert_int_equal(
	    health_judge(&fx->conf, "3f2c1ab", 200, "", why, sizeof(why)), 1);
}

/* http_get */

static void
test_body_line(void **state)
{
	char line[HEALTH_BODY_SHOWN + 1];
	char big[200];

	(void)state;
	health_body_line("broken e21d026\n", line, sizeof(line));
	assert_string_equal(line, "broken e21d026");
	health_body_line("db down \r\nmore", line, sizeof(line));
	assert_string_equal(line, "db down");
	health_body_line(NULL, line, sizeof(line));
	assert_string_equal(line, "");
	health_body_line("\nsecond line", line, sizeof(line));
	assert_string_equal(line, "");
	health_body_line("<!DOCTYPE html><html>", line, sizeof(line));
	assert_string_equal(line, "");
	health_body_line("bell\x07", line, sizeof(line));
	assert_string_equal(line, "");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	health_body_line(big, line, sizeof(line));
	assert_string_equal(line, "");
	big[HEALTH_BODY_SHOWN] = '\0';
	health_body_line(big, line, sizeof(line));
	assert_int_equal(strlen(line), HEALTH_BODY_SHOWN);
}

static void
test_http_scripted(void **state)
{
	static const struct reply script[] = {
		{ 503, "starting" },
		{ 200, "hello 3f2c1ab" },
	};
	struct fixture *fx = *state;
	struct http_request req = { .timeout = 2, .connect_timeout = 2 };
	struct http_response res;
	struct rf_error err = RF_ERROR_INIT;

	start(fx, script, NREPLIES(script));
	req.url = fx->url;
	assert_int_equal(http_get(&req, &res, &err), 0);
	assert_true(res.transport_ok);
	assert_int_equal(res.status, 503);
	assert_string_equal(res.body, "starting");
	http_response_release(&res);

	assert_int_equal(http_get(&req, &res, &err), 0);
	assert_true(res.transport_ok);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "hello 3f2c1ab");
	http_response_release(&res);
	assert_int_equal(stop(fx), 2);
}

static void
test_http_body_bounded(void **state)
{
	struct fixture *fx = *state;
	struct reply script[1];
	struct http_request req = { .timeout = 2, .connect_timeout = 2 };
	struct http_response res;
	struct rf_error err = RF_ERROR_INIT;
	size_t big = HTTP_BODY_MAX * 3 + 17;
	char *body = malloc(big + 1);

	assert_non_null(body);
	memset(body, 'x', big);
	body[big] = '\0';
	script[0].status = 200;
	script[0].body = body;
	start(fx, script, 1);
	req.url = fx->url;
	assert_int_equal(http_get(&req, &res, &err), 0);
	assert_true(res.transport_ok);
	assert_int_equal(res.status, 200);
	assert_int_equal(strlen(res.body), HTTP_BODY_MAX);
	http_response_release(&res);
	stop(fx);
	free(body);
}

static void
test_http_closed_port(void **state)
{
	struct http_request req = { .timeout = 2, .connect_timeout = 2 };
	struct http_response res;
	struct rf_error err = RF_ERROR_INIT;
	char url[64];

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
	req.url = url;
	assert_int_equal(http_get(&req, &res, &err), 0);
	assert_false(res.transport_ok);
	assert_true(res.retryable);
	assert_int_equal(res.status, 0);
	assert_true(strlen(res.error) > 0);
	http_response_release(&res);
}

static void
test_http_timeout(void **state)
{
	static const struct reply script[] = { { 0, "" } };
	struct fixture *fx = *state;
	struct http_request req = { .timeout = 0.3, .connect_timeout = 0.3 };
	struct http_response res;
	struct rf_error err = RF_ERROR_INIT;
	double t0;

	start(fx, script, 1);
	req.url = fx->url;
	t0 = now_mono();
	assert_int_equal(http_get(&req, &res, &err), 0);
	assert_true(now_mono() - t0 < 1.5);
	assert_false(res.transport_ok);
	assert_true(res.retryable);
	assert_non_null(strstr(res.error, "imed out"));
	http_response_release(&res);
	stop(fx);
}

static void
test_http_bad_scheme(void **state)
{
	struct http_request req = { .url = "ftp://127.0.0.1/x", .timeout = 1 };
	struct http_response res;
	struct rf_error err = RF_ERROR_INIT;

	(void)state;
	assert_int_equal(http_get(&req, &res, &err), -1);
	assert_int_equal(err.code, RF_EXIT_USAGE);
	http_response_release(&res);
}

/* health_check_remote through the fake remote */

static void
test_remote_becomes_healthy(void **state)
{
	static const struct reply script[] = {
		{ 503, "starting" },
		{ 503, "starting" },
		{ 200, "ok" },
	};
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	start(fx, script, NREPLIES(script));
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_true(res.ok);
	assert_int_equal(res.tries, 3);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.detail, "200");
	assert_int_equal(stop(fx), 3);
	assert_int_equal(fx->fake.forwards, 3);
	assert_false(fx->fake.overlapped);
	assert_false(fx->fake.bad_timeout);
	assert_string_equal(fx->fake.last_host, "127.0.0.1");
	assert_int_equal(fx->fake.last_port, fx->srv.port);
}

static void
test_remote_always_503(void **state)
{
	static const struct reply script[] = { { 503, "down" } };
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	fx->conf.health_retries = 2;
	start(fx, script, 1);
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_false(res.ok);
	assert_int_equal(res.tries, 3);
	assert_int_equal(res.status, 503);
	/* The body's line says why at once. */
	assert_non_null(strstr(res.detail, "503 Service Unavailable, body "
					   "\"down\", after 3 tries ("));
	assert_int_equal(stop(fx), 3);
}

static void
test_remote_interval_from_try_start(void **state)
{
	static const struct reply script[] = { { 503, "down" } };
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	double gap;
	int n;

	fx->conf.health_interval = 0.5;
	fx->conf.health_retries = 1;
	start(fx, script, 1);
	/* Each answer takes 0.3 s, as a far server's round trips would. */
	pthread_mutex_lock(&fx->srv.mu);
	fx->srv.delay_ms = 300;
	pthread_mutex_unlock(&fx->srv.mu);
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_false(res.ok);
	n = stop(fx);
	/* Three quick tries within the first interval, then one more. */
	assert_int_equal(n, 4);
	assert_int_equal(res.tries, 4);
	/*
	 * The last pause is one interval from the start of the try before
	 * it (0.5 s), not from its end (0.8 s), nor a quick try (0.05 s).
	 * Seen from the server: that try's accept may come late on a busy
	 * machine (under 0.49 s once, under ASan in a full make check).
	 */
	gap = fx->srv.accepted[3] - fx->srv.accepted[2];
	assert_true(gap >= 0.4);
	assert_true(gap < 0.65);
}

static void
test_remote_old_release(void **state)
{
	static const struct reply script[] = { { 200, "release 9e1d2c0" } };
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	fx->conf.expect_revision = 1;
	fx->conf.health_retries = 1;
	start(fx, script, 1);
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_false(res.ok);
	assert_int_equal(res.tries, 2);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.detail, "does not mention 3f2c1ab"));
	assert_non_null(strstr(res.detail, "body \"release 9e1d2c0\""));
	stop(fx);
}

static void
test_remote_serves_revision(void **state)
{
	static const struct reply script[] = {
		{ 200, "release 9e1d2c0" },
		{ 200, "release 3f2c1ab" },
	};
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	char proxy[64];
	int rc;

	fx->conf.expect_revision = 1;
	start(fx, script, NREPLIES(script));
	/* A proxy in the environment must not catch the tunnelled GET. */
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", closed_port());
	setenv("http_proxy", proxy, 1);
	rc = health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err);
	unsetenv("http_proxy");
	assert_int_equal(rc, 0);
	assert_true(res.ok);
	assert_int_equal(res.tries, 2);
	assert_string_equal(res.detail, "200, serves 3f2c1ab");
	stop(fx);
}

static void
test_remote_nothing_listens(void **state)
{
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	char want[128];
	int port = closed_port();

	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d/health", port);
	fx->conf.health_url = fx->url;
	fx->conf.health_retries = 1;
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_false(res.ok);
	assert_int_equal(res.tries, 2);
	assert_int_equal(res.status, 0);
	snprintf(want, sizeof(want),
		 "nothing listens on 127.0.0.1:%d on web1 "
		 "after 2 tries (",
		 port);
	assert_non_null(strstr(res.detail, want));
	assert_int_equal(fx->fake.forwards, 2);
}

static void
test_remote_deadline(void **state)
{
	static const struct reply script[] = { { 503, "down" } };
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	double t0;

	fx->conf.health_retries = 100;
	fx->conf.health_interval = 0.05;
	fx->conf.health_deadline = 0.5;
	start(fx, script, 1);
	t0 = now_mono();
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_true(now_mono() - t0 < 1.0);
	assert_false(res.ok);
	assert_true(res.elapsed < 1.0);
	assert_true(res.tries >= 2);
	assert_true(res.tries < 101);
	stop(fx);
}

static void
test_remote_deadline_cuts_request(void **state)
{
	static const struct reply script[] = { { 0, "" } };
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	/* A hung app: the deadline, not the 2 s timeout, ends the request. */
	fx->conf.health_deadline = 0.4;
	start(fx, script, 1);
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    0);
	assert_false(res.ok);
	assert_int_equal(res.tries, 1);
	assert_true(res.elapsed < 1.0);
	assert_non_null(strstr(res.detail, "imed out"));
	stop(fx);
}

static void
test_remote_interrupted(void **state)
{
	static const struct reply script[] = { { 503, "down" } };
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	start(fx, script, 1);
	interrupted = 1;
	assert_int_equal(
	    health_check_remote(&fx->remote, &fx->conf, "3f2c1ab", &res, &err),
	    -1);
	assert_int_equal(err.code, RF_EXIT_INTERRUPTED);
	assert_false(res.ok);
	interrupted = 0;
	stop(fx);
}

static void
test_remote_url_forms(void **state)
{
	static const struct {
		const char *url;
		const char *host;
		int port;
	} cases[] = {
		{ "http://[::1]:8000/health", "::1", 8000 },
		{ "http://[::1]/health", "::1", 80 },
		{ "https://example.com/health", "example.com", 443 },
		{ "HTTP://user:pw@app.internal:8080?x=1", "app.internal",
		  8080 },
		{ "http://127.0.0.1", "127.0.0.1", 80 },
	};
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	size_t i;

	fx->fake.record_only = 1;
	fx->conf.health_retries = 0;
	fx->conf.health_timeout = 0.5;
	for (i = 0; i < NREPLIES(cases); i++) {
		fx->conf.health_url = (char *)cases[i].url;
		assert_int_equal(health_check_remote(&fx->remote, &fx->conf,
						     "3f2c1ab", &res, &err),
				 0);
		assert_false(res.ok);
		assert_int_equal(res.tries, 1);
		assert_string_equal(fx->fake.last_host, cases[i].host);
		assert_int_equal(fx->fake.last_port, cases[i].port);
		assert_non_null(strstr(res.detail, "the fake only records"));
	}
}

static void
test_remote_bad_url(void **state)
{
	static const char *bad[] = {
		"ftp://127.0.0.1/health",
		"http:///health",
		"http://127.0.0.1:99999/",
		"http://127.0.0.1:80x/",
		"http://[::1/",
		"127.0.0.1:8000",
	};
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	size_t i;

	for (i = 0; i < NREPLIES(bad); i++) {
		fx->conf.health_url = (char *)bad[i];
		assert_int_equal(health_check_remote(&fx->remote, &fx->conf,
						     "3f2c1ab", &res, &err),
				 -1);
		assert_int_equal(err.code, RF_EXIT_USAGE);
	}
	assert_int_equal(fx->fake.forwards, 0);
}

/* health_check_public */

static void
test_public_becomes_healthy(void **state)
{
	static const struct reply script[] = {
		{ 502, "bad gateway" },
		{ 200, "3f2c1ab" },
	};
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	fx->conf.expect_revision = 1;
	start(fx, script, NREPLIES(script));
	assert_int_equal(health_check_public(&fx->conf, "3f2c1ab", &res, &err),
			 0);
	assert_true(res.ok);
	assert_int_equal(res.tries, 2);
	assert_string_equal(res.detail, "200, serves 3f2c1ab");
	assert_int_equal(stop(fx), 2);
	assert_int_equal(fx->fake.forwards, 0);
}

static void
test_public_refused(void **state)
{
	struct fixture *fx = *state;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d/health",
		 closed_port());
	fx->conf.public_url = fx->url;
	fx->conf.health_retries = 2;
	assert_int_equal(health_check_public(&fx->conf, NULL, &res, &err), 0);
	assert_false(res.ok);
	assert_int_equal(res.tries, 3);
	assert_non_null(strstr(res.detail, "after 3 tries ("));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_judge_ok),
		T(test_body_line),
		T(test_judge_server_error),
		T(test_judge_wrong_status),
		T(test_judge_revision),
		T(test_http_scripted),
		T(test_http_body_bounded),
		T(test_http_closed_port),
		T(test_http_timeout),
		T(test_http_bad_scheme),
		T(test_remote_becomes_healthy),
		T(test_remote_always_503),
		T(test_remote_interval_from_try_start),
		T(test_remote_old_release),
		T(test_remote_serves_revision),
		T(test_remote_nothing_listens),
		T(test_remote_deadline),
		T(test_remote_deadline_cuts_request),
		T(test_remote_interrupted),
		T(test_remote_url_forms),
		T(test_remote_bad_url),
		T(test_public_becomes_healthy),
		T(test_public_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
