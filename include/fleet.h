#ifndef RELFLIP_FLEET_H
#define RELFLIP_FLEET_H

#include <pthread.h>
#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "layout.h"
#include "plan.h"
#include "remote.h"
#include "steps.h"

/*
 * The hosts a command works on, each with its one SSH connection, its
 * state and its error, and the steps that every command shares: connect,
 * lock, run a stage on every host in parallel, switch in batches with a
 * health check and the way back, unlock.
 */

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
	void *data;              /* the command's own per-host state */
	long long t_first;       /* monotonic ms: its first stage began */
	long long t_last;        /* and its last one ended */
};

struct fleet {
	const struct conf *conf;
	struct fleet_host *h;
	size_t n;
	const char *command;     /* "deploy", "rollback", ... */
	const char *revision;    /* for the lock's holder info */
	char token[33];          /* marks this run's lock */
	char actor[128];         /* $GITHUB_ACTOR, else $USER */
	char runner[128];        /* this machine's host name */
	char run_url[256];       /* the CI run, or "" */
	int dry_run;
	int warm_up;             /* open SFTP while connecting (deploy) */
	int warned_no_health;
	pthread_mutex_t pace_lock; /* connect_pace */
	long long next_connect_ms;
};

typedef int (*fleet_step_fn)(struct fleet *f, struct fleet_host *fh,
			     void *arg);

void fleet_init(struct fleet *f, const struct conf *conf,
		struct conf_host **hosts, size_t n, const char *command,
		const char *revision);

/* Close every connection and free what the fleet holds. */
void fleet_release(struct fleet *f);

/* Connect to every host; any failure fails all (exit 4, naming each). */
int fleet_connect(struct fleet *f, struct rf_error *err);

/*
 * Create the layout and lock every host, waiting up to lock_wait; probe
 * each with its records. A held lock anywhere unlocks the others and
 * fails (exit 5, naming the holder).
 */
int fleet_lock(struct fleet *f, struct rf_error *err);

/*
 * The probe with records, without the lock (stage "probe"): for --dry-run,
 * `releases` and `unlock`.
 */
int fleet_probe(struct fleet *f, struct rf_error *err);

/* Release this run's lock on every host that has it. */
void fleet_unlock(struct fleet *f);

/*
 * Run fn on every host that is active and not failed, up to max_parallel
 * at once, with stage events and one human line. A host whose fn fails is
 * marked failed; returns -1 when any did, err naming them.
 */
int fleet_step(struct fleet *f, const char *stage, fleet_step_fn fn,
	       void *arg, struct rf_error *err);

/* Mark every host that has not failed active (or only those in [a, b)). */
void fleet_activate_all(struct fleet *f);

/*
 * Run a script on a host (the lock renewed first), collecting stdout.
 * Returns the exit status, or -1 with err when it could not run.
 */
int fleet_run(struct fleet_host *fh, const char *app, const char *script,
	      struct buf *out, struct buf *errtext, struct rf_error *err);

/* The same with text on the script's stdin. */
int fleet_run_input(struct fleet_host *fh, const char *app,
		    const char *script, const char *input, struct buf *out,
		    struct buf *errtext, struct rf_error *err);

/*
 * Run a hook or restart command, its output streamed with the host as
 * prefix; a failure (status, timeout) fills err with code.
 */
int fleet_hook(struct fleet *f, struct fleet_host *fh, const char *stage,
	       const char *dir, const char *command, const struct step_env *env,
	       enum rf_exit code, struct rf_error *err);

/*
 * Switch every selected host to fh->target batch by batch: switch,
 * restart the services of its roles, health-check; when any host fails,
 * switch every switched host back to fh->back, restart and check again.
 * Returns 0, RF_EXIT_HEALTH or RF_EXIT_ROLLBACK_FAILED (err says why).
 */
int fleet_switch(struct fleet *f, struct rf_error *err);

/*
 * One line for APP/.relflip/log.jsonl: time, command, revision, previous,
 * result, exit_code, host, actor, runner, run_url, then extra (already
 * JSON: `"key": value` pairs, or NULL).
 */
void fleet_log_line(const struct fleet *f, const struct fleet_host *fh,
		    const char *revision, const char *previous,
		    const char *result, int exit_code, const char *extra,
		    struct buf *out);

/*
 * The end of a run: with several hosts, a table of host, result, the
 * release live now and duration; under GitHub Actions, a Markdown summary
 * of the run (title, release, previous, result, per host) appended to
 * $GITHUB_STEP_SUMMARY.
 */
void fleet_report(const struct fleet *f, const char *revision,
		  const char *previous, int code, long duration_ms,
		  const struct rf_error *err);

/* The hosts' names, space-separated, "3 hosts" past a few. */
void fleet_names(const struct fleet *f, int (*pick)(const struct fleet_host *),
		 struct buf *out);

#endif
