#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quote.h"
#include "run-sh.h"

static void
slurp(const char *path, struct buf *into)
{
	char chunk[4096];
	FILE *f;
	size_t n;

	if (into == NULL)
		return;
	f = fopen(path, "r");
	if (f == NULL)
		abort();
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(into, chunk, n);
	fclose(f);
}

int
run_sh(const char *dir, const char *script, struct buf *out, struct buf *err)
{
	struct buf path = BUF_INIT, o = BUF_INIT, e = BUF_INIT, cmd = BUF_INIT;
	FILE *f;
	int st;

	buf_addf(&path, "%s/.script.sh", dir);
	buf_addf(&o, "%s/.script.out", dir);
	buf_addf(&e, "%s/.script.err", dir);
	f = fopen(buf_str(&path), "w");
	if (f == NULL)
		abort();
	fputs(script, f);
	fclose(f);
	buf_adds(&cmd, "/bin/sh ");
	sh_quote(&cmd, buf_str(&path));
	buf_adds(&cmd, " </dev/null >");
	sh_quote(&cmd, buf_str(&o));
	buf_adds(&cmd, " 2>");
	sh_quote(&cmd, buf_str(&e));
	st = system(buf_str(&cmd));
	slurp(buf_str(&o), out);
	slurp(buf_str(&e), err);
	unlink(buf_str(&path));
	unlink(buf_str(&o));
	unlink(buf_str(&e));
	buf_release(&path);
	buf_release(&o);
	buf_release(&e);
	buf_release(&cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void
run_sh_tmpdir(char *dst, size_t len, const char *name)
{
	snprintf(dst, len, "/tmp/%s-XXXXXX", name);
	if (mkdtemp(dst) == NULL)
		abort();
}

void
run_sh_rmdir(const char *dir)
{
	struct buf cmd = BUF_INIT;

	buf_adds(&cmd, "rm -rf ");
	sh_quote(&cmd, dir);
	if (system(buf_str(&cmd)) != 0)
		abort();
	buf_release(&cmd);
}
