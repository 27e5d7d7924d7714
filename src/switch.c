/*
 * The switch: batch by batch, point current at the target, restart the
 * services and check health; when any host fails, the way back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "hook.h"
#include "out.h"
#include "record.h"
#include "steps.h"
#include "switch.h"
#include "xmalloc.h"

/*
 * Set a release's record (when it has one): its new text staged in pre
 * (in shell variable var), its rename into place in post.
 */
static void
record_moves(struct fleet *f, struct fleet_host *fh, const char *id,
	     enum release_status status, const char *reason, const char *var,
	     struct buf *pre, struct buf *post)
{
	struct release_record *r;
	struct buf json = BUF_INIT;
	long long now = record_now_ms();

	if (id == NULL)
		return;
	r = record_find(&fh->st.records, id);
	if (r == NULL || !r->has_record)
		return;
	r->status = status;
	if (status == RS_LIVE) {
		r->activated = now;
		r->reason[0] = '\0';
	} else {
		r->deactivated = now;
		if (reason != NULL)
			snprintf(r->reason, sizeof(r->reason), "%s", reason);
	}
	record_format(r, &json);
	step_record_stage(pre, f->conf->app_path, r->id, buf_str(&json), var);
	step_record_commit(post, f->conf->app_path, r->id, var);
	buf_release(&json);
}

/*
 * A restart run in the switch's round trip (switch_then_restart): what the
 * restart row then shows and judges.
 */
struct restart_carry {
	const struct conf_service *svc; /* the one service it restarted */
	int ran;             /* the switch went through and the restart ran */
	int rc;              /* remote_exec's return; -1: err says why */
	struct rf_error err;
	struct exec_result res;
	struct buf lines;    /* each line: '0' or '1' (stderr), text, '\0' */
};

/* The RELFLIP_* environment of a restart on fh's way forward. */
static struct step_env
target_env(const struct fleet *f, const struct fleet_host *fh)
{
	struct step_env env = {
		.app = f->conf->app_path,
		.release = fh->target,
		.previous = fh->back ? fh->back : "",
		.host = fh->host->name,
	};

	return env;
}

#define CARRY_MAX (256 * 1024)

/* The split of the joined step's output at the switch's end marker. */
struct switch_lines {
	const char *mark;
	int seen[2];         /* the marker came on stdout, on stderr */
	struct buf errtext;  /* the switch's stderr */
	struct restart_carry *then;
};

static void
switch_line(void *arg, int is_stderr, const char *line)
{
	struct switch_lines *sl = arg;

	if (!sl->seen[is_stderr] && strcmp(line, sl->mark) == 0) {
		sl->seen[is_stderr] = 1;
		return;
	}
	if (sl->seen[is_stderr]) {
		struct buf *b = &sl->then->lines;

		/* Held until the restart row shows them: at most the last 256 KiB. */
		if (b->len > CARRY_MAX)
			buf_reset(b);
		buf_addch(b, is_stderr ? '1' : '0');
		buf_add(b, line, strlen(line) + 1);
	} else if (is_stderr && sl->errtext.len < 4096) {
		buf_addf(&sl->errtext, "%s%s", sl->errtext.len ? "\n" : "",
			 line);
	}
}

/*
 * The switch's script, then (where then is given) the service's restart
 * after a marker line on both streams: one round trip for the two rows,
 * the restart only once current and the records have moved.
 */
static int
switch_then_restart(struct fleet *f, struct fleet_host *fh, const char *cmd,
		    struct restart_carry *then, struct buf *errtext,
		    struct rf_error *err)
{
	const struct conf *conf = f->conf;
	struct step_env env = target_env(f, fh);
	struct switch_lines sl = { NULL, { 0, 0 }, BUF_INIT, then };
	struct buf script = BUF_INIT, dir = BUF_INIT, mark = BUF_INIT;
	struct exec_request req = { 0 };
	int status = -1;

