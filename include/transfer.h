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

#endif
