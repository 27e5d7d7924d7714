#ifndef RELFLIP_RUN_SH_H
#define RELFLIP_RUN_SH_H

#include "buf.h"

/*
 * For unit tests of the remote scripts: run one with /bin/sh here, as the
 * agent would on a server, through a file in dir (scripts outgrow a
 * command line). Its stdout goes into out, its stderr into err (either
 * may be NULL). Returns its exit status, or -1 when it did not exit.
 */
int run_sh(const char *dir, const char *script, struct buf *out,
	   struct buf *err);

/* A fresh temporary directory (mkdtemp of /tmp/NAME-XXXXXX) in dst. */
void run_sh_tmpdir(char *dst, size_t len, const char *name);

/* rm -rf dir. */
void run_sh_rmdir(const char *dir);

#endif