	buf_addf(&mark, "relflip-%s-switched", f->token);
	sl.mark = buf_str(&mark);
	buf_addf(&dir, "%s/current", conf->app_path);
	step_renew(&script, conf->app_path);
	buf_addf(&script, "(\n%s)\nS=$?; [ $S -eq 0 ] || exit $S\n"
			  "echo '%s'; echo '%s' >&2\n(\n",
		 cmd, sl.mark, sl.mark);
	step_hook_script(&script, buf_str(&dir), &env, then->svc->restart);
	buf_adds(&script, ")\n");
	req.cmd = buf_str(&script);
	req.timeout = conf->hook_timeout;
	req.on_line = switch_line;
	req.arg = &sl;
	out_debug("%s: switch+restart: %s", fh->host->name, req.cmd);
	then->rc = remote_exec(fh->r, &req, &then->res, &then->err);
	/*
	 * The marker says the switch went through; so does an exit 0 (the
	 * switch's part exits with its failure, before any marker).
	 */
	then->ran = sl.seen[0] ||
		    (then->rc == 0 && !then->res.timed_out &&
		     then->res.status == 0);
	if (then->ran)
		status = 0;
	else if (then->rc == 0)
		status = then->res.timed_out ? STEP_TIME_LIMIT
					     : then->res.status;
	else
		*err = then->err;
	buf_adds(errtext, buf_str(&sl.errtext));
	buf_release(&sl.errtext);
	buf_release(&script);
	buf_release(&dir);
	buf_release(&mark);
	return status;
}

/*
 * Point current at id (NULL: remove it) and, in the same script, mark id
 * live and the release it leaves as left. The records' new text is written
 * before the rename and renamed into place right after it: a kill can
 * only land in the two renames, and the next run's probe repairs that.
 * With then, the restart of then->svc follows in the same round trip.
 */
static int
switch_to(struct fleet *f, struct fleet_host *fh, const char *id,
	  const char *from, enum release_status left, const char *reason,
	  struct restart_carry *then, struct rf_error *err)
{
	struct buf cmd = BUF_INIT, post = BUF_INIT, out = BUF_INIT,
		   errtext = BUF_INIT;
	int status;

	buf_adds(&cmd, "R1=; R2=\n");
	record_moves(f, fh, id, RS_LIVE, NULL, "R1", &cmd, &post);
	if (from != NULL && (id == NULL || strcmp(from, id) != 0))
		record_moves(f, fh, from, left, reason, "R2", &cmd, &post);
	step_switch_script(&cmd, f->conf->app_path, id);
	buf_adds(&cmd, "S=$?; [ $S -eq 0 ] || "
		       "{ rm -f -- \"$R1\" \"$R2\"; exit $S; }\n");
	buf_adds(&cmd, buf_str(&post));
	if (then != NULL)
		status = switch_then_restart(f, fh, buf_str(&cmd), then,
					     &errtext, err);
	else
		status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), &out,
				   &errtext, err);
	buf_release(&post);
	buf_release(&cmd);
	if (status == 0) {
		buf_release(&out);
		buf_release(&errtext);
		return 0;
	}
	if (status > 0)
		rf_error_set(err, RF_EXIT_HEALTH, "switch",
			     "cannot point current at releases/%s on %s "
			     "(exit %d)%s%s",
			     id ? id : "(none)", fh->host->name, status,
			     errtext.len ? ": " : "", buf_str(&errtext));
	buf_release(&out);
	buf_release(&errtext);
	/* 1: the script ran and failed; -1: no answer, the outcome unknown. */
	return status > 0 ? 1 : -1;
}

/* The error of a service's restart names the service. */
static void
restart_failed(const struct conf_service *svc, struct rf_error *err)
{
	char why[sizeof(err->msg)];

	snprintf(why, sizeof(why), "%s", err->msg);
	snprintf(err->msg, sizeof(err->msg), "restarting %.64s: %.400s",
		 svc->name, why);
}

static int
restart_services(struct fleet *f, struct fleet_host *fh, const char *release,
		 const char *previous, const char *stage, struct buf *names,
		 struct rf_error *err)
{
	const struct conf *conf = f->conf;
	struct buf dir = BUF_INIT;
	struct step_env env = {
		.app = conf->app_path,
		.release = release,
		.previous = previous ? previous : "",
		.host = fh->host->name,
	};
	size_t i;
	int rc = 0;

