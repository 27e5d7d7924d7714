/*
 * The deploy lock and the probe: see include/lock.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "lock.h"
#include "out.h"
#include "record.h"
#include "quote.h"
#include "steps.h"

static void
lock_info_lines(const struct fleet *f, struct buf *b)
{
	buf_addf(b, "user=%s@%s\nrunner=%s\npid=%ld\nrun_url=%s\n"
		    "revision=%s\ncommand=%s\ntoken=%s\n",
		 f->actor, f->runner, f->runner, (long)getpid(), f->run_url,
		 f->revision ? f->revision : "", f->command, f->token);
	/* One line: freeze_message_check() refused any newline. */
	if (f->message != NULL)
		buf_addf(b, "message=%s\n", f->message);
}

int
lock_is_freeze(const struct lock_info *l)
{
	return l->held && l->odd == NULL && strcmp(l->command, "lock") == 0;
}

void
lock_holder_text(const struct lock_info *l, struct buf *b)
{
	char since[32] = "?";

	if (l->odd != NULL) {
		buf_addf(b, "a lock that %s", l->odd);
		return;
	}
	if (l->since)
		record_time(since, sizeof(since), l->since);
	if (lock_is_freeze(l)) {
		buf_addf(b, "frozen by %s since %s: %s",
			 l->user[0] ? l->user : "someone", since,
			 l->message[0] ? l->message : "(no message)");
		return;
	}
	buf_addf(b, "%s (pid %s), for a %s", l->user[0] ? l->user : "someone",
		 l->pid[0] ? l->pid : "?",
		 l->command[0] ? l->command : "deploy");
	if (l->revision[0])
		buf_addf(b, " of %s", l->revision);
	buf_addf(b, ", since %s", since);
	if (l->run_url[0])
		buf_addf(b, "; run %s", l->run_url);
}

static void
held_error(struct fleet *f, struct fleet_host *fh)
{
	const struct lock_info *l = &fh->st.lock;
	long long age = l->renewed ? fh->st.server_now - l->renewed : 0;
	struct buf who = BUF_INIT;

	lock_holder_text(l, &who);
	if (lock_is_freeze(l)) {
		/* A freeze is never stale: it stays until someone lifts it. */
		rf_error_set(&fh->err, RF_EXIT_LOCKED, "lock", "%s is %s",
			     fh->host->name, buf_str(&who));
		rf_error_hint(&fh->err,
			      "when the reason is gone, anyone on "
			      "call lifts it: relflip -H %s unlock",
			      fh->host->name);
		buf_release(&who);
		return;
	}
	rf_error_set(&fh->err, RF_EXIT_LOCKED, "lock",
		     "deploy lock on %s is held: %s; last renewed %llds ago",
		     fh->host->name, buf_str(&who), age);
	if (l->odd != NULL)
		rf_error_hint(&fh->err, "relflip did not leave it like this: "
			      "relflip -H %s unlock --force removes it",
			      fh->host->name);
	else if ((double)age > f->conf->lock_ttl)
		rf_error_hint(&fh->err,
			      "the lock is stale (older than lock_ttl = %.0f s): "
			      "if that run is dead, relflip -H %s unlock",
			      f->conf->lock_ttl, fh->host->name);
	else
		rf_error_hint(
		    &fh->err,
		    "wait for that run to end, or queue behind it with "
		    "[deploy] lock_wait = 5m; if it died, relflip -H "
		    "%s unlock once the lock is older than lock_ttl "
		    "(%.0f s), or unlock --force now",
		    fh->host->name, f->conf->lock_ttl);
	buf_release(&who);
}

/* What the probe found current pointing at is the release live before. */
static void
live_from_probe(struct fleet_host *fh)
{
	if (fh->st.current == CURRENT_LINK || fh->st.current == CURRENT_DANGLING)
		snprintf(fh->live, sizeof(fh->live), "%s", fh->st.current_id);
}

static void
lock_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	  struct stage_plan *p)
{
	struct buf info = BUF_INIT;

	(void)fh;
	(void)run;
	lock_info_lines(f, &info);
	step_lock_script(&p->script, f->conf->app_path, buf_str(&info));
	layout_probe_script(&p->script, f->conf->app_path, LAYOUT_RECORDS,
			    f->asks);
	buf_release(&info);
	p->limit = STEP_LIMIT_SHORT;
}

/*
 * Which records disagree with current (a run killed between the switch
 * and its record): the ones marked live that current does not point at
 * become good, and the one it points at becomes live. Returns how many
 * changed; with script, the writes that make it so.
 */
static size_t
records_to_repair(const struct fleet *f, struct fleet_host *fh,
		  struct buf *script, struct buf *what)
{
	struct record_set *set = &fh->st.records;
	long long now = record_now_ms();
	struct buf json = BUF_INIT;
	size_t i, n = 0;

