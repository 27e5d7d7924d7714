#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connect.h"
#include "fleet.h"
#include "json.h"
#include "record.h"
#include "hosts.h"
#include "lock.h"
#include "out.h"
#include "stage.h"
#include "steps.h"
#include "quote.h"
#include "xmalloc.h"

/* Past this many hosts, human lines count hosts instead of naming them. */
#define NAMES_MAX 6

static void
copy_env(char *dst, size_t len, const char *name, const char *fallback)
{
	const char *v = getenv(name);

	snprintf(dst, len, "%s", (v != NULL && *v != '\0') ? v : fallback);
}

void
fleet_init(struct fleet *f, const struct selection *sel, const char *command,
	   const char *revision)
{
	const struct conf *conf = sel->conf;
	struct conf_host **hosts = sel->hosts;
	size_t n = sel->n;
	const char *server = getenv("GITHUB_SERVER_URL");
	const char *repo = getenv("GITHUB_REPOSITORY");
	const char *run = getenv("GITHUB_RUN_ID");
	unsigned char raw[16];
	struct passwd *pw;
	FILE *u;
	size_t i;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->pace_lock, NULL);
	f->conf = conf;
	f->config_path = sel->config_path;
	f->n = n;
	f->h = xcalloc(n ? n : 1, sizeof(*f->h));
	for (i = 0; i < n; i++)
		f->h[i].host = hosts[i];
	f->command = command;
	{
		const char **names = xcalloc(n ? n : 1, sizeof(*names));

		for (i = 0; i < n; i++)
			names[i] = hosts[i]->name;
		out_live_begin(n, names);
		free(names);
	}
	f->revision = revision;
	pw = getpwuid(getuid());
	copy_env(f->actor, sizeof(f->actor), "GITHUB_ACTOR",
		 getenv("USER") ? getenv("USER")
				: (pw != NULL ? pw->pw_name : "unknown"));
	if (gethostname(f->runner, sizeof(f->runner)) != 0)
		snprintf(f->runner, sizeof(f->runner), "unknown");
	f->runner[sizeof(f->runner) - 1] = '\0';
	if (server && repo && run && *server && *repo && *run)
		snprintf(f->run_url, sizeof(f->run_url),
			 "%.80s/%.100s/actions/runs/%.40s", server, repo, run);

	memset(raw, 0, sizeof(raw));
	u = fopen("/dev/urandom", "rb");
	if (u == NULL || fread(raw, 1, sizeof(raw), u) != sizeof(raw)) {
		/* Uniqueness, not secrecy: time and pid do. */
		snprintf((char *)raw, sizeof(raw), "%lx%x", (long)time(NULL),
			 (unsigned)getpid());
	}
	if (u != NULL)
		fclose(u);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(f->token + 2 * i, 3, "%02x", raw[i]);
}

void
fleet_release(struct fleet *f)
{
	size_t i;

	out_live_end();
	for (i = 0; i < f->n; i++) {
		remote_close(f->h[i].r);
		f->h[i].r = NULL;
		layout_state_release(&f->h[i].st);
	}
	free(f->h);
	f->h = NULL;
}

void
fleet_names(const struct fleet *f, int (*pick)(const struct fleet_host *),
	    struct buf *out)
{
	size_t i, n = 0;

	for (i = 0; i < f->n; i++)
		n += pick(&f->h[i]) != 0;
	if (n > NAMES_MAX) {
		buf_addf(out, "%zu hosts", n);
		return;
	}
	n = 0;
	for (i = 0; i < f->n; i++) {
		if (pick(&f->h[i]))
			buf_addf(out, "%s%s", n++ ? " " : "", f->h[i].host->name);
	}
}

int
fleet_pick_active_ok(const struct fleet_host *fh)
{
	return fh->active && !fh->failed;
}

int
fleet_pick_failed_active(const struct fleet_host *fh)
{
	return fh->active && fh->failed;
}

void
fleet_activate_all(struct fleet *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		f->h[i].active = !f->h[i].failed;
}

void
fleet_activate_locked(struct fleet *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		f->h[i].active = f->h[i].locked;
		f->h[i].failed = 0;
	}
}