	buf_addf(&dir, "%s/current", conf->app_path);
	for (i = 0; i < conf->nservices && rc == 0; i++) {
		if (!conf_service_on_host(&conf->services[i], fh->host))
			continue;
		rc = fleet_hook(f, fh, stage, buf_str(&dir),
				conf->services[i].restart, &env, RF_EXIT_HEALTH,
				err);
		if (rc != 0)
			restart_failed(&conf->services[i], err);
		else if (names != NULL)
			buf_addf(names, "%s%s", names->len ? ", " : "",
				 conf->services[i].name);
	}
	buf_release(&dir);
	return rc;
}

static int
health_of(struct fleet *f, struct fleet_host *fh, const char *revision,
	  struct health_result *res, struct rf_error *err)
{
	memset(res, 0, sizeof(*res));
	if (!f->conf->has_health || f->conf->health_url == NULL) {
		res->ok = 1;
		snprintf(res->detail, sizeof(res->detail), "not checked");
		return 0;
	}
	return health_check_remote(fh->r, f->conf, revision, res, err);
}

static void
switch_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	(void)run;
	step_switch_script(&p->script, f->conf->app_path, fh->target);
}

static int
switch_host(struct fleet *f, struct fleet_host *fh, struct restart_carry *then)
{
	int rc;

	/*
	 * Counted as switched unless the script said it failed: when the
	 * connection drops, mv -T may have run, and switching back a host
	 * that never moved is harmless.
	 */
	fh->sw.switched = 1;
	rc = switch_to(f, fh, fh->target, fh->back,
		       fh->leaves_bad ? RS_BAD : RS_GOOD,
		       fh->leaves_bad ? "rolled back" : NULL, then, &fh->err);
	if (rc > 0)
		fh->sw.switched = 0;
	if (rc != 0)
		return -1;
	snprintf(fh->detail, sizeof(fh->detail), "current -> releases/%.64s",
		 fh->target);
	if (f->n > 1)
		fh->detail[0] = '\0';
	return 0;
}

static int
do_switch(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)arg;
	return switch_host(f, fh, NULL);
}

/* Every service of the host's roles, each its own hook run in current. */
static void
restart_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	     struct stage_plan *p)
{
	const struct conf *conf = f->conf;
	struct step_env env = target_env(f, fh);
	struct buf dir = BUF_INIT;
	size_t i;

	(void)run;
	buf_addf(&dir, "%s/current", conf->app_path);
	for (i = 0; i < conf->nservices; i++) {
		if (!conf_service_on_host(&conf->services[i], fh->host))
			continue;
		buf_addf(&p->script, "# service %s\n", conf->services[i].name);
		step_hook_script(&p->script, buf_str(&dir), &env,
				 conf->services[i].restart);
	}
	if (p->script.len == 0)
		buf_adds(&p->what, "no service runs on this host's roles");
	buf_release(&dir);
}

static int
do_restart(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct buf names = BUF_INIT;
	int rc;

	(void)arg;
	rc = restart_services(f, fh, fh->target, fh->back, "restart", &names,
			      &fh->err);
	snprintf(fh->detail, sizeof(fh->detail), "%s",
		 names.len ? buf_str(&names) : "no services");
	buf_release(&names);
	return rc;
}

/*
 * The switch and restart rows in one round trip, on a batch of one host
 * with one service to restart: between them lies no decision the server
 * cannot make (the restart runs only when the switch went through), and
 * with other hosts in the batch none switches until all have, as before.
 */
struct switch_join {
	void *run;
	struct restart_carry *carry; /* per host */
};

/* The one service restarted on fh, or NULL (none, or several). */
static const struct conf_service *
only_service(const struct fleet *f, const struct fleet_host *fh)
{
	const struct conf_service *one = NULL;
	size_t i;

	for (i = 0; i < f->conf->nservices; i++) {
		if (!conf_service_on_host(&f->conf->services[i], fh->host))
			continue;
		if (one != NULL)
			return NULL;
		one = &f->conf->services[i];
	}
	return one;
}

static int
do_switch_joined(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct switch_join *j = arg;
	struct restart_carry *c = &j->carry[fh - f->h];

	c->svc = only_service(f, fh);
	return switch_host(f, fh, c->svc != NULL ? c : NULL);
}

