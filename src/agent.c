/*
 * The agent: every remote step runs in one long-lived shell per host. See
 * include/agent.h for why and for the protocol.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "quote.h"
#include "xmalloc.h"

/*
 * The largest first step sent with the agent's command: the command is one
 * exec request (sshd takes up to 256 KiB) and one argument of the login
 * shell (Linux takes up to 128 KiB).
 */
#define AGENT_FIRST_MAX (32 * 1024)

/* Time given to the agent to end a step and exit once relflip lets go. */
#define AGENT_GRACE 5.0

/* Beyond the step's own limit, how long relflip waits for its reply. */
#define AGENT_REPLY_MARGIN 15.0

/*
 * A server silent for this long, even to the transport's keepalives, is
 * one relflip stops waiting for (a cut or black-holed link), whatever the
 * step's own limit.
 */
#define AGENT_SILENCE 35.0

/*
 * The step's process group is ended when the channel closes (the watcher
 * reads EOF on fd 3, the channel's stdin) or by timeout(1) when the limit
 * passes. The watcher marks an EOF in $T/eof so that the agent lets it
 * finish TERM-then-KILL instead of stopping it, and then exits itself.
 * timeout(1) (coreutils) gives the step its process group; without it,
 * setsid (util-linux) does, and the step runs unbounded (check names
 * what is missing). Every process costs: a step is head, timeout and sh,
 * and the watcher a fork. The watcher is ended with KILL: a TERM that
 * reaches the fork before it has dropped the agent's traps runs the trap
 * code of a shell that then clears it, and is lost; the watcher then
 * reads on, and the agent waits for it forever (seen under load: a step
 * of a few milliseconds never replied). Once relflip is gone, the shell's
 * next word on the dead channel ("Terminated", a marker) raises SIGPIPE:
 * trapped, it exits through the EXIT trap and leaves no $T behind; the
 * steps still get the default action, as a trapped signal is reset at exec.
 */
static const char agent_sh[] =
    "umask 022\n"
    "N=$1\n"
    "T=$(mktemp -d \"${TMPDIR:-/tmp}/relflip-agent.XXXXXX\") || exit 70\n"
    "trap 'rm -rf \"$T\"' EXIT\n"
    "trap 'exit 129' HUP\n"
    "trap 'exit 143' TERM\n"
    "trap 'exit 141' PIPE\n"
    "SS=; command -v setsid >/dev/null 2>&1 && SS=setsid\n"
    "TO=; command -v timeout >/dev/null 2>&1 && TO=timeout\n"
    "exec 3<&0\n"
    /* step LIMIT: run $T/s with stdin $T/i, then print the markers. */
    "step() {\n"
    /* timeout(1) puts itself and the step in a process group of its own. */
    "  if [ -n \"$TO\" ]; then\n"
    "    $TO -k 5 \"$1\" sh \"$T/s\" <\"$T/i\" 3<&- &\n"
    "  else\n"
    "    $SS sh \"$T/s\" <\"$T/i\" 3<&- &\n"
    "  fi\n"
    "  J=$!\n"
    "  { read -r x <&3; : >\"$T/eof\"; kill -TERM -\"$J\" \"$J\"; sleep 2;"
    " kill -KILL -\"$J\" \"$J\"; } >/dev/null 2>&1 &\n"
    "  W=$!\n"
    "  wait \"$J\"; s=$?\n"
    "  if [ -e \"$T/eof\" ]; then wait \"$W\"; exit 0; fi\n"
    "  kill -KILL \"$W\" 2>/dev/null; wait \"$W\" 2>/dev/null\n"
    "  printf '\\n%s %s\\n' \"$N\" \"$s\"\n"
    "  printf '\\n%s\\n' \"$N\" >&2\n"
    "}\n"
    /* The first step, when it came with the command: see agent_exec(). */
    "if [ -n \"${RF_STEP1_LIMIT:-}\" ]; then\n"
    "  printf '%s' \"$RF_STEP1\" >\"$T/s\" && : >\"$T/i\" || exit 72\n"
    "  L=$RF_STEP1_LIMIT; unset RF_STEP1 RF_STEP1_LIMIT; step \"$L\"\n"
    "fi\n"
    "while read -r op ns nd lim; do\n"
    "  [ \"$op\" = run ] || exit 71\n"
    "  head -c \"$ns\" >\"$T/s\" || exit 72\n"
    "  if [ \"$nd\" -gt 0 ]; then head -c \"$nd\" >\"$T/i\" || exit 72; "
    "else : >\"$T/i\"; fi\n"
    "  step \"$lim\"\n"
    "done\n";

