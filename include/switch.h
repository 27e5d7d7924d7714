#ifndef RELFLIP_SWITCH_H
#define RELFLIP_SWITCH_H

#include "fleet.h"
#include "stage.h"

/*
 * The rows every switching command shares: switch current to each host's
 * fh->target, restart the services, check health; and the way back to
 * fh->back (NULL: remove current) when a check fails.
 */
extern const struct stage switch_stage;
extern const struct stage restart_stage;
extern const struct stage health_stage;
extern const struct stage way_back_stage;

/*
 * Run the rows (STAGE_BATCHED ones of a table) on every host that has not
 * failed, batch by batch ([deploy] batch); when any host fails, switch
 * every switched host back. Returns 0, RF_EXIT_HEALTH or
 * RF_EXIT_ROLLBACK_FAILED (err says why).
 */
int switch_batches(struct fleet *f, const struct stage *const *rows,
		   size_t n, void *run, struct rf_error *err);

#endif
