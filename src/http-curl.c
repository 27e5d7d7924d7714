#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

static int http_initialized;

int
http_global_init(void)
{
	if (http_initialized)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	http_initialized = 1;
	return 0;
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
	CURLcode rc;
	long status = 0;
	int r = -1;

	memset(res, 0, sizeof(*res));
	if (req->url == NULL || (strncasecmp(req->url, "http://", 7) != 0 &&
				 strncasecmp(req->url, "https://", 8) != 0))
		return rf_error_set(err, RF_EXIT_USAGE, stage,
				    "'%s' is not an http:// or https:// URL",
				    req->url ? req->url : "");

	h = curl_easy_init();
	if (h == NULL) {
		rf_error_set(err, RF_EXIT_INTERNAL, stage,
			     "cannot start a libcurl request");
		goto out;
	}

	errbuf[0] = '\0';
	got.max = HTTP_BODY_MAX;
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	if (req->unix_socket != NULL) {
		/* The socket is the destination: no $http_proxy in between. */
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	}
	if (body != NULL) {
		buf_addf(&ctype, "Content-Type: %s", content_type);
		headers = curl_slist_append(headers, buf_str(&ctype));
		/*
		 * No "Expect: 100-continue" (libcurl sends it past 1 KiB): a
		 * receiver that never answers it would cost a second.
		 */
		if (headers != NULL)
			headers = curl_slist_append(headers, "Expect:");
		if (headers == NULL) {
			rf_error_set(err, RF_EXIT_INTERNAL, stage,
				     "cannot start a libcurl request");
			goto out;
		}
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(h, CURLOPT_USERAGENT, HTTP_USERAGENT_POST);
	} else {
		curl_easy_setopt(h, CURLOPT_USERAGENT, HTTP_USERAGENT);
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, http_ms(req->timeout));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 http_ms(req->connect_timeout));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_progress);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);

	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK) {
		res->transport_ok = 1;
		res->status = status;
	} else {
		res->retryable = http_retryable(rc);
		if (rc == CURLE_ABORTED_BY_CALLBACK && interrupted)
			http_set_error(res, "interrupted");
		else if (errbuf[0] != '\0')
			http_set_error(res, errbuf);
		else
			http_set_error(res, curl_easy_strerror(rc));
	}
	res->body = buf_detach(&got, NULL);
	r = 0;
out:
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(headers);
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
	CURLcode rc;
	long status = 0;
	int fd = req->fd;

	memset(res, 0, sizeof(*res));
	if (strncasecmp(req->url, "http://", 7) != 0 &&
	    strncasecmp(req->url, "https://", 8) != 0)
		return rf_error_set(err, RF_EXIT_USAGE, "validate",
				    "the artifact's URL is not an http:// or "
				    "https:// URL");
	h = curl_easy_init();
	if (h == NULL)
		return rf_error_set(err, RF_EXIT_INTERNAL, "validate",
				    "cannot start a libcurl request");
	headers =
	    curl_slist_append(headers, "Accept: application/octet-stream");
	if (req->header != NULL)
		headers = curl_slist_append(headers, req->header);
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, http_ms(req->timeout));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 http_ms(req->connect_timeout));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "relflip/0.2");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_fd);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &fd);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_progress);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);

	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	res->status = status;
	if (rc == CURLE_OK) {
		res->transport_ok = 1;
	} else {
		res->retryable = http_retryable(rc);
		if (rc == CURLE_ABORTED_BY_CALLBACK && interrupted)
			http_set_error(res, "interrupted");
		else if (errbuf[0] != '\0')
			http_set_error(res, errbuf);
		else
			http_set_error(res, curl_easy_strerror(rc));
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
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
