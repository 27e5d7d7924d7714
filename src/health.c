#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "error.h"
#include "health.h"
#include "http.h"
#include "out.h"
#include "remote.h"

/*
 * The health check: a loop of GETs, judged against [health], bounded by
 * retries and a deadline. On the server's side, each GET travels through
 * a private unix socket that a pump thread bridges to an SSH direct-tcpip
 * channel (libcurl 7.88.1 cannot take an already connected socket, see
 * LIBRARY-NOTES.md section 3). While the pump thread owns the remote, the
 * calling thread only waits in libcurl, so one thread uses the session at
 * a time.
 */

#define HEALTH_DEFAULT_STATUS 200
#define HEALTH_DEFAULT_TIMEOUT 5.0
#define HEALTH_SLEEP_STEP 0.05 /* seconds between looks at `interrupted` */
#define HEALTH_PUMP_SLACK 1.0  /* the pump outlives curl's own timeout */
#define HEALTH_SOCK_NAME "http.sock"

/* What one attempt needs: the URL, and for the tunnel the remote side. */
struct health_ctx {
	const struct conf *conf;
	const char *revision;
	const char *url;
	struct remote *r; /* NULL: fetch url directly */
	char host[256];   /* url's host, without [] for IPv6 */
	int port;
	char dir[PATH_MAX]; /* private 0700 directory, "" when none */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char hint[512]; /* the last tunnel failure's hint, "" when none */
};

/* The pump thread's side of one tunnelled attempt. */
struct health_pump {
	struct remote *r;
	const char *host;
	int port;
	int lfd;    /* listening unix socket, non-blocking */
	int stopfd; /* readable once the caller's GET is over */
	double timeout;
	int accepted;
	int rc; /* remote_forward's result */
	struct rf_error err;
};

static const struct {
	long status;
	const char *phrase;
} health_phrases[] = {
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 429, "Too Many Requests" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
};

/* Copy src into dst, cut to fit: messages are allowed to be truncated. */
static void
health_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (dstlen == 0)
		return;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Write res->detail; a long message is cut to fit. */
static void __attribute__((format(printf, 2, 3)))
health_detail(struct health_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
}

static const char *
health_phrase(long status)
{
	size_t i;

	for (i = 0; i < sizeof(health_phrases) / sizeof(health_phrases[0]);
	     i++) {
		if (health_phrases[i].status == status)
			return health_phrases[i].phrase;
	}
	return NULL;
}

/*
 * Returns 1 when the answer is good, 0 when it is not (with the reason in
 * why, e.g. "503 Service Unavailable").
 */
int
health_judge(const struct conf *conf, const char *revision, long status,
	     const char *body, char *why, size_t whylen)
{
	int expect = conf->expect_status > 0 ? conf->expect_status
					     : HEALTH_DEFAULT_STATUS;
	const char *phrase;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (status != expect) {
		phrase = health_phrase(status);
		if (status >= 500 && phrase != NULL)
			snprintf(why, whylen, "%ld %s", status, phrase);
		else if (phrase != NULL)
			snprintf(why, whylen, "got %ld %s instead of %d",
				 status, phrase, expect);
		else
			snprintf(why, whylen, "got %ld instead of %d", status,
				 expect);
		return 0;
	}
	if (!conf->expect_revision)
		return 1;
	if (revision == NULL || revision[0] == '\0') {
		snprintf(why, whylen,
			 "%ld, but there is no release id to look for in the "
			 "body",
			 status);
		return 0;
	}
	if (body == NULL || strstr(body, revision) == NULL) {
		snprintf(why, whylen,
			 "%ld but the body does not mention %s: the app still "
			 "serves the old release",
			 status, revision);
		return 0;
	}
	return 1;
}

static double
health_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Sleep until the monotonic time t, in short steps so that a signal
 * delivered to another thread still wakes us. -1 when interrupted.
 */
