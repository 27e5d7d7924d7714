/*
 * relflip rollback [--to ID]: switch back to the newest good release (or
 * to ID) with the same batches, restart and health check as a deploy.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "fleet.h"
#include "out.h"
#include "plan.h"
#include "release.h"
#include "steps.h"
#include "xmalloc.h"

struct rollback {
	struct fleet f;
	char (*target)[65];   /* per host: fh->target points here */
	const char *to;
	int code;
	long long started_ms;
};

static const char rollback_options[] =
    "Switches current on every selected host to the newest good release\n"
    "before the live one, or to ID; restarts the services and checks\n"
    "health, switching back when the check fails. The release rolled back\n"
    "from is marked bad (unless --to names a newer one: a roll-forward).\n"
    "\n"
    "Options:\n"
    "  --to ID     the release to go to (a bad one works, with a warning;\n"
    "              a failed one, that never went live, is refused)\n"
    "  --dry-run   connect and check, change nothing, print the plan\n"
    "  -h, --help  this help\n";

/* Hosts must agree on what is live before a plain rollback moves them. */
static int
check_agreement(struct fleet *f, struct rf_error *err)
{
	struct buf list = BUF_INIT;
	size_t i;
	int disagree = 0;

	for (i = 0; i < f->n; i++) {
		buf_addf(&list, "%s%s: %s", i ? ", " : "", f->h[i].host->name,
			 f->h[i].live[0] ? f->h[i].live : "none");
		if (strcmp(f->h[i].live, f->h[0].live) != 0)
			disagree = 1;
	}
	if (disagree) {
		rf_error_set(err, RF_EXIT_USAGE, "rollback",
			     "the hosts disagree on the live release (%s)",
			     buf_str(&list));
		rf_error_hint(err, "roll them to one release with --to ID, or "
			      "pick hosts with -H");
	}
	buf_release(&list);
	return disagree ? -1 : 0;
}

/* A roll-forward goes to a release newer than the live one. */
static int
is_forward(struct fleet_host *fh)
{
	const struct release_record *from, *to;

	from = record_find(&fh->st.records, fh->live);
	to = record_find(&fh->st.records, fh->target);
	if (from == NULL || to == NULL)
		return 0;
	return to->created > from->created;
}

static int
choose_targets(struct rollback *rb, struct rf_error *err)
{
	struct fleet *f = &rb->f;
	size_t i, already = 0;

	for (i = 0; i < f->n; i++) {
		struct fleet_host *fh = &f->h[i];
		const struct release_record *t, *from;
		char when[32] = "?";

		t = plan_rollback_target(&fh->st.records, fh->live, rb->to,
					 err);
		if (t == NULL) {
			rf_error_host(err, fh->host->name);
			if (rb->to == NULL)
				rf_error_hint(err, "relflip releases lists them; "
					      "relflip rollback --to ID picks "
					      "one");
			return -1;
		}
		/* Records move when one is added: keep a copy of the id. */
		snprintf(rb->target[i], sizeof(rb->target[i]), "%s", t->id);
		fh->target = rb->target[i];
		fh->back = fh->live[0] ? fh->live : NULL;
		if (strcmp(t->id, fh->live) == 0) {
			already++;
			continue;
		}
		if (t->status == RS_BAD) {
			if (t->deactivated)
				record_time_ms(when, sizeof(when),
					       t->deactivated);
			out_warning(fh->host->name, "rollback",
				    "release %s was marked bad (%s): %s",
				    t->id, when,
				    t->reason[0] ? t->reason : "no reason");
		}
		from = fh->live[0] ? record_find(&fh->st.records, fh->live)
				   : NULL;
		if (from != NULL && from->migrated && !is_forward(fh))
			out_warning(fh->host->name, "rollback",
				    "release %s ran migrations: the database "
				    "was not rolled back",
				    from->id);
	}
	if (already == f->n) {
		rf_error_set(err, RF_EXIT_OK, "rollback",
			     "release %s is already live on every host",
			     f->h[0].target);
		return 1;
	}
	return 0;
}

