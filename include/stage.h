#ifndef RELFLIP_STAGE_H
#define RELFLIP_STAGE_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "fleet.h"

/*
 * The stages of a command, as rows of a table that the command runs and
 * --dry-run prints: the same plan() gives the script a stage runs and the
 * script the dry run shows, so the two cannot drift apart. Deploy's table
 * is in deploy.c, rollback's in rollback.c; the rows they share (lock,
 * switch, restart, health) are in lock.c and switch.c.
 */

/* What a stage does on one host: a remote script, or a line of words. */
struct stage_plan {
	struct buf script; /* the remote script; empty when it is not one */
	struct buf input;  /* the script's stdin */
	struct buf what;   /* what it does, when it is not a script */
	double limit;      /* the script's time limit, seconds; 0: default */
	/*
	 * Or, when input is empty, stdin the hosts share: data the run
	 * keeps until its end, never copied per host.
	 */
	const char *shared_input;
	size_t shared_len;
};

#define STAGE_PLAN_INIT { BUF_INIT, BUF_INIT, BUF_INIT, 0, NULL, 0 }

/* The plan's stdin: its own input, else the shared one; NULL: none. */
const char *stage_plan_stdin(const struct stage_plan *p, size_t *len);

enum stage_flags {
	STAGE_CHANGES = (1 << 0), /* changes something on a server */
	STAGE_BATCHED = (1 << 1), /* part of the switch, batch by batch */
	STAGE_FINAL = (1 << 2),   /* runs at the end on every locked host */
	STAGE_LOCK = (1 << 3),    /* takes the lock: a failure unlocks all */
	STAGE_UNDO = (1 << 4),    /* runs only to undo others: the way back */
	/*
	 * Shares the round trip of the row before it, on the hosts that run
	 * both: nothing is decided between them. Both rows need judge().
	 */
	STAGE_JOINS = (1 << 5),
};

struct stage {
	const char *name;  /* the stage's name in events and lines */
	unsigned flags;
	const char *does;  /* a few words for --dry-run and the docs */
	const char *undo;  /* what undoes it when the run fails later */
	/* Does it run on this host in this run? NULL: on every host. */
	int (*wanted)(const struct fleet *f, const struct fleet_host *fh,
		      void *run);
	/* The plan on fh; also what --dry-run prints. */
	void (*plan)(const struct fleet *f, const struct fleet_host *fh,
		     void *run, struct stage_plan *p);
	/* Run it on fh (usually through stage_exec()); 0 or -1 and fh->err. */
	int (*run)(struct fleet *f, struct fleet_host *fh, void *run);
	/*
	 * What the plan's exit status and stderr mean: 0, or -1 with fh->err
	 * (or the row's own way on, such as a fallback). NULL for a row that
	 * is not a plain script.
	 */
	int (*judge)(struct fleet *f, struct fleet_host *fh, void *run,
		     int status, const char *errtext);
};

void stage_plan_release(struct stage_plan *p);

/*
 * Run the stage's plan on fh: its script with its input under its limit.
 * Returns the script's exit status, or -1 with fh->err when it did not
 * run. out (bounded by the caller) and errtext may be NULL.
 */
int stage_exec(struct fleet *f, struct fleet_host *fh, const struct stage *s,
	       void *run, struct buf *out, struct buf *errtext);

/*
 * The run of a row that is a plain script: stage_exec(), then what its
 * judge() makes of the exit status and stderr. 0, or -1 with fh->err.
 */
int stage_exec_judged(struct fleet *f, struct fleet_host *fh,
		      const struct stage *s, void *run);

/* Run one stage on every host that has not failed and that it wants. */
int stage_run(struct fleet *f, const struct stage *s, void *run,
	      struct rf_error *err);

/*
 * Walk a table: each row in turn, the STAGE_BATCHED rows together through
 * switch_batches(), STAGE_FINAL rows left to the caller, STAGE_UNDO rows
 * to whatever undoes. Stops at the
 * first failure (err says why; a lock row's failure releases every lock).
 * Interrupted before the switch, it stops with exit 130. Returns 0 or the
 * failure's exit code.
 */
int stages_walk(struct fleet *f, const struct stage *const *rows, size_t n,
		void *run, struct rf_error *err);

/*
 * --dry-run: for every host, every row it wants, what it would do (the
 * exact script), whether it changes anything and how it is undone.
 */
void stages_print(struct fleet *f, const struct stage *const *rows, size_t n,
		  void *run);

#endif
