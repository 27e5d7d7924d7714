#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fleet.h"
#include "health.h"
#include "hosts.h"
#include "out.h"
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
fleet_init(struct fleet *f, const struct conf *conf, struct conf_host **hosts,
	   size_t n, const char *command, const char *revision)
{
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

static int
pick_active_ok(const struct fleet_host *fh)
{
	return fh->active && !fh->failed;
}

static int
pick_failed_active(const struct fleet_host *fh)
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
	out_live_set(i, "%-9s running", c->stage);
	rf_error_clear(&fh->err);
	rc = c->fn(c->f, fh, c->arg);
	out_live_set(i, "%-9s %s", c->stage, rc == 0 ? "done" : "FAILED");
	if (rc == 0 && interrupted)
		rc = rf_error_set(&fh->err, RF_EXIT_INTERRUPTED, c->stage,
				  "interrupted");
	if (rc != 0) {
		fh->failed = 1;
		if (fh->err.code == 0)
			rf_error_set(&fh->err, RF_EXIT_INTERNAL, c->stage,
				     "%s failed", c->stage);
		if (fh->err.stage == NULL)
			fh->err.stage = c->stage;
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
		if (pick_active_ok(&f->h[i])) {
			n++;
			nd += f->h[i].detail[0] != '\0';
		}
	}
	if (n == 0 && ok)
		return;
	if (n > 0 && n <= 4 && nd > 0) {
		size_t k = 0;

		for (i = 0; i < f->n; i++) {
			if (!pick_active_ok(&f->h[i]))
				continue;
			buf_addf(&line, "%s%s%s%s", k++ ? " · " : "",
				 f->h[i].host->name,
				 f->h[i].detail[0] ? " " : "", f->h[i].detail);
		}
	} else {
		fleet_names(f, pick_active_ok, &line);
		if (nd > 0) {
			for (i = 0; i < f->n; i++) {
				if (pick_active_ok(&f->h[i]) &&
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
		fleet_names(f, pick_failed_active, &line);
		for (i = 0; i < f->n; i++) {
			if (pick_failed_active(&f->h[i])) {
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
		nran += pick_active_ok(&f->h[i]);
	if (nran == 0)
		return 0;
	out_group_begin(stage);
	if (f->n == 1)
		step_one(&c, 0);
	else
		hosts_run(f->n, f->conf->max_parallel, step_one, &c);
	for (i = 0; i < f->n; i++) {
		if (pick_failed_active(&f->h[i])) {
			nfailed++;
			if (first == NULL)
				first = &f->h[i];
		}
	}
	stage_line(f, stage, (long)(out_now_ms() - t0), nfailed == 0);
	out_group_end();
	if (nfailed == 0)
		return 0;
	if (nfailed == 1 && nran == 1) {
		*err = first->err;
		return -1;
	}
	/* Several hosts failed: each says why, the summary names them. */
	for (i = 0; i < f->n; i++) {
		if (pick_failed_active(&f->h[i]))
			out_error(&f->h[i].err);
	}
	fleet_names(f, pick_failed_active, &names);
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

/* ---- connect ---- */

/*
 * New connections are spread out, one every CONNECT_SPACING_MS, so that a
 * firewall or bastion that limits connection rates (and sshd's MaxStartups
 * behind a shared address) is not tripped by a fleet connecting at once.
 */
#define CONNECT_SPACING_MS 5

static void
connect_pace(struct fleet *f)
{
	long long now, slot;

	pthread_mutex_lock(&f->pace_lock);
	now = out_now_ms();
	slot = f->next_connect_ms > now ? f->next_connect_ms : now;
	f->next_connect_ms = slot + CONNECT_SPACING_MS;
	pthread_mutex_unlock(&f->pace_lock);
	if (slot > now) {
		struct timespec ts = { 0, (long)(slot - now) * 1000000L };

		nanosleep(&ts, NULL);
	}
}

static int
connect_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)arg;
	connect_pace(f);
	if (host_connect(f->conf, fh->host, &fh->r, &fh->info, &fh->err) != 0)
		return -1;
	fh->connected = 1;
	if (f->warm_up) {
		/*
		 * sshd spends ~45 ms on a connection's first session channel;
		 * an SFTP stat (changing nothing) pays it here, while the
		 * artifact is still being validated, instead of in the lock.
		 */
		struct rf_error ignored = RF_ERROR_INIT;
		int64_t size;

		remote_file_size(fh->r, f->conf->app_path, &size, &ignored);
	}
	return 0;
}

int
fleet_connect(struct fleet *f, struct rf_error *err)
{
	fleet_activate_all(f);
	return fleet_step(f, "connect", connect_one, NULL, err);
}

/* ---- lock ---- */

static void
lock_info_lines(struct fleet *f, struct buf *b)
{
	buf_addf(b, "user=%s@%s\nrunner=%s\npid=%ld\nrun_url=%s\n"
		    "revision=%s\ncommand=%s\ntoken=%s\n",
		 f->actor, f->runner, f->runner, (long)getpid(), f->run_url,
		 f->revision ? f->revision : "", f->command, f->token);
}

static void
held_error(struct fleet *f, struct fleet_host *fh)
{
	const struct lock_info *l = &fh->st.lock;
	long long age = fh->st.server_now - l->renewed;
	char since[32] = "?";

	if (l->since)
		record_time(since, sizeof(since), l->since);
	rf_error_set(&fh->err, RF_EXIT_LOCKED, "lock",
		     "deploy lock on %s is held by %s (pid %s) for %s %s since "
		     "%s, renewed %llds ago%s%s",
		     fh->host->name, l->user[0] ? l->user : "someone",
		     l->pid[0] ? l->pid : "?",
		     l->command[0] ? l->command : "a deploy of",
		     l->revision[0] ? l->revision : "?", since, age,
		     l->run_url[0] ? "; run " : "", l->run_url);
	if ((double)age > f->conf->lock_ttl)
		rf_error_hint(&fh->err,
			      "the lock is stale (older than lock_ttl = %.0f s): "
			      "if that run is dead, relflip -H %s unlock",
			      f->conf->lock_ttl, fh->host->name);
	else
		rf_error_hint(&fh->err,
			      "wait for it to finish, or set [deploy] lock_wait "
			      "to wait up to that many seconds");
}

/* What the probe found current pointing at is the release live before. */
static void
live_from_probe(struct fleet_host *fh)
{
	if (fh->st.current == CURRENT_LINK || fh->st.current == CURRENT_DANGLING)
		snprintf(fh->live, sizeof(fh->live), "%s", fh->st.current_id);
}

static int
lock_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct buf info = BUF_INIT, cmd = BUF_INIT, out = BUF_INIT;
	struct buf errtext = BUF_INIT;
	long long deadline = out_now_ms() + (long long)(f->conf->lock_wait *
							1000.0);
	int rc = -1, status;

	(void)arg;
	lock_info_lines(f, &info);
	step_lock_script(&cmd, f->conf->app_path, buf_str(&info));
	layout_probe_script(&cmd, f->conf->app_path, LAYOUT_RECORDS);
	out.max = 64 << 20;
	for (;;) {
		buf_reset(&out);
		buf_reset(&errtext);
		layout_state_release(&fh->st);
		status = remote_run(fh->r, buf_str(&cmd), NULL, &out, &errtext,
				    &fh->err);
		if (status < 0)
			goto out;
		if (status == STEP_LAYOUT) {
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "lock",
				     "cannot create the layout under %s: %s",
				     f->conf->app_path, buf_str(&errtext));
			rf_error_hint(&fh->err, "relflip -H %s check shows "
				      "what is wrong with the app path",
				      fh->host->name);
			goto out;
		}
		if (status != 0) {
			rf_error_set(&fh->err, RF_EXIT_INTERNAL, "lock",
				     "the lock script failed (exit %d): %s",
				     status, buf_str(&errtext));
			goto out;
		}
		layout_parse(buf_str(&out), &fh->st);
		live_from_probe(fh);
		if (strncmp(buf_str(&out), "locked=1", 8) == 0) {
			fh->locked = 1;
			break;
		}
		if (out_now_ms() >= deadline || interrupted) {
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
	buf_release(&info);
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errtext);
	return rc;
}

int
fleet_lock(struct fleet *f, struct rf_error *err)
{
	fleet_activate_all(f);
	if (fleet_step(f, "lock", lock_one, NULL, err) != 0) {
		fleet_unlock(f);
		return -1;
	}
	return 0;
}

static int
probe_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)arg;
	if (layout_probe(fh->r, f->conf->app_path, LAYOUT_RECORDS, &fh->st,
			 &fh->err) != 0)
		return -1;
	live_from_probe(fh);
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

/* ---- hooks ---- */

struct hook_lines {
	const char *host;
	const char *stage;
	char last[512]; /* the last stderr (else stdout) line, for the error */
	int last_is_err;
};

static void
hook_line(void *arg, int is_stderr, const char *line)
{
	struct hook_lines *hl = arg;

	out_output(hl->host, hl->stage, is_stderr, line);
	if (line[0] != '\0' && (is_stderr || !hl->last_is_err)) {
		snprintf(hl->last, sizeof(hl->last), "%s", line);
		hl->last_is_err = is_stderr;
	}
}

int
fleet_hook(struct fleet *f, struct fleet_host *fh, const char *stage,
	   const char *dir, const char *command, const struct step_env *env,
	   enum rf_exit code, struct rf_error *err)
{
	struct buf cmd = BUF_INIT;
	struct hook_lines hl = { fh->host->name, stage, "", 0 };
	struct exec_request req = { 0 };
	struct exec_result res;
	double limit = f->conf->hook_timeout;
	int rc = -1;

	step_renew(&cmd, f->conf->app_path);
	step_hook_script(&cmd, dir, env, command);
	req.cmd = buf_str(&cmd);
	req.timeout = limit;
	req.on_line = hook_line;
	req.arg = &hl;
	out_debug("%s: %s", fh->host->name, req.cmd);
	/* Interrupted or cut off: the agent ended the hook on the server. */
	if (remote_exec(fh->r, &req, &res, err) != 0)
		goto out;
	if (res.timed_out || res.status == STEP_TIME_LIMIT ||
	    res.status == 128 + 9) {
		rf_error_set(err, code, stage,
			     "%s hook timed out after %.0f s on %s and was "
			     "killed",
			     stage, limit, fh->host->name);
		rf_error_hint(err, "raise [deploy] hook_timeout, or find what "
			      "the hook waits for");
		goto out;
	}
	if (res.status != 0) {
		if (res.signal[0] != '\0')
			rf_error_set(err, code, stage,
				     "%s hook was killed by SIG%s on %s",
				     stage, res.signal, fh->host->name);
		else
			rf_error_set(err, code, stage,
				     "%s hook failed with exit %d on %s%s%s",
				     stage, res.status, fh->host->name,
				     hl.last[0] ? ": " : "", hl.last);
		goto out;
	}
	rc = 0;
out:
	buf_release(&cmd);
	return rc;
}

/* ---- switch, restart, health, and the way back ---- */

static int
switch_to(struct fleet *f, struct fleet_host *fh, const char *id,
	  struct rf_error *err)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT, errtext = BUF_INIT;
	int status;

	step_switch_script(&cmd, f->conf->app_path, id);
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), &out,
			   &errtext, err);
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
		if (rc != 0) {
			char why[sizeof(err->msg)];

			snprintf(why, sizeof(why), "%s", err->msg);
			snprintf(err->msg, sizeof(err->msg),
				 "restarting %.64s: %.400s",
				 conf->services[i].name, why);
		} else if (names != NULL)
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

static int
do_switch(struct fleet *f, struct fleet_host *fh, void *arg)
{
	int rc;

	(void)arg;
	/*
	 * Counted as switched unless the script said it failed: when the
	 * connection drops, mv -T may have run, and switching back a host
	 * that never moved is harmless.
	 */
	fh->sw.switched = 1;
	rc = switch_to(f, fh, fh->target, &fh->err);
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
		rf_error_hint(&fh->err, "relflip -H %s check; and the app's "
			      "own logs on %s",
			      fh->host->name, fh->host->name);
		return -1;
	}
	fh->sw.healthy = 1;
	snprintf(fh->detail, sizeof(fh->detail), "%.150s", res.detail);
	return 0;
}

