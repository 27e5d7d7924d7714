#ifndef RELFLIP_LOCK_H
#define RELFLIP_LOCK_H

#include "fleet.h"
#include "stage.h"

/*
 * The deploy lock (APP/.relflip/lock, one atomic mkdir holding who took
 * it) and the read-only probe of each host's layout and records.
 */

/*
 * The lock row: create the layout, take the lock (waiting up to
 * lock_wait) and probe with records, in one round trip. A held lock
 * anywhere fails the row (exit 5, naming the holder).
 */
extern const struct stage lock_stage;

/* The probe with records, without the lock (stage "probe"). */
int fleet_probe(struct fleet *f, struct rf_error *err);

/* Release this run's lock on every host that has it. */
void fleet_unlock(struct fleet *f);

/*
 * The unlock command: on every host, remove a lock that is this runner's
 * or stale (or anyone's with force), logging who held it.
 */
int unlock_run(const struct selection *sel, int force,
	       struct run_outcome *outcome, struct rf_error *err);

#endif
