#ifndef RELFLIP_LOGREAD_H
#define RELFLIP_LOGREAD_H

#include <stddef.h>

#include "buf.h"
#include "fleet.h"

/*
 * Reading the hosts' APP/.relflip/log.jsonl back (relflip log): the
 * parser of one line, the step that reads the last lines of a host's file
 * through its agent, and the merge of every host's lines by time. The
 * lines are written by fleet_log_begin() (fleet.h).
 */

/* One line of a host's log. */
struct log_entry {
	long long time_ms; /* its "time", epoch milliseconds */
	size_t host_index; /* where its host is in the selection */
	size_t seq;        /* its place in that host's file */
	char host[64];     /* the host it was read from */
	char command[16];  /* deploy, rollback, prune, unlock, lock */
	char revision[65];
	char previous[65];
	char result[24]; /* ok, failed, rolled_back */
	int exit_code;
	char actor[128];
	char runner[128];
	char run_url[256];
	/* What some commands add; "" or -1 when the line has none. */
	char why[32];     /* unlock: yours, stale, forced, freeze */
	char holder[128]; /* unlock: who held the lock */
	char holder_since[32];
	char message[256];     /* lock and unlock of a freeze */
	char checksum[72];     /* deploy: the artifact's */
	long long removed;     /* prune: releases removed */
	long long kept;        /* prune: --keep */
	long long duration_ms; /* deploy, rollback */
};

/*
 * Parse one line: a JSON object with a "time" (ISO 8601 UTC, or epoch
 * seconds) and a non-empty "command" string; other members are read when
 * there, of the right type. 0, or -1 when it is not a log line (e is
 * then all zero). host and the indexes are left for the caller.
 */
int log_line_parse(const char *line, struct log_entry *e);

/* Lines read from the hosts. */
struct log_list {
	struct log_entry *v;
	size_t n;
};

/* What reading one host's file found besides its log lines. */
struct log_skips {
	int missing;     /* no log file yet */
	size_t read;     /* log lines taken */
	size_t skipped;  /* lines that are not log lines (JSON or not) */
	int torn;        /* one of them is the last, torn: no newline */
	size_t too_long; /* lines past LOG_LINE_MAX, not read */
};

/* Lines longer than this are not relflip's and are not transferred. */
#define LOG_LINE_MAX 4000

/* The most lines relflip log reads from each host (-n). */
#define LOG_LINES_MAX 10000

/* The remote script printing the last n lines of APP's log (the reply). */
void log_read_script(struct buf *cmd, const char *app, size_t n);

/*
 * Parse the reply of log_read_script() from the host at host_index:
 * append its log lines to list, count what was not one in skips.
 */
void log_reply_parse(const char *reply, const char *host, size_t host_index,
		     struct log_list *list, struct log_skips *skips);

/*
 * Order by time, oldest first (lines of one second keep the order of the
 * hosts, then of each file), and keep the newest keep.
 */
void log_merge(struct log_list *list, size_t keep);

void log_list_release(struct log_list *list);

/*
 * Read the last n lines of every host's log (n at most LOG_LINES_MAX)
 * and merge them into list, keeping the newest n. Hosts that cannot be
 * reached or read are warned about and skipped; returns 0, or the exit
 * code of the first such failure, with err (list holds the others).
 */
int log_run(const struct selection *sel, size_t n, struct log_list *list,
	    struct rf_error *err);

#endif
