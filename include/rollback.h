#ifndef RELFLIP_ROLLBACK_H
#define RELFLIP_ROLLBACK_H

#include "fleet.h"

struct rollback_opts {
	const char *to; /* --to ID, or NULL: the newest good release */
	int dry_run;
};

/*
 * Switch back to the newest good release (or opts->to) on the selected
 * hosts, batch by batch with restarts and health checks; the release left
 * becomes bad (good on a roll-forward). Returns the exit code.
 */
int rollback_run(const struct selection *sel, const struct rollback_opts *opts,
		 struct run_outcome *outcome, struct rf_error *err);

#endif