/*
 * The same agent in Perl, for servers that have perl (perl-base is
 * Essential in Debian and Ubuntu; most distributions ship perl): one
 * process does what the shell needs head, timeout and a watcher fork for,
 * so a step costs a fork and its sh: 7.4 ms against 16-19 ms a step here
 * (a trivial step, 40 in a row, tests' local transport). Same protocol,
 * markers and statuses (124 at the time limit, 137 when KILL was needed,
 * 128+N for a signal); each step in a process group of its own, ended on
 * EOF (TERM, KILL 2 s later, then the agent exits) and at the limit
 * (TERM, KILL 5 s later). The signal handlers wake select() through a
 * pipe, and select() also wakes every 0.25 s: Perl runs a handler only
 * between ops, so a SIGCHLD that lands inside the select op, before its
 * system call, wrote nothing and left select() waiting for good (a
 * fleet test's deploy hung on a one-line hook, its sh a zombie beside an
 * agent in pselect6 with no timeout). No modules: POSIX alone
 * costs 20 ms to load. RELFLIP_AGENT=sh in the server's environment keeps
 * the shell's agent. Each step finds the server's time, in seconds, in
 * RF_STEP_TIME: the lock and the probe then need no date(1).
 */
static const char agent_pl[] =
    "$0 = 'relflip-agent';\n"
    "my ($N, $T, $child, $in, $pid, $alarm, $wake) = ($ARGV[0], undef, 0, "
    "'');\n"
    "umask 022;\n"
    "my $tmp = defined $ENV{TMPDIR} && $ENV{TMPDIR} ne '' ? $ENV{TMPDIR} : "
    "'/tmp';\n"
    "for (1 .. 50) {\n"
    " my $x = join '', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[rand 62] } 1 .. "
    "6;\n"
    " if (mkdir \"$tmp/relflip-agent.$x\", 0700) { $T = "
    "\"$tmp/relflip-agent.$x\"; last }\n"
    "}\n"
    "exit 70 unless defined $T;\n"
    "END { if (defined $T && !$child) { unlink \"$T/s\", \"$T/i\"; rmdir $T } "
    "}\n"
    "$SIG{HUP} = sub { exit 129 };\n"
    "$SIG{TERM} = sub { exit 143 };\n"
    "$SIG{PIPE} = sub { exit 141 };\n"
    "sub more {\n"
    " for (;;) {\n"
    "  my $r = sysread STDIN, $in, 65536, length $in;\n"
    "  return $r if defined $r;\n"
    "  return 0 unless $! == 4;\n"
    " }\n"
    "}\n"
    "sub line {\n"
    " my $i;\n"
    " while (($i = index $in, \"\\n\") < 0) { return undef unless more() }\n"
    " return substr $in, 0, $i + 1, '';\n"
    "}\n"
    "sub bytes {\n"
    " my $n = shift;\n"
    " while (length $in < $n) { return undef unless more() }\n"
    " return substr $in, 0, $n, '';\n"
    "}\n"
    "sub put {\n"
    " open my $f, '>', $_[0] or exit 72;\n"
    " print $f $_[1] or exit 72;\n"
    " close $f or exit 72;\n"
    "}\n"
    "sub wake { my $r = shift; my $v = ''; vec($v, fileno $r, 1) = 1; $v }\n"
    "sub step {\n"
    " my $lim = shift;\n"
    " pipe my $r, $wake or exit 73;\n"
    " local $SIG{CHLD} = sub { syswrite $wake, 'c' };\n"
    " local $SIG{ALRM} = sub { $alarm = 1; syswrite $wake, 'a' };\n"
    " $pid = fork;\n"
    " exit 73 unless defined $pid;\n"
    " if ($pid == 0) {\n"
    "  $child = 1;\n"
    "  setpgrp 0, 0;\n"
    "  $ENV{RF_STEP_TIME} = time;\n"
    "  open STDIN, '<', \"$T/i\" or exit 126;\n"
    "  exec 'sh', \"$T/s\" or exit 127;\n"
    " }\n"
    " setpgrp $pid, $pid;\n"
    " my ($limited, $st, $eof) = (0);\n"
    " $alarm = 0;\n"
    " alarm $lim if $lim > 0;\n"
    " while (!defined $st) {\n"
    "  my $rin = wake($r);\n"
    "  vec($rin, 0, 1) = 1 unless $eof;\n"
    "  if (select(my $rout = $rin, undef, undef, 0.25) > 0) {\n"
    "   sysread $r, my $junk, 64 if vec $rout, fileno $r, 1;\n"
    "   if (!$eof && vec $rout, 0, 1) {\n"
    "    $eof = 1;\n"
    "    kill 'TERM', -$pid, $pid;\n"
    "    $alarm = 0;\n"
    "    alarm 2;\n"
    "   }\n"
    "  }\n"
    "  if ($alarm && $eof) {\n"
    "   kill 'KILL', -$pid, $pid;\n"
    "   waitpid $pid, 0;\n"
    "   exit 0;\n"
    "  }\n"
    "  if ($alarm) {\n"
    "   $alarm = 0;\n"
    "   $limited++;\n"
    "   kill $limited == 1 ? 'TERM' : 'KILL', -$pid, $pid;\n"
    "   alarm 5 if $limited == 1;\n"
    "  }\n"
    "  $st = $? & 127 ? 128 + ($? & 127) : $? >> 8 if waitpid($pid, 1) == "
    "$pid;\n"
    " }\n"
    " if ($eof) {\n"
    "  until ($alarm) { sysread $r, my $junk, 64 if select(my $rout = "
    "wake($r), undef, undef, 0.25) > 0 }\n"
    "  kill 'KILL', -$pid;\n"
    "  exit 0;\n"
    " }\n"
    " alarm 0;\n"
    " $st = $limited > 1 ? 137 : 124 if $limited;\n"
    " close $r;\n"
    " close $wake;\n"
    " syswrite STDOUT, \"\\n$N $st\\n\";\n"
    " syswrite STDERR, \"\\n$N\\n\";\n"
    "}\n"
    "if (defined $ENV{RF_STEP1_LIMIT} && $ENV{RF_STEP1_LIMIT} ne '') {\n"
    " put \"$T/s\", $ENV{RF_STEP1};\n"
    " put \"$T/i\", '';\n"
    " my $l = $ENV{RF_STEP1_LIMIT};\n"
    " delete @ENV{qw(RF_STEP1 RF_STEP1_LIMIT)};\n"
    " step($l);\n"
    "}\n"
    "while (defined(my $l = line())) {\n"
    " my ($op, $ns, $nd, $lim) = split ' ', $l;\n"
    " exit 71 unless $op eq 'run' && \"$ns $nd $lim\" =~ /^\\d+ \\d+ \\d+$/;\n"
    " my $s = bytes($ns);\n"
    " exit 72 unless defined $s;\n"
    " put \"$T/s\", $s;\n"
    " my $d = $nd > 0 ? bytes($nd) : '';\n"
    " exit 72 unless defined $d;\n"
    " put \"$T/i\", $d;\n"
    " step($lim);\n"
    "}\n";