static int
do_revert(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct health_result res;
	struct buf names = BUF_INIT;

	(void)arg;
	fh->sw.reverted = 0;
	if (switch_to(f, fh, fh->back, &fh->err) != 0)
		return -1;
	fh->sw.reverted = 1;
	if (fh->back == NULL) {
		/* Nothing was live before: no current is the state before. */
		fh->sw.revert_ok = 1;
		snprintf(fh->detail, sizeof(fh->detail),
			 "current removed (no previous release)");
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

static int
pick_switched(const struct fleet_host *fh)
{
	return fh->sw.switched;
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
	if (fleet_step(f, "rollback", do_revert, NULL, &back_err) != 0) {
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

int
fleet_switch(struct fleet *f, struct rf_error *err)
{
	size_t nsel = 0, i, size, batch, done = 0;
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
	no_health_warning(f);
	signals_defer();
	for (batch = 0; done < nsel && !failed; batch++) {
		size_t end = done + size > nsel ? nsel : done + size;

		for (i = 0; i < f->n; i++)
			f->h[i].active = 0;
		for (i = done; i < end; i++)
			f->h[sel[i]].active = 1;
		if (size < nsel)
			out_text("  batch %zu of %zu: %zu host%s", batch + 1,
				 (nsel + size - 1) / size, end - done,
				 end - done == 1 ? "" : "s");
		if (fleet_step(f, "switch", do_switch, NULL, err) != 0 ||
		    fleet_step(f, "restart", do_restart, NULL, err) != 0 ||
		    fleet_step(f, "health", do_health, NULL, err) != 0 ||
		    public_check(f, f->h[sel[done]].target, err) != 0)
			failed = 1;
		done = end;
	}
	if (failed) {
		struct buf names = BUF_INIT;
		char msg[sizeof(err->msg)];

		fleet_names(f, pick_switched, &names);
		snprintf(msg, sizeof(msg), "%s", err->msg);
		rf_error_set(err, RF_EXIT_HEALTH, err->stage ? err->stage
							     : "health",
			     "%s; switched back %s", msg, buf_str(&names));
		revert_all(f, err);
		buf_release(&names);
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

void
fleet_log_line(const struct fleet *f, const struct fleet_host *fh,
	       const char *revision, const char *previous, const char *result,
	       int exit_code, const char *extra, struct buf *out)
{
	char t[32];

	record_time(t, sizeof(t), (long long)time(NULL));
	buf_adds(out, "{\"time\": ");
	json_quote(out, t);
	buf_adds(out, ", \"command\": ");
	json_quote(out, f->command);
	buf_adds(out, ", \"revision\": ");
	json_quote(out, revision ? revision : "");
	buf_adds(out, ", \"previous\": ");
	json_quote(out, previous ? previous : "");
	buf_adds(out, ", \"result\": ");
	json_quote(out, result);
	buf_addf(out, ", \"exit_code\": %d, \"host\": ", exit_code);
	json_quote(out, fh->host->name);
	buf_adds(out, ", \"actor\": ");
	json_quote(out, f->actor);
	buf_adds(out, ", \"runner\": ");
	json_quote(out, f->runner);
	buf_adds(out, ", \"run_url\": ");
	json_quote(out, f->run_url);
	if (extra != NULL && extra[0] != '\0') {
		buf_adds(out, ", ");
		buf_adds(out, extra);
	}
	buf_addch(out, '}');
}

/* Where a host stands after the run, in a few words, and what is live. */
static const char *
host_outcome(const struct fleet_host *fh, const char **live)
{
	/* A host never probed: what is live there was not looked at. */
	if (fh->st.server_now == 0)
		*live = "(not checked)";
	else
		*live = fh->live[0] ? fh->live : "none";
	if (fh->sw.switched && fh->sw.reverted && fh->sw.revert_ok) {
		*live = fh->back ? fh->back : "none";
		return "rolled back";
	}
	if (fh->sw.switched && fh->sw.reverted) {
		*live = fh->back ? fh->back : "none";
		return "ROLLBACK FAILED";
	}
	if (fh->sw.switched && !fh->sw.healthy) {
		*live = fh->target;
		return "UNHEALTHY, still switched";
	}
	if (fh->sw.switched) {
		*live = fh->target;
		return "ok";
	}
	if (fh->failed)
		return "failed";
	if (!fh->connected)
		return "not reached";
	return "unchanged";
}

void
fleet_report(const struct fleet *f, const char *revision, const char *previous,
	     int code, long duration_ms, const struct rf_error *err)
{
	struct buf md = BUF_INIT;
	size_t i;
	char dur[32];

	out_live_end();
	if (f->n > 1 && !out_cfg.quiet) {
		out_text("  %-20s %-26s %-24s %s", "HOST", "RESULT", "LIVE",
			 "DURATION");
		for (i = 0; i < f->n; i++) {
			const struct fleet_host *fh = &f->h[i];
			const char *live, *what = host_outcome(fh, &live);

			out_format_duration(dur, sizeof(dur),
					    (long)(fh->t_last - fh->t_first));
			out_text("  %-20s %-26s %-24s %s", fh->host->name, what,
				 live, dur);
		}
	}
	if (!out_cfg.github)
		return;
	out_format_duration(dur, sizeof(dur), duration_ms);
	buf_addf(&md, "### relflip %s %s: %s\n\n", f->command,
		 revision ? revision : "",
		 code == 0 ? "done"
		 : code == RF_EXIT_HEALTH ? "health check failed, rolled back"
		 : code == RF_EXIT_ROLLBACK_FAILED ? "ROLLBACK FAILED: a person "
						     "is needed"
						   : "failed");
	buf_addf(&md, "| | |\n|---|---|\n| release | `%s` |\n"
		      "| previous | `%s` |\n| result | %s (exit %d) |\n"
		      "| duration | %s |\n| actor | %s |\n",
		 revision ? revision : "-", previous ? previous : "none",
		 code == 0 ? "ok" : "failed", code, dur, f->actor);
	if (f->run_url[0] != '\0')
		buf_addf(&md, "| run | %s |\n", f->run_url);
	if (err != NULL && err->msg[0] != '\0')
		buf_addf(&md, "| error | %s |\n", err->msg);
	if (code == RF_EXIT_HEALTH)
		buf_addf(&md, "\n**Rollback:** every switched host went back "
			      "to `%s`.\n",
			 previous ? previous : "(no current)");
	buf_adds(&md, "\n| host | result | live | duration |\n"
		      "|---|---|---|---|\n");
	for (i = 0; i < f->n; i++) {
		const struct fleet_host *fh = &f->h[i];
		const char *live, *what = host_outcome(fh, &live);

		out_format_duration(dur, sizeof(dur),
				    (long)(fh->t_last - fh->t_first));
		buf_addf(&md, "| %s | %s | `%s` | %s |\n", fh->host->name,
			 what, live, dur);
	}
	buf_addch(&md, '\n');
	out_step_summary(buf_str(&md));
	buf_release(&md);
}
