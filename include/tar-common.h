#ifndef RELFLIP_TAR_COMMON_H
#define RELFLIP_TAR_COMMON_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"

/*
 * What src/tar-validate.c and src/tar-pack.c share, the two halves of the
 * libarchive adapter behind include/artifact.h. Private to them: nothing
 * else includes this header, and nothing here needs <archive.h>.
 */

/* Every read and write of artifact bytes goes through a buffer this big. */
#define IO_BUFSZ (128 * 1024)

/* Longer paths cannot be extracted on Linux anyway. */
#define ENTRY_PATH_MAX 4096

/* A name as shown in a message: escaped and cut to fit. */
#define SHOW_MAX 160

#define PACK_HINT "build the tarball with: relflip pack DIR -o FILE"

/* The calling thread's LC_CTYPE while libarchive converts names. */
struct tar_locale {
	locale_t loc;
	locale_t old;
};

/*
 * Switch this thread to C.UTF-8 (pax names are UTF-8: under LC_CTYPE=C
 * they are unconvertible on read and written as hdrcharset=BINARY);
 * leave restores the previous locale.
 */
int tar_locale_enter(struct tar_locale *l, const char *stage,
		     struct rf_error *err);
void tar_locale_leave(struct tar_locale *l);

/* Whether s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int tar_utf8_valid(const char *s);

/*
 * Copy a name for a message: control bytes, backslashes and, in a name
 * that is not UTF-8, every byte past ASCII become \xHH; long names are
 * cut with "...".
 */
void tar_show_name(char *dst, size_t len, const char *s);

/* Bytes in binary units for limits: "16 GiB", "261 KiB", "900 bytes". */
void tar_show_size(char *dst, size_t len, uint64_t n);

/*
 * Normalise a path inside the release: drop "." and empty components.
 * Returns the result (owned by the caller; "" for the release root), or
 * NULL with *why set for an absolute path or a ".." component.
 */
char *tar_path_normalise(const char *path, const char **why);

/*
 * Check the target of a symlink at the normalised path entry: NULL when
 * it stays inside the release, else the reason.
 */
const char *tar_symlink_check(const char *entry, const char *target);

/* A digest in lowercase hex. */
void tar_digest_hex(const unsigned char *md, unsigned int len, char hex[65]);

/*
 * The artifact file as libarchive reads it, hashed on the way, so that
 * what was read is what the digest covers (in src/tar-validate.c).
 */
struct tar_file {
	int fd;
	unsigned char *buf; /* IO_BUFSZ */
	EVP_MD_CTX *md;
	uint64_t size;  /* on disk, at open */
	uint64_t nread; /* bytes read and hashed so far */
	int stopped;    /* interrupted, or the digest failed */
};

/* Open a regular file; errors name it `shown`. Close even on failure. */
int tar_file_open(struct tar_file *f, const char *path, const char *shown,
		  const char *stage, struct rf_error *err);

/* The compressions an artifact may use: gzip, zstd, xz or none. */
struct archive;
void tar_read_filters(struct archive *a);

/*
 * The tar format, with every entry reported as GNU tar sees one (no
 * macOS metadata folding): returns libarchive's status.
 */
int tar_read_format(struct archive *a);

/* archive_read_open on the file: returns libarchive's status. */
int tar_file_attach(struct archive *a, struct tar_file *f);

/* Read and hash the rest of the file; its SHA-256 in hex. */
int tar_file_finish(struct tar_file *f, const char *shown, const char *stage,
		    char hex[65], struct rf_error *err);

void tar_file_close(struct tar_file *f);

/*
 * artifact_validate, naming the file `shown` in messages (packing
 * validates its temporary file under the output's name).
 */
struct artifact_limits;
struct artifact_info;
struct manifest;
int tar_validate_file(const char *path, const char *shown,
		      const struct artifact_limits *limits,
		      struct artifact_info *info, struct manifest *manifest,
		      struct rf_error *err);

#endif
