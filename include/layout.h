#ifndef RELFLIP_LAYOUT_H
#define RELFLIP_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "record.h"
#include "remote.h"

/*
 * The layout on a server (DESIGN.md): APP/releases/<id>, APP/current,
 * APP/shared, APP/.relflip/{releases,lock,log.jsonl,incoming}. One probe,
 * one round trip, tells what is there without changing anything.
 */

enum current_kind {
	CURRENT_NONE,     /* no current: nothing deployed yet */
	CURRENT_LINK,     /* a symlink to a directory: the normal case */
	CURRENT_DANGLING, /* a symlink to nothing */
	CURRENT_DIR,      /* a real directory: never deleted silently */
	CURRENT_OTHER,    /* a file or something else */
};

struct lock_info {
	int held;
	const char *odd;     /* NULL, or what is wrong with its shape */
	long busy_pid;       /* the holder's step still runs: its pid; or 0 */
	char user[64];       /* who: user@runner */
	char runner[128];    /* the machine relflip ran on */
	char pid[16];
	char run_url[256];   /* CI run URL, or "" */
	char revision[65];
	char command[16];    /* deploy, rollback, prune; lock: a freeze */
	char message[256];   /* a freeze's message (relflip lock -m) */
	long long since;     /* epoch seconds when taken */
	long long renewed;   /* epoch seconds of the last renewal */
};

struct layout_state {
	long long server_now;      /* the server's clock, epoch seconds */
	int app_exists;
	int app_is_dir;
	int writable;              /* APP, or the ancestor that would hold it */
	char ancestor[512];        /* nearest existing ancestor when missing */
	enum current_kind current;
	char current_target[512];  /* readlink of current */
	char current_id[65];       /* the release id it names, or "" */
	long nreleases;            /* entries under releases/, -1: none */
	struct lock_info lock;
	char missing_tools[128];   /* space-separated, "" when all there */
	char agent[8];             /* LAYOUT_TOOLS: "perl" or "sh" */
	long long free_bytes;      /* asks->free_space: where APP is; -1 */
	long long incoming_size;   /* of probe_asks.incoming; -1: none */
	struct strlist missing_shared; /* probe_asks.shared_files not there */
	char base_id[65];          /* probe_asks.base_manifest: whose, or "" */
	struct buf base_manifest;  /* its base64 text, lines joined */

	/* With LAYOUT_RECORDS: */
	struct record_set records; /* records and release directories */
	struct strlist foreign;    /* names under releases/ that are not a
				    * relflip release: no id, or no directory */
	struct strlist tmpdirs;    /* releases/.tmp-* left by interruptions */
	struct strlist incoming;   /* files in .relflip/incoming/ */
	struct strlist trash;      /* what a background rm left in trash/ */
};

enum layout_flags {
	LAYOUT_RECORDS = (1 << 0), /* also read records and list releases */
	LAYOUT_TOOLS = (1 << 1),   /* and which tools the server lacks */
};

/* What a command also wants to know of each host, beyond the layout. */
struct probe_asks {
	const struct strlist *shared_files; /* which are missing in shared/ */
	const char *incoming;               /* how much of this upload is there */
	/*
	 * The manifest of the release current points at, compact (each
	 * digest or link target cut to 16 characters), gzipped and in
	 * base64: what a delta upload is worked out from.
	 */
	int base_manifest;
	int free_space; /* the free space where APP is (a deploy's preflight) */
};

/*
 * The shell script of the probe, for --dry-run and for tests. asks may be
 * NULL.
 */
void layout_probe_script(struct buf *cmd, const char *app_path, int flags,
			 const struct probe_asks *asks);

/* Run the probe; fill st (release it with layout_state_release). */
int layout_probe(struct remote *r, const char *app_path, int flags,
		 const struct probe_asks *asks, struct layout_state *st,
		 struct rf_error *err);

/* Parse the probe's output (pure, for unit tests). */
void layout_parse(const char *text, struct layout_state *st);

void layout_state_release(struct layout_state *st);

/* The release id a `current` target names ("releases/<id>"), or NULL. */
const char *layout_target_id(const char *target, char *id, size_t idlen);

#endif
