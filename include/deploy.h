#ifndef RELFLIP_DEPLOY_H
#define RELFLIP_DEPLOY_H

#include "cmd.h"

struct deploy_opts {
	const char *artifact; /* the tarball */
	const char *revision; /* release id; --revision, else $GITHUB_SHA */
	const char *ref;      /* --ref, else $GITHUB_REF; may be NULL */
	int dry_run;
};

/*
 * DESIGN.md's deploy, steps 1-9, over the selected hosts. Returns the exit
 * code; every error has been printed.
 */
int deploy_run(struct cmd_ctx *ctx, const struct deploy_opts *opts);

#endif
