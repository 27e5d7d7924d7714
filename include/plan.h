#ifndef RELFLIP_PLAN_H
#define RELFLIP_PLAN_H

#include <stddef.h>

#include "error.h"
#include "record.h"

/* Pure decisions, unit-tested without a server. */

/*
 * Hosts per batch for n hosts: batch 0 means all at once; a percentage
 * rounds up and is at least 1; a count larger than n is n.
 */
size_t plan_batch_size(size_t nhosts, int batch, int percent);

/* The number of batches (0 for no hosts). */
size_t plan_batch_count(size_t nhosts, int batch, int percent);

/*
 * The release a rollback goes to, given the live one: with to, that
 * release (it must have a directory and must not be `failed`: a release
 * that never went live is refused); otherwise the newest `good` release
 * other than the live one. Errors are RF_EXIT_USAGE.
 */
const struct release_record *plan_rollback_target(const struct record_set *set,
						  const char *live_id,
						  const char *to,
						  struct rf_error *err);

/*
 * What prune removes: keeps `keep` releases (the live one and the newest
 * good ones), `keep_failed` failed or bad ones, and never the live one,
 * the rollback target, a staged one (in progress) or one without a record
 * (not made by relflip) unless adopt. Fills remove with pointers into
 * set (caller frees the array); returns how many.
 */
size_t plan_prune(const struct record_set *set, const char *live_id, int keep,
		  int keep_failed, int adopt,
		  const struct release_record ***remove);

/* What a host went through in the switch phase. */
struct switch_outcome {
	int switched;   /* current was moved to the new release */
	int healthy;    /* it passed its check */
	int reverted;   /* it was switched back */
	int revert_ok;  /* and the way back passed its check */
};

/*
 * The exit code of the switch phase: 0 when every host is healthy, 8 when
 * some failed and every switched host is back and healthy, 9 when a way
 * back failed.
 */
enum rf_exit plan_switch_outcome(const struct switch_outcome *o, size_t n);

#endif
