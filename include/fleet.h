#ifndef RELFLIP_FLEET_H
#define RELFLIP_FLEET_H

#include <pthread.h>
#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "layout.h"
#include "plan.h"
#include "remote.h"

/*
 * The hosts a command works on, each with its one SSH connection, its
 * state and its error, and the runner that does one stage on all of them
 * in parallel. Connecting is in connect.h, the lock and the probe in
 * lock.h, hooks in hook.h, the batched switch in switch.h, the final
 * report in report.h.
 */

/* What a command works on: the config and the hosts selected. */
struct selection {
	const struct conf *conf;
	struct conf_host **hosts;
	size_t n;
	const char *config_path; /* for hints: relflip -c PATH ... */
};

/* How a run ended, for the `result` event main.c prints last. */
struct run_outcome {
	const char *status; /* ok, failed, rolled_back; NULL: no event */
	char revision[65];
	char previous[65];
	long duration_ms;
};

struct fleet_host {
	const struct conf_host *host;
	struct remote *r;
	struct ssh_info info;
	struct layout_state st;  /* from the lock or probe step */
	int connected;
	int locked;
	int failed;              /* a stage failed here; err says why */
	int active;              /* the current stage runs here */
	struct rf_error err;
	char live[65];           /* the release live before this run, or "" */
	char detail[160];        /* what this stage did, for the human line */
	struct switch_outcome sw;
	const char *target;      /* what activation switches to */
	const char *back;        /* where the way back goes; NULL: no current */
	int leaves_bad;          /* the release left becomes bad, not good */
	void *data;              /* the command's own per-host state */
	long long t_first;       /* monotonic ms: its first stage began */
	long long t_last;        /* and its last one ended */
};

struct fleet {
	const struct conf *conf;
	const char *config_path;
	struct fleet_host *h;
	size_t n;
	const char *command;     /* "deploy", "rollback", ... */
	const char *revision;    /* for the lock's holder info */
	const char *message;     /* a freeze's (relflip lock -m), or NULL */
	char token[33];          /* marks this run's lock */
	char actor[128];         /* $GITHUB_ACTOR, else $USER */
	char runner[128];        /* this machine's host name */
	char run_url[256];       /* the CI run, or "" */
	int dry_run;
	int warm_up;             /* start the agent while connecting (atomic) */
	const struct probe_asks *asks; /* what the lock's probe also asks */
	int warned_no_health;
	int final;               /* the stage running is a STAGE_FINAL one */
	long long switched_ms;   /* epoch ms when the switch began, or 0 */
	pthread_mutex_t pace_lock; /* connect pacing */
	long long next_connect_ms;
};

typedef int (*fleet_step_fn)(struct fleet *f, struct fleet_host *fh,
			     void *arg);

void fleet_init(struct fleet *f, const struct selection *sel,
		const char *command, const char *revision);

/* Close every connection and free what the fleet holds. */
void fleet_release(struct fleet *f);

enum fleet_open_flags {
	FLEET_LOCK = (1 << 0),  /* take the lock (and probe) */
	FLEET_PROBE = (1 << 1), /* probe with records, no lock */
};

/* Connect to every host, then lock or probe them as flags say. */
int fleet_open(struct fleet *f, int flags, struct rf_error *err);

/*
 * Run fn on every host that is active and not failed, up to max_parallel
 * at once, with stage events and one human line. A host whose fn fails is
 * marked failed; returns -1 when any did, err naming them.
 */
int fleet_step(struct fleet *f, const char *stage, fleet_step_fn fn,
	       void *arg, struct rf_error *err);

/* Mark every host that has not failed active. */
void fleet_activate_all(struct fleet *f);

/*
 * Make active the hosts that hold this run's lock, failed or not: the
 * ones whose record and log line a run writes at its end.
 */
void fleet_activate_locked(struct fleet *f);

/*
 * Run a script on a host (the lock renewed first), collecting stdout,
 * under a time limit on the server (seconds; 0: the default). Returns the
 * exit status, or -1 with err when it could not run.
 */
int fleet_run(struct fleet_host *fh, const char *app, const char *script,
	      struct buf *out, struct buf *errtext, struct rf_error *err);

/* The same with text on the script's stdin. */
int fleet_run_input(struct fleet_host *fh, const char *app,
		    const char *script, const char *input, struct buf *out,
		    struct buf *errtext, struct rf_error *err);

/*
 * Begin one line for APP/.relflip/log.jsonl in out: time, command,
 * revision, previous, result, exit_code, host, actor, runner, run_url; the
 * caller adds its own members to o, then json_obj_end(o).
 */
struct json_obj;
void fleet_log_begin(const struct fleet *f, const struct fleet_host *fh,
		     const char *revision, const char *previous,
		     const char *result, int exit_code, struct json_obj *o,
		     struct buf *out);

/* The hosts' names, space-separated, "3 hosts" past a few. */
void fleet_names(const struct fleet *f, int (*pick)(const struct fleet_host *),
		 struct buf *out);

/* Pickers for fleet_names. */
int fleet_pick_active_ok(const struct fleet_host *fh);
int fleet_pick_failed_active(const struct fleet_host *fh);

/* The end of a run's outcome: status from the exit code, and duration. */
void fleet_outcome(struct run_outcome *o, int code, const char *revision,
		   const char *previous, long long started_ms);

#endif
