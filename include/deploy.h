#ifndef RELFLIP_DEPLOY_H
#define RELFLIP_DEPLOY_H

#include <pthread.h>
#include <stdint.h>

#include "artifact.h"
#include "fleet.h"
#include "layout.h"
#include "manifest.h"
#include "record.h"
#include "stage.h"

struct deploy_opts {
	const char *artifact; /* the tarball */
	const char *revision; /* release id; --revision, else $GITHUB_SHA */
	const char *ref;      /* --ref, else $GITHUB_REF; may be NULL */
	int dry_run;
};

/*
 * DESIGN.md's deploy, steps 1-9, over the selected hosts. Returns the exit
 * code, err saying why when it is not 0, and fills outcome.
 */
int deploy_run(const struct selection *sel, const struct deploy_opts *opts,
	       struct run_outcome *outcome, struct rf_error *err);

/*
 * What the deploy's stages share (deploy.c and the transfer modes in
 * transfer-*.c), not for other callers.
 */
struct deploy_host {
	int reuse;          /* releases/<id> is there with this checksum */
	int64_t have;       /* bytes of the upload already on the server */
	uint64_t sent;      /* progress of the upload, from the file's start */
	int staged;         /* the staged record was written */
	int migrated;
	int primary;        /* the one host that runs migrate */
	int made;           /* releases/<id> is one relflip unpacked and
			     * verified: this run, or before (reuse) */
};

struct transfer;
struct finish;

struct deploy {
	const struct conf *conf;
	const struct deploy_opts *opts;
	const struct transfer *transfer;
	struct artifact_info art;
	struct manifest manifest;  /* what validation approved */
	struct buf manifest_text;  /* the same, as the server keeps it */
	struct buf incoming;       /* where the upload goes on each host */
	struct probe_asks asks;    /* what the lock's probe also reports */
	struct fleet f;
	struct deploy_host *dh;
	int fd;                /* the artifact, open for the upload */
	long long started_ms;
	long long now;         /* epoch ms at the start, for records */
	struct finish *fin;    /* how the run ended, for the record row */
	char checksum[72];     /* "sha256:<hex>" */
	const char *previous;  /* the rollback target after this deploy */
	pthread_mutex_t progress_lock;
	pthread_mutex_t transfer_lock; /* the transfer mode's own state */
	void *transfer_data;
};

/* The release's record as this run writes it (status left to the caller). */
void deploy_fill_record(const struct deploy *d, struct release_record *rec);

static inline struct deploy_host *
deploy_host_of(struct fleet_host *fh)
{
	return fh->data;
}

#endif
