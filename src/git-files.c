/*
 * Asking git which files a directory holds: `git -C DIR ls-files -z`, run
 * with posix_spawnp (no shell), its two streams read together.
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "git-files.h"
#include "xmalloc.h"

extern char **environ;

/* More than any tree relflip would deploy lists. */
#define GIT_OUT_MAX (256u << 20)
#define GIT_ERR_MAX (64u << 10)

/* Read out and errs until both close. -1 when reading failed. */
static int
drain(int outfd, int errfd, struct buf *out, struct buf *errs)
{
	struct pollfd p[2] = { { outfd, POLLIN, 0 }, { errfd, POLLIN, 0 } };
	char chunk[65536];
	ssize_t n;
	int open_fds = 2, i;

	while (open_fds > 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (i = 0; i < 2; i++) {
			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			n = read(p[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				p[i].fd = -1;
				open_fds--;
				continue;
			}
			if (buf_add(i == 0 ? out : errs, chunk, (size_t)n) !=
				0 &&
			    i == 0)
				return -1;
		}
	}
	return 0;
}

static int
path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
git_files_start(const char *dir, enum git_files which, struct git_job *job,
		struct rf_error *err)
{
	const char *argv_tracked[] = { "git",
				       "-C",
				       dir,
				       "ls-files",
				       "-z",
				       "--cached",
				       "--recurse-submodules",
				       NULL };
	const char *argv_others[] = { "git",
				      "-C",
				      dir,
				      "ls-files",
				      "-z",
				      "--others",
				      "--exclude-standard",
				      NULL };
	posix_spawn_file_actions_t fa;
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int rc;

	job->pid = -1;
	job->out = job->err = -1;
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		rf_error_set(err, RF_EXIT_INTERNAL, "pack", "pipe: %m");
		for (rc = 0; rc < 2; rc++) {
			if (po[rc] >= 0)
				close(po[rc]);
			if (pe[rc] >= 0)
				close(pe[rc]);
		}
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	rc = posix_spawnp(
	    &job->pid, "git", &fa, NULL,
	    (char *const *)(which == GIT_TRACKED ? argv_tracked : argv_others),
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		/* No git here: then no work tree to honour either. */
		close(po[0]);
		close(pe[0]);
		job->pid = -1;
		return 0;
	}
	job->out = po[0];
	job->err = pe[0];
	return 1;
}

int
git_files_finish(struct git_job *job, const char *dir, struct strlist *out,
		 struct rf_error *err)
{
	struct buf o = BUF_INIT, e = BUF_INIT;
	int status = 0, rc, r = -1;
	size_t at;

	strlist_free(out);
	if (job->pid < 0)
		return 0;
	o.max = GIT_OUT_MAX;
	e.max = GIT_ERR_MAX;
	rc = drain(job->out, job->err, &o, &e);
	close(job->out);
	close(job->err);
	job->out = job->err = -1;
	while (waitpid(job->pid, &status, 0) < 0 && errno == EINTR)
		;
	job->pid = -1;
	if (rc != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "cannot read what git ls-files lists in '%s'",
			     dir);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		r = 0;
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 128 &&
	    strstr(buf_str(&e), "not a git repository") != NULL) {
		r = 0;
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "pack",
			     "git ls-files failed in '%s': %.*s", dir,
			     (int)strcspn(buf_str(&e), "\n"), buf_str(&e));
		rf_error_hint(err, "fix what git says, or pack the directory "
				   "as it is with --no-git");
		goto out;
	}
	for (at = 0; at < o.len; at += strlen(o.buf + at) + 1) {
		if (o.buf[at] != '\0')
			strlist_add(out, o.buf + at);
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), path_cmp);
	r = 1;
out:
	if (r < 0)
		strlist_free(out);
	buf_release(&o);
	buf_release(&e);
	return r;
}

int
git_files(const char *dir, enum git_files which, struct strlist *out,
	  struct rf_error *err)
{
	struct git_job job;
	int r = git_files_start(dir, which, &job, err);

	if (r <= 0) {
		strlist_free(out);
		return r;
	}
	return git_files_finish(&job, dir, out, err);
}

/* The first index whose path is not below key in byte order. */
static size_t
lower_bound(const struct strlist *l, const char *key)
{
	size_t lo = 0, hi = l->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(l->v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
git_files_has(const struct strlist *sorted, const char *path)
{
	size_t i = lower_bound(sorted, path);

	return i < sorted->n && strcmp(sorted->v[i], path) == 0;
}

int
git_files_has_below(const struct strlist *sorted, const char *dir)
{
	char *key = xasprintf("%s/", dir);
	size_t i = lower_bound(sorted, key);
	int r;

	r = i < sorted->n && strncmp(sorted->v[i], key, strlen(key)) == 0;
	free(key);
	return r;
}
