/*
 * The rollback: switch back to the newest good release (or to --to ID)
 * with the same batches, restart and health check as a deploy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "lock.h"
#include "notify.h"
#include "out.h"
#include "plan.h"
#include "quote.h"
#include "record.h"
#include "report.h"
#include "rollback.h"
#include "stage.h"
#include "steps.h"
#include "switch.h"
#include "xmalloc.h"

struct rollback {
	struct fleet f;
	char (*target)[65];   /* per host: fh->target points here */
	const char *to;
	int code;
	long long started_ms;
};

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
is_forward(const struct fleet_host *fh)
{
	const struct release_record *from, *to;

	from = record_find((struct record_set *)&fh->st.records, fh->live);
	to = record_find((struct record_set *)&fh->st.records, fh->target);
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
		fh->leaves_bad = !is_forward(fh);
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

/*
 * The record row's script: the target's record (live; bad when its check
 * failed; as it was when no switch came), the one left (bad, or good on a
 * roll-forward), the log line and the unlock, in one round trip, worked
 * out on records (the host's own, or a copy for --dry-run).
 */
static void
record_build(struct rollback *rb, const struct fleet_host *fh,
	     struct record_set *records, int code, struct buf *cmd)
{
	const struct fleet *f = &rb->f;
	struct buf json = BUF_INIT, line = BUF_INIT;
	struct json_obj o;
	struct release_record *to, *from;
	long long now = record_now_ms();
	int forward = is_forward(fh);
	int failed_check =
	    code == RF_EXIT_HEALTH || code == RF_EXIT_ROLLBACK_FAILED;
	char target[65], live[65];

	/* record_add may move the records: keep ids, look up afresh. */
	snprintf(target, sizeof(target), "%s", fh->target);
	snprintf(live, sizeof(live), "%s", fh->live);
	record_add(records, target);
	if (live[0] != '\0')
		record_add(records, live);
	to = record_find(records, target);
	from = live[0] ? record_find(records, live) : NULL;
	to->has_record = 1;
	if (code == 0) {
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
	} else if (failed_check) {
		to->status = RS_BAD;
		snprintf(to->reason, sizeof(to->reason),
			 "failed its health check during a rollback");
	}
	record_format(to, &json);
	step_write_record(cmd, f->conf->app_path, to->id, buf_str(&json));
	if (code == 0 && from != NULL && from != to) {
		buf_reset(&json);
		record_format(from, &json);
		step_write_record(cmd, f->conf->app_path, from->id,
				  buf_str(&json));
	}
	fleet_log_begin(f, fh, target, live,
			code == 0      ? "ok"
			: failed_check ? "rolled_back"
				       : "failed",
			code, &o, &line);
	json_obj_int(&o, "duration_ms", out_now_ms() - rb->started_ms);
	json_obj_end(&o);
	step_append_log(cmd, f->conf->app_path, buf_str(&line));
	step_unlock_script(cmd, f->conf->app_path, f->token, 0);
	buf_release(&json);
	buf_release(&line);
}

static void
record_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	struct record_set copy = { NULL, 0 };

	(void)f;
	if (fh->st.records.n > 0) {
		copy.v = xcalloc(fh->st.records.n, sizeof(*copy.v));
		memcpy(copy.v, fh->st.records.v,
		       fh->st.records.n * sizeof(*copy.v));
		copy.n = fh->st.records.n;
	}
	record_build(run, fh, &copy, 0, &p->script);
	record_set_release(&copy);
}

static int
record_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct rollback *rb = arg;
	struct buf cmd = BUF_INIT, errtext = BUF_INIT;
	int status;

	record_build(rb, fh, &fh->st.records, rb->code, &cmd);
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), NULL,
			   &errtext, &fh->err);
	if (status == 0)
		fh->locked = 0;
	else if (status > 0)
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "record",
			     "writing the records on %s failed: %s",
			     fh->host->name, buf_str(&errtext));
	buf_release(&cmd);
	buf_release(&errtext);
	return status == 0 ? 0 : -1;
}

static const struct stage record_stage = {
	.name = "record",
	.flags = STAGE_CHANGES | STAGE_FINAL,
	.does = "write the records and the log line, unlock",
	.undo = NULL,
	.plan = record_plan,
	.run = record_one,
};

static const struct stage *const rollback_rows[] = {
	&lock_stage,     &before_switch_stage, &switch_stage,
	&restart_stage,  &after_switch_stage,  &health_stage,
	&way_back_stage, &record_stage,
};

#define NROWS (sizeof(rollback_rows) / sizeof(rollback_rows[0]))