static int
health_sleep_until(double t)
{
	struct timespec ts;
	double now, wake;

	for (;;) {
		if (interrupted)
			return -1;
		now = health_now();
		if (now >= t)
			return 0;
		wake =
		    t - now > HEALTH_SLEEP_STEP ? now + HEALTH_SLEEP_STEP : t;
		ts.tv_sec = (time_t)wake;
		ts.tv_nsec = (long)((wake - (double)ts.tv_sec) * 1e9);
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_nsec = 999999999L;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/*
 * Split an http:// or https:// URL into host and port (80 or 443 unless
 * given). IPv6 literals come in brackets and leave without them.
 */
static int
health_parse_url(const char *url, char *host, size_t hostlen, int *port,
		 struct rf_error *err)
{
	const char *p, *end, *h, *hend, *ps, *q;
	long n;

	*port = 0;
	if (strncasecmp(url, "http://", 7) == 0) {
		p = url + 7;
		*port = 80;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		p = url + 8;
		*port = 443;
	} else {
		goto bad;
	}
	end = p + strcspn(p, "/?#");
	for (q = p; q < end; q++) {
		if (*q == '@')
			p = q + 1; /* skip user:password@ */
	}
	if (p < end && *p == '[') {
		h = p + 1;
		hend = memchr(h, ']', (size_t)(end - h));
		if (hend == NULL)
			goto bad;
		ps = hend + 1;
		if (ps < end && *ps != ':')
			goto bad;
	} else {
		h = p;
		hend = memchr(h, ':', (size_t)(end - h));
		if (hend == NULL)
			hend = end;
		ps = hend;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen)
		goto bad;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (ps < end && *ps == ':' && ps + 1 < end) {
		n = 0;
		for (q = ps + 1; q < end; q++) {
			if (*q < '0' || *q > '9' || n > 65535)
				goto bad;
			n = n * 10 + (*q - '0');
		}
		if (n < 1 || n > 65535)
			goto bad;
		*port = (int)n;
	}
	return 0;
bad:
	return rf_error_set(err, RF_EXIT_USAGE, "health",
			    "[health] url: '%s' is not an http:// or https:// "
			    "URL with a host",
			    url);
}

/* Make the private directory the unix socket lives in. */
static int
health_mkdir(struct health_ctx *ctx, struct rf_error *err)
{
	const char *bases[2];
	size_t i;
	int n;

	bases[0] = getenv("TMPDIR");
	bases[1] = "/tmp";
	for (i = 0; i < 2; i++) {
		if (bases[i] == NULL || bases[i][0] == '\0')
			continue;
		n = snprintf(ctx->dir, sizeof(ctx->dir),
			     "%s/relflip-health-XXXXXX", bases[i]);
		if (n < 0 || (size_t)n >= sizeof(ctx->dir))
			continue;
		/* The socket's path must fit in sun_path. */
		if ((size_t)n + 1 + strlen(HEALTH_SOCK_NAME) >=
		    sizeof(ctx->sock))
			continue;
		if (mkdtemp(ctx->dir) == NULL) {
			if (i == 0)
				continue;
			ctx->dir[0] = '\0';
			return rf_error_set(err, RF_EXIT_INTERNAL, "health",
					    "cannot create a private directory "
					    "in /tmp: %s",
					    strerror(errno));
		}
		n = snprintf(ctx->sock, sizeof(ctx->sock), "%s/%s", ctx->dir,
			     HEALTH_SOCK_NAME);
		if (n < 0 || (size_t)n >= sizeof(ctx->sock))
			rf_bug("socket path '%s' too long", ctx->dir);
		return 0;
	}
	ctx->dir[0] = '\0';
	return rf_error_set(err, RF_EXIT_INTERNAL, "health",
			    "cannot create a private directory for the health "
			    "check's socket");
}

static void
health_rmdir(struct health_ctx *ctx)
{
	if (ctx->dir[0] == '\0')
		return;
	unlink(ctx->sock);
	rmdir(ctx->dir);
	ctx->dir[0] = '\0';
}

/* A fresh listener for each attempt, so no stale connection waits in it. */
static int
health_listen(struct health_ctx *ctx, struct rf_error *err)
{
	struct sockaddr_un sun;
	int fd;

	unlink(ctx->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return rf_error_set(err, RF_EXIT_INTERNAL, "health",
				    "cannot create a unix socket: %s",
				    strerror(errno));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, ctx->sock, strlen(ctx->sock) + 1);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 1) != 0) {
		rf_error_set(err, RF_EXIT_INTERNAL, "health",
			     "cannot listen on '%s': %s", ctx->sock,
			     strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The pump thread: accept the one connection libcurl makes, then hand it to
 * remote_forward until either side closes. Gives up when the caller says
 * its GET is over, or after the timeout.
 */
static void *
health_pump_main(void *arg)
{
	struct health_pump *p = arg;
	struct pollfd pfd[2];
	double end = health_now() + p->timeout;
	double left;
	int connfd, n;

	for (;;) {
		left = end - health_now();
		if (left <= 0) {
			p->rc = rf_error_set(&p->err, RF_EXIT_HEALTH, "health",
					     "libcurl never connected to the "
					     "health check's socket");
			return NULL;
		}
		pfd[0].fd = p->stopfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = p->lfd;
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, 2, (int)(left * 1000.0) + 1);
		if (n == -1 && errno != EINTR) {
			p->rc =
			    rf_error_set(&p->err, RF_EXIT_INTERNAL, "health",
					 "poll: %s", strerror(errno));
			return NULL;
		}
		if (n <= 0)
			continue;
		if (pfd[0].revents != 0)
			return NULL; /* the GET is over without us */
		if (pfd[1].revents == 0)
			continue;
		connfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (connfd == -1) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK || errno == ECONNABORTED)
				continue;
			p->rc =
			    rf_error_set(&p->err, RF_EXIT_INTERNAL, "health",
					 "accept: %s", strerror(errno));
			return NULL;
		}
		break;
	}
	p->accepted = 1;
	p->rc =
	    remote_forward(p->r, p->host, p->port, connfd, p->timeout, &p->err);
	close(connfd);
	return NULL;
}

