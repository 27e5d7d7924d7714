#ifndef RELFLIP_HTTP_H
#define RELFLIP_HTTP_H

#include "error.h"

/* One HTTP GET or POST with libcurl (src/http-curl.c). */

#define HTTP_BODY_MAX (64 * 1024)

struct http_request {
	const char *url;
	const char *unix_socket; /* connect here instead of the URL's host */
	double timeout;          /* seconds, the whole request */
	double connect_timeout;  /* seconds */
};

struct http_response {
	long status;        /* 0 when no response arrived */
	char *body;         /* first HTTP_BODY_MAX bytes, NUL-terminated; owned */
	int transport_ok;   /* a response arrived */
	int retryable;      /* a failure worth another try (refused, timeout) */
	char error[256];    /* curl's message when !transport_ok */
};

/*
 * Load libcurl now rather than at the first request (which would): 0 when
 * it is there, else -1 and err says that what (e.g. "the health check")
 * needs it and why it is missing, under the stage "validate". Once, from
 * any thread.
 */
int http_load(const char *what, struct rf_error *err);

/*
 * GET url. Returns 0 when the request was made, whatever the outcome; the
 * outcome is in res. -1 only for misuse (an unsupported URL scheme) or
 * when libcurl cannot be loaded (the first request loads it).
 */
int http_get(const struct http_request *req, struct http_response *res,
	     struct rf_error *err);

/*
 * POST body (NUL-terminated) as content_type to url, with no
 * "Expect: 100-continue". Returns as http_get() does; a misuse is
 * reported under the stage "notify".
 */
int http_post(const struct http_request *req, const char *content_type,
	      const char *body, struct http_response *res,
	      struct rf_error *err);

void http_response_release(struct http_response *res);

struct http_download {
	const char *url;
	const char *header;     /* one "Name: value" header, or NULL */
	int fd;                 /* where the body goes */
	double timeout;         /* seconds, the whole transfer; 0: none */
	double connect_timeout; /* seconds */
};

/*
 * GET req->url into req->fd, following up to 5 redirects (http and https
 * only; an Authorization header goes to the URL's host alone), asking for
 * application/octet-stream. Same contract as http_get(); res->body stays
 * NULL and res->status is the last response's.
 */
int http_download(const struct http_download *req, struct http_response *res,
		  struct rf_error *err);

#endif
