/*
 * The end of a deploy or rollback, told outside the servers: the [notify]
 * webhook and the runner's hooks (after_deploy, on_failure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "http.h"
#include "json.h"
#include "notify.h"
#include "out.h"
#include "runner.h"
#include "xmalloc.h"

const char *
notify_skip(const struct notify_end *e)
{
	/*
	 * Before the switch, current is unchanged; and CI cancels a run it
	 * has a newer one for, whose own end tells.
	 */
	if (e->code == RF_EXIT_INTERRUPTED)
		return "interrupted: current is unchanged and relflip was "
		       "asked "
		       "to stop";
	if (e->code == 0 && !e->changed)
		return "nothing changed";
	return NULL;
}

int
notify_wanted(const struct conf *conf, const struct notify_end *e)
{
	if (conf->notify_url == NULL)
		return 0;
	return conf->notify_on == NOTIFY_ALWAYS || e->code != 0;
}

const char *
notify_hook(const struct conf *conf, const struct notify_end *e,
	    const char **stage)
{
	if (e->code != 0) {
		*stage = "on_failure";
		return conf->hook_on_failure;
	}
	*stage = "after_deploy";
	if (strcmp(e->command, "deploy") != 0)
		return NULL;
	return conf->hook_after_deploy;
}

/* How it ended, in a few words, for notify_text. */
static void
text_outcome(const struct notify_end *e, struct buf *out)
{
	char dur[32];

	out_format_duration(dur, sizeof(dur), e->duration_ms);
	switch (e->code) {
	case RF_EXIT_OK:
		buf_addf(out, "ok in %s", dur);
		if (e->previous[0] != '\0')
			buf_addf(out, " (%s: %s)",
				 strcmp(e->command, "deploy") == 0
				     ? "rollback target"
				     : "was",
				 e->previous);
		return;
	case RF_EXIT_HEALTH:
		buf_addf(out, "%s",
			 strcmp(e->command, "deploy") == 0 ? "rolled back"
							   : "switched back");
		if (e->previous[0] != '\0')
			buf_addf(out, " to %s", e->previous);
		break;
	case RF_EXIT_ROLLBACK_FAILED:
		buf_adds(out, "FAILED, and the way back failed too: a person "
			      "is needed");
		break;
	case RF_EXIT_USAGE:
	case RF_EXIT_ARTIFACT:
	case RF_EXIT_CONNECT:
	case RF_EXIT_LOCKED:
	case RF_EXIT_UPLOAD:
	case RF_EXIT_HOOK:
	case RF_EXIT_REF:
		buf_adds(out, "failed, current unchanged");
		break;
	default:
		buf_adds(out, "failed");
		break;
	}
	buf_addf(out, " (exit %d)", e->code);
}

void
notify_text(const struct notify_end *e, struct buf *out)
{
	struct buf t = BUF_INIT;
	char *red;

	if (strcmp(e->command, "deploy") == 0) {
		buf_addf(&t, "relflip deploy of %s to %s",
			 e->revision[0] ? e->revision : "(no release id)",
			 e->app);
	} else {
		buf_addf(&t, "relflip %s of %s", e->command, e->app);
		if (e->revision[0] != '\0')
			buf_addf(&t, " to %s", e->revision);
	}
	buf_addf(&t, " on %zu host%s", e->hosts, e->hosts == 1 ? "" : "s");
	if (e->actor[0] != '\0')
		buf_addf(&t, " by %s", e->actor);
	buf_adds(&t, ": ");
	text_outcome(e, &t);
	if (e->code != 0 && e->why[0] != '\0')
		buf_addf(&t, ": %s", e->why);
	if (e->run_url[0] != '\0')
		buf_addf(&t, " · %s", e->run_url);
	red = out_redact(buf_str(&t));
	buf_adds(out, red);
	free(red);
	buf_release(&t);
}

void
notify_result(const struct notify_end *e, struct buf *out)
{
	/* As main.c's result event: an empty id is null. */
	out_result_json(out, e->status, e->code,
			e->revision[0] ? e->revision : NULL,
			e->previous[0] ? e->previous : NULL, e->duration_ms);
}

