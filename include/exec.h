#ifndef RELFLIP_EXEC_H
#define RELFLIP_EXEC_H

#include <stddef.h>

#include "buf.h"
#include "fleet.h"
#include "steps.h"

/*
 * relflip exec: a one-off command in APP/current on the selected hosts,
 * in parallel, with the RELFLIP_* variables hooks get, its output
 * streamed with the host as prefix. It takes no lock: it is for reads
 * and one-offs, and a freeze does not stop it.
 */

/*
 * The words given after `--` as one command line for sh -c: each quoted
 * with sh_quote() and joined by spaces, so that they run exactly as given
 * (a word with spaces stays one word; `sh -c '...'` runs a pipeline).
 */
void exec_join(struct buf *out, int argc, const char *const *argv);

/*
 * The remote script: cd into APP/current, then the command line under
 * sh -c with RELFLIP_RELEASE_PATH (APP/releases/<env->release>),
 * RELFLIP_REVISION, RELFLIP_APP_PATH, RELFLIP_HOST and
 * RELFLIP_PREVIOUS_REVISION (the rollback target, or "").
 */
void exec_script(struct buf *cmd, const struct step_env *env,
		 const char *cmdline);

/* What a host's run came to: its exit code, and why when it did not run. */
struct exec_host {
	int code;        /* the command's status; 4 unreachable, 6 nothing
			    live, 124 time limit, 130 interrupted */
	int ran;         /* the command ran to its end */
	const char *why; /* a few words when it did not: "unreachable" */
};

/* The run's exit code: the highest of the hosts' codes (0 when none). */
int exec_worst(const struct exec_host *v, size_t n);

/*
 * Run cmdline (from exec_join) on every host of sel under hook_timeout,
 * max_parallel at once. Returns the worst host's code, with err naming
 * the hosts that failed and why.
 */
int exec_run(const struct selection *sel, const char *cmdline,
	     struct run_outcome *outcome, struct rf_error *err);

#endif
