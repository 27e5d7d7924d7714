#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Calls go through the pointers below, which the checking macros miss. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "buf.h"
#include "error.h"
#include "http.h"
#include "xmalloc.h"

/*
 * The libcurl adapter behind include/http.h: one GET (health checks) or
 * one POST (the webhook), no redirects, no connection reuse, TLS
 * verification left at libcurl's defaults. The only file that includes
 * <curl/curl.h>.
 */

#define HTTP_USERAGENT "relflip-healthcheck/0.1"
#define HTTP_USERAGENT_POST "relflip-notify/0.2"

/*
 * libcurl is loaded by the first request, not when relflip starts: with
 * the 30 libraries it needs, it cost every run 8 ms to load (a program
 * linking relflip's libraries starts in 18 ms here, 10 without libcurl;
 * 68 against 55 ms under ASan), and most runs make no request (pack,
 * releases, status, a deploy without [health]). The package depends on
 * libcurl4 by name (packaging/deb/build-deb.sh).
 */
#define HTTP_LIBCURL "libcurl.so.4"

static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} lc;

static pthread_once_t lc_once = PTHREAD_ONCE_INIT;
static char lc_error[256]; /* why libcurl is not there; "" once loaded */

/* dlsym into a function pointer without a cast C does not define. */
static int
lc_sym(void *so, const char *name, void *fp)
{
	void *sym = dlsym(so, name);

	if (sym == NULL) {
		snprintf(lc_error, sizeof(lc_error), "%s has no %s",
			 HTTP_LIBCURL, name);
		return -1;
	}
	memcpy(fp, &sym, sizeof(sym));
	return 0;
}

static void
lc_load(void)
{
	const char *why;
	void *so = dlopen(HTTP_LIBCURL, RTLD_NOW | RTLD_LOCAL);

	if (so == NULL) {
		why = dlerror();
		snprintf(lc_error, sizeof(lc_error), "%s",
			 why != NULL ? why : HTTP_LIBCURL ": not found");
		return;
	}
	if (lc_sym(so, "curl_global_init", &lc.global_init) != 0 ||
	    lc_sym(so, "curl_easy_init", &lc.easy_init) != 0 ||
	    lc_sym(so, "curl_easy_setopt", &lc.easy_setopt) != 0 ||
	    lc_sym(so, "curl_easy_perform", &lc.easy_perform) != 0 ||
	    lc_sym(so, "curl_easy_getinfo", &lc.easy_getinfo) != 0 ||
	    lc_sym(so, "curl_easy_cleanup", &lc.easy_cleanup) != 0 ||
	    lc_sym(so, "curl_easy_strerror", &lc.easy_strerror) != 0 ||
	    lc_sym(so, "curl_slist_append", &lc.slist_append) != 0 ||
	    lc_sym(so, "curl_slist_free_all", &lc.slist_free_all) != 0)
		return;
	/* This build's curl_global_init is thread-safe (LIBRARY-NOTES.md). */
	if (lc.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		snprintf(lc_error, sizeof(lc_error), "curl_global_init failed");
}

/*
 * Load libcurl once, whichever thread asks first; others wait for it.
 * what: what needs it, for the error.
 */
static int
http_ready(const char *stage, const char *what, struct rf_error *err)
{
	pthread_once(&lc_once, lc_load);
	if (lc_error[0] == '\0')
		return 0;
	rf_error_set(err, RF_EXIT_INTERNAL, stage,
		     "%s needs libcurl, which cannot be loaded: %s", what,
		     lc_error);
	rf_error_hint(err, "relflip needs libcurl4 for HTTP (apt-get install "
			   "libcurl4)");
	return -1;
}

int
http_load(const char *what, struct rf_error *err)
{
	return http_ready("validate", what, err);
}

/* Keep the first HTTP_BODY_MAX bytes; swallow the rest without failing. */
static size_t
http_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *body = arg;
	size_t n = size * nmemb;
	size_t room = HTTP_BODY_MAX - body->len;

	if (room > 0)
		buf_add(body, data, n < room ? n : room);
	return n;
}

/* Stop a transfer in progress once SIGINT or SIGTERM arrived. */
static int
http_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
	      curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return interrupted ? 1 : 0;
}

/* Failures where the next attempt may well succeed. */
static int
http_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* Seconds to whole milliseconds for libcurl, where 0 means no limit. */
static long
http_ms(double seconds)
{
	if (seconds <= 0)
		return 0;
	if (seconds * 1000.0 < 1.0)
		return 1;
	if (seconds > 86400.0)
		return 86400L * 1000;
	return (long)(seconds * 1000.0 + 0.5);
}

/* Copy curl's message without the newline some messages end with. */
static void
http_set_error(struct http_response *res, const char *msg)
{
	size_t n;

	snprintf(res->error, sizeof(res->error), "%s", msg);
	n = strlen(res->error);
	while (n > 0 &&
	       (res->error[n - 1] == '\n' || res->error[n - 1] == '\r'))
		res->error[--n] = '\0';
}

/* What every request sets: where, how long, which protocols, progress. */
static void
http_common(CURL *h, const char *url, double timeout, double connect_timeout,
	    char *errbuf)
{
	errbuf[0] = '\0';
	lc.easy_setopt(h, CURLOPT_URL, url);
	lc.easy_setopt(h, CURLOPT_TIMEOUT_MS, http_ms(timeout));
	lc.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, http_ms(connect_timeout));
	lc.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	lc.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	lc.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	lc.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_progress);
	lc.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
}

/*
 * Make the request: res->transport_ok, or why not (retryable, error);
 * the last response's status, if any, into *status.
 */