void
notify_payload(const struct notify_end *e, struct buf *out)
{
	struct buf text = BUF_INIT;

	notify_text(e, &text);
	buf_adds(out, "{\"text\": ");
	json_quote(out, buf_str(&text));
	buf_adds(out, ", \"relflip\": ");
	notify_result(e, out);
	buf_addch(out, '}');
	buf_release(&text);
}

size_t
notify_vars(const struct notify_end *e, char *vars[NOTIFY_VARS])
{
	size_t n = 0;

	vars[n++] = xasprintf("RELFLIP_COMMAND=%s", e->command);
	vars[n++] = xasprintf("RELFLIP_RESULT=%s", e->status);
	vars[n++] = xasprintf("RELFLIP_EXIT_CODE=%d", e->code);
	vars[n++] = xasprintf("RELFLIP_REVISION=%s", e->revision);
	vars[n++] = xasprintf("RELFLIP_PREVIOUS_REVISION=%s", e->previous);
	vars[n++] = xasprintf("RELFLIP_APP_PATH=%s", e->app);
	return n;
}

void
notify_secrets(const struct conf *conf)
{
	const char *url = conf->notify_url, *host, *path, *at;
	char *userinfo;

	if (url == NULL)
		return;
	out_secret(url);
	host = strstr(url, "://");
	if (host == NULL)
		return;
	host += 3;
	path = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(path - host));
	if (at != NULL) {
		userinfo = xstrndup(host, (size_t)(at - host));
		out_secret(userinfo);
		if (strchr(userinfo, ':') != NULL)
			out_secret(strchr(userinfo, ':') + 1);
		free(userinfo);
	}
	if (path[0] != '\0' && strcmp(path, "/") != 0)
		out_secret(path);
}

static void
notify_post(const struct conf *conf, const struct notify_end *e)
{
	struct http_request req = {
		.url = conf->notify_url,
		.timeout = NOTIFY_TIMEOUT,
		.connect_timeout = NOTIFY_TIMEOUT,
	};
	struct http_response res;
	struct rf_error err = RF_ERROR_INIT;
	struct buf body = BUF_INIT;
	long long t0 = out_now_ms();
	char detail[320];
	int ok = 0;

	notify_payload(e, &body);
	out_stage_begin(NULL, "notify");
	if (http_post(&req, "application/json", buf_str(&body), &res, &err) !=
	    0) {
		snprintf(detail, sizeof(detail), "%.300s", err.msg);
	} else if (!res.transport_ok) {
		snprintf(detail, sizeof(detail), "%.300s", res.error);
	} else if (res.status < 200 || res.status > 299) {
		snprintf(detail, sizeof(detail),
			 "the webhook answered HTTP %ld", res.status);
	} else {
		ok = 1;
		snprintf(detail, sizeof(detail), "webhook: HTTP %ld",
			 res.status);
	}
	http_response_release(&res);
	out_stage_end(NULL, "notify", (long)(out_now_ms() - t0), ok, detail);
	if (!ok)
		out_warning(NULL, "notify",
			    "the [notify] webhook was not told of this %s: %s; "
			    "the %s's result stands (exit %d)",
			    e->command, detail, e->command, e->code);
	buf_release(&body);
}

