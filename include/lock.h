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
 * The unlock command: on every host, remove a lock that is this runner's,
 * stale or a freeze (or anyone's with force), logging who held it.
 */
int unlock_run(const struct selection *sel, int force,
	       struct run_outcome *outcome, struct rf_error *err);

/*
 * A manual freeze (relflip lock -m): the lock taken with command=lock and
 * a message. Deploys, rollbacks and prunes refuse it (exit 5) without
 * waiting; it is never stale; `relflip unlock` lifts it without --force.
 */
int lock_is_freeze(const struct lock_info *l);

/*
 * Who holds the lock, for messages: "ci@runner-7 (pid 4242), for a
 * deploy of 3f2c1ab, since T; run URL", "frozen by alice@laptop since T:
 * MESSAGE", or "a lock that ..." for one relflip did not leave.
 */
void lock_holder_text(const struct lock_info *l, struct buf *b);

/* The longest freeze message, in bytes. */
#define FREEZE_MESSAGE_MAX 200

/*
 * A freeze message is one line of UTF-8 text, 1 to FREEZE_MESSAGE_MAX
 * bytes, without control characters; -1 with a usage error (exit 2)
 * saying what is wrong.
 */
int freeze_message_check(const char *msg, struct rf_error *err);

/*
 * The lock command: take the lock on every host as a deploy does, with
 * command=lock and the message in its info, and log it. Every host or
 * none: a lock held anywhere (exit 5) leaves no freeze behind.
 */
int freeze_run(const struct selection *sel, const char *message,
	       struct run_outcome *outcome, struct rf_error *err);

#endif
