#ifndef RELFLIP_STEPS_H
#define RELFLIP_STEPS_H

#include <stdint.h>

#include "buf.h"
#include "conf.h"

/*
 * The shell scripts relflip runs on a server, one per step, each a single
 * round trip. Every value is quoted with sh_quote(). --dry-run prints
 * exactly these.
 */

/* The variables every hook and restart command gets. */
struct step_env {
	const char *app;      /* [app] path */
	const char *release;  /* the release id the command is about */
	const char *previous; /* the release live before, or "" */
	const char *host;     /* the host's name in the config */
};

/*
 * The time limit of a step that only reads or writes a few files (lock,
 * link, switch, record): a server or an NFS mount that hangs longer is
 * one to stop on. Hooks get hook_timeout.
 */
#define STEP_LIMIT_SHORT 120.0

/* Exit statuses the scripts use to say what failed. */
enum step_status {
	STEP_RECORD = 74,     /* a record or the log could not be written */
	STEP_LOCK_HELD = 75,
	STEP_LAYOUT = 76,     /* cannot create the layout */
	STEP_CHECKSUM = 77,   /* the uploaded file's checksum differs */
	STEP_UNPACK = 78,     /* tar failed */
	STEP_RENAME = 79,     /* releases/<id> exists or cannot be made */
	STEP_MANIFEST = 80,   /* the unpacked tree is not what was approved */
	STEP_LINK = 81,       /* a shared link or REVISION cannot be made */
	STEP_SHARED_MISSING = 82, /* a shared_files entry is missing */
	STEP_DELTA_BASE = 83, /* the base does not lead to this release */
	STEP_PULL_TOOL = 84,    /* no curl (nor wget, without a header) */
	STEP_PULL_HTTP = 85,    /* the URL answered an HTTP error */
	STEP_PULL_CONNECT = 86, /* no route, no DNS, refused */
	STEP_PULL_SLOW = 87,    /* the download's time limit passed */
	STEP_PULL_FAILED = 88,  /* the download failed otherwise */
};

/* APP/.relflip/incoming/<id>.<first 12 hex of the checksum>.tar */
void step_incoming_path(struct buf *path, const char *app, const char *id,
			const char *sha256);

/*
 * Create the layout, take the lock with one atomic mkdir and write who
 * holds it (info_lines: "key=value\n" lines), then run the probe with
 * records. Prints "locked=1" or "locked=0" first.
 */
void step_lock_script(struct buf *cmd, const char *app,
		      const char *info_lines);

/* Renew the lock (its info file's time); prefixed to every later step. */
void step_renew(struct buf *cmd, const char *app);

/* Remove the lock when its token is ours (or any lock with force). */
void step_unlock_script(struct buf *cmd, const char *app, const char *token,
			int force);

/*
 * Verify the upload's SHA-256 (in parallel with unpacking it) into a
 * temporary directory next to releases/, check the tree against the
 * approved manifest (given on stdin; a difference is STEP_MANIFEST and
 * removes the tree), keep the manifest, write the record, then rename the
 * tree into place. A releases/<id> already there, of any kind, is refused.
 */
void step_unpack_script(struct buf *cmd, const char *app, const char *id,
			const char *sha256, const char *token,
			const char *record_json);

/* What a server downloads, and how (step_pull_script). */
struct step_pull {
	const char *app;
	const char *id;
	const char *sha256; /* what the download must hash to, hex */
	uint64_t size;      /* and its size in bytes */
	const char *url;    /* ${RELFLIP_RELEASE} already filled in */
	double limit;       /* seconds the download may take */
	int header;         /* stdin's first line is an HTTP header */
};

/*
 * The server downloads the artifact into the incoming path itself: with
 * curl (given the URL and any header in a config on its stdin, never on
 * its command line), else, without a header, with wget (the URL on its
 * stdin); resuming a partial file, under the time limit, with three
 * retries. Then the file's SHA-256 must be p->sha256: else it is removed
 * (STEP_CHECKSUM, the server's sum on stderr). A complete file is not
 * fetched again. The tools' messages reach stderr without any URL's query
 * or user part. On success it prints "from=BYTES": the size it resumed
 * from (p->size when nothing was fetched).
 */