static int
do_restart_joined(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct switch_join *j = arg;
	struct restart_carry *c = &j->carry[fh - f->h];
	struct hook_lines hl = { fh->host->name, "restart", "", 0 };
	struct step_env env = target_env(f, fh);
	struct buf dir = BUF_INIT;
	size_t off;
	int rc;

	if (!c->ran)
		return do_restart(f, fh, j->run);
	/* Its lines, shown now, in the order they came. */
	for (off = 0; off < c->lines.len;
	     off += strlen(c->lines.buf + off + 1) + 2)
		hook_line(&hl, c->lines.buf[off] == '1', c->lines.buf + off + 1);
	buf_addf(&dir, "%s/current", f->conf->app_path);
	if (c->rc != 0) {
		fh->err = c->err;
		rc = -1;
	} else {
		rc = hook_judge(f, fh, "restart", buf_str(&dir),
				c->svc->restart, &env, RF_EXIT_HEALTH, &c->res,
				&hl, &fh->err);
	}
	if (rc != 0)
		restart_failed(c->svc, &fh->err);
	else
		snprintf(fh->detail, sizeof(fh->detail), "%s", c->svc->name);
	buf_release(&dir);
	return rc;
}

/* Rows k and k + 1 (switch, restart) of a batch of one host, joined. */
static int
switch_restart_joined(struct fleet *f, void *run, struct rf_error *err)
{
	struct switch_join j = { run, NULL };
	size_t i;
	int rc = -1;

	j.carry = xcalloc(f->n ? f->n : 1, sizeof(*j.carry));
	if (fleet_step(f, switch_stage.name, do_switch_joined, &j, err) != 0)
		goto out;
	if (fleet_step(f, restart_stage.name, do_restart_joined, &j, err) !=
	    0)
		goto out;
	rc = 0;
out:
	for (i = 0; i < f->n; i++)
		buf_release(&j.carry[i].lines);
	free(j.carry);
	return rc;
}

static void
health_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	const struct conf *conf = f->conf;

	(void)fh;
	(void)run;
	if (!conf->has_health) {
		buf_adds(&p->what, "no [health] section: nothing is checked");
		return;
	}
	if (conf->health_url != NULL)
		buf_addf(&p->what, "GET %s through SSH, expect %d%s",
			 conf->health_url, conf->expect_status,
			 conf->expect_revision
			     ? " and the release id in the body"
			     : "");
	if (conf->public_url != NULL)
		buf_addf(&p->what, "%sGET %s from here, once the batch is "
			 "healthy",
			 p->what.len ? "; " : "", conf->public_url);
}

static int
do_health(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct health_result res;

	(void)arg;
	if (health_of(f, fh, fh->target, &res, &fh->err) != 0)
		return -1;
	if (!res.ok) {
		rf_error_set(&fh->err, RF_EXIT_HEALTH, "health",
			     "health check failed on %s: %s", fh->host->name,
			     res.detail);
		if (res.hint[0] != '\0')
			rf_error_hint(&fh->err, "%s", res.hint);
		else
			rf_error_hint(&fh->err,
				      "why is in the app's own log on %s "
				      "(journalctl -u UNIT for a systemd "
				      "service, or the file it logs to); "
				      "relflip -H %s check asks [health] url "
				      "again",
				      fh->host->name, fh->host->name);
		return -1;
	}
	fh->sw.healthy = 1;
	snprintf(fh->detail, sizeof(fh->detail), "%.150s", res.detail);
	return 0;
}

/* ---- before_switch and after_switch: hooks around each switch ---- */

/* A switch hook's directory (the release switched to) and environment. */
static void
switch_hook_env(const struct fleet *f, const struct fleet_host *fh,
		struct buf *dir, struct step_env *env)
{
	buf_addf(dir, "%s/releases/%s", f->conf->app_path, fh->target);
	env->app = f->conf->app_path;
	env->release = fh->target;
	env->previous = fh->back ? fh->back : "";
	env->host = fh->host->name;
}