/*
 * One GET through the tunnel. 0 when it was made (the outcome is in hr, and
 * a reason for failure in why), -1 for errors that are no health verdict.
 */
static int
health_try_remote(struct health_ctx *ctx, double timeout,
		  struct http_response *hr, char *why, size_t whylen,
		  struct rf_error *err)
{
	struct http_request req = {
		.url = ctx->url,
		.unix_socket = ctx->sock,
		.timeout = timeout,
		.connect_timeout = timeout,
	};
	struct health_pump pump;
	pthread_t tid;
	int stop[2] = { -1, -1 };
	int lfd, rc, r = -1;

	memset(hr, 0, sizeof(*hr));
	ctx->hint[0] = '\0';
	lfd = health_listen(ctx, err);
	if (lfd == -1)
		return -1;
	if (pipe2(stop, O_CLOEXEC) != 0) {
		rf_error_set(err, RF_EXIT_INTERNAL, "health", "pipe: %s",
			     strerror(errno));
		goto out;
	}
	memset(&pump, 0, sizeof(pump));
	pump.r = ctx->r;
	pump.host = ctx->host;
	pump.port = ctx->port;
	pump.lfd = lfd;
	pump.stopfd = stop[0];
	pump.timeout = timeout + HEALTH_PUMP_SLACK;
	rc = pthread_create(&tid, NULL, health_pump_main, &pump);
	if (rc != 0) {
		rf_error_set(err, RF_EXIT_INTERNAL, "health",
			     "cannot start a thread: %s", strerror(rc));
		goto out;
	}