void step_pull_script(struct buf *cmd, const struct step_pull *p);

/*
 * Build releases/<id> from the base release on the server and a delta:
 * edits (edits_len bytes, in the script) to the base's manifest (lines
 * "-PATH": drop; "+LINE": add; "!PATH": in the delta though unchanged),
 * and on stdin a gzip'd tarball of what is new. The base's manifest with
 * the edits must hash to manifest_sha256; its directories are made, the
 * entries that stay are copied from the base (cp --reflink=auto, never a
 * hard link, never reading through a link), the delta is unpacked over
 * them, and the whole tree is checked against the new manifest. Any of
 * that failing is STEP_DELTA_BASE, and nothing is left: the caller falls
 * back to a full upload. Then as step_unpack_script: the manifest, the
 * record, the rename. The base is only read.
 */
void step_unpack_delta_script(struct buf *cmd, const char *app, const char *id,
			      const char *base, const char *token,
			      const char *edits, size_t edits_len,
			      const char *manifest_sha256,
			      const char *record_json);

/*
 * Link shared dirs (made in shared/ on first use) and files (which must be
 * there: STEP_SHARED_MISSING) into the release, refusing a path with a
 * link among its parents in the release; write REVISION and DEPLOYED_AT
 * by rename, never through what is there; and the staged record.
 */
void step_link_script(struct buf *cmd, const struct conf *conf,
		      const char *id, const char *record_json);

/*
 * Run a hook or restart command under sh -c in dir with the RELFLIP_*
 * variables. Its time limit and process group come from the agent that
 * runs every step (include/agent.h).
 */
void step_hook_script(struct buf *cmd, const char *dir,
		      const struct step_env *env, const char *hook);

/*
 * The same with the working directory and RELFLIP_RELEASE_PATH apart
 * (relflip exec runs in current/, naming the release it points at).
 */
void step_command_script(struct buf *cmd, const char *cwd,
			 const char *release_path, const struct step_env *env,
			 const char *command);

/*
 * The hook as a person runs it again on the server, in a shell as the
 * deploy user: "cd DIR && RELFLIP_...=... sh -c 'HOOK'", with the same
 * variables (RELFLIP_PREVIOUS_REVISION left out when empty). One line,
 * for a failed hook's hint.
 */
void step_hook_repro(struct buf *out, const char *dir,
		     const struct step_env *env, const char *hook);

/* Point current at releases/<id> by rename(2); id NULL removes current. */
void step_switch_script(struct buf *cmd, const char *app, const char *id);

/*
 * A record's new text in a new temporary file named by shell variable
 * var (stage), renamed over the record (commit): a step can stage its
 * records before the change they describe and commit them right after,
 * leaving only the renames between the change and its record. A failure
 * is STEP_RECORD and removes the temporary file.
 */
void step_record_stage(struct buf *cmd, const char *app, const char *id,
		       const char *record_json, const char *var);
void step_record_commit(struct buf *cmd, const char *app, const char *id,
			const char *var);

/* Stage and commit at once. */
void step_write_record(struct buf *cmd, const char *app, const char *id,
		       const char *record_json);

/* Append one line to APP/.relflip/log.jsonl. */
void step_append_log(struct buf *cmd, const char *app, const char *line);

/*
 * Removing many paths: the list travels on stdin, one path relative to the
 * app path a line (an exec request cannot carry thousands of them), and
 * one rm -rf takes them all. With measure, the script first prints the
 * kilobytes they hold ("du -skc" total).
 */
void step_remove_listed(struct buf *cmd, const char *app, int measure);

/*
 * The same list of paths, put out of the way at once (renamed into
 * .relflip/trash/TOKEN) and removed in the background, detached: for a
 * deploy that should not wait for an rm of old releases.
 */
void step_discard_listed(struct buf *cmd, const char *app, const char *token);

/* Add a release's directory, record, manifest and snapshot to such a list. */
void step_list_release(struct buf *list, const char *id);

#endif