	for (i = 0; i < set->n; i++) {
		struct release_record *r = &set->v[i];
		int is_current = fh->live[0] && strcmp(r->id, fh->live) == 0;

		if (!r->has_record || is_current == (r->status == RS_LIVE))
			continue;
		buf_addf(what, "%s%s %s -> %s", n++ ? ", " : "", r->id,
			 release_status_name(r->status),
			 is_current ? "live" : "good");
		if (is_current) {
			r->status = RS_LIVE;
			r->activated = now;
			r->reason[0] = '\0';
		} else {
			r->status = RS_GOOD;
			r->deactivated = now;
		}
		if (script != NULL) {
			buf_reset(&json);
			record_format(r, &json);
			step_write_record(script, f->conf->app_path, r->id,
					  buf_str(&json));
		}
	}
	buf_release(&json);
	return n;
}

/* Under the lock, records that disagree with current are set right. */
static int
repair_records(struct fleet *f, struct fleet_host *fh)
{
	struct buf script = BUF_INIT, what = BUF_INIT, errtext = BUF_INIT;
	int status = 0;

	if (records_to_repair(f, fh, &script, &what) == 0)
		goto out;
	status = remote_run_limit(fh->r, buf_str(&script), NULL,
				  STEP_LIMIT_SHORT, NULL, &errtext, &fh->err);
	if (status > 0) {
		buf_one_line(&errtext);
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "lock",
			     "repairing the records on %s failed: %s",
			     fh->host->name, buf_str(&errtext));
	} else if (status == 0)
		out_warning(fh->host->name, "lock",
			    "the records disagreed with current (-> %s), as an "
			    "interrupted run leaves them: repaired (%s)",
			    fh->live[0] ? fh->live : "none", buf_str(&what));
out:
	buf_release(&script);
	buf_release(&what);
	buf_release(&errtext);
	return status == 0 ? 0 : -1;
}

static int
lock_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct stage_plan p = STAGE_PLAN_INIT;
	struct buf out = BUF_INIT, errtext = BUF_INIT;
	long long deadline = out_now_ms() + (long long)(f->conf->lock_wait *
							1000.0);
	int rc = -1, status;

	lock_plan(f, fh, arg, &p);
	out_debug("%s: lock: %s", fh->host->name, buf_str(&p.script));
	out.max = 64 << 20;
	for (;;) {
		buf_reset(&out);
		buf_reset(&errtext);
		layout_state_release(&fh->st);
		status = remote_run_limit(fh->r, buf_str(&p.script), NULL,
					  p.limit, &out, &errtext, &fh->err);
		if (status < 0)
			goto out;
		if (status == STEP_LAYOUT) {
			/* mkdir says it once a directory: the first will do. */
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "lock",
				     "cannot create the layout under %s on %s: "
				     "%.*s",
				     f->conf->app_path, fh->host->name,
				     (int)strcspn(buf_str(&errtext), "\n"),
				     buf_str(&errtext));
			rf_error_hint(
			    &fh->err,
			    "give %s the app path, as root "
			    "on %s: install -d -o %s %s (relflip -H %s "
			    "check shows what else is missing)",
			    fh->info.user[0] ? fh->info.user
					     : "the deploy user",
			    fh->host->name,
			    fh->info.user[0] ? fh->info.user : "USER",
			    f->conf->app_path, fh->host->name);
			goto out;
		}
		if (status != 0) {
			buf_one_line(&errtext);
			rf_error_set(&fh->err, RF_EXIT_INTERNAL, "lock",
				     "the lock script failed (exit %d): %s",
				     status, buf_str(&errtext));
			goto out;
		}
		layout_parse(buf_str(&out), &fh->st);
		live_from_probe(fh);
		if (strncmp(buf_str(&out), "locked=1", 8) == 0) {
			fh->locked = 1;
			if (f->message != NULL)
				snprintf(fh->detail, sizeof(fh->detail),
					 "frozen");
			if (repair_records(f, fh) != 0)
				goto out;
			break;
		}
		/* Waiting for a freeze is pointless: it has no end. */
		if (out_now_ms() >= deadline || interrupted ||
		    lock_is_freeze(&fh->st.lock)) {
			held_error(f, fh);
			goto out;
		}
		/* Poll the holder's lock with a bound: lock_wait. */
		{
			struct timespec ts = { 1, 0 };

			nanosleep(&ts, NULL);
		}
	}
	rc = 0;
out:
	stage_plan_release(&p);
	buf_release(&out);
	buf_release(&errtext);
	return rc;
}

const struct stage lock_stage = {
	.name = "lock",
	.flags = STAGE_CHANGES | STAGE_LOCK,
	.does = "create the layout, take the deploy lock, read the records",
	.undo = "the lock is released at the end, whatever happens",
	.plan = lock_plan,
	.run = lock_one,
};

