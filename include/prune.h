#ifndef RELFLIP_PRUNE_H
#define RELFLIP_PRUNE_H

#include "fleet.h"

struct prune_opts {
	int keep;    /* releases to keep; 0: [deploy] keep_releases */
	int adopt;   /* prune releases without a record as good ones */
	int dry_run; /* measure and list only */
};

/*
 * Remove old releases on every selected host, keeping the live one, the
 * rollback target, the newest `keep` good ones, keep_failed failed ones,
 * staged ones and anything relflip did not make. Returns the exit code.
 */
int prune_run(const struct selection *sel, const struct prune_opts *opts,
	      struct run_outcome *outcome, struct rf_error *err);

#endif