static void
switch_hook_plan(const struct fleet *f, const struct fleet_host *fh,
		 const char *command, struct stage_plan *p)
{
	struct buf dir = BUF_INIT;
	struct step_env env;

	switch_hook_env(f, fh, &dir, &env);
	step_hook_script(&p->script, buf_str(&dir), &env, command);
	buf_release(&dir);
}

static int
switch_hook_run(struct fleet *f, struct fleet_host *fh, const char *stage,
		const char *command, enum rf_exit code)
{
	struct buf dir = BUF_INIT;
	struct step_env env;
	int rc;

	switch_hook_env(f, fh, &dir, &env);
	rc = fleet_hook(f, fh, stage, buf_str(&dir), command, &env, code,
			&fh->err);
	buf_release(&dir);
	return rc;
}

static int
before_switch_wanted(const struct fleet *f, const struct fleet_host *fh,
		     void *run)
{
	(void)fh;
	(void)run;
	return f->conf->hook_before_switch != NULL;
}

static void
before_switch_plan(const struct fleet *f, const struct fleet_host *fh,
		   void *run, struct stage_plan *p)
{
	(void)run;
	switch_hook_plan(f, fh, f->conf->hook_before_switch, p);
}

/* A failure stops the run before any host switches: exit 7. */
static int
do_before_switch(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)arg;
	if (switch_hook_run(f, fh, "before_switch", f->conf->hook_before_switch,
			    RF_EXIT_HOOK) != 0) {
		char how[sizeof(fh->err.hint)];

		/* The hook's own hint (how to run it again) stays, after. */
		snprintf(how, sizeof(how), "%s",
			 fh->err.hint[0] ? fh->err.hint
					 : "fix the hook or the release, then "
					   "run again");
		rf_error_hint(&fh->err, "current is unchanged on every host; %s",
			      how);
		return -1;
	}
	return 0;
}

static int
after_switch_wanted(const struct fleet *f, const struct fleet_host *fh,
		    void *run)
{
	(void)fh;
	(void)run;
	return f->conf->hook_after_switch != NULL;
}

static void
after_switch_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
		  struct stage_plan *p)
{
	(void)run;
	switch_hook_plan(f, fh, f->conf->hook_after_switch, p);
}

/* A failure counts as a failed health check: the way back follows. */
static int
do_after_switch(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)arg;
	return switch_hook_run(f, fh, "after_switch",
			       f->conf->hook_after_switch, RF_EXIT_HEALTH);
}

static void
revert_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	(void)run;
	step_switch_script(&p->script, f->conf->app_path, fh->back);
	if (fh->back != NULL)
		buf_adds(&p->script, "# then restart and check health as "
				     "above\n");
}

static int
do_revert(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct health_result res;
	struct buf names = BUF_INIT;

	(void)arg;
	fh->sw.reverted = 0;
	if (switch_to(f, fh, fh->back, fh->target, RS_BAD,
		      "failed its health check", NULL, &fh->err) != 0)
		return -1;
	fh->sw.reverted = 1;
	if (fh->back == NULL) {
		struct buf svc = BUF_INIT;
		size_t i;

		/* Nothing was live before: no current is the state before. */
		fh->sw.revert_ok = 1;
		snprintf(fh->detail, sizeof(fh->detail),
			 "current removed (no previous release)");
		for (i = 0; i < f->conf->nservices; i++) {
			if (conf_service_on_host(&f->conf->services[i],
						 fh->host))
				buf_addf(&svc, "%s%s", svc.len ? ", " : "",
					 f->conf->services[i].name);
		}
		/* A restart started them from the failed release. */
		if (svc.len > 0)
			out_warning(fh->host->name, "rollback",
				    "no release was live before %s: the "
				    "services restarted from it (%s) may still "
				    "run it; stop them by hand",
				    fh->target, buf_str(&svc));
		buf_release(&svc);
		return 0;
	}
	if (restart_services(f, fh, fh->back, fh->target, "rollback", &names,
			     &fh->err) != 0) {
		buf_release(&names);
		return -1;
	}
	buf_release(&names);
	if (health_of(f, fh, fh->back, &res, &fh->err) != 0)
		return -1;
	if (!res.ok) {
		rf_error_set(&fh->err, RF_EXIT_ROLLBACK_FAILED, "rollback",
			     "back on %s, but its health check fails too on "
			     "%s: %s",
			     fh->back, fh->host->name, res.detail);
		return -1;
	}
	fh->sw.revert_ok = 1;
	snprintf(fh->detail, sizeof(fh->detail),
		 "current -> releases/%.64s, restarted, healthy", fh->back);
	return 0;
}

