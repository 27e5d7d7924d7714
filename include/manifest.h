#ifndef RELFLIP_MANIFEST_H
#define RELFLIP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

/*
 * A release's manifest: the tree a validated artifact unpacks to, as GNU
 * tar makes it on a server (`tar -x --no-same-owner --no-same-permissions`
 * under umask 022). Kept on each server as .relflip/releases/<id>.manifest
 * and compared there with the listing of the unpacked tree before the
 * release gets its final name. Pure: no I/O.
 *
 * The text, byte for byte (server scripts compare it with cmp):
 *
 *	# relflip manifest 1
 *	TYPE<TAB>MODE<TAB>SIZE<TAB>DATA<TAB>PATH     one line an entry
 *	# entries N
 *
 * Entry lines are sorted by PATH in byte order (strcmp, LC_ALL=C sort);
 * every line ends in "\n". TYPE is d (directory), f (regular file; a hard
 * link is listed as the file it links to) or l (symlink). MODE is the
 * permission bits in octal as `find -printf %m` prints them (777 for a
 * symlink). SIZE is the size in bytes for f, "-" otherwise. DATA is the
 * lowercase SHA-256 of the content for f, the target for l, "-" for d.
 * PATH is relative and normalised: no "./", no trailing "/", never ".".
 * The directories GNU tar creates as parents are listed (mode 755).
 */

#define MANIFEST_HEADER "# relflip manifest 1"

/* Longer paths and link targets cannot be unpacked on Linux anyway. */
#define MANIFEST_PATH_MAX 4096

enum manifest_type {
	MANIFEST_DIR = 'd',
	MANIFEST_FILE = 'f',
	MANIFEST_LINK = 'l',
};

struct manifest_entry {
	char *path;    /* owned */
	char *target;  /* MANIFEST_LINK: the link target (owned); else NULL */
	uint64_t size; /* MANIFEST_FILE: bytes; else 0 */
	unsigned int mode; /* permission bits: 0755, 0644, 0777 for a link */
	char type;         /* enum manifest_type */
	char sha256[65];   /* MANIFEST_FILE: lowercase hex; else "" */
};

struct manifest {
	struct manifest_entry *entries;
	size_t n;
	size_t alloc;
};

#define MANIFEST_INIT                                                          \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

/*
 * Append an entry of this type at path (copied), mode 0777 for a link and
 * 0 otherwise; the caller fills the rest. The pointer lasts until the
 * next add. Entries may be added in any order: sort before formatting.
 */
struct manifest_entry *manifest_add(struct manifest *m, char type,
				    const char *path);

/* Sort by path, byte-wise. */
void manifest_sort(struct manifest *m);

/*
 * Append the text of a sorted manifest to out. -1 when out's bound is
 * reached (out may then hold part of the text).
 */
int manifest_format(const struct manifest *m, struct buf *out);

/* Append one entry's line (with its "\n"); -1 past out's bound. */
int manifest_format_entry(const struct manifest_entry *e, struct buf *out);

/*
 * Parse manifest text, such as one read back from a server, into m (an
 * empty manifest; emptied on failure). Strict: only text manifest_format
 * could have written is accepted (sorted, unique, every parent listed as
 * a directory, the count right), with at most max_entries entries.
 * Errors are RF_EXIT_UPLOAD, stage "upload", "SOURCE:LINE: why"; a caller
 * in another stage sets err->stage.
 */
int manifest_parse(struct manifest *m, const char *text, size_t len,
		   size_t max_entries, const char *source,
		   struct rf_error *err);

/* The entry at path in a sorted manifest, or NULL. Borrowed. */
const struct manifest_entry *manifest_find(const struct manifest *m,
					   const char *path);

/* Whether two entries have the same type, mode, size and digest or target. */
int manifest_entry_same(const struct manifest_entry *a,
			const struct manifest_entry *b);

/*
 * Split the sorted manifest next by what the sorted manifest base already
 * holds unchanged: keep gets the entries of next that base has with the
 * same type, mode, size and digest or target (copy them from the base
 * release), send the others (they must come from the artifact). keep and
 * send are empty manifests on entry, sorted on return.
 */
void manifest_diff(const struct manifest *base, const struct manifest *next,
		   struct manifest *keep, struct manifest *send);

/*
 * Whether a name or link target can be listed: no control characters
 * (bytes below 0x20, 0x7f), which covers tab and newline, and no
 * backslash (sha256sum escapes names holding one).
 */
int manifest_name_ok(const char *s);

/*
 * Append a POSIX sh command that, run with a tree's directory as the
 * current directory, prints that tree's listing in the manifest format
 * on stdout, using find (GNU), sha256sum, sort, awk and wc under
 * LC_ALL=C. Only the tree the manifest describes prints the same text:
 * every entry, of any type, prints at least one line, a name that would
 * break a line or a field prints a line no manifest holds, and the count
 * comes from find, not from the lines. One brace group, with no newline
 * after it, so that a redirection can follow ("{ ... } >FILE"); its
 * variables are set in subshells only. scratch is the shell word of a file
 * outside the tree (a quoted path or "$VAR.l"): the entries are sorted
 * into it while the files are hashed, and the caller removes it.
 *
 * snapshot, when not NULL, is the shell word of a second file outside the
 * tree: the same walk writes each regular file's inode, ctime and path
 * into it (MANIFEST_SNAPSHOT_FORMAT), what a later delta checks to know
 * that a file has not changed since this listing hashed it. hashes, when
 * not NULL, is the command that prints sha256sum's lines for the files
 * (run in the tree; by default every file is hashed). -1 when out's bound
 * is reached.
 */
int manifest_listing_script(struct buf *out, const char *scratch,
			    const char *snapshot, const char *hashes);

/* sha256sum's lines for every regular file of the tree it runs in. */
#define MANIFEST_HASH_ALL "find . -mindepth 1 -type f -exec sha256sum -- {} +"

/*
 * A line of a release's snapshot (.relflip/releases/<id>.stat), as find
 * -printf writes it: inode, ctime (seconds and fraction), path. A write,
 * chmod, chown, rename over or new link changes a file's ctime, which no
 * one but the clock can set back.
 */
#define MANIFEST_SNAPSHOT_FORMAT "%i\\t%C@\\t%P\\n"

void manifest_release(struct manifest *m);

#endif
