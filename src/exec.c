/*
 * A one-off command on the hosts: see include/exec.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "out.h"
#include "plan.h"
#include "quote.h"
#include "steps.h"
#include "status.h"
#include "xmalloc.h"

void
exec_join(struct buf *out, int argc, const char *const *argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (i > 0)
			buf_addch(out, ' ');
		sh_quote(out, argv[i]);
	}
}

void
exec_script(struct buf *cmd, const struct step_env *env, const char *cmdline)
{
	struct buf cwd = BUF_INIT, release = BUF_INIT;

	buf_addf(&cwd, "%s/current", env->app);
	buf_addf(&release, "%s/releases/%s", env->app, env->release);
	step_command_script(cmd, buf_str(&cwd), buf_str(&release), env, cmdline);
	buf_release(&cwd);
	buf_release(&release);
}

int
exec_worst(const struct exec_host *v, size_t n)
{
	size_t i;
	int worst = 0;

	for (i = 0; i < n; i++) {
		if (v[i].code > worst)
			worst = v[i].code;
	}
	return worst;
}

struct exec_call {
	const char *cmdline;
	struct exec_host *hosts;
};

static void
exec_line(void *arg, int is_stderr, const char *line)
{
	const struct fleet_host *fh = arg;

	out_output(fh->host->name, "exec", is_stderr, line);
}

/* Why nothing is live, in a few words, for the error. */
static const char *
nothing_live(const struct fleet_host *fh)
{
	if (!fh->st.app_exists)
		return "the app path is not there";
	switch (fh->st.current) {
	case CURRENT_NONE:
		return "no current: nothing deployed yet";
	case CURRENT_DANGLING:
		return "current points at a release that is gone";
	case CURRENT_DIR:
		return "current is a real directory, not a release";
	case CURRENT_OTHER:
		return "current is not a link to a release";
	case CURRENT_LINK:
		break;
	}
	return "current names no release";
}

static int
exec_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct exec_call *c = arg;
	struct exec_host *eh = &c->hosts[fh - f->h];
	const struct release_record *t;
	struct rf_error ignored = RF_ERROR_INIT;
	struct exec_request req = { 0 };
	struct exec_result res;
	struct buf cmd = BUF_INIT;
	struct step_env env;
	int rc = -1;

	if (fh->st.current != CURRENT_LINK || fh->live[0] == '\0') {
		eh->code = RF_EXIT_UPLOAD;
		eh->why = "nothing live";
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "exec",
			     "nothing is live on %s (%s): no release to run "
			     "the command in",
			     fh->host->name, nothing_live(fh));
		rf_error_hint(&fh->err,
			      "relflip -H %s status shows what is "
			      "there; deploy a release first",
			      fh->host->name);
		return -1;
	}
	t = plan_rollback_target(&fh->st.records, fh->live, NULL, &ignored);
	env.app = f->conf->app_path;
	env.release = fh->live;
	env.previous = t != NULL ? t->id : "";
	env.host = fh->host->name;
	exec_script(&cmd, &env, c->cmdline);
	req.cmd = buf_str(&cmd);
	req.timeout = f->conf->hook_timeout;
	req.on_line = exec_line;
	req.arg = fh;
	out_debug("%s: %s", fh->host->name, req.cmd);
	if (remote_exec(fh->r, &req, &res, &fh->err) != 0) {
		if (fh->err.code == 0)
			fh->err.code = RF_EXIT_CONNECT;
		eh->code = (int)fh->err.code;
		eh->why = fh->err.code == RF_EXIT_INTERRUPTED
			      ? "interrupted"
			      : "connection lost";
		goto out;
	}
	if (res.timed_out) {
		eh->code = STEP_TIME_LIMIT;
		eh->why = "time limit";
		rf_error_set(&fh->err, (enum rf_exit)STEP_TIME_LIMIT, "exec",
			     "the command did not end within hook_timeout "
			     "(%.0f s) on %s and was ended",
			     f->conf->hook_timeout, fh->host->name);
		rf_error_hint(&fh->err, "raise [deploy] hook_timeout, or run "
					"it in the background on the server");
		goto out;
	}
	eh->ran = 1;
	eh->code = res.status;
	if (res.signal[0] != '\0')
		snprintf(fh->detail, sizeof(fh->detail), "killed by SIG%s",
			 res.signal);
	else
		snprintf(fh->detail, sizeof(fh->detail), "exit %d", res.status);
	rc = 0;
out:
	buf_release(&cmd);
	return rc;
}

/* The run's error: the one host's own, or each host named with why. */
static void
exec_error(const struct fleet *f, const struct exec_host *v, int worst,
	   struct rf_error *err)
{
	struct buf names = BUF_INIT;
	size_t i, nbad = 0, last = 0;

	for (i = 0; i < f->n; i++) {
		if (v[i].code == 0)
			continue;
		nbad++;
		last = i;
		if (v[i].ran)
			buf_addf(&names, "%s%s (exit %d)", nbad > 1 ? ", " : "",
				 f->h[i].host->name, v[i].code);
		else
			buf_addf(&names, "%s%s (%s)", nbad > 1 ? ", " : "",
				 f->h[i].host->name, v[i].why);
	}
	rf_error_clear(err);
	if (nbad == 1 && !v[last].ran) {
		*err = f->h[last].err;
		err->code = (enum rf_exit)worst;
	} else if (nbad == 1) {
		rf_error_set(err, (enum rf_exit)worst, "exec",
			     "the command exited %d on %s", v[last].code,
			     f->h[last].host->name);
		rf_error_host(err, f->h[last].host->name);
	} else {
		rf_error_set(err, (enum rf_exit)worst, "exec",
			     "the command failed on %zu of %zu hosts: %s", nbad,
			     f->n, buf_str(&names));
	}
	buf_release(&names);
}

int
exec_run(const struct selection *sel, const char *cmdline,
	 struct run_outcome *outcome, struct rf_error *err)
{
	struct fleet f;
	struct exec_call c;
	long long t0 = out_now_ms();
	size_t i;
	int code, worst;

	fleet_init(&f, sel, "exec", NULL);
	c.cmdline = cmdline;
	c.hosts = xcalloc(f.n ? f.n : 1, sizeof(*c.hosts));
	code = status_open(&f, 1, err);
	for (i = 0; i < f.n; i++) {
		if (f.h[i].failed) {
			c.hosts[i].code = f.h[i].err.code ? (int)f.h[i].err.code
							  : RF_EXIT_INTERNAL;
			c.hosts[i].why =
			    f.h[i].connected ? "not probed" : "unreachable";
		}
	}
	status_step(&f, "exec", exec_one, &c, &code, err);
	for (i = 0; i < f.n; i++) {
		const struct exec_host *eh = &c.hosts[i];
		struct out_field fl[5] = {
			OF_STR("revision", f.h[i].live[0] ? f.h[i].live : NULL),
			OF_INT("exit_code", eh->code),
			OF_BOOL("ran", eh->ran),
			OF_STR("error", eh->ran ? NULL : f.h[i].err.msg),
			OF_STR("why", eh->why),
		};

		out_event("exec", f.h[i].host->name, NULL, fl, 5);
	}
	worst = exec_worst(c.hosts, f.n);
	if (worst != 0)
		exec_error(&f, c.hosts, worst, err);
	fleet_outcome(outcome, worst, NULL, NULL, t0);
	/* An exit code of the command's own, not a rollback's. */
	outcome->status = worst == 0 ? "ok" : "failed";
	free(c.hosts);
	fleet_release(&f);
	return worst;
}