static void
notify_run_hook(const struct conf *conf, const char *stage, const char *command,
		const struct notify_end *e)
{
	struct hook_lines hl = { "runner", stage, "", 0 };
	struct runner_cmd c = { 0 };
	struct runner_result res;
	struct rf_error err = RF_ERROR_INIT;
	struct buf input = BUF_INIT;
	char *vars[NOTIFY_VARS + 1];
	char detail[640], limit[32];
	long long t0 = out_now_ms();
	size_t nv, i;
	int ok = 0;

	out_format_duration(limit, sizeof(limit),
			    (long)(conf->hook_timeout * 1000.0));
	notify_result(e, &input);
	buf_addch(&input, '\n');
	nv = notify_vars(e, vars);
	vars[nv] = NULL;
	c.command = command;
	c.env = (const char *const *)vars;
	c.input = buf_str(&input);
	c.timeout = conf->hook_timeout;
	c.on_line = hook_line;
	c.arg = &hl;
	out_stage_begin(NULL, stage);
	if (runner_exec(&c, &res, &err) != 0)
		snprintf(detail, sizeof(detail), "%s", err.msg);
	else if (res.timed_out)
		snprintf(detail, sizeof(detail),
			 "timed out after %s (hook_timeout) and was killed",
			 limit);
	else if (res.interrupted)
		snprintf(detail, sizeof(detail), "interrupted");
	else if (res.signal != 0)
		snprintf(detail, sizeof(detail), "killed by signal %d",
			 res.signal);
	else if (res.status != 0)
		snprintf(detail, sizeof(detail), "exit %d%s%s", res.status,
			 hl.last[0] ? ": " : "", hl.last);
	else
		ok = 1;
	out_stage_end(NULL, stage, (long)(out_now_ms() - t0), ok,
		      ok ? "on the runner" : detail);
	if (!ok)
		out_warning(NULL, stage,
			    "the %s hook failed on the runner (%s); %s", stage,
			    detail,
			    e->code == 0 ? "the deploy itself is done: exit 0 "
					   "stands"
					 : "it does not change the exit code");
	for (i = 0; i < nv; i++)
		free(vars[i]);
	buf_release(&input);
}

/* One row of the runner's plan, as stages_print shows a host's. */
static void
plan_row(const char *stage, const char *does, const char *command, int changes)
{
	struct out_field fl[3] = {
		OF_STR("command", command != NULL ? command : does),
		OF_BOOL("changes", changes),
		OF_STR("where", "runner"),
	};

	out_event("plan", NULL, stage, fl, 3);
	if (out_cfg.json)
		return;
	out_primary("  %-12s  %s", stage, does);
	if (command != NULL)
		out_primary("                | %s", command);
}

/* --dry-run: what the end of the run would do here. */
static void
notify_plan(const struct conf *conf, const char *command)
{
	int deploy = strcmp(command, "deploy") == 0;

	if ((!deploy || conf->hook_after_deploy == NULL) &&
	    conf->hook_on_failure == NULL && conf->notify_url == NULL)
		return;
	if (!out_cfg.json)
		out_primary("plan on the runner (where relflip runs), after "
			    "the %s:",
			    command);
	if (conf->notify_url != NULL)
		plan_row("notify",
			 conf->notify_on == NOTIFY_ALWAYS
			     ? "POST the result to the [notify] url, ok or not "
			       "(5 s at most)"
			     : "POST the result to the [notify] url, only if "
			       "it fails (5 s at most)",
			 NULL, 0);
	if (deploy && conf->hook_after_deploy != NULL)
		plan_row(
		    "after_deploy",
		    "if it succeeds: sh -c here, the result event on stdin",
		    conf->hook_after_deploy, 1);
	if (conf->hook_on_failure != NULL)
		plan_row("on_failure",
			 "if it fails: sh -c here, the result event on stdin",
			 conf->hook_on_failure, 1);
}

void
notify_run_end(const struct fleet *f, const struct run_outcome *o, int code,
	       const struct rf_error *err)
{
	const struct conf *conf = f->conf;
	struct notify_end e = {
		.command = f->command,
		.status = o->status != NULL ? o->status : "failed",
		.code = code,
		.revision = o->revision,
		.previous = o->previous,
		.duration_ms = o->duration_ms,
		.hosts = f->n,
		.app = conf->app_path,
		.actor = f->actor,
		.run_url = f->run_url,
		.why = code != 0 ? err->msg : "",
	};
	const char *skip, *hook, *stage;
	size_t i;

	if (f->dry_run) {
		if (code == 0)
			notify_plan(conf, f->command);
		return;
	}
	for (i = 0; i < f->n; i++)
		e.changed |= f->h[i].sw.switched;
	skip = notify_skip(&e);
	if (skip == NULL && interrupted)
		skip = "interrupted";
	if (skip != NULL) {
		out_debug("no webhook, no runner hook: %s", skip);
		return;
	}
	if (notify_wanted(conf, &e))
		notify_post(conf, &e);
	hook = notify_hook(conf, &e, &stage);
	if (hook != NULL)
		notify_run_hook(conf, stage, hook, &e);
}