struct agent {
	void *stream;
	char nonce[33];
};

void
agent_command(struct buf *cmd, const char *nonce)
{
	buf_adds(cmd, "if " AGENT_PERL_TEST "; then exec perl -e ");
	sh_quote(cmd, agent_pl);
	buf_addf(cmd, " %s; fi; exec sh -c ", nonce);
	sh_quote(cmd, agent_sh);
	buf_addf(cmd, " relflip-agent %s", nonce);
}

/* What one stream (stdout or stderr) of a step has said so far. */
struct agent_lines {
	struct buf line;   /* the line being read */
	int held_empty;    /* an empty line, held back: the marker's '\n'? */
	int split;         /* the last piece was cut at EXEC_LINE_MAX */
	int marker;        /* the end marker arrived */
};

struct agent_reply {
	const struct exec_request *req;
	const char *nonce;
	size_t nonce_len;
	struct agent_lines s[2];
	int status;
};

static void
reply_emit(struct agent_reply *rp, int is_stderr, const char *line)
{
	if (rp->req->on_line != NULL)
		rp->req->on_line(rp->req->arg, is_stderr, line);
}

/*
 * A whole line: the end marker, or output. The agent puts a '\n' before
 * its marker, which makes an empty line when the output ended with one:
 * an empty line is held until the next shows whether it was that.
 */
