#ifndef RELFLIP_REMOTE_FAKE_H
#define RELFLIP_REMOTE_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "remote.h"

/*
 * A scripted transport for unit tests: implements struct remote_ops
 * without a server. exec answers from a list of rules (the first whose
 * substring occurs in the command wins; without one, status 0 and no
 * output) and records every command it was given. put, file_size,
 * statvfs and forward return settable results.
 *
 * remote_close() (and so fleet_release()) frees the fake: read counts and
 * commands before that. A fake is used by one thread at a time, as a real
 * connection is; its own lock only keeps reads from the test safe.
 */

/* A new fake named name (the host's name in messages). */
struct remote *remote_fake_new(const char *name);

/* What exec does for a command containing match. */
struct remote_fake_rule {
	const char *match;      /* substring of the command; "" matches all */
	int status;             /* exit status reported */
	const char *out;        /* stdout, handed to on_line line by line */
	const char *err;        /* stderr, likewise with is_stderr = 1 */
	const char *signal;     /* "TERM": killed by a signal (status -1) */
	int timed_out;          /* report the request's timeout as passed */
	const char *exec_error; /* non-NULL: exec fails (-1) with this text */
	int times;              /* answer this many commands (0: forever) */
};

/* Add a rule (strings are copied); rules are tried in the order added. */
void remote_fake_add(struct remote *r, const struct remote_fake_rule *rule);

/*
 * The short form: commands containing cmd_substring exit with status and
 * print stdout_text (NULL: nothing).
 */
void remote_fake_on(struct remote *r, const char *cmd_substring, int status,
		    const char *stdout_text);

/* Commands run so far that contain substring ("" or NULL: all). */
int remote_fake_count(struct remote *r, const char *substring);

/*
 * The i-th command run (borrowed, valid until the fake is closed), or NULL
 * past the end.
 */
const char *remote_fake_command(struct remote *r, size_t i);

/* The stdin_data the i-th command was given, or NULL. */
const char *remote_fake_stdin(struct remote *r, size_t i);

/* The time limit the i-th command was given (-1 past the end). */
double remote_fake_timeout(struct remote *r, size_t i);

/* The operations besides exec, for remote_fake_fail(). */
enum remote_fake_op {
	FAKE_OP_PUT,
	FAKE_OP_FILE_SIZE,
	FAKE_OP_STATVFS,
	FAKE_OP_FORWARD,
	FAKE_OP_EXEC, /* every exec fails, whatever the rules say */
};

/* Make op fail with message msg (NULL: succeed again). */
void remote_fake_fail(struct remote *r, enum remote_fake_op op,
		      const char *msg);

/*
 * put reads the local file from req->offset to req->size with pread,
 * reports progress, and remembers the path and the bytes it read.
 */
int remote_fake_put_count(struct remote *r);
const char *remote_fake_put_path(struct remote *r); /* the last one */
uint64_t remote_fake_put_bytes(struct remote *r);   /* all puts */

/* What file_size answers (default -1: no such file). */
void remote_fake_set_file_size(struct remote *r, int64_t size);

/* What statvfs answers (default 1 TiB available). */
void remote_fake_set_avail(struct remote *r, uint64_t avail);

/*
 * Where forward connects: port > 0, 127.0.0.1:port whatever was asked;
 * REMOTE_FAKE_PASS, the host and port asked for, on this machine;
 * 0 (the default), fail as when nothing listens on the server.
 */
#define REMOTE_FAKE_PASS (-1)
void remote_fake_set_forward(struct remote *r, int port);
int remote_fake_forward_count(struct remote *r);

#endif
