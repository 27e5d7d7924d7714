#ifndef RELFLIP_HOOK_H
#define RELFLIP_HOOK_H

#include "fleet.h"
#include "steps.h"

/*
 * Run a hook or restart command in dir on a host, under hook_timeout, its
 * output streamed with the host as prefix; a failure (status, time limit)
 * fills err with code and stage.
 */
int fleet_hook(struct fleet *f, struct fleet_host *fh, const char *stage,
	       const char *dir, const char *command, const struct step_env *env,
	       enum rf_exit code, struct rf_error *err);

#endif