static void
reply_line(struct agent_reply *rp, int is_stderr)
{
	struct agent_lines *ls = &rp->s[is_stderr];
	const char *l = buf_str(&ls->line);

	if (strncmp(l, rp->nonce, rp->nonce_len) == 0 &&
	    (l[rp->nonce_len] == '\0' || l[rp->nonce_len] == ' ')) {
		ls->marker = 1;
		ls->held_empty = 0;
		if (!is_stderr)
			rp->status = atoi(l + rp->nonce_len);
		buf_reset(&ls->line);
		return;
	}
	if (ls->held_empty) {
		reply_emit(rp, is_stderr, "");
		ls->held_empty = 0;
	}
	if (ls->line.len == 0 && !ls->split)
		ls->held_empty = 1;
	else if (ls->line.len > 0)
		reply_emit(rp, is_stderr, l);
	buf_reset(&ls->line);
}

static int
reply_data(void *arg, int is_stderr, const char *data, size_t n)
{
	struct agent_reply *rp = arg;
	struct agent_lines *ls = &rp->s[is_stderr != 0];
	size_t i;

	for (i = 0; i < n; i++) {
		if (ls->marker)
			break; /* nothing of this step comes after its marker */
		if (data[i] == '\n') {
			if (ls->line.len > 0 &&
			    ls->line.buf[ls->line.len - 1] == '\r')
				ls->line.buf[--ls->line.len] = '\0';
			reply_line(rp, is_stderr != 0);
			ls->split = 0;
			continue;
		}
		ls->split = 0;
		buf_addch(&ls->line, data[i]);
		if (ls->line.len == EXEC_LINE_MAX) {
			/* A long line goes out in pieces, never held. */
			if (ls->held_empty) {
				reply_emit(rp, is_stderr != 0, "");
				ls->held_empty = 0;
			}
			reply_emit(rp, is_stderr != 0, buf_str(&ls->line));
			buf_reset(&ls->line);
			ls->split = 1;
		}
	}
	return rp->s[0].marker && rp->s[1].marker;
}

static void
make_nonce(char nonce[33])
{
	unsigned char raw[16];
	FILE *u = fopen("/dev/urandom", "rb");
	size_t i;

	memset(raw, 0, sizeof(raw));
	if (u == NULL || fread(raw, 1, sizeof(raw), u) != sizeof(raw))
		rf_bug("cannot read /dev/urandom: %s", strerror(errno));
	fclose(u);
	snprintf(nonce, 33, "RFA");
	for (i = 0; i < 15; i++)
		snprintf(nonce + 3 + 2 * i, 3, "%02x", raw[i]);
}

/*
 * Start the agent; with first, that step travels with the command and
 * runs at once, its reply the first thing on the channel. It goes in the
 * environment, private to the user, rather than in the agent's argv,
 * which ps shows to everyone for as long as the agent runs.
 */
static int
agent_launch(struct remote *r, const char *first, double limit,
	     struct rf_error *err)
{
	struct agent *a = xcalloc(1, sizeof(*a));
	struct buf cmd = BUF_INIT;
	int rc;

	make_nonce(a->nonce);
	if (first != NULL) {
		buf_adds(&cmd, "RF_STEP1=");
		sh_quote(&cmd, first);
		buf_addf(&cmd, "; RF_STEP1_LIMIT=%.0f; "
			       "export RF_STEP1 RF_STEP1_LIMIT; ",
			 limit);
	}
	agent_command(&cmd, a->nonce);
	rc = r->ops->stream_open(r->impl, buf_str(&cmd), &a->stream, err);
	buf_release(&cmd);
	if (rc != 0) {
		free(a);
		return -1;
	}
	r->agent = a;
	return 0;
}