static int
probe_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct buf what = BUF_INIT;

	(void)arg;
	if (layout_probe(fh->r, f->conf->app_path, LAYOUT_RECORDS, f->asks,
			 &fh->st, &fh->err) != 0)
		return -1;
	live_from_probe(fh);
	/* Read only: the records shown as they really are, fixed later. */
	if (records_to_repair(f, fh, NULL, &what) > 0)
		out_warning(fh->host->name, "probe",
			    "the records disagree with current (-> %s), as an "
			    "interrupted run leaves them (%s); the next deploy "
			    "or rollback repairs them",
			    fh->live[0] ? fh->live : "none", buf_str(&what));
	buf_release(&what);
	return 0;
}

int
fleet_probe(struct fleet *f, struct rf_error *err)
{
	fleet_activate_all(f);
	return fleet_step(f, "probe", probe_one, NULL, err);
}

void
fleet_unlock(struct fleet *f)
{
	struct buf cmd = BUF_INIT;
	struct rf_error err = RF_ERROR_INIT;
	size_t i;

	step_unlock_script(&cmd, f->conf->app_path, f->token, 0);
	for (i = 0; i < f->n; i++) {
		if (!f->h[i].locked || f->h[i].r == NULL)
			continue;
		/* Best effort: a lock left behind goes stale after lock_ttl. */
		if (remote_run(f->h[i].r, buf_str(&cmd), NULL, NULL, NULL,
			       &err) == 0)
			f->h[i].locked = 0;
	}
	buf_release(&cmd);
}


/* ---- the unlock command ---- */

static int
unlock_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	const int *force = arg;
	const struct lock_info *l = &fh->st.lock;
	long long age = fh->st.server_now - (l->renewed ? l->renewed
							 : l->since);
	struct buf me = BUF_INIT, cmd = BUF_INIT, line = BUF_INIT;
	struct buf errtext = BUF_INIT, who = BUF_INIT;
	struct json_obj o;
	char since[32] = "?";
	const char *why;
	int status, rc = -1;

	if (!l->held) {
		snprintf(fh->detail, sizeof(fh->detail), "no lock");
		return 0;
	}
	if (l->since)
		record_time(since, sizeof(since), l->since);
	lock_holder_text(l, &who);
	buf_addf(&me, "%s@%s", f->actor, f->runner);
	/*
	 * A step of the holder's still running on the server (a hook, an
	 * unpack) would go on under the next deploy: only --force, which
	 * ends it.
	 */
	if (l->busy_pid > 0 && !*force) {
		rf_error_set(&fh->err, RF_EXIT_LOCKED, "unlock",
			     "the lock on %s is held by %s, and its step still "
			     "runs on the server (pid %ld)",
			     fh->host->name, buf_str(&who), l->busy_pid);
		rf_error_hint(&fh->err, "wait for it, or end it and remove "
			      "the lock: relflip -H %s unlock --force",
			      fh->host->name);
		goto out;
	}
	/* A freeze is lifted by whoever is on call: no --force. */
	if (lock_is_freeze(l))
		why = "freeze";
	else if (l->odd == NULL && strcmp(l->user, buf_str(&me)) == 0)
		why = "yours";
	else if ((double)age > f->conf->lock_ttl)
		why = "stale";
	else if (*force)
		why = "forced";
	else {
		rf_error_set(&fh->err, RF_EXIT_LOCKED, "unlock",
			     "the lock on %s is held by %s, renewed %llds ago: "
			     "not yours and not stale (lock_ttl %.0f s)",
			     fh->host->name, buf_str(&who), age,
			     f->conf->lock_ttl);
		rf_error_hint(&fh->err, "if that run is really dead: relflip "
			      "-H %s unlock --force",
			      fh->host->name);
		goto out;
	}
	step_unlock_script(&cmd, f->conf->app_path, NULL, 1);
	fleet_log_begin(f, fh, l->revision, NULL, "ok", 0, &o, &line);
	json_obj_str(&o, "holder", l->user);
	json_obj_str(&o, "holder_since", since);
	json_obj_str(&o, "why", why);
	if (lock_is_freeze(l))
		json_obj_str(&o, "message", l->message);
	json_obj_end(&o);
	step_append_log(&cmd, f->conf->app_path, buf_str(&line));
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), NULL,
			   &errtext, &fh->err);
	if (status != 0) {
		if (status > 0) {
			buf_one_line(&errtext);
			rf_error_set(&fh->err, RF_EXIT_INTERNAL, "unlock",
				     "removing the lock on %s failed: %s",
				     fh->host->name, buf_str(&errtext));
		}
		goto out;
	}
	if (lock_is_freeze(l))
		snprintf(fh->detail, sizeof(fh->detail),
			 "lifted the freeze of %.40s (since %s): %.56s",
			 l->user[0] ? l->user : "someone", since, l->message);
	else
		snprintf(fh->detail, sizeof(fh->detail), "removed (%s) %.130s",
			 why, buf_str(&who));
	rc = 0;