static int
record_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct rollback *rb = arg;
	struct buf cmd = BUF_INIT, json = BUF_INIT, line = BUF_INIT;
	struct buf errtext = BUF_INIT, extra = BUF_INIT;
	struct release_record *to, *from;
	long long now = record_now_ms();
	int forward = is_forward(fh);
	char target[65], live[65];
	int status;

	/* record_add may move the records: keep ids, look up afresh. */
	snprintf(target, sizeof(target), "%s", fh->target);
	snprintf(live, sizeof(live), "%s", fh->live);
	record_add(&fh->st.records, target);
	if (live[0] != '\0')
		record_add(&fh->st.records, live);
	to = record_find(&fh->st.records, target);
	from = live[0] ? record_find(&fh->st.records, live) : NULL;
	to->has_record = 1;
	if (rb->code == 0) {
		to->status = RS_LIVE;
		to->activated = now;
		to->reason[0] = '\0';
		if (from != NULL && from != to) {
			from->has_record = 1;
			from->status = forward ? RS_GOOD : RS_BAD;
			from->deactivated = now;
			if (!forward)
				snprintf(from->reason, sizeof(from->reason),
					 "rolled back by %s", f->actor);
		}
	} else {
		to->status = RS_BAD;
		snprintf(to->reason, sizeof(to->reason),
			 "failed its health check during a rollback");
	}
	record_format(to, &json);
	step_write_record(&cmd, f->conf->app_path, to->id, buf_str(&json));
	if (rb->code == 0 && from != NULL && from != to) {
		buf_reset(&json);
		record_format(from, &json);
		step_write_record(&cmd, f->conf->app_path, from->id,
				  buf_str(&json));
	}
	buf_addf(&extra, "\"duration_ms\": %lld",
		 out_now_ms() - rb->started_ms);
	fleet_log_line(f, fh, target, live,
		       rb->code == 0 ? "ok" : "rolled_back", rb->code,
		       buf_str(&extra), &line);
	step_append_log(&cmd, f->conf->app_path, buf_str(&line));
	step_unlock_script(&cmd, f->conf->app_path, f->token, 0);
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), NULL,
			   &errtext, &fh->err);
	if (status == 0)
		fh->locked = 0;
	else if (status > 0)
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "record",
			     "writing the records on %s failed: %s",
			     fh->host->name, buf_str(&errtext));
	buf_release(&cmd);
	buf_release(&json);
	buf_release(&line);
	buf_release(&errtext);
	buf_release(&extra);
	return status == 0 ? 0 : -1;
}

static void
plan_event(struct fleet_host *fh, const char *stage, const char *command)
{
	struct out_field fl[1] = { OF_STR("command", command) };

	out_event("plan", fh->host->name, stage, fl, 1);
}

static int
plan_print(struct rollback *rb)
{
	struct fleet *f = &rb->f;
	struct buf cmd = BUF_INIT;
	size_t i, j;

	for (i = 0; i < f->n; i++) {
		struct fleet_host *fh = &f->h[i];
		struct step_env env = {
			.app = f->conf->app_path,
			.release = fh->target,
			.previous = fh->live,
			.host = fh->host->name,
		};
		char dir[600];

		out_primary("plan for %s: %s -> %s", fh->host->name,
			    fh->live[0] ? fh->live : "none", fh->target);
		buf_reset(&cmd);
		step_switch_script(&cmd, f->conf->app_path, fh->target);
		plan_event(fh, "switch", buf_str(&cmd));
		out_primary("  switch      %s", buf_str(&cmd));
		snprintf(dir, sizeof(dir), "%.590s/current", f->conf->app_path);
		for (j = 0; j < f->conf->nservices; j++) {
			if (!conf_service_on_host(&f->conf->services[j],
						  fh->host))
				continue;
			buf_reset(&cmd);
			step_hook_script(&cmd, dir, &env,
					 f->conf->services[j].restart);
			plan_event(fh, "restart", buf_str(&cmd));
			out_primary("  restart     %s", buf_str(&cmd));
		}
		if (f->conf->has_health && f->conf->health_url)
			out_primary("  health      GET %s through SSH",
				    f->conf->health_url);
	}
	buf_release(&cmd);
	out_text("dry run: the plan could run; nothing was changed");
	return 0;
}

