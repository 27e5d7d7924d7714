#ifndef RELFLIP_RUNNER_H
#define RELFLIP_RUNNER_H

#include "error.h"

/*
 * Running a command on the runner, the machine relflip runs on (the
 * after_deploy and on_failure hooks): /bin/sh -c in relflip's own working
 * directory, in a process group of its own, with text on its stdin and
 * variables added to relflip's environment; its output handed over a line
 * at a time; ended (the whole group, TERM then KILL) at its time limit or
 * when relflip is interrupted.
 */

/* Lines longer than this are handed over in pieces. */
#define RUNNER_LINE_MAX 4096

struct runner_cmd {
	const char *command;    /* run as /bin/sh -c command */
	const char *const *env; /* "NAME=value" to add (or replace); NULL
				 * ends the list; the list may be NULL */
	const char *input;      /* written to stdin, then EOF; NULL: none */
	double timeout;         /* seconds; 0: no limit */
	/* Each line of output, without its newline, as it arrives. */
	void (*on_line)(void *arg, int is_stderr, const char *line);
	void *arg;
};

struct runner_result {
	int status;      /* exit status; 128 + N when killed by signal N */
	int signal;      /* the signal that killed it, or 0 */
	int timed_out;   /* ended at its time limit */
	int interrupted; /* ended because relflip was interrupted */
};

/*
 * Run c and wait for it. Returns 0 once it ran and ended (res says how),
 * or -1 with err when it could not be started.
 */
int runner_exec(const struct runner_cmd *c, struct runner_result *res,
		struct rf_error *err);

#endif
