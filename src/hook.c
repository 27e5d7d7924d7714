/*
 * Hooks and service restarts on a host, their output streamed with the
 * host as prefix.
 */
#include <stdio.h>
#include <string.h>

#include "hook.h"
#include "out.h"
#include "steps.h"

void
hook_line(void *arg, int is_stderr, const char *line)
{
	struct hook_lines *hl = arg;

	out_output(hl->prefix, hl->stage, is_stderr, line);
	if (line[0] != '\0' && (is_stderr || !hl->last_is_err)) {
		snprintf(hl->last, sizeof(hl->last), "%s", line);
		hl->last_is_err = is_stderr;
	}
}

/* How to run the hook again by hand, on the host, as the deploy user. */
static void
repro_hint(const struct fleet_host *fh, const char *dir,
	   const struct step_env *env, const char *command,
	   struct rf_error *err)
{
	struct buf line = BUF_INIT;
	const char *user = fh->info.user[0] ? fh->info.user : "the deploy user";

	step_hook_repro(&line, dir, env, command);
	if (line.len + 64 + strlen(user) + strlen(fh->host->name) <
	    sizeof(err->hint))
		rf_error_hint(err, "run it again on %s as %s: %s",
			      fh->host->name, user, buf_str(&line));
	else
		rf_error_hint(
		    err,
		    "run it again on %s as %s, in %s: "
		    "relflip deploy --dry-run shows the exact command",
		    fh->host->name, user, dir);
	buf_release(&line);
}

int
hook_judge(struct fleet *f, struct fleet_host *fh, const char *stage,
	   const char *dir, const char *command, const struct step_env *env,
	   enum rf_exit code, const struct exec_result *res,
	   const struct hook_lines *hl, struct rf_error *err)
{
	if (res->timed_out || res->status == STEP_TIME_LIMIT ||
	    res->status == 128 + 9) {
		rf_error_set(err, code, stage,
			     "%s hook timed out after %.0f s on %s and was "
			     "killed",
			     stage, f->conf->hook_timeout, fh->host->name);
		rf_error_hint(err, "raise [deploy] hook_timeout, or find what "
			      "the hook waits for");
		return -1;
	}
	if (res->status != 0) {
		if (res->signal[0] != '\0')
			rf_error_set(err, code, stage,
				     "%s hook was killed by SIG%s on %s",
				     stage, res->signal, fh->host->name);
		else
			rf_error_set(err, code, stage,
				     "%s hook failed with exit %d on %s%s%s",
				     stage, res->status, fh->host->name,
				     hl->last[0] ? ": " : "", hl->last);
		repro_hint(fh, dir, env, command, err);
		return -1;
	}
	return 0;
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
	int rc = -1;

	step_renew(&cmd, f->conf->app_path);
	step_hook_script(&cmd, dir, env, command);
	req.cmd = buf_str(&cmd);
	req.timeout = f->conf->hook_timeout;
	req.on_line = hook_line;
	req.arg = &hl;
	out_debug("%s: %s", fh->host->name, req.cmd);
	/* Interrupted or cut off: the agent ended the hook on the server. */
	if (remote_exec(fh->r, &req, &res, err) == 0)
		rc = hook_judge(f, fh, stage, dir, command, env, code, &res,
				&hl, err);
	buf_release(&cmd);
	return rc;
}