out:
	buf_release(&who);
	buf_release(&me);
	buf_release(&cmd);
	buf_release(&line);
	buf_release(&errtext);
	return rc;
}

int
unlock_run(const struct selection *sel, int force, struct run_outcome *outcome,
	   struct rf_error *err)
{
	struct fleet f;
	long long t0 = out_now_ms();
	int code = 0;

	fleet_init(&f, sel, "unlock", NULL);
	if (fleet_open(&f, FLEET_PROBE, err) != 0 ||
	    (fleet_activate_all(&f),
	     fleet_step(&f, "unlock", unlock_one, &force, err)) != 0)
		code = err->code;
	fleet_outcome(outcome, code, NULL, NULL, t0);
	fleet_release(&f);
	return code;
}

/* ---- the lock command: a manual freeze ---- */

int
freeze_message_check(const char *msg, struct rf_error *err)
{
	const char *p;
	size_t n;

	if (msg == NULL || msg[0] == '\0')
		return rf_error_set(err, RF_EXIT_USAGE, NULL,
				    "-m MESSAGE is required: say why, for "
				    "whoever meets the freeze");
	if (strlen(msg) > FREEZE_MESSAGE_MAX)
		return rf_error_set(err, RF_EXIT_USAGE, NULL,
				    "the message is %zu bytes long: at most %d",
				    strlen(msg), FREEZE_MESSAGE_MAX);
	for (p = msg; *p != '\0'; p += n) {
		n = quote_utf8_len(p);
		if (n == 0)
			return rf_error_set(err, RF_EXIT_USAGE, NULL,
					    "the message is not valid UTF-8 "
					    "(byte %zu)",
					    (size_t)(p - msg) + 1);
		/* C0, DEL and C1 (U+0080..U+009F, 0xC2 0x80..0x9F). */
		if ((unsigned char)*p < 0x20 || *p == 0x7f ||
		    ((unsigned char)p[0] == 0xc2 && (unsigned char)p[1] < 0xa0))
			return rf_error_set(err, RF_EXIT_USAGE, NULL,
					    "the message holds a newline or "
					    "another control character (byte "
					    "%zu): give it one line of text",
					    (size_t)(p - msg) + 1);
	}
	return 0;
}

/* The freeze's line in the log, once every host holds it. */
static int
freeze_log_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct buf cmd = BUF_INIT, line = BUF_INIT;
	struct buf errtext = BUF_INIT;
	struct json_obj o;
	int status;

	(void)arg;
	fleet_log_begin(f, fh, NULL, fh->live, "ok", 0, &o, &line);
	json_obj_str(&o, "message", f->message);
	json_obj_end(&o);
	step_append_log(&cmd, f->conf->app_path, buf_str(&line));
	/*
	 * Not fleet_run(): its renewal would leave this step's pid as the
	 * holder's job, which unlock would take for a step still running
	 * once the number is used again.
	 */
	status = remote_run_limit(fh->r, buf_str(&cmd), NULL, STEP_LIMIT_SHORT,
				  NULL, &errtext, &fh->err);
	if (status > 0) {
		buf_one_line(&errtext);
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "record",
			     "the freeze holds on %s, but writing it to the "
			     "log failed: %s",
			     fh->host->name, buf_str(&errtext));
	}
	snprintf(fh->detail, sizeof(fh->detail), "logged");
	buf_release(&cmd);
	buf_release(&line);
	buf_release(&errtext);
	return status == 0 ? 0 : -1;
}

int
freeze_run(const struct selection *sel, const char *message,
	   struct run_outcome *outcome, struct rf_error *err)
{
	struct fleet f;
	long long t0 = out_now_ms();
	int code = 0;

	fleet_init(&f, sel, "lock", NULL);
	f.message = message;
	/* The lock row takes every host or none: a failure unlocks all. */
	if (fleet_open(&f, FLEET_LOCK, err) != 0) {
		code = err->code;
		if (code == RF_EXIT_LOCKED && f.n > 1) {
			char hint[sizeof(err->hint)];

			snprintf(hint, sizeof(hint), "%s", err->hint);
			rf_error_hint(err,
				      "nothing was frozen: the hosts that "
				      "were free are free again; %s",
				      hint);
		}
		goto out;
	}
	if (fleet_step(&f, "record", freeze_log_one, NULL, err) != 0)
		code = err->code;
out:
	fleet_outcome(outcome, code, NULL, NULL, t0);
	fleet_release(&f);
	return code;
}
