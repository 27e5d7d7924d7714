#ifndef RELFLIP_GIT_FILES_H
#define RELFLIP_GIT_FILES_H

#include <sys/types.h>

#include "conf.h"
#include "error.h"

/*
 * The files git knows in a directory, for `relflip pack`: git itself is
 * asked (git -C DIR ls-files -z), run without a shell; the tarball is
 * still written by libarchive, never by git or tar.
 */

enum git_files {
	GIT_TRACKED, /* what the index holds (--cached), submodules too */
	GIT_OTHERS,  /* untracked files that .gitignore does not ignore */
};

/*
 * Fill out (emptied first) with the paths, relative to dir, sorted
 * byte-wise. Returns 1 when dir is in a git work tree, 0 when it is not
 * (or git is not installed), and -1 when git failed otherwise (err says
 * how: its first line on stderr), RF_EXIT_ARTIFACT, stage "pack".
 */
int git_files(const char *dir, enum git_files which, struct strlist *out,
	      struct rf_error *err);

/*
 * The same in two halves, so that git lists while the caller works: start
 * returns 1 when git runs (finish then reaps it, always), 0 when git is
 * not installed (finish then returns 0), -1 on failure.
 */
struct git_job {
	pid_t pid; /* -1: none */
	int out, err;
};

int git_files_start(const char *dir, enum git_files which, struct git_job *job,
		    struct rf_error *err);
int git_files_finish(struct git_job *job, const char *dir, struct strlist *out,
		     struct rf_error *err);

/* Is path one of the sorted list's, or a directory above one of them? */
int git_files_has(const struct strlist *sorted, const char *path);
int git_files_has_below(const struct strlist *sorted, const char *dir);

#endif
