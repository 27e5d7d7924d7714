#ifndef RELFLIP_HOOK_H
#define RELFLIP_HOOK_H

#include "fleet.h"
#include "steps.h"

/*
 * Run a hook or restart command in dir on a host, under hook_timeout, its
 * output streamed with the host as prefix; a failure (status, time limit)
 * fills err with code and stage.
 */
/*
 * A hook's output as it runs: each line shown with a prefix (a host, or
 * "runner"), and the last one kept for the error message (the last stderr
 * line, else the last stdout line).
 */
struct hook_lines {
	const char *prefix;
	const char *stage;
	char last[512];
	int last_is_err;
};

/* An on_line callback over a struct hook_lines. */
void hook_line(void *arg, int is_stderr, const char *line);

int fleet_hook(struct fleet *f, struct fleet_host *fh, const char *stage,
	       const char *dir, const char *command, const struct step_env *env,
	       enum rf_exit code, struct rf_error *err);

/*
 * fleet_hook's verdict on a hook that ran (res, and its lines seen through
 * hl): 0, or -1 with err (time limit, exit status, signal) and how to run
 * it again by hand.
 */
int hook_judge(struct fleet *f, struct fleet_host *fh, const char *stage,
	       const char *dir, const char *command, const struct step_env *env,
	       enum rf_exit code, const struct exec_result *res,
	       const struct hook_lines *hl, struct rf_error *err);

#endif
