#ifndef RELFLIP_TRANSFER_H
#define RELFLIP_TRANSFER_H

#include "deploy.h"
#include "stage.h"

/*
 * How a release reaches releases/<id>: the seam where transfer modes plug
 * into the deploy's table. A mode gives the deploy two rows: `upload`
 * (moving the bytes) and `unpack` (checksum, unpack, verify, rename into
 * place), and may join them into one round trip.
 */
struct transfer {
	const char *name;
	const struct stage *upload;
	const struct stage *unpack;
};

/*
 * The rows of every mode run only where releases/<id> is not there already
 * with this checksum (a redeploy reuses it).
 */
int transfer_wants_new(const struct fleet *f, const struct fleet_host *fh,
		       void *run);

/* The whole artifact over SFTP into .relflip/incoming/, resumable. */
extern const struct transfer transfer_upload;

/*
 * Only what changed since each host's live release (when relflip verified
 * it), built on the server from a copy of it; else, or when that does not
 * verify, the upload.
 */
extern const struct transfer transfer_delta;

/* Free what transfer_delta worked out for d. */
void transfer_delta_release(struct deploy *d);

/*
 * Each server downloads the artifact from [artifact] url (or --url) into
 * .relflip/incoming/ itself, resumable, and checks its SHA-256; relflip
 * sends no artifact bytes. Its unpack is transfer_upload's.
 */
extern const struct transfer transfer_pull;

/* Whether a deploy with these options and config pulls. */
int transfer_pull_wanted(const struct deploy_opts *o, const struct conf *conf);

/*
 * Before validation: check what pulling needs (the URL, the header that
 * [artifact] header_env names, --sha256) and register the URL's query and
 * user part as secrets. With --sha256 and no local artifact, fetch it once
 * where relflip runs into a temporary file (d->fetched, which o->artifact
 * then names) so that it is validated like any other: its SHA-256 must be
 * the one given. --sha256 without pulling is a usage error. Errors are
 * RF_EXIT_USAGE or RF_EXIT_ARTIFACT, stage "validate".
 */
int transfer_pull_prepare(struct deploy *d, struct deploy_opts *o,
			  struct rf_error *err);

/* Remove what transfer_pull_prepare() fetched, if anything. */
void transfer_pull_end(struct deploy *d);

#endif
