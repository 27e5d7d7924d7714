#ifndef RELFLIP_HEALTH_H
#define RELFLIP_HEALTH_H

#include "conf.h"
#include "remote.h"

/*
 * The health check of DESIGN.md's [health] section: tries until a good
 * answer, `retries` more times after the first failure, `interval` apart,
 * within `deadline`.
 */

struct health_result {
	int ok;
	long status;        /* last HTTP status, 0 when none */
	int tries;
	double elapsed;     /* seconds */
	char detail[256];   /* "200, serves 3f2c1ab", "503 Service Unavailable" */
	/*
	 * What to try, when the last try failed in a way relflip can name
	 * (the server refuses the tunnel); else "".
	 */
	char hint[512];
};

/*
 * Fetch conf->health_url on the server's own side: an SSH direct-tcpip
 * channel from r, bridged to libcurl through a private unix socket.
 * revision is what expect_revision looks for in the body.
 */
int health_check_remote(struct remote *r, const struct conf *conf,
			const char *revision, struct health_result *res,
			struct rf_error *err);

/* Fetch conf->public_url from where relflip runs. */
int health_check_public(const struct conf *conf, const char *revision,
			struct health_result *res, struct rf_error *err);

/* Longest first line of a body that a failure message quotes. */
#define HEALTH_BODY_SHOWN 80

/*
 * The first line of a response's body, for a failure message ("broken
 * e21d026" says why at once): "" when it is empty, longer than
 * HEALTH_BODY_SHOWN, looks like markup or holds control characters.
 */
void health_body_line(const char *body, char *dst, size_t len);

/*
 * Judge one response against the config: the status must equal
 * expect_status and, with expect_revision, the body contain revision.
 * Pure; writes a reason into why when the answer is not good.
 */
int health_judge(const struct conf *conf, const char *revision, long status,
		 const char *body, char *why, size_t whylen);

#endif
