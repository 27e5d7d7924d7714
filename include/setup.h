#ifndef RELFLIP_SETUP_H
#define RELFLIP_SETUP_H

#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "fleet.h"

/*
 * relflip setup: the layout on every host before the first deploy: the
 * app path, releases/, shared/ with each shared_dirs entry, and
 * .relflip/{releases,incoming}; the shared_files that are missing are
 * listed, never made (they hold what only the user can write). Only
 * mkdir -p: safe to run again, and safe beside a deploy, which makes the
 * same directories; it takes no lock and leaves any lock alone.
 */

enum setup_action {
	SETUP_CREATED, /* a directory it made */
	SETUP_EXISTS,  /* a directory already there */
	SETUP_MISSING, /* a shared_files entry not in shared/ */
};

/* "created", "exists", "missing". */
const char *setup_action_name(enum setup_action a);

struct setup_item {
	enum setup_action action;
	char path[512]; /* relative to the app path; "." is the app path */
};

struct setup_result {
	struct setup_item *v;
	size_t n;
};

/* The remote script: one "created|exists|missing PATH" line a path. */
void setup_script(struct buf *cmd, const struct conf *conf);

/* Parse the reply of setup_script() into res (lines it does not know are
 * left out). */
void setup_reply_parse(const char *reply, struct setup_result *res);

/* How many of res's items have action a. */
size_t setup_count(const struct setup_result *res, enum setup_action a);

void setup_result_release(struct setup_result *res);

/*
 * Set up every host of sel (the ones reached: an unreachable host is an
 * error, the others are set up all the same). Returns 0 or the first
 * failure's exit code (4 unreachable, 6 cannot create), with err.
 */
int setup_run(const struct selection *sel, struct run_outcome *outcome,
	      struct rf_error *err);

#endif