int
agent_start(struct remote *r, struct rf_error *err)
{
	if (r->agent != NULL || r->ops->stream_open == NULL)
		return 0;
	return agent_launch(r, NULL, 0, err);
}

void
agent_close(struct remote *r)
{
	if (r == NULL || r->agent == NULL)
		return;
	r->ops->stream_close(r->impl, r->agent->stream);
	free(r->agent);
	r->agent = NULL;
}

/*
 * relflip stops waiting for a step: EOF makes the agent end the step's
 * process group and exit; wait a little for that, then let go.
 */
static void
agent_abandon(struct remote *r, struct agent_reply *rp)
{
	struct stream_request req = {
		.eof = 1,
		.timeout = AGENT_GRACE,
		.on_data = reply_data,
		.arg = rp,
	};
	struct stream_result res;
	struct rf_error ignored = RF_ERROR_INIT;

	r->ops->stream_io(r->impl, r->agent->stream, &req, &res, &ignored);
	agent_close(r);
}

/* "KILL" for status 137, as a shell reports a step killed by a signal. */
static void
signal_name(int status, char *dst, size_t len)
{
	static const char *const names[] = {
		"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE",
		"KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM",
	};

	if (status > 128 && status <= 128 + 15)
		snprintf(dst, len, "%s", names[status - 129]);
}

int
agent_exec(struct remote *r, const struct exec_request *req,
	   struct exec_result *res, struct rf_error *err)
{
	struct agent_reply rp;
	struct stream_request sreq = { 0 };
	struct stream_result sres;
	struct buf msg = BUF_INIT;
	double limit = req->timeout > 0 ? req->timeout : AGENT_DEFAULT_LIMIT;
	size_t ndata = req->stdin_data != NULL ? req->stdin_len : 0;
	int rc = -1, i, first = 0;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	if (r->agent == NULL) {
		/* The first step with the start: one round trip less. */
		first = ndata == 0 && strlen(req->cmd) <= AGENT_FIRST_MAX;
		if (agent_launch(r, first ? req->cmd : NULL, ceil(limit),
				 err) != 0)
			return -1;
	}
	memset(&rp, 0, sizeof(rp));
	rp.req = req;
	rp.nonce = r->agent->nonce;
	rp.nonce_len = strlen(rp.nonce);
	for (i = 0; i < 2; i++)
		rp.s[i].line.max = EXEC_LINE_MAX + 1;

	if (!first) {
		buf_addf(&msg, "run %zu %zu %.0f\n", strlen(req->cmd), ndata,
			 ceil(limit));
		buf_adds(&msg, req->cmd);
		if (ndata > 0)
			buf_add(&msg, req->stdin_data, ndata);
	}
	sreq.data = msg.buf;
	sreq.len = msg.len;
	sreq.timeout = limit + AGENT_REPLY_MARGIN;
	sreq.silence = AGENT_SILENCE;
	sreq.on_data = reply_data;
	sreq.arg = &rp;
	if (r->ops->stream_io(r->impl, r->agent->stream, &sreq, &sres, err) !=
	    0) {
		agent_abandon(r, &rp);
		goto out;
	}
	if (sres.timed_out) {
		agent_abandon(r, &rp);
		res->timed_out = 1;
		rc = 0;
		goto out;
	}
	if (!sres.done) {
		/* The agent itself ended: it could not start, or was killed. */
		agent_close(r);
		rf_error_set(err, RF_EXIT_CONNECT, NULL,
			     "the shell relflip runs steps in on %s ended "
			     "unexpectedly",
			     r->name);
		rf_error_hint(err, "relflip -H %s check shows what the server "
			      "lacks (sh, mktemp, head, setsid, timeout)",
			      r->name);
		goto out;
	}
	for (i = 0; i < 2; i++) {
		if (rp.s[i].line.len > 0)
			reply_emit(&rp, i, buf_str(&rp.s[i].line));
	}
	res->status = rp.status;
	signal_name(rp.status, res->signal, sizeof(res->signal));
	if (res->status == 124)
		res->timed_out = 1;
	rc = 0;
out:
	for (i = 0; i < 2; i++)
		buf_release(&rp.s[i].line);
	buf_release(&msg);
	return rc;
}