static void
http_run(CURL *h, const char *errbuf, struct http_response *res, long *status)
{
	CURLcode rc = lc.easy_perform(h);

	*status = 0;
	lc.easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (rc == CURLE_OK) {
		res->transport_ok = 1;
		return;
	}
	res->retryable = http_retryable(rc);
	if (rc == CURLE_ABORTED_BY_CALLBACK && interrupted)
		http_set_error(res, "interrupted");
	else if (errbuf[0] != '\0')
		http_set_error(res, errbuf);
	else
		http_set_error(res, lc.easy_strerror(rc));
}

/*
 * One request: a GET, or a POST of body as content_type when body is not
 * NULL. stage names the stage a misuse is reported under.
 */
static int
http_perform(const struct http_request *req, const char *content_type,
	     const char *body, const char *stage, struct http_response *res,
	     struct rf_error *err)
{
	char errbuf[CURL_ERROR_SIZE];
	struct buf got = BUF_INIT, ctype = BUF_INIT;
	struct curl_slist *headers = NULL;
	CURL *h = NULL;
	long status = 0;
	int r = -1;

	memset(res, 0, sizeof(*res));
	if (req->url == NULL || (strncasecmp(req->url, "http://", 7) != 0 &&
				 strncasecmp(req->url, "https://", 8) != 0))
		return rf_error_set(err, RF_EXIT_USAGE, stage,
				    "'%s' is not an http:// or https:// URL",
				    req->url ? req->url : "");
	if (http_ready(stage, body != NULL ? "the webhook" : "the health check",
		       err) != 0)
		return -1;

	h = lc.easy_init();
	if (h == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, stage,
			     "cannot start a libcurl request");
		goto out;
	}

	got.max = HTTP_BODY_MAX;
	http_common(h, req->url, req->timeout, req->connect_timeout, errbuf);
	if (req->unix_socket != NULL) {
		/* The socket is the destination: no $http_proxy in between. */
		lc.easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
		lc.easy_setopt(h, CURLOPT_PROXY, "");
	}
	if (body != NULL) {
		buf_addf(&ctype, "Content-Type: %s", content_type);
		headers = lc.slist_append(headers, buf_str(&ctype));
		/*
		 * No "Expect: 100-continue" (libcurl sends it past 1 KiB): a
		 * receiver that never answers it would cost a second.
		 */
		if (headers != NULL)
			headers = lc.slist_append(headers, "Expect:");
		if (headers == NULL) {
			rf_error_set(err, RF_EXIT_INTERNAL, stage,
				     "cannot start a libcurl request");
			goto out;
		}
		lc.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		lc.easy_setopt(h, CURLOPT_POSTFIELDS, body);
		lc.easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		lc.easy_setopt(h, CURLOPT_USERAGENT, HTTP_USERAGENT_POST);
	} else {
		lc.easy_setopt(h, CURLOPT_USERAGENT, HTTP_USERAGENT);
	}
	lc.easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	lc.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	lc.easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
	lc.easy_setopt(h, CURLOPT_WRITEDATA, &got);

	http_run(h, errbuf, res, &status);
	/* A status only from a response that arrived whole. */
	if (res->transport_ok)
		res->status = status;
	res->body = buf_detach(&got, NULL);
	r = 0;
out:
	if (h != NULL)
		lc.easy_cleanup(h);
	lc.slist_free_all(headers);
	buf_release(&got);
	buf_release(&ctype);
	return r;
}

int
http_get(const struct http_request *req, struct http_response *res,
	 struct rf_error *err)
{
	return http_perform(req, NULL, NULL, "health", res, err);
}

int
http_post(const struct http_request *req, const char *content_type,
	  const char *body, struct http_response *res, struct rf_error *err)
{
	return http_perform(req, content_type, body, "notify", res, err);
}

/* The body into the caller's file; a short count stops the transfer. */
static size_t
http_write_fd(char *data, size_t size, size_t nmemb, void *arg)
{
	const int *fd = arg;
	size_t n = size * nmemb, done = 0;

	while (done < n) {
		ssize_t w = write(*fd, data + done, n - done);

		if (w <= 0)
			return done;
		done += (size_t)w;
	}
	return n;
}

int
http_download(const struct http_download *req, struct http_response *res,
	      struct rf_error *err)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers = NULL;
	CURL *h;
	int fd = req->fd;

	memset(res, 0, sizeof(*res));
	if (strncasecmp(req->url, "http://", 7) != 0 &&
	    strncasecmp(req->url, "https://", 8) != 0)
		return rf_error_set(err, RF_EXIT_USAGE, "validate",
				    "the artifact's URL is not an http:// or "
				    "https:// URL");
	if (http_ready("validate", "the artifact's download", err) != 0)
		return -1;
	h = lc.easy_init();
	if (h == NULL)
		return rf_error_set(err, RF_EXIT_INTERNAL, "validate",
				    "cannot start a libcurl request");
	headers = lc.slist_append(headers, "Accept: application/octet-stream");
	if (req->header != NULL)
		headers = lc.slist_append(headers, req->header);
	http_common(h, req->url, req->timeout, req->connect_timeout, errbuf);
	lc.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	lc.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	lc.easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	lc.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	lc.easy_setopt(h, CURLOPT_USERAGENT, "relflip/0.2");
	lc.easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_fd);
	lc.easy_setopt(h, CURLOPT_WRITEDATA, &fd);

	http_run(h, errbuf, res, &res->status);
	lc.easy_cleanup(h);
	lc.slist_free_all(headers);
	return 0;
}

void
http_response_release(struct http_response *res)
{
	if (res == NULL)
		return;
	free(res->body);
	res->body = NULL;
}
