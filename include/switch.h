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
 * The [hooks] around the switch, each in releases/<fh->target> with the
 * RELFLIP_* environment (RELFLIP_PREVIOUS_REVISION: fh->back), where
 * configured. before_switch is a plain row, on every host before any
 * switches (a failure: exit 7, current unchanged everywhere); put it just
 * before the batched rows. after_switch is a batched row, after restart
 * and before health: a failure there is a failed check (exit 8, the way
 * back). The way back runs neither.
 */
extern const struct stage before_switch_stage;
extern const struct stage after_switch_stage;

/*
 * Run the rows (STAGE_BATCHED ones of a table) on every host that has not
 * failed, batch by batch ([deploy] batch); when any host fails, switch
 * every switched host back. Returns 0, RF_EXIT_HEALTH or
 * RF_EXIT_ROLLBACK_FAILED (err says why).
 */
int switch_batches(struct fleet *f, const struct stage *const *rows,
		   size_t n, void *run, struct rf_error *err);

#endif