	/* From here until the join, only the pump thread touches ctx->r. */
	rc = http_get(&req, hr, err);
	while (write(stop[1], "x", 1) == -1 && errno == EINTR)
		;
	pthread_join(tid, NULL);
	if (rc != 0)
		goto out;

	if (!hr->transport_ok) {
		if (pump.accepted && pump.rc != 0) {
			/* The tunnel failed, most often as nothing listens. */
			health_copy(why, whylen, pump.err.msg);
			health_copy(ctx->hint, sizeof(ctx->hint),
				    pump.err.hint);
			hr->retryable = 1;
		} else {
			health_copy(why, whylen, hr->error);
		}
	}
	r = 0;
out:
	if (stop[0] != -1)
		close(stop[0]);
	if (stop[1] != -1)
		close(stop[1]);
	close(lfd);
	unlink(ctx->sock);
	return r;
}

static int
health_try_direct(struct health_ctx *ctx, double timeout,
		  struct http_response *hr, char *why, size_t whylen,
		  struct rf_error *err)
{
	struct http_request req = {
		.url = ctx->url,
		.timeout = timeout,
		.connect_timeout = timeout,
	};

	if (http_get(&req, hr, err) != 0)
		return -1;
	if (!hr->transport_ok)
		health_copy(why, whylen, hr->error);
	return 0;
}

void
health_body_line(const char *body, char *dst, size_t len)
{
	const unsigned char *p;
	size_t n;

	if (len == 0)
		return;
	dst[0] = '\0';
	if (body == NULL)
		return;
	n = strcspn(body, "\r\n");
	while (n > 0 && (body[n - 1] == ' ' || body[n - 1] == '\t'))
		n--;
	/* A page of HTML says nothing on one line: only short text. */
	if (n == 0 || n > HEALTH_BODY_SHOWN || n >= len)
		return;
	for (p = (const unsigned char *)body;
	     p < (const unsigned char *)body + n; p++) {
		if (*p < 0x20 && *p != '\t')
			return;
		if (*p == '<')
			return;
	}
	memcpy(dst, body, n);
	dst[n] = '\0';
}

/* The retry loop shared by both checks; fills res. */
static int
health_loop(struct health_ctx *ctx, struct health_result *res,
	    struct rf_error *err)
{
	const struct conf *conf = ctx->conf;
	struct http_response hr;
	char why[256], body[HEALTH_BODY_SHOWN + 1];
	double start, deadline, now, timeout, next, quick = 0.05;
	double interval = conf->health_interval > 0 ? conf->health_interval : 0;
	int maxtries, counted = 0, good = 0, r = -1;

	start = health_now();
	deadline =
	    conf->health_deadline > 0 ? start + conf->health_deadline : 0;
	maxtries = 1 + (conf->health_retries > 0 ? conf->health_retries : 0);
	why[0] = '\0';
	body[0] = '\0';