/* The public URL, fetched from here once a batch is healthy. */
static int
public_check(struct fleet *f, const char *revision, struct rf_error *err)
{
	struct health_result res;
	long long t0 = out_now_ms();

	if (!f->conf->has_health || f->conf->public_url == NULL)
		return 0;
	out_stage_begin(NULL, "health");
	if (health_check_public(f->conf, revision, &res, err) != 0)
		return -1;
	out_stage_end(NULL, "health", (long)(out_now_ms() - t0), res.ok,
		      res.detail);
	if (!res.ok)
		return rf_error_set(err, RF_EXIT_HEALTH, "health",
				    "public_url %s failed: %s",
				    f->conf->public_url, res.detail);
	return 0;
}

static void
no_health_warning(struct fleet *f)
{
	if (f->conf->has_health || f->warned_no_health)
		return;
	f->warned_no_health = 1;
	out_warning(NULL, "health",
		    "no [health] section: relflip cannot verify the release; "
		    "only a failing restart makes it roll back");
}

/* Switched, with a release to go back to, or with none (a first deploy). */
static int
pick_switched_back(const struct fleet_host *fh)
{
	return fh->sw.switched && fh->back != NULL;
}

static int
pick_switched_first(const struct fleet_host *fh)
{
	return fh->sw.switched && fh->back == NULL;
}

static int
pick_stuck(const struct fleet_host *fh)
{
	return fh->sw.switched && !(fh->sw.reverted && fh->sw.revert_ok);
}

static void
revert_all(struct fleet *f, struct rf_error *err)
{
	struct rf_error back_err = RF_ERROR_INIT;
	size_t i;

	for (i = 0; i < f->n; i++) {
		f->h[i].active = f->h[i].sw.switched;
		/* A host that failed forward still needs its way back. */
		f->h[i].failed = 0;
	}
	if (fleet_step(f, way_back_stage.name, do_revert, NULL, &back_err) !=
	    0) {
		struct buf names = BUF_INIT;

		char first[sizeof(err->msg)];

		snprintf(first, sizeof(first), "%s", err->msg);
		fleet_names(f, pick_stuck, &names);
		rf_error_set(err, RF_EXIT_ROLLBACK_FAILED, "rollback",
			     "%s, and the way back failed on %s: %s", first,
			     buf_str(&names), back_err.msg);
		rf_error_hint(err, "a person is needed: see the per-host state "
			      "above, then relflip releases and relflip "
			      "rollback --to ID");
		buf_release(&names);
	}
}


const struct stage switch_stage = {
	.name = "switch",
	.flags = STAGE_CHANGES | STAGE_BATCHED,
	.does = "point current at the release by rename(2)",
	.undo = "the way back: current points at the release before",
	.plan = switch_plan,
	.run = do_switch,
};

const struct stage restart_stage = {
	.name = "restart",
	.flags = STAGE_CHANGES | STAGE_BATCHED,
	.does = "restart the services of the host's roles, in current",
	.undo = "the way back restarts them on the release before",
	.plan = restart_plan,
	.run = do_restart,
};

const struct stage health_stage = {
	.name = "health",
	.flags = STAGE_BATCHED,
	.does = "check the app's health",
	.undo = NULL,
	.plan = health_plan,
	.run = do_health,
};

const struct stage before_switch_stage = {
	.name = "before_switch",
	.flags = STAGE_CHANGES,
	.does = "run the before_switch hook in the release, on every host, "
		"before any host switches",
	.undo = "nothing undoes what the hook did; current has not moved",
	.wanted = before_switch_wanted,
	.plan = before_switch_plan,
	.run = do_before_switch,
};

const struct stage after_switch_stage = {
	.name = "after_switch",
	.flags = STAGE_CHANGES | STAGE_BATCHED,
	.does = "run the after_switch hook in the release current points "
		"at; a failure fails the check",
	.undo = "the way back switches back; it does not run the hook again",
	.wanted = after_switch_wanted,
	.plan = after_switch_plan,
	.run = do_after_switch,
};

