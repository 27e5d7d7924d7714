#ifndef RELFLIP_ARTIFACT_H
#define RELFLIP_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Release tarballs, read and written with libarchive (src/tar-validate.c
 * and src/tar-pack.c).
 */

struct artifact_info {
	char sha256[65];        /* hex digest of the file as it is on disk */
	uint64_t file_size;     /* bytes on disk */
	uint64_t unpacked_size; /* sum of the regular files' sizes */
	uint64_t entries;       /* every entry, directories included */
	uint64_t files;         /* regular files */
	char compression[16];   /* "gzip", "zstd", "xz", "none" */
};

struct artifact_limits {
	uint64_t max_unpacked; /* bytes; default 16 GiB */
	uint64_t max_entries;  /* default 1,000,000 */
	double max_ratio;      /* unpacked / file size; default 200 */
};

#define ARTIFACT_LIMITS_DEFAULT { 16ULL << 30, 1000000, 200.0 }

/*
 * Read the whole tarball once: compute its SHA-256 and sizes and refuse
 * what must never reach a server: not a tar (gzip, zstd, xz or none), an
 * empty or absolute path, a ".." component, a symlink or hardlink that
 * leads outside the release, a device node, FIFO or socket, setuid,
 * setgid or sticky bits, a directory without u+rwx or a file without
 * u+r, a duplicate path, a path under an earlier symlink or file, a name
 * or link target with a control character, tab or backslash, or sizes
 * past limits. And anything GNU tar, which unpacks on the servers, could
 * read differently from libarchive: only ustar, pax and GNU headers of
 * files, hard links, symlinks and directories pass, with the pax keys
 * path, linkpath, size, mtime, atime, ctime, uid, gid, uname, gname and
 * comment, GNU long names and links, and pax global headers that only
 * hold comments (as `git archive` writes). Errors are RF_EXIT_ARTIFACT,
 * stage "validate", and name the offending entry.
 */
int artifact_validate(const char *path, const struct artifact_limits *limits,
		      struct artifact_info *info, struct rf_error *err);

/*
 * artifact_validate, and fill manifest (include/manifest.h; emptied
 * first, sorted) with the tree GNU tar will unpack: the server's
 * `tar -x --no-same-owner --no-same-permissions` under umask 022, in an
 * empty directory, makes exactly the tree the manifest lists. Empty on
 * failure. Memory grows with the entries, not with their data.
 */
struct manifest;
int artifact_manifest(const char *path, const struct artifact_limits *limits,
		      struct artifact_info *info, struct manifest *manifest,
		      struct rf_error *err);

struct pack_options {
	const char *dir;        /* the tree to pack */
	const char *output;     /* the tarball to write (gzip) */
	const char *revision;   /* when set, a REVISION file is added */
	const char *const *excludes; /* glob patterns, matched like .gitignore */
	size_t nexcludes;
	int64_t mtime;          /* SOURCE_DATE_EPOCH, or a fixed epoch */
};

/*
 * Write a reproducible gzip'd tarball of opts->dir: entries sorted
 * byte-wise, modes normalised (0755 dirs and executables, 0644 files),
 * owner 0, one mtime, no gzip timestamp, pax_restricted, UTF-8 names.
 * ".git" is always excluded, as is what opts->dir/.relflipignore lists.
 * Refuses (RF_EXIT_ARTIFACT) what artifact_validate would refuse, then
 * validates the output and fills info.
 */
int artifact_pack(const struct pack_options *opts, struct artifact_info *info,
		  struct rf_error *err);

/*
 * Write to fd a gzip'd tarball of the entries of the artifact at path
 * that `select` lists: a sorted manifest, such as the send half of
 * manifest_diff. Headers are normalised as artifact_pack writes them
 * (owner 0 root:root, the manifest's modes, pax_restricted, UTF-8
 * names, no gzip timestamp), each keeping its mtime; entries stay in the
 * artifact's order, and the directories `select` lists that the artifact
 * does not (parents GNU tar made) come last. A hard link stays a hard
 * link: its target must be selected too, or be in place (kept) where the
 * delta is unpacked. Every selected entry must match `select` (type,
 * size, digest or target), and when sha256 is given the artifact must
 * still have that digest: else RF_EXIT_ARTIFACT, and the caller drops
 * what was written. Write errors are RF_EXIT_UPLOAD; stage "upload".
 * Streams through fixed buffers: memory grows with select, not the data.
 */
int artifact_write_subset(const char *path, const char *sha256,
			  const struct manifest *select, int fd,
			  struct rf_error *err);

/* SHA-256 of bytes in memory, in hex; -1 when libcrypto fails. */
int sha256_hex_mem(const void *data, size_t len, char hex[65]);

/*
 * Uncompress gzip data in memory into out (bounded by out->max when set).
 * Errors are RF_EXIT_UPLOAD with no stage.
 */
struct buf;
int gunzip_mem(const void *data, size_t len, struct buf *out,
	       struct rf_error *err);

/* SHA-256 of a file's bytes from offset 0 to its end, in hex. */
int file_sha256(const char *path, char hex[65], struct rf_error *err);

#endif