int
fleet_open(struct fleet *f, int flags, struct rf_error *err)
{
	if (fleet_connect(f, err) != 0)
		return -1;
	if (flags & FLEET_LOCK)
		return stage_run(f, &lock_stage, NULL, err);
	if (flags & FLEET_PROBE)
		return fleet_probe(f, err);
	return 0;
}

void
fleet_outcome(struct run_outcome *o, int code, const char *revision,
	      const char *previous, long long started_ms)
{
	o->status = code == 0 ? "ok"
		    : (code == RF_EXIT_HEALTH ||
		       code == RF_EXIT_ROLLBACK_FAILED)
			? "rolled_back"
			: "failed";
	snprintf(o->revision, sizeof(o->revision), "%s",
		 revision ? revision : "");
	snprintf(o->previous, sizeof(o->previous), "%s",
		 previous ? previous : "");
	o->duration_ms = (long)(out_now_ms() - started_ms);
}

struct step_call {
	struct fleet *f;
	const char *stage;
	fleet_step_fn fn;
	void *arg;
};

static void
step_one(void *p, size_t i)
{
	struct step_call *c = p;
	struct fleet_host *fh = &c->f->h[i];
	long long t0;
	int rc;

	if (!fh->active || fh->failed)
		return;
	fh->detail[0] = '\0';
	t0 = out_now_ms();
	if (fh->t_first == 0)
		fh->t_first = t0;
	out_stage_begin(fh->host->name, c->stage);
	out_live_stage(i, c->stage);
	rf_error_clear(&fh->err);
	rc = c->fn(c->f, fh, c->arg);
	out_live_done(i, rc == 0);
	/* A final stage (the record) that ran has done its work. */
	if (rc == 0 && interrupted && !c->f->final)
		rc = rf_error_set(&fh->err, RF_EXIT_INTERRUPTED, c->stage,
				  "interrupted");
	if (rc != 0) {
		fh->failed = 1;
		if (fh->err.code == 0)
			rf_error_set(&fh->err, RF_EXIT_INTERNAL, c->stage,
				     "%s failed", c->stage);
		if (fh->err.stage == NULL)
			fh->err.stage = c->stage;
		if (fh->err.code == RF_EXIT_INTERRUPTED &&
		    strcmp(fh->err.msg, "interrupted") == 0)
			snprintf(fh->err.msg, sizeof(fh->err.msg),
				 "interrupted during %s on %s", c->stage,
				 fh->host->name);
		rf_error_host(&fh->err, fh->host->name);
	}
	{
		struct out_field fields[4] = {
			OF_STR("phase", "end"),
			OF_INT("duration_ms", out_now_ms() - t0),
			OF_BOOL("ok", rc == 0),
			OF_STR("detail", rc == 0 ? fh->detail : fh->err.msg),
		};
		out_event("stage", fh->host->name, c->stage, fields, 4);
	}
	fh->t_last = out_now_ms();
}

/* One human line for a stage over its hosts, with details for a few. */
static void
stage_line(struct fleet *f, const char *stage, long ms, int ok)
{
	struct buf line = BUF_INIT;
	size_t i, n = 0, nd = 0;
	int saved = out_cfg.json;

	for (i = 0; i < f->n; i++) {
		if (fleet_pick_active_ok(&f->h[i])) {
			n++;
			nd += f->h[i].detail[0] != '\0';
		}
	}
	if (n == 0 && ok)
		return;
	if (n > 0 && n <= 4 && nd > 0) {
		size_t k = 0;

		for (i = 0; i < f->n; i++) {
			if (!fleet_pick_active_ok(&f->h[i]))
				continue;
			buf_addf(&line, "%s%s%s%s", k++ ? " · " : "",
				 f->h[i].host->name,
				 f->h[i].detail[0] ? " " : "", f->h[i].detail);
		}
	} else {
		fleet_names(f, fleet_pick_active_ok, &line);
		if (nd > 0) {
			for (i = 0; i < f->n; i++) {
				if (fleet_pick_active_ok(&f->h[i]) &&
				    f->h[i].detail[0]) {
					buf_addf(&line, "  %s", f->h[i].detail);
					break;
				}
			}
		}
	}
	if (!ok) {
		size_t nfailed = 0;
		const struct fleet_host *first = NULL;

		if (n > 0)
			buf_adds(&line, " · ");
		buf_adds(&line, "FAILED: ");
		fleet_names(f, fleet_pick_failed_active, &line);
		for (i = 0; i < f->n; i++) {
			if (fleet_pick_failed_active(&f->h[i])) {
				nfailed++;
				if (first == NULL)
					first = &f->h[i];
			}
		}
		/* One failure: say why on the stage's own line. */
		if (nfailed == 1 && first->err.msg[0] != '\0')
			buf_addf(&line, " (%.90s%s)", first->err.msg,
				 strlen(first->err.msg) > 90 ? "..." : "");
	}
	/* The per-host events were sent; this is the human line only. */
	out_cfg.json = 0;
	out_stage_end(NULL, stage, ms, ok, buf_str(&line));
	out_cfg.json = saved;
	buf_release(&line);
}

