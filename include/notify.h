#ifndef RELFLIP_NOTIFY_H
#define RELFLIP_NOTIFY_H

#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "error.h"
#include "fleet.h"

/*
 * The end of a deploy or rollback, told to the world outside the servers:
 * the [notify] webhook (a POST of a line of text and the result event),
 * then the runner's hooks (after_deploy on a deploy's success, on_failure
 * on any failure), which read the result event on stdin. Neither changes
 * the exit code: a failure of either is a warning.
 */

/* The webhook's time limit, all of it: connecting, sending, the answer. */
#define NOTIFY_TIMEOUT 5.0

/* How a run ended; every string borrowed, none NULL. */
struct notify_end {
	const char *command;  /* "deploy" or "rollback" */
	const char *status;   /* the result event's: ok, failed, rolled_back */
	int code;             /* the exit code */
	const char *revision; /* the release deployed or rolled back to */
	const char *previous; /* the release live before, or "" */
	long duration_ms;
	size_t hosts;        /* hosts the run worked on */
	const char *app;     /* [app] path */
	const char *actor;   /* who ran it */
	const char *run_url; /* the CI run, or "" */
	const char *why;     /* the failure's message, or "" */
	int changed;         /* current moved on some host */
};

/*
 * A webhook's URL is often its credential (Slack's is): register it, its
 * path and query, and a password in it with out.c, which then never shows
 * them. Called as soon as the config is loaded, before any hook prints.
 */
void notify_secrets(const struct conf *conf);

/* Why a run tells no one, or NULL when it tells: a pure decision. */
const char *notify_skip(const struct notify_end *e);

/* Does the webhook hear of this run ([notify] url and on)? */
int notify_wanted(const struct conf *conf, const struct notify_end *e);

/*
 * The runner's hook for this run: after_deploy after a deploy that
 * succeeded, on_failure after any run that failed; NULL when none is set.
 * *stage gets its name.
 */
const char *notify_hook(const struct conf *conf, const struct notify_end *e,
			const char **stage);

/*
 * The line for people (Slack's `text`), appended to out, secrets
 * redacted: "relflip deploy of v2 to /srv/app on 2 hosts by alice:
 * rolled back to v1 (exit 8): health check failed on web2: ...".
 */
void notify_text(const struct notify_end *e, struct buf *out);

/* The result event's object, as the runner's hooks read it on stdin. */
void notify_result(const struct notify_end *e, struct buf *out);

/* The webhook's body: {"text": ..., "relflip": <the result event>}. */
void notify_payload(const struct notify_end *e, struct buf *out);

/*
 * The RELFLIP_* variables of the runner's hooks, "NAME=value", into
 * vars (n of them, owned by the caller: free each); returns how many.
 */
#define NOTIFY_VARS 6
size_t notify_vars(const struct notify_end *e, char *vars[NOTIFY_VARS]);

/*
 * At the end of deploy_run() and rollback_run(), once the lock is
 * released: after a --dry-run that could run, print what would happen on
 * the runner; after a real run, unless notify_skip() says why not, POST
 * to the webhook and run the runner's hook. Nothing here changes code.
 */
void notify_run_end(const struct fleet *f, const struct run_outcome *o,
		    int code, const struct rf_error *err);

#endif
