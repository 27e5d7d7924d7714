/*
 * relflip pack DIR -o FILE: build a reproducible release tarball.
 */
#include <errno.h>
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

enum {
	OPT_REVISION = 256,
	OPT_EXCLUDE,
	OPT_INCLUDE,
	OPT_NO_GIT,
};

static const struct option pack_options[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "revision", required_argument, NULL, OPT_REVISION },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "include", required_argument, NULL, OPT_INCLUDE },
	{ "no-git", no_argument, NULL, OPT_NO_GIT },
	{ NULL, 0, NULL, 0 },
};

/* At most this many files named in the warning about secrets. */
#define SECRETS_SHOWN 5

#define OPTIONS_TEXT                                                           \
	"Options:\n"                                                           \
	"  -o, --output FILE     the tarball to write, compressed as its "     \
	"name says:\n"                                                         \
	"                        .tar.gz or .tgz (gzip), .tar.zst (zstd), "    \
	".tar.xz\n"                                                            \
	"                        (xz) or .tar (none); required\n"              \
	"      --revision ID     add a REVISION file holding ID at the top\n"  \
	"                        (default: $GITHUB_SHA, when set)\n"           \
	"      --include PATTERN in a git work tree, pack the untracked "      \
	"paths\n"                                                              \
	"                        matching the glob too (a build's output); "   \
	"repeatable\n"                                                         \
	"      --exclude PATTERN leave out paths matching the glob; "          \
	"repeatable.\n"                                                        \
	"                        DIR/.relflipignore lists more, one a line;\n" \
	"                        a trailing '/' matches directories only;\n"   \
	"                        .git is always left out\n"                    \
	"      --no-git          pack every file under DIR, even in a git "    \
	"work tree\n"                                                          \
	"  -h, --help            show this help\n"                             \
	"\n"                                                                   \
	"In a git work tree DIR holds what git tracks (git ls-files; "         \
	"relflip\n"                                                            \
	"writes the tarball itself), plus --include: a virtualenv, build "     \
	"files\n"                                                              \
	"or a key left in the tree stay out, and pack names the untracked "    \
	"files\n"                                                              \
	"it left out. Elsewhere, or where git tracks nothing under DIR, "      \
	"every "                                                               \
	"file.\n"                                                              \
	"It warns about files that look secret: .env, id_* keys, *.pem, "      \
	"*.key,\n"                                                             \
	"a -----BEGIN ... PRIVATE KEY----- line.\n"                            \
	"\n"                                                                   \
	"The same tree gives the same bytes: entries sorted, owner root,\n"    \
	"modes 0755 (directories, executables) or 0644, no timestamp in the\n" \
	"compressed stream, and every time set to $SOURCE_DATE_EPOCH, else\n"  \
	"1980-01-01. Prints what it packed on stderr, then the SHA-256, the\n" \
	"size and the file on stdout.\n"

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
pack_option(void *p, int c, const char *arg, struct rf_error *err)
{
	struct pack_options *opts = p;

	(void)err;
	switch (c) {
	case 'o':
		opts->output = arg;
		break;
	case OPT_REVISION:
		opts->revision = arg;
		break;
	case OPT_EXCLUDE:
		opts->excludes = xreallocarray((void *)opts->excludes,
					       opts->nexcludes + 1,
					       sizeof(*opts->excludes));
		((const char **)opts->excludes)[opts->nexcludes++] = arg;
		break;
	case OPT_INCLUDE:
		opts->includes =
		    xreallocarray((void *)opts->includes, opts->nincludes + 1,
				  sizeof(*opts->includes));
		((const char **)opts->includes)[opts->nincludes++] = arg;
		break;
	case OPT_NO_GIT:
		opts->no_git = 1;
		break;
	}
	return 0;
}

static int
pack_args(void *p, int argc, char **argv, struct rf_error *err)
{
	struct pack_options *opts = p;
	const char *env;

	if (argc < 1)
		return cmd_usage_fail(err, "missing DIR");
	if (argc > 1)
		return cmd_usage_fail(err, "one DIR only (got '%s' too)",
				      argv[1]);
	opts->dir = argv[0];
	if (opts->output == NULL || opts->output[0] == '\0')
		return cmd_usage_fail(err, "missing -o FILE (the tarball to "
				      "write)");
	/* The name says the compression: p.tar.zst is never gzip inside. */
	opts->compression = artifact_compression_for(opts->output);
	if (opts->compression == NULL)
		return cmd_usage_fail(err,
				      "-o %s: cannot tell the compression from "
				      "the name; end it in .tar.gz (or .tgz), "
				      ".tar.zst, .tar.xz or .tar",
				      opts->output);
	if (opts->revision == NULL) {
		env = getenv("GITHUB_SHA");
		if (env != NULL && env[0] != '\0') {
			if (!release_id_valid(env))
				return cmd_usage_fail(
				    err,
				    "$GITHUB_SHA '%s' is not a valid release "
				    "id (1-64 of [A-Za-z0-9._-], not starting "
				    "with '.')",
				    env);
			opts->revision = env;
		}
	} else if (!release_id_valid(opts->revision)) {
		return cmd_usage_fail(err,
				      "--revision '%s' is not a valid release "
				      "id (1-64 of [A-Za-z0-9._-], not starting "
				      "with '.')",
				      opts->revision);
	}
	if (pack_mtime(&opts->mtime) != 0)
		return cmd_usage_fail(err,
				      "SOURCE_DATE_EPOCH '%s' is not a time in "
				      "seconds since 1970 (digits only)",
				      getenv("SOURCE_DATE_EPOCH"));
	return 0;
}