	for (;;) {
		if (interrupted)
			goto interrupted;
		now = health_now();
		timeout = conf->health_timeout > 0 ? conf->health_timeout
						   : HEALTH_DEFAULT_TIMEOUT;
		if (deadline > 0 && deadline - now < timeout)
			timeout = deadline - now;
		if (timeout < 0.001) {
			if (res->tries > 0)
				break;
			timeout = 0.001;
		}

		why[0] = '\0';
		if (ctx->r != NULL)
			r = health_try_remote(ctx, timeout, &hr, why,
					      sizeof(why), err);
		else
			r = health_try_direct(ctx, timeout, &hr, why,
					      sizeof(why), err);
		if (r != 0)
			goto out;
		r = -1;
		res->tries++;
		res->status = hr.status;
		body[0] = '\0';
		if (hr.transport_ok) {
			good = health_judge(conf, ctx->revision, hr.status,
					    hr.body, why, sizeof(why));
			health_body_line(hr.body, body, sizeof(body));
		}
		if (hr.transport_ok)
			out_debug("%s%sGET %s, try %d: %ld%s%s%s, %s",
				  ctx->r ? ctx->r->name : "",
				  ctx->r ? ": " : "", ctx->url, res->tries,
				  hr.status, body[0] ? ", body \"" : "", body,
				  body[0] ? "\"" : "", good ? "good" : why);
		else
			out_debug("%s%sGET %s, try %d: %s",
				  ctx->r ? ctx->r->name : "",
				  ctx->r ? ": " : "", ctx->url, res->tries,
				  why);
		http_response_release(&hr);
		if (good)
			break;
		if (interrupted)
			goto interrupted;
		/*
		 * A restarted app often answers within the first interval:
		 * until one interval has passed, try again sooner (50 ms,
		 * 100 ms, 200 ms, ...), and count only the tries after it
		 * against retries, so retries x interval stays the window.
		 * The pause runs from the try's start (now): a try costs a
		 * round trip, which over a WAN link would otherwise stretch
		 * every interval by one (Capistrano's loop runs on the server).
		 */
		if (maxtries > 1 && now + quick < start + interval) {
			next = now + quick;
			quick *= 2;
		} else {
			if (++counted >= maxtries)
				break;
			next = now + interval;
		}
		if (deadline > 0 && next >= deadline)
			break;
		if (health_sleep_until(next) != 0)
			goto interrupted;
	}

	res->elapsed = health_now() - start;
	res->ok = good;
	if (!good)
		health_copy(res->hint, sizeof(res->hint), ctx->hint);
	if (good && conf->expect_revision)
		health_detail(res, "%ld, serves %s", res->status,
			      ctx->revision);
	else if (good)
		health_detail(res, "%ld", res->status);
	else if (body[0] != '\0')
		health_detail(res, "%s, body \"%s\", after %d %s (%.1f s)", why,
			      body, res->tries,
			      res->tries == 1 ? "try" : "tries", res->elapsed);
	else
		health_detail(res, "%s after %d %s (%.1f s)", why, res->tries,
			      res->tries == 1 ? "try" : "tries", res->elapsed);
	return 0;

interrupted:
	health_detail(res, "interrupted after %d %s", res->tries,
		      res->tries == 1 ? "try" : "tries");
	rf_error_set(err, RF_EXIT_INTERRUPTED, "health",
		     "interrupted during the health check");
out:
	res->elapsed = health_now() - start;
	res->ok = 0;
	return r;
}

int
health_check_remote(struct remote *r, const struct conf *conf,
		    const char *revision, struct health_result *res,
		    struct rf_error *err)
{
	struct health_ctx ctx;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&ctx, 0, sizeof(ctx));
	if (conf->health_url == NULL)
		return rf_error_set(err, RF_EXIT_USAGE, "health",
				    "[health] url is not set");
	ctx.conf = conf;
	ctx.revision = revision;
	ctx.url = conf->health_url;
	ctx.r = r;
	if (health_parse_url(ctx.url, ctx.host, sizeof(ctx.host), &ctx.port,
			     err) != 0)
		return -1;
	if (health_mkdir(&ctx, err) != 0)
		return -1;
	rc = health_loop(&ctx, res, err);
	health_rmdir(&ctx);
	if (rc != 0 && r != NULL)
		rf_error_host(err, r->name);
	return rc;
}

int
health_check_public(const struct conf *conf, const char *revision,
		    struct health_result *res, struct rf_error *err)
{
	struct health_ctx ctx;

	memset(res, 0, sizeof(*res));
	memset(&ctx, 0, sizeof(ctx));
	if (conf->public_url == NULL)
		return rf_error_set(err, RF_EXIT_USAGE, "health",
				    "[health] public_url is not set");
	ctx.conf = conf;
	ctx.revision = revision;
	ctx.url = conf->public_url;
	return health_loop(&ctx, res, err);
}