int
fleet_step(struct fleet *f, const char *stage, fleet_step_fn fn, void *arg,
	   struct rf_error *err)
{
	struct step_call c = { f, stage, fn, arg };
	long long t0 = out_now_ms();
	struct buf names = BUF_INIT;
	size_t i, nfailed = 0, nran = 0;
	struct fleet_host *first = NULL;

	for (i = 0; i < f->n; i++)
		nran += fleet_pick_active_ok(&f->h[i]);
	if (nran == 0)
		return 0;
	fleet_names(f, fleet_pick_active_ok, &names);
	out_stage_running(stage, buf_str(&names));
	buf_release(&names);
	if (f->n == 1)
		step_one(&c, 0);
	else
		hosts_run(f->n, f->conf->max_parallel, step_one, &c);
	for (i = 0; i < f->n; i++) {
		if (fleet_pick_failed_active(&f->h[i])) {
			nfailed++;
			if (first == NULL)
				first = &f->h[i];
		}
	}
	stage_line(f, stage, (long)(out_now_ms() - t0), nfailed == 0);
	if (nfailed == 0)
		return 0;
	if (nfailed == 1 && nran == 1) {
		*err = first->err;
		return -1;
	}
	/* Several hosts failed: each says why, the summary names them. */
	for (i = 0; i < f->n; i++) {
		if (fleet_pick_failed_active(&f->h[i]))
			out_error(&f->h[i].err);
	}
	fleet_names(f, fleet_pick_failed_active, &names);
	rf_error_clear(err);
	rf_error_set(err, first->err.code, stage, "%s failed on %zu of %zu "
		     "hosts: %s", stage, nfailed, nran, buf_str(&names));
	if (first->err.hint[0] != '\0')
		rf_error_hint(err, "%s", first->err.hint);
	buf_release(&names);
	return -1;
}

int
fleet_run(struct fleet_host *fh, const char *app, const char *script,
	  struct buf *out, struct buf *errtext, struct rf_error *err)
{
	return fleet_run_input(fh, app, script, NULL, out, errtext, err);
}

int
fleet_run_input(struct fleet_host *fh, const char *app, const char *script,
		const char *input, struct buf *out, struct buf *errtext,
		struct rf_error *err)
{
	struct buf cmd = BUF_INIT;
	int rc;

	if (fh->locked)
		step_renew(&cmd, app);
	buf_adds(&cmd, script);
	out_debug("%s: %s", fh->host->name, buf_str(&cmd));
	rc = remote_run(fh->r, buf_str(&cmd), input, out, errtext, err);
	buf_release(&cmd);
	return rc;
}

void
fleet_log_begin(const struct fleet *f, const struct fleet_host *fh,
		const char *revision, const char *previous, const char *result,
		int exit_code, struct json_obj *o, struct buf *out)
{
	struct record_log l = {
		.time = (long long)time(NULL),
		.command = f->command,
		.revision = revision,
		.previous = previous,
		.result = result,
		.exit_code = exit_code,
		.host = fh->host->name,
		.actor = f->actor,
		.runner = f->runner,
		.run_url = f->run_url,
	};

	record_log_begin(o, out, &l);
}