static void
pack_release(void *p)
{
	struct pack_options *opts = p;

	free((void *)opts->excludes);
	free((void *)opts->includes);
}

/* What pack found worth saying: the files left out, the secrets let in. */
static void
pack_notes(const struct pack_options *opts, const struct pack_report *rep)
{
	struct buf names = BUF_INIT;
	size_t i;

	if (rep->untracked > 0)
		out_text(
		    "left out %zu file%s git does not track (%s%s): git add "
		    "them, or pack them with --include PATTERN",
		    rep->untracked, rep->untracked == 1 ? "" : "s",
		    rep->untracked_some, rep->untracked > 3 ? " ..." : "");
	if (rep->secrets.n == 0)
		return;
	for (i = 0; i < rep->secrets.n && i < SECRETS_SHOWN; i++)
		buf_addf(&names, "%s%s", i ? "; " : "", rep->secrets.v[i]);
	if (rep->secrets.n > SECRETS_SHOWN)
		buf_addf(&names, "; and %zu more",
			 rep->secrets.n - SECRETS_SHOWN);
	out_warning(NULL, "pack",
		    "%s holds what looks like a secret, which every server "
		    "and anyone with the artifact gets: %s; leave it out with "
		    "--exclude or .relflipignore%s",
		    opts->output, buf_str(&names),
		    rep->git ? " (or git rm --cached it)" : "");
	buf_release(&names);
}

static int
pack_exec(struct cmd_ctx *ctx, void *p)
{
	struct pack_options *opts = p;
	struct pack_report rep;
	struct artifact_info info;
	char unpacked[32], packed[32];
	int rc;

	memset(&rep, 0, sizeof(rep));
	opts->report = &rep;
	rc = artifact_pack(opts, &info, &ctx->err);
	opts->report = NULL;
	if (rc != 0) {
		strlist_free(&rep.secrets);
		if (ctx->err.code == 0)
			ctx->err.code = RF_EXIT_INTERNAL;
		return ctx->err.code;
	}

	out_format_bytes(unpacked, sizeof(unpacked), info.unpacked_size);
	out_format_bytes(packed, sizeof(packed), info.file_size);
	/* What was packed first, then the digest: the line a script reads. */
	out_text("packed %s%s: %llu files, %s unpacked -> %s (%s, %s)",
		 opts->dir, rep.git ? " (what git tracks)" : "",
		 (unsigned long long)info.files, unpacked, opts->output, packed,
		 info.compression);
	pack_notes(opts, &rep);
	strlist_free(&rep.secrets);
	/* Under --json stdout carries events only; the result has it all. */
	if (!ctx->json)
		out_primary("%s  %llu bytes  %s", info.sha256,
			    (unsigned long long)info.file_size, opts->output);
	{
		struct out_field fields[] = {
			OF_STR("status", "ok"),
			OF_INT("exit_code", 0),
			OF_STR("file", opts->output),
			OF_STR("sha256", info.sha256),
			OF_INT("size", info.file_size),
			OF_INT("files", info.files),
			OF_INT("entries", info.entries),
			OF_INT("unpacked_size", info.unpacked_size),
			OF_STR("compression", info.compression),
			OF_STR("revision", opts->revision),
		};
		size_t nfields = sizeof(fields) / sizeof(fields[0]);

		if (opts->revision == NULL)
			nfields--;
		out_event("result", NULL, "pack", fields, nfields);
	}
	return 0;
}

const struct cmd_entry cmd_pack_entry = {
	.name = "pack",
	.usage = "DIR -o FILE [--revision ID] [--include PATTERN]... "
		 "[--exclude PATTERN]... [--no-git]",
	.summary = "build a reproducible release tarball",
	.help = OPTIONS_TEXT,
	.flags = 0,
	.options = pack_options,
	.shortopts = "o:",
	.opts_size = sizeof(struct pack_options),
	.option = pack_option,
	.args = pack_args,
	.exec = pack_exec,
	.release = pack_release,
};