static int
cmd_rollback_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rollback rb;
	struct rf_error err = RF_ERROR_INIT;
	int c, dry = 0, rc;
	const char *status;
	size_t i;

	memset(&rb, 0, sizeof(rb));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			rb.to = optarg;
			break;
		case 'n':
			dry = 1;
			break;
		case 'h':
			return cmd_usage(&cmd_rollback_entry, rollback_options,
					 0);
		default:
			return cmd_usage_error(&cmd_rollback_entry,
					       "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(&cmd_rollback_entry,
				       "unexpected argument '%s'",
				       argv[optind]);
	if (rb.to != NULL && !release_id_valid(rb.to))
		return cmd_usage_error(&cmd_rollback_entry,
				       "'%s' is not a release id", rb.to);
	if (cmd_load_config(ctx, &err) != 0) {
		out_error(&err);
		return err.code;
	}
	rb.started_ms = out_now_ms();
	fleet_init(&rb.f, ctx->conf, ctx->hosts, ctx->nhosts, "rollback",
		   rb.to);
	rb.target = xcalloc(ctx->nhosts ? ctx->nhosts : 1, sizeof(*rb.target));
	{
		struct out_field fl[3] = {
			OF_STR("command", "rollback"),
			OF_STR("to", rb.to),
			OF_INT("hosts", ctx->nhosts),
		};
		out_event("start", NULL, NULL, fl, 3);
	}
	out_text("relflip %s · rollback · %zu host%s%s", relflip_version(),
		 ctx->nhosts, ctx->nhosts == 1 ? "" : "s",
		 dry ? " · dry run" : "");
	if (fleet_connect(&rb.f, &err) != 0 ||
	    (dry ? fleet_probe(&rb.f, &err) : fleet_lock(&rb.f, &err)) != 0) {
		rb.code = err.code;
		goto done;
	}
	if (rb.to == NULL && check_agreement(&rb.f, &err) != 0) {
		rb.code = err.code;
		goto done;
	}
	rc = choose_targets(&rb, &err);
	if (rc < 0) {
		rb.code = err.code;
		goto done;
	}
	if (rc > 0) {
		out_text("%s: nothing to do", err.msg);
		rf_error_clear(&err);
		goto done;
	}
	if (dry) {
		rb.code = plan_print(&rb);
		goto done;
	}
	for (i = 0; i < rb.f.n; i++)
		out_text("  %-9s %s -> %s", rb.f.h[i].host->name,
			 rb.f.h[i].live[0] ? rb.f.h[i].live : "none",
			 rb.f.h[i].target);
	rb.code = fleet_switch(&rb.f, &err);
	/* Every host that holds our lock gets its records and log line. */
	for (i = 0; i < rb.f.n; i++) {
		rb.f.h[i].active = rb.f.h[i].locked;
		rb.f.h[i].failed = 0;
	}
	{
		struct rf_error rec_err = RF_ERROR_INIT;

		if (fleet_step(&rb.f, "record", record_one, &rb, &rec_err) != 0)
			out_error(&rec_err);
	}
done:
	status = rb.code == 0 ? "ok"
		 : (rb.code == RF_EXIT_HEALTH ||
		    rb.code == RF_EXIT_ROLLBACK_FAILED)
		     ? "rolled_back"
		     : "failed";
	fleet_report(&rb.f, rb.f.n > 0 ? rb.f.h[0].target : NULL,
		     rb.f.n > 0 && rb.f.h[0].live[0] ? rb.f.h[0].live : NULL,
		     rb.code, (long)(out_now_ms() - rb.started_ms), &err);
	if (rb.code != 0)
		out_error(&err);
	else if (!dry && rb.f.n > 0 && rb.f.h[0].target != NULL &&
		 err.msg[0] == '\0') {
		char dur[32];

		out_format_duration(dur, sizeof(dur),
				    (long)(out_now_ms() - rb.started_ms));
		out_text("rolled back to %s on %zu host%s in %s (was: %s)",
			 rb.f.h[0].target, rb.f.n, rb.f.n == 1 ? "" : "s", dur,
			 rb.f.h[0].live[0] ? rb.f.h[0].live : "none");
	}
	out_result(status, rb.code,
		   rb.f.n > 0 && rb.f.h[0].target ? rb.f.h[0].target : NULL,
		   rb.f.n > 0 && rb.f.h[0].live[0] ? rb.f.h[0].live : NULL,
		   (long)(out_now_ms() - rb.started_ms));
	fleet_unlock(&rb.f);
	fleet_release(&rb.f);
	free(rb.target);
	return rb.code;
}

const struct cmd_entry cmd_rollback_entry = {
	.name = "rollback",
	.usage = "[--to ID] [--dry-run]",
	.summary = "switch back to the newest good release, or to ID",
	.flags = 0,
	.exec = cmd_rollback_exec,
};