const struct stage way_back_stage = {
	.name = "rollback",
	.flags = STAGE_CHANGES | STAGE_UNDO,
	.does = "only when a check fails: switch back, restart, check",
	.undo = NULL,
	.plan = revert_plan,
	.run = do_revert,
};

int
switch_batches(struct fleet *f, const struct stage *const *rows, size_t n,
	       void *run, struct rf_error *err)
{
	size_t nsel = 0, i, k, size, batch, done = 0;
	size_t *sel;
	int failed = 0;
	struct switch_outcome *o;
	enum rf_exit code;

	sel = xcalloc(f->n ? f->n : 1, sizeof(*sel));
	for (i = 0; i < f->n; i++) {
		if (!f->h[i].failed)
			sel[nsel++] = i;
		memset(&f->h[i].sw, 0, sizeof(f->h[i].sw));
	}
	size = plan_batch_size(nsel, f->conf->batch, f->conf->batch_percent);
	f->switched_ms = record_now_ms();
	no_health_warning(f);
	signals_defer();
	for (batch = 0; done < nsel && !failed; batch++) {
		size_t end = done + size > nsel ? nsel : done + size;

		if (size < nsel)
			out_text("  batch %zu of %zu: %zu host%s", batch + 1,
				 (nsel + size - 1) / size, end - done,
				 end - done == 1 ? "" : "s");
		for (k = 0; k < n && !failed; k++) {
			int join = end - done == 1 && k + 1 < n &&
				   rows[k] == &switch_stage &&
				   rows[k + 1] == &restart_stage;

			for (i = 0; i < f->n; i++)
				f->h[i].active = 0;
			for (i = done; i < end; i++)
				f->h[sel[i]].active =
				    rows[k]->wanted == NULL ||
				    rows[k]->wanted(f, &f->h[sel[i]], run);
			if (join) {
				failed = switch_restart_joined(f, run, err) != 0;
				k++;
			} else if (fleet_step(f, rows[k]->name, rows[k]->run,
					      run, err) != 0) {
				failed = 1;
			}
		}
		if (!failed &&
		    public_check(f, f->h[sel[done]].target, err) != 0)
			failed = 1;
		done = end;
	}
	if (failed) {
		struct buf back = BUF_INIT, first = BUF_INIT, what = BUF_INIT;
		char msg[sizeof(err->msg)], hint[sizeof(err->hint)];

		fleet_names(f, pick_switched_back, &back);
		fleet_names(f, pick_switched_first, &first);
		if (back.len > 0)
			buf_addf(&what, "; switched back %s", buf_str(&back));
		if (first.len > 0)
			buf_addf(&what,
				 "; current removed on %s (nothing "
				 "was live there before)",
				 buf_str(&first));
		snprintf(msg, sizeof(msg), "%s", err->msg);
		snprintf(hint, sizeof(hint), "%s", err->hint);
		rf_error_set(err, RF_EXIT_HEALTH,
			     err->stage ? err->stage : "health", "%s%s", msg,
			     buf_str(&what));
		rf_error_hint(err, "%s", hint);
		revert_all(f, err);
		buf_release(&back);
		buf_release(&first);
		buf_release(&what);
	}
	o = xcalloc(f->n ? f->n : 1, sizeof(*o));
	for (i = 0; i < f->n; i++)
		o[i] = f->h[i].sw;
	code = plan_switch_outcome(o, f->n);
	if (failed) {
		/*
		 * A switch or the public URL can fail with no host unhealthy:
		 * still a failed check, and a stuck host still needs a person.
		 */
		code = RF_EXIT_HEALTH;
		for (i = 0; i < f->n; i++) {
			if (pick_stuck(&f->h[i]))
				code = RF_EXIT_ROLLBACK_FAILED;
		}
	}
	if (code != RF_EXIT_OK)
		err->code = code;
	free(o);
	free(sel);
	if (signals_undefer())
		out_warning(NULL, NULL, "interrupted after current moved: "
			    "finished the check and the way back first");
	return code;
}