struct curl_job {
	struct rf_error err;
	int rc;
};

static void *
curl_thread(void *arg)
{
	struct curl_job *job = arg;

	job->rc = http_load("the health check", &job->err);
	return NULL;
}

/*
 * Connect and lock (or probe, for a dry run) while libcurl loads for the
 * health check, in a thread beside them: a runner without it stops here,
 * before the switch, and the lock goes at the end as for any failure.
 */
static int
open_beside_curl(struct rollback *rb, const struct rollback_opts *opts,
		 struct rf_error *err)
{
	struct curl_job job = { RF_ERROR_INIT, 0 };
	int need = rb->f.conf->health_url != NULL, threaded = 0, rc;
	pthread_t t;

	if (need)
		threaded = pthread_create(&t, NULL, curl_thread, &job) == 0;
	rc = fleet_open(&rb->f, opts->dry_run ? FLEET_PROBE : FLEET_LOCK, err);
	if (threaded)
		pthread_join(t, NULL);
	else if (need)
		curl_thread(&job);
	if (rc != 0)
		return -1;
	if (job.rc != 0) {
		*err = job.err;
		return -1;
	}
	return 0;
}

int
rollback_run(const struct selection *sel, const struct rollback_opts *opts,
	     struct run_outcome *outcome, struct rf_error *err)
{
	struct rollback rb;
	int rc;
	size_t i;

	memset(&rb, 0, sizeof(rb));
	rb.to = opts->to;
	rb.started_ms = out_now_ms();
	fleet_init(&rb.f, sel, "rollback", rb.to);
	rb.f.dry_run = opts->dry_run;
	rb.target = xcalloc(sel->n ? sel->n : 1, sizeof(*rb.target));
	if (open_beside_curl(&rb, opts, err) != 0) {
		rb.code = err->code;
		goto done;
	}
	if (rb.to == NULL && check_agreement(&rb.f, err) != 0) {
		rb.code = err->code;
		goto done;
	}
	rc = choose_targets(&rb, err);
	if (rc < 0) {
		rb.code = err->code;
		goto done;
	}
	if (rc > 0) {
		out_text("%s: nothing to do", err->msg);
		rf_error_clear(err);
		goto done;
	}
	if (opts->dry_run) {
		stages_print(&rb.f, rollback_rows, NROWS, &rb);
		out_text("dry run: the plan could run; nothing was changed");
		goto done;
	}
	for (i = 0; i < rb.f.n; i++)
		out_text("  %-9s %s -> %s", rb.f.h[i].host->name,
			 rb.f.h[i].live[0] ? rb.f.h[i].live : "none",
			 rb.f.h[i].target);
	rb.code = stages_walk(&rb.f, rollback_rows + 1, NROWS - 1, &rb, err);
	{
		struct rf_error rec_err = RF_ERROR_INIT;

		if (stage_run(&rb.f, &record_stage, &rb, &rec_err) != 0) {
			if (rb.code != 0) {
				out_error(&rec_err);
			} else {
				rf_error_set(err, rec_err.code ? rec_err.code
							       : RF_EXIT_INTERNAL,
					     "record",
					     "current moved, but %.400s; the "
					     "next deploy or rollback repairs the "
					     "records",
					     rec_err.msg);
				rb.code = err->code;
			}
		}
	}
done:
	fleet_report(&rb.f, rb.f.n > 0 ? rb.f.h[0].target : NULL,
		     rb.f.n > 0 && rb.f.h[0].live[0] ? rb.f.h[0].live : NULL,
		     rb.code, (long)(out_now_ms() - rb.started_ms), err);
	if (rb.code == 0 && !opts->dry_run && rb.f.n > 0 &&
	    rb.f.h[0].target != NULL && err->msg[0] == '\0') {
		char dur[32];

		out_format_duration(dur, sizeof(dur),
				    (long)(out_now_ms() - rb.started_ms));
		out_text("rolled back to %s on %zu host%s in %s (was: %s)",
			 rb.f.h[0].target, rb.f.n, rb.f.n == 1 ? "" : "s", dur,
			 rb.f.h[0].live[0] ? rb.f.h[0].live : "none");
	}
	fleet_outcome(outcome, rb.code, rb.f.n > 0 ? rb.f.h[0].target : NULL,
		      rb.f.n > 0 && rb.f.h[0].live[0] ? rb.f.h[0].live : NULL,
		      rb.started_ms);
	fleet_unlock(&rb.f);
	notify_run_end(&rb.f, outcome, rb.code, err);
	fleet_release(&rb.f);
	free(rb.target);
	return rb.code;
}
