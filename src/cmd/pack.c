/*
 * relflip pack DIR -o FILE: build a reproducible release tarball.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "cmd.h"
#include "error.h"
#include "out.h"
#include "release.h"
#include "xmalloc.h"

/*
 * Without SOURCE_DATE_EPOCH every entry gets 1980-01-01T00:00:00Z: the
 * oldest time zip can store, so a release repacked into a zip or jar
 * keeps its times, and unlike 0 no tool mistakes it for "no time".
 */
#define PACK_DEFAULT_EPOCH 315532800LL

/* 9999-12-31T23:59:59Z: a later SOURCE_DATE_EPOCH is a mistake. */
#define PACK_MAX_EPOCH 253402300799LL

static int cmd_pack_exec(struct cmd_ctx *, int, char **);

const struct cmd_entry cmd_pack_entry = {
	.name = "pack",
	.usage = "DIR -o FILE [--revision ID] [--exclude PATTERN]...",
	.summary = "build a reproducible release tarball",
	.flags = 0,
	.exec = cmd_pack_exec,
};

enum {
	OPT_REVISION = 256,
	OPT_EXCLUDE,
};

static const struct option pack_options_long[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "revision", required_argument, NULL, OPT_REVISION },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define OPTIONS_TEXT                                                           \
	"Options:\n"                                                           \
	"  -o, --output FILE     the tarball to write (gzip), required\n"      \
	"      --revision ID     add a REVISION file holding ID at the top\n"  \
	"                        (default: $GITHUB_SHA, when set)\n"           \
	"      --exclude PATTERN leave out paths matching the glob; "          \
	"repeatable.\n"                                                        \
	"                        DIR/.relflipignore lists more, one a line;\n" \
	"                        a trailing '/' matches directories only;\n"   \
	"                        .git is always left out\n"                    \
	"  -h, --help            show this help\n"                             \
	"\n"                                                                   \
	"The same tree gives the same bytes: entries sorted, owner root,\n"    \
	"modes 0755 (directories, executables) or 0644, no gzip timestamp,\n"  \
	"and every time set to $SOURCE_DATE_EPOCH, else 1980-01-01.\n"         \
	"Prints the SHA-256, the size and the file on stdout.\n"

/* SOURCE_DATE_EPOCH: digits only; unset or empty gives the fixed epoch. */
static int
pack_mtime(int64_t *mtime)
{
	const char *env = getenv("SOURCE_DATE_EPOCH");
	const char *p;
	char *end;
	long long v;

	*mtime = PACK_DEFAULT_EPOCH;
	if (env == NULL || env[0] == '\0')
		return 0;
	for (p = env; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
	}
	errno = 0;
	v = strtoll(env, &end, 10);
	if (errno != 0 || *end != '\0' || v > PACK_MAX_EPOCH)
		return -1;
	*mtime = v;
	return 0;
}

static int
cmd_pack_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct rf_error err = RF_ERROR_INIT;
	struct artifact_info info;
	struct pack_options opts;
	const char **excludes;
	const char *env;
	char unpacked[32], packed[32];
	size_t nexcludes = 0;
	int c, rc;

	memset(&opts, 0, sizeof(opts));
	excludes = xcalloc((size_t)argc + 1, sizeof(*excludes));
	/*
	 * 0, not 1: glibc then forgets main's "+" (stop at the first
	 * non-option), so "pack DIR -o FILE" works with DIR first.
	 */
	optind = 0;
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":o:h", pack_options_long, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'o':
			opts.output = optarg;
			break;
		case OPT_REVISION:
			opts.revision = optarg;
			break;
		case OPT_EXCLUDE:
			excludes[nexcludes++] = optarg;
			break;
		case 'h':
			free(excludes);
			return cmd_usage(&cmd_pack_entry, OPTIONS_TEXT, 0);
		case ':':
			rc = cmd_usage_error(&cmd_pack_entry,
					     "option '%s' needs a value",
					     argv[optind - 1]);
			goto out;
		default:
			if (optopt > 0 && optopt < 256)
				rc = cmd_usage_error(&cmd_pack_entry,
						     "unknown option '-%c'",
						     optopt);
			else
				rc = cmd_usage_error(&cmd_pack_entry,
						     "unknown option '%s'",
						     argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = cmd_usage_error(&cmd_pack_entry, "missing DIR");
		goto out;
	}
	if (argc - optind > 1) {
		rc = cmd_usage_error(&cmd_pack_entry,
				     "one DIR only (got '%s' too)",
				     argv[optind + 1]);
		goto out;
	}
	opts.dir = argv[optind];
	if (opts.output == NULL || opts.output[0] == '\0') {
		rc = cmd_usage_error(&cmd_pack_entry,
				     "missing -o FILE (the tarball to write)");
		goto out;
	}
	if (opts.revision == NULL) {
		env = getenv("GITHUB_SHA");
		if (env != NULL && env[0] != '\0') {
			if (!release_id_valid(env)) {
				rc = cmd_usage_error(
				    &cmd_pack_entry,
				    "$GITHUB_SHA '%s' is not a valid release "
				    "id (1-64 of [A-Za-z0-9._-], not starting "
				    "with '.')",
				    env);
				goto out;
			}
			opts.revision = env;
		}
	} else if (!release_id_valid(opts.revision)) {
		rc = cmd_usage_error(&cmd_pack_entry,
				     "--revision '%s' is not a valid release "
				     "id (1-64 of [A-Za-z0-9._-], not starting "
				     "with '.')",
				     opts.revision);
		goto out;
	}
	if (pack_mtime(&opts.mtime) != 0) {
		rc = cmd_usage_error(&cmd_pack_entry,
				     "SOURCE_DATE_EPOCH '%s' is not a time in "
				     "seconds since 1970 (digits only)",
				     getenv("SOURCE_DATE_EPOCH"));
		goto out;
	}
	opts.excludes = excludes;
	opts.nexcludes = nexcludes;

	if (artifact_pack(&opts, &info, &err) != 0) {
		if (err.code == 0)
			err.code = RF_EXIT_INTERNAL;
		out_error(&err);
		rc = err.code;
		goto out;
	}

	out_format_bytes(unpacked, sizeof(unpacked), info.unpacked_size);
	out_format_bytes(packed, sizeof(packed), info.file_size);
	/* Under --json stdout carries events only; the result has it all. */
	if (!ctx->json)
		out_primary("%s  %llu bytes  %s", info.sha256,
			    (unsigned long long)info.file_size, opts.output);
	out_text("packed %s: %llu files, %s unpacked -> %s (%s)", opts.dir,
		 (unsigned long long)info.files, unpacked, opts.output, packed);
	{
		struct out_field fields[] = {
			OF_STR("status", "ok"),
			OF_INT("exit_code", 0),
			OF_STR("file", opts.output),
			OF_STR("sha256", info.sha256),
			OF_INT("size", info.file_size),
			OF_INT("files", info.files),
			OF_INT("entries", info.entries),
			OF_INT("unpacked_size", info.unpacked_size),
			OF_STR("compression", info.compression),
			OF_STR("revision", opts.revision),
		};
		size_t nfields = sizeof(fields) / sizeof(fields[0]);

		if (opts.revision == NULL)
			nfields--;
		out_event("result", NULL, "pack", fields, nfields);
	}
	rc = 0;
out:
	free(excludes);
	return rc;
}
