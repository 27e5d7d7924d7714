#ifndef RELFLIP_AGENT_H
#define RELFLIP_AGENT_H

#include "buf.h"
#include "remote.h"

/*
 * The agent: one process kept running on each server for the whole run,
 * on one channel, that runs every remote step relflip sends it: perl
 * where the server has it (fewer processes a step), else a POSIX shell. A
 * step then costs one round trip instead of three or four (open a channel,
 * exec, read, close), and each step runs
 *   - in a process group of its own under a time limit (the shell's
 *     agent uses timeout(1)),
 *     so a hung step is ended with all its children;
 *   - watched: when the channel closes (relflip was killed, interrupted or
 *     lost the connection), the agent ends the step's whole process group,
 *     so nothing relflip started keeps running on the server.
 *
 * The protocol, on the channel's stdin: a line "run NSCRIPT NDATA LIMIT",
 * then NSCRIPT bytes of script and NDATA bytes of the step's stdin. The
 * step's stdout and stderr stream back as they come; when it ends, the
 * agent prints "\n<nonce> <status>\n" on stdout and "\n<nonce>\n" on
 * stderr (<nonce> is random per connection, so no output can forge it).
 * The first step can come with the agent's command instead (environment
 * RF_STEP1, the script, and RF_STEP1_LIMIT): its reply then arrives with
 * the channel's start, a round trip sooner.
 */

/*
 * Run req on r through its agent, starting the agent on first use. Same
 * contract as remote_exec(): 0 when the step ran (whatever its status;
 * res->timed_out when the limit passed and the step was ended), -1 and
 * err when it could not run or was interrupted (then the step was ended
 * on the server and the agent stopped; the next call starts a new one).
 * req->timeout is the step's time limit on the server (0: a default).
 */
int agent_exec(struct remote *r, const struct exec_request *req,
	       struct exec_result *res, struct rf_error *err);

/*
 * Start r's agent now (when the transport has streams and it is not
 * running yet): the channel's cost paid while something else goes on.
 */
int agent_start(struct remote *r, struct rf_error *err);

/* Stop r's agent (EOF: it exits), if it runs. */
void agent_close(struct remote *r);

/*
 * The shell test by which a server takes the Perl agent: perl on its PATH
 * and RELFLIP_AGENT not "sh" in its environment. check's probe asks it too.
 */
#define AGENT_PERL_TEST                                                        \
	"[ \"${RELFLIP_AGENT:-}\" != sh ] && command -v perl >/dev/null 2>&1"

/*
 * Append the command that starts the agent with nonce: the Perl one where
 * the server has perl (and RELFLIP_AGENT is not "sh" there), else the
 * shell's. For tests.
 */
void agent_command(struct buf *cmd, const char *nonce);

/* A step's time limit when the caller gives none, in seconds. */
#define AGENT_DEFAULT_LIMIT 600.0

#endif
