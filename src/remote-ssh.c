#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "buf.h"
#include "error.h"
#include "remote.h"
#include "xmalloc.h"

/*
 * include/remote.h over libssh2 1.10 as Debian 12 ships it (and 1.11,
 * checked at run time where it matters: RSA); the only file that
 * includes the libssh2 headers. ../shared/LIBRARY-NOTES.md sections 1
 * and 2 hold the measured behaviour the comments below refer to.
 *
 * Connecting says what went wrong as an rf_kind with a message and a
 * hint, and leaves exit codes and stages to the caller (hosts.c); exec,
 * put, file_size, statvfs and forward still set their exit codes too, for
 * the callers that read err->code.
 *
 * The session rests in blocking mode. Every operation switches it to
 * non-blocking mode and drives libssh2 with poll(2) and its own monotonic
 * deadlines, then restores blocking mode before it returns. That is how
 * exec reads stdout and stderr together, how forward pumps two ways, how
 * timeouts are exact, and how a signal is noticed without libssh2 turning
 * poll's EINTR into a timeout that leaves a packet half sent.
 *
 * The rule for non-blocking libssh2 1.10 (LIBRARY-NOTES section 2): after a
 * call returns EAGAIN with a packet half sent (BLOCK_OUTBOUND), the next
 * call on the session must be that same call, repeated until it completes;
 * anything else fails with LIBSSH2_ERROR_BAD_USE. Deadlines and signals are
 * therefore only acted on between calls. A call given up half way marks
 * the session broken, and later operations fail at once with the reason.
 *
 * Keepalive: libssh2's own keepalive is not enabled, as it makes blocking
 * calls return LIBSSH2_ERROR_TIMEOUT at every interval. The socket gets
 * SO_KEEPALIVE with short TCP timers instead, which finds a dead server
 * and keeps NAT and firewall state alive while the connection idles.
 */

#define NO_DEADLINE INT64_MAX
#define WAIT_SLICE_MS 250          /* poll at most this long, then look again */
#define IO_TIMEOUT_MS (120 * 1000) /* one SFTP or channel request */
#define GRACE_MS 5000              /* closing down after a timeout or signal */
#define KEEPALIVE_MS 10000         /* a quiet stream asks sshd for a reply */
#define SILENCE_MS 35000 /* a server silent this long to a request is gone */
#define PUT_WINDOW (2 * 1024 * 1024) /* bytes in flight, see section 1 */
#define PUT_WINDOW_MIN (64 * 1024)
#define PUT_READ (32 * 1024) /* read ahead of what is in flight */
#define READ_BUF_SIZE (32 * 1024)
#define KEY_TEXT_MAX (64 * 1024)
#define PASSPHRASE_ENV "RELFLIP_KEY_PASSPHRASE"

/*
 * Jump hosts (the end of the connect part below) share one connection per
 * jump host among the sessions behind it: one thread pumps each server's
 * direct-tcpip channel to a socketpair that the server's session uses as
 * its socket.
 */

/* Kinds of channel open, for one left half done. */
enum {
	STALE_NONE,
	STALE_SESSION, /* libssh2_channel_open_session */
	STALE_TCPIP,   /* libssh2_channel_direct_tcpip_ex */
};

struct jump;

struct ssh {
	struct remote remote; /* what remote_ssh_connect hands out */
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp; /* opened on first use, then kept */
	int sock;  /* TCP, or a socketpair pumped by a jump host's thread */
	int stale; /* an open left half done: STALE_SESSION or STALE_TCPIP */
	char broken[256]; /* why the session is unusable, or "" */
	struct jump *jump;   /* the jump host sock goes through, referenced */
	int is_jump;         /* this session is a jump host's */
	char via[64];        /* the jump host before this one, or "" */
	char via_login[700]; /* ssh's arguments to log in there, for hints */
	char library[32];    /* "libssh2 1.10.0", for messages */
	int64_t heard;       /* when bytes last came from the server */
	int64_t silent_ms;   /* waited on the server since it last sent */
};

/* Key types libssh2 1.10 can verify, in the order we prefer them. */
static const struct keytype {
	const char *name; /* as ssh and known_hosts spell it */
	int hostkey;      /* libssh2_session_hostkey() */
	int knownhost;    /* LIBSSH2_KNOWNHOST_KEY_* */
} keytypes[] = {
	{ "ssh-ed25519", LIBSSH2_HOSTKEY_TYPE_ED25519,
	  LIBSSH2_KNOWNHOST_KEY_ED25519 },
	{ "ecdsa-sha2-nistp256", LIBSSH2_HOSTKEY_TYPE_ECDSA_256,
	  LIBSSH2_KNOWNHOST_KEY_ECDSA_256 },
	{ "ecdsa-sha2-nistp384", LIBSSH2_HOSTKEY_TYPE_ECDSA_384,
	  LIBSSH2_KNOWNHOST_KEY_ECDSA_384 },
	{ "ecdsa-sha2-nistp521", LIBSSH2_HOSTKEY_TYPE_ECDSA_521,
	  LIBSSH2_KNOWNHOST_KEY_ECDSA_521 },
	{ "ssh-rsa", LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA },
};
#define NKEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

static int ssh_put(void *, const struct put_request *, struct rf_error *);
static int ssh_file_size(void *, const char *, int64_t *, struct rf_error *);
static int ssh_statvfs(void *, const char *, uint64_t *, struct rf_error *);
static int ssh_forward(void *, const char *, int, int, double,
		       struct rf_error *);
static int ssh_stream_open(void *, const char *, void **, struct rf_error *);
static int ssh_stream_io(void *, void *, const struct stream_request *,
			 struct stream_result *, struct rf_error *);
static void ssh_stream_close(void *, void *);
static void ssh_close(void *);

static const struct remote_ops ssh_ops = {
	.put = ssh_put,
	.file_size = ssh_file_size,
	.statvfs = ssh_statvfs,
	.forward = ssh_forward,
	.stream_open = ssh_stream_open,
	.stream_io = ssh_stream_io,
	.stream_close = ssh_stream_close,
	.close = ssh_close,
};

/* Small helpers: time, text, base64. */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The monotonic time seconds from now; NO_DEADLINE for 0 or less. */
static int64_t
deadline_after(double seconds)
{
	if (!(seconds > 0))
		return NO_DEADLINE;
	if (seconds > 1e9)
		seconds = 1e9;
	return now_ms() + (int64_t)(seconds * 1000.0 + 0.5);
}

/* libssh2's text for the last error, copied before the next call. */
static const char *
ssh_errtext(LIBSSH2_SESSION *session, char *buf, size_t size)
{
	char *msg = NULL;
	int len = 0;

	if (session != NULL)
		libssh2_session_last_error(session, &msg, &len, 0);
	if (msg == NULL || len <= 0)
		snprintf(buf, size, "unknown libssh2 error");
	else
		snprintf(buf, size, "%.*s", len, msg);
	return buf;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of data into out (NUL-terminated), with '=' padding if pad. */
static void
b64_encode(const unsigned char *data, size_t len, int pad, char *out,
	   size_t size)
{
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i < len && o + 5 <= size; i += 3) {
		v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out[o++] = b64chars[(v >> 18) & 63];
		out[o++] = b64chars[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = b64chars[(v >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (i + 2 < len)
			out[o++] = b64chars[v & 63];
		else if (pad)
			out[o++] = '=';
	}
	if (size > 0)
		out[o < size ? o : size - 1] = '\0';
}

/* Decode base64 text, skipping whitespace; stops at '=' or junk. */
static size_t
b64_decode(const char *text, size_t len, unsigned char *out, size_t size)
{
	const char *p;
	uint32_t v = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < len; i++) {
		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' ||
		    text[i] == '\n')
			continue;
		p = text[i] != '\0' ? strchr(b64chars, text[i]) : NULL;
		if (p == NULL)
			break;
		v = (v << 6) | (uint32_t)(p - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < size)
				out[o++] = (unsigned char)(v >> bits);
		}
	}
	return o;
}

/* "~/x" as $HOME/x; anything else as it is. The caller frees. */
static char *
expand_home(const char *path)
{
	const char *home = getenv("HOME");

	if (path[0] == '~' && path[1] == '/' && home != NULL && *home != '\0')
		return xasprintf("%s%s", home, path + 1);
	return xstrdup(path);
}

/* "ADDR:PORT" for messages, with [] around an IPv6 address. */
static void
addr_port(const char *addr, int port, char *out, size_t size)
{
	if (strchr(addr, ':') != NULL)
		snprintf(out, size, "[%s]:%d", addr, port);
	else
		snprintf(out, size, "%s:%d", addr, port);
}

/* Waiting on the socket. */

/*
 * The session socket's entry for poll(): readable, or writable while
 * libssh2 holds a half-sent packet (nothing else moves until it is out).
 * Before a wait to read, what has arrived is acknowledged at once: sshd
 * leaves Nagle on for a session without a tty, so its second small packet
 * in a row (the channel's confirmation right after the hostkeys notice,
 * at every connection) waits for our ACK, which Linux delays by 40 ms when
 * we have nothing to send: 42 ms of every command's first step on
 * loopback, by tcpdump. TCP_QUICKACK lasts for a few packets only, hence
 * before each wait.
 */
static void
session_pollfd(struct ssh *s, struct pollfd *pfd)
{
	int on = 1;

	pfd->fd = s->sock;
	pfd->events = (libssh2_session_block_directions(s->session) &
		       LIBSSH2_SESSION_BLOCK_OUTBOUND)
			  ? POLLOUT
			  : POLLIN;
	pfd->revents = 0;
#ifdef TCP_QUICKACK
	if (pfd->events == POLLIN)
		(void)setsockopt(s->sock, IPPROTO_TCP, TCP_QUICKACK, &on,
				 sizeof(on));
#else
	(void)on;
#endif
}

/*
 * Wait until the socket is ready the way libssh2 last blocked, a signal
 * arrives, or a slice of time passes: 0 to call libssh2 again, -1 once the
 * deadline has passed.
 */
static int
ssh_wait(struct ssh *s, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left = WAIT_SLICE_MS;

	if (deadline != NO_DEADLINE) {
		left = deadline - now_ms();
		if (left <= 0)
			return -1;
		if (left > WAIT_SLICE_MS)
			left = WAIT_SLICE_MS;
	}
	session_pollfd(s, &pfd);
	/* EINTR is fine: the caller looks at `interrupted`. */
	(void)poll(&pfd, 1, (int)left);
	return 0;
}

/*
 * ssh_wait for what the server itself owes (the answer to a channel or
 * exec request, a step's output, an SFTP start). The time waited counts
 * as silence until a byte arrives, across requests: a black-holed link is
 * given up on once, after SILENCE_MS, not once per request (a health
 * check's tunnels, then the way back). Time spent idle, or on an app
 * behind a tunnel, does not count.
 */
static int
ssh_wait_owed(struct ssh *s, int64_t deadline)
{
	int64_t t0 = now_ms();
	int rc = ssh_wait(s, deadline);

	s->silent_ms += now_ms() - t0;
	return rc;
}

/*
 * How long a half-sent packet may take to go out: the caller's deadline
 * (or the I/O timeout when there is none) and a grace period.
 */
static int64_t
hard_deadline(int64_t deadline)
{
	int64_t now = now_ms();

	if (deadline == NO_DEADLINE)
		return now + IO_TIMEOUT_MS + GRACE_MS;
	return (deadline > now ? deadline : now) + GRACE_MS;
}

/* Whether libssh2 holds a half-sent packet that must be finished first. */
static int
half_sent(struct ssh *s)
{
	return (libssh2_session_block_directions(s->session) &
		LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
}

/* Remember why the session cannot be used any more. */
static void
ssh_break(struct ssh *s, const char *why)
{
	if (s->broken[0] == '\0')
		snprintf(s->broken, sizeof(s->broken), "%s", why);
}

/* Fail at once on a session given up earlier. */
static int
ssh_usable(struct ssh *s, enum rf_exit code, const char *stage,
	   struct rf_error *err)
{
	if (s->broken[0] == '\0')
		return 0;
	rf_error_set(err, code, stage,
		     "the SSH connection to %s is unusable: %s", s->remote.name,
		     s->broken);
	err->kind = RF_KIND_CONNECTION_LOST;
	return rf_error_hint(err, "connect again: relflip -H %s check",
			     s->remote.name);
}

static void
ssh_nonblocking(struct ssh *s)
{
	libssh2_session_set_blocking(s->session, 0);
}

static void
ssh_blocking(struct ssh *s)
{
	libssh2_session_set_blocking(s->session, 1);
}

/* A request that got no answer in time: the session cannot be trusted. */
static int
ssh_timed_out(struct ssh *s, enum rf_exit code, const char *stage,
	      const char *what, struct rf_error *err)
{
	char why[200];

	snprintf(why, sizeof(why), "no answer to %s within %d s", what,
		 IO_TIMEOUT_MS / 1000);
	ssh_break(s, why);
	rf_error_set(err, code, stage, "%s from %s", why, s->remote.name);
	err->kind = RF_KIND_CONNECTION_LOST;
	return -1;
}

/* Give up on a server that answered nothing for SILENCE_MS. */
static int
ssh_silent(struct ssh *s, enum rf_exit code, const char *stage,
	   struct rf_error *err)
{
	ssh_break(s, "the server stopped answering");
	rf_error_set(err, code, stage,
		     "%s stopped answering: nothing came back for %lld s",
		     s->remote.name, (long long)(s->silent_ms / 1000));
	err->kind = RF_KIND_CONNECTION_LOST;
	return rf_error_hint(err,
			     "is %s up and reachable? relflip -H %s check "
			     "tells",
			     s->remote.name, s->remote.name);
}

static int
ssh_interrupted(struct rf_error *err)
{
	rf_error_set(err, RF_EXIT_INTERRUPTED, NULL, "interrupted");
	err->kind = RF_KIND_INTERRUPTED;
	return -1;
}

/*
 * Connecting. Errors say what went wrong in the adapter's own terms
 * (rf_error_kind: a kind, a message naming the host, a hint) and leave
 * the exit code and the stage to the caller.
 */

static int
conn_interrupted(struct rf_error *err)
{
	return rf_error_kind(err, RF_KIND_INTERRUPTED, "interrupted");
}

/* " through jump host NAME", or "" when connecting directly. */
static const char *
through(const struct ssh *s, char *buf, size_t size)
{
	if (s->via[0] == '\0')
		return "";
	snprintf(buf, size, " through jump host %s", s->via);
	return buf;
}

/* Whether libssh2 1.11 or later runs us: it signs RSA with SHA-2. */
static int
rsa_sha2_ok(void)
{
	return libssh2_version(0x010b00) != NULL;
}

/* Connecting: TCP. */

/*
 * Wait for a non-blocking connect: 0 when connected, an errno value when
 * refused, -1 when the deadline passed, -2 when interrupted.
 */
static int
tcp_wait_connect(int fd, int64_t deadline, int armed)
{
	struct pollfd pfd;
	socklen_t len;
	int64_t left;
	int n, soerr;

	for (;;) {
		if (armed && interrupted)
			return -2;
		left = WAIT_SLICE_MS;
		if (deadline != NO_DEADLINE) {
			left = deadline - now_ms();
			if (left <= 0)
				return -1;
			if (left > WAIT_SLICE_MS)
				left = WAIT_SLICE_MS;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno != EINTR)
			return errno;
		if (n > 0)
			break;
	}
	soerr = 0;
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		return errno;
	return soerr;
}

/* Keepalive timers and no Nagle delay on a connected socket. */
static void
tcp_tune(int fd)
{
	int on = 1, idle = 30, intvl = 10, cnt = 3;
	int fl;

	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	/* Small requests back to back (open, exec, eof) must not wait. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	fl = fcntl(fd, F_GETFL);
	if (fl != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* Where an address comes from, for hints. */
static const char *
address_source(const struct ssh *s)
{
	return s->is_jump ? "the jump host in proxy_jump (or its HostName in "
			    "the ssh config)"
			  : "the host's address (or its HostName in the ssh "
			    "config)";
}

/* Resolve and connect within the deadline, trying each address. */
static int
tcp_connect(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	    int armed, struct rf_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16], ap[300];
	int fd = -1, rc, why = 0, timed_out = 0;

	addr_port(o->address, o->port, ap, sizeof(ap));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", o->port);
	rc = getaddrinfo(o->address, port, &hints, &res);
	if (rc != 0) {
		rf_error_kind(err, RF_KIND_RESOLVE,
			      "cannot connect to %s (%s): cannot resolve %s: "
			      "%s",
			      s->remote.name, ap, o->address,
			      rc == EAI_SYSTEM ? strerror(errno)
					       : gai_strerror(rc));
		return rf_error_hint(err, "check %s", address_source(s));
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd == -1) {
			why = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno == EINPROGRESS
			 ? tcp_wait_connect(fd, deadline, armed)
			 : errno;
		if (rc == 0)
			break;
		close(fd);
		fd = -1;
		if (rc == -2) {
			freeaddrinfo(res);
			return conn_interrupted(err);
		}
		if (rc == -1) {
			timed_out = 1;
			break;
		}
		why = rc;
	}
	freeaddrinfo(res);
	if (fd == -1 && timed_out) {
		rf_error_kind(err, RF_KIND_TIMEOUT,
			      "cannot connect to %s (%s): timed out after %g s",
			      s->remote.name, ap, o->connect_timeout);
		return rf_error_hint(err,
				     "nothing answered within "
				     "connect_timeout (%g s): check the "
				     "address, the port and firewalls, or "
				     "raise [ssh] connect_timeout",
				     o->connect_timeout);
	}
	if (fd == -1) {
		rf_error_kind(err, RF_KIND_REFUSED,
			      "cannot connect to %s (%s): %s", s->remote.name,
			      ap, strerror(why != 0 ? why : ECONNREFUSED));
		return rf_error_hint(err,
				     "is sshd running and the port right? "
				     "try: ssh -p %d %s@%s",
				     o->port, o->user, o->address);
	}
	tcp_tune(fd);
	s->sock = fd;
	return 0;
}

/* Connecting: host keys. */

/*
 * Read known_hosts a line at a time. libssh2_knownhost_readfile stops at
 * the first line it cannot parse (an sk-* key, an overlong line), which
 * would hide every entry after it; here such lines are skipped, as ssh
 * does. @revoked keys are collected into revoked (base64 blobs, one a
 * line): libssh2 does not know the marker. @cert-authority is skipped.
 * A file that does not exist sets *missing: every key is then unknown.
 */
static int
kh_load(LIBSSH2_KNOWNHOSTS *kh, const char *path, struct buf *revoked,
	const char *shown, int *missing, struct rf_error *err)
{
	FILE *f;
	char *line = NULL, *p, *tok[4];
	size_t cap = 0;
	ssize_t n;
	int i;

	*missing = 0;
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT) {
			*missing = 1;
			return 0;
		}
		rf_error_kind(err, RF_KIND_KNOWN_HOSTS,
			      "cannot read known_hosts %s: %s", shown,
			      strerror(errno));
		return rf_error_hint(err, "check [ssh] known_hosts (or "
					  "UserKnownHostsFile in the ssh "
					  "config)");
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		if (*p != '@') {
			(void)libssh2_knownhost_readline(
			    kh, p, (size_t)(n - (p - line)),
			    LIBSSH2_KNOWNHOST_FILE_OPENSSH);
			continue;
		}
		if (strncmp(p, "@revoked", 8) != 0 ||
		    (p[8] != ' ' && p[8] != '\t'))
			continue;
		for (i = 0; i < 4; i++) {
			p += strspn(p, " \t");
			tok[i] = p;
			p += strcspn(p, " \t\r\n");
			if (*p != '\0')
				*p++ = '\0';
		}
		if (*tok[3] != '\0') {
			buf_adds(revoked, tok[3]);
			buf_addch(revoked, '\n');
		}
	}
	free(line);
	fclose(f);
	return 0;
}

/* Whether known_hosts lists a key of this type for exactly this name. */
static int
kh_has_type(LIBSSH2_KNOWNHOSTS *kh, const char *host, int knownhost)
{
	/* A made-up key: any entry of the type for host is a mismatch. */
	return libssh2_knownhost_checkp(
		   kh, host, -1, "AAAA", 4,
		   LIBSSH2_KNOWNHOST_TYPE_PLAIN |
		       LIBSSH2_KNOWNHOST_KEYENC_BASE64 | knownhost,
		   NULL) == LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
}

/*
 * Prefer the host key types known_hosts has for this server, as ssh does.
 * libssh2 would pick ECDSA over ed25519, and a known_hosts that only lists
 * the ed25519 key (what ssh records) would then call the server unknown.
 * An RSA host key signs with SHA-2 where the library can (1.11). The
 * names are only listed there: libssh2 1.10 drops names it does not know
 * with an overlapping memcpy (undefined behaviour, caught by ASan).
 */
static void
kh_prefer(LIBSSH2_SESSION *session, LIBSSH2_KNOWNHOSTS *kh,
	  const char *bracketed, const char *plain)
{
	struct buf list = BUF_INIT;
	int known[NKEYTYPES];
	size_t i, pass;

	for (i = 0; i < NKEYTYPES; i++)
		known[i] =
		    (bracketed != NULL &&
		     kh_has_type(kh, bracketed, keytypes[i].knownhost)) ||
		    kh_has_type(kh, plain, keytypes[i].knownhost);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < NKEYTYPES; i++) {
			if (known[i] != (pass == 0))
				continue;
			if (list.len > 0)
				buf_addch(&list, ',');
			if (keytypes[i].hostkey == LIBSSH2_HOSTKEY_TYPE_RSA &&
			    rsa_sha2_ok())
				buf_adds(&list, "rsa-sha2-512,rsa-sha2-256,");
			buf_adds(&list, keytypes[i].name);
		}
	}
	(void)libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY,
					  buf_str(&list));
	buf_release(&list);
}

/* Whether the base64 blob is in the newline-separated list. */
static int
kh_revoked(const struct buf *revoked, const char *blob)
{
	const char *p = buf_str(revoked), *nl;
	size_t len = strlen(blob);

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if ((size_t)(nl - p) == len && memcmp(p, blob, len) == 0)
			return 1;
		p = *nl != '\0' ? nl + 1 : nl;
	}
	return 0;
}

enum kh_verdict {
	KH_OK,
	KH_UNKNOWN,
	KH_CHANGED,
};

/*
 * Check the server's key against known_hosts, strictly. libssh2's checkp
 * with a port tries "[addr]:port" and then plain "addr", and a correct
 * plain entry wins over a mismatching "[addr]:port" one (LIBRARY-NOTES
 * section 2), so the two names are checked one at a time here: a mismatch
 * for "[addr]:port" is a changed key whatever else is listed. A plain
 * entry still vouches for the same key on another port (what libssh2
 * does; ssh would ask), and its mismatch is a changed key too: whoever
 * wrote it meant this server. The entry that disagrees goes to entry.
 */
static enum kh_verdict
kh_check(LIBSSH2_KNOWNHOSTS *kh, const char *addr, int port, const char *key,
	 size_t keylen, int knownhost, char *entry, size_t size)
{
	char bracketed[300];
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
		   knownhost;
	int r;

	entry[0] = '\0';
	if (port != 22) {
		snprintf(bracketed, sizeof(bracketed), "[%s]:%d", addr, port);
		r = libssh2_knownhost_checkp(kh, bracketed, -1, key, keylen,
					     mask, NULL);
		if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
			return KH_OK;
		if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
			snprintf(entry, size, "%s", bracketed);
			return KH_CHANGED;
		}
	}
	r = libssh2_knownhost_checkp(kh, addr, -1, key, keylen, mask, NULL);
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return KH_OK;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		snprintf(entry, size, "%s", addr);
		return KH_CHANGED;
	}
	return KH_UNKNOWN;
}

/* The unknown-key hint: how to fetch the key from where it can be seen. */
static int
unknown_hint(const struct ssh *s, const struct ssh_options *o,
	     const char *shown, int missing, struct rf_error *err)
{
	return rf_error_hint(err,
			     "%scheck the fingerprint with the server's "
			     "owner, then add the key: %s%s%sssh-keyscan -p "
			     "%d %s >> %s",
			     missing ? "check [ssh] known_hosts; or " : "",
			     s->via_login[0] != '\0' ? "ssh " : "",
			     s->via_login, s->via_login[0] != '\0' ? " " : "",
			     o->port, o->address, shown);
}

/* Fill info with the key's type and fingerprint, then verify it. */
static int
hostkey_verify(struct ssh *s, const struct ssh_options *o,
	       LIBSSH2_KNOWNHOSTS *kh, const struct buf *revoked,
	       const char *kh_shown, int kh_missing, struct ssh_info *info,
	       struct rf_error *err)
{
	const struct keytype *kt = NULL;
	const char *key, *hash;
	char ap[300], b64[64], entry[300], *blob;
	size_t keylen, i;
	int type, r;
	enum kh_verdict v;

	addr_port(o->address, o->port, ap, sizeof(ap));
	key = libssh2_session_hostkey(s->session, &keylen, &type);
	hash = libssh2_hostkey_hash(s->session, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (key == NULL || hash == NULL)
		return rf_error_kind(err, RF_KIND_PROTOCOL,
				     "cannot connect to %s (%s): the server "
				     "sent no host key",
				     s->remote.name, ap);
	for (i = 0; i < NKEYTYPES; i++)
		if (keytypes[i].hostkey == type)
			kt = &keytypes[i];
	b64_encode((const unsigned char *)hash, 32, 0, b64, sizeof(b64));
	snprintf(info->fingerprint, sizeof(info->fingerprint), "SHA256:%s",
		 b64);
	snprintf(info->hostkey_type, sizeof(info->hostkey_type), "%s",
		 kt != NULL ? kt->name : "unknown");
	if (kt == NULL)
		return rf_error_kind(err, RF_KIND_PROTOCOL,
				     "host key of %s (%s) has a type libssh2 "
				     "cannot check (%d)",
				     s->remote.name, ap, type);

	blob = xmalloc(keylen * 4 / 3 + 8);
	b64_encode((const unsigned char *)key, keylen, 1, blob,
		   keylen * 4 / 3 + 8);
	r = kh_revoked(revoked, blob);
	free(blob);
	if (r) {
		rf_error_kind(err, RF_KIND_HOSTKEY_REVOKED,
			      "host key of %s (%s) is REVOKED: %s marks %s "
			      "%s @revoked",
			      s->remote.name, ap, kh_shown, kt->name,
			      info->fingerprint);
		return rf_error_hint(err, "do not connect until the server's "
					  "owner has replaced its key");
	}

	v = kh_check(kh, o->address, o->port, key, keylen, kt->knownhost, entry,
		     sizeof(entry));
	if (v == KH_OK)
		return 0;
	if (v == KH_UNKNOWN && kh_missing) {
		rf_error_kind(err, RF_KIND_HOSTKEY_UNKNOWN,
			      "host key of %s (%s) is unknown: the known_hosts "
			      "file %s does not exist (the server offered %s "
			      "%s)",
			      s->remote.name, ap, kh_shown, kt->name,
			      info->fingerprint);
		return unknown_hint(s, o, kh_shown, 1, err);
	}
	if (v == KH_UNKNOWN) {
		rf_error_kind(err, RF_KIND_HOSTKEY_UNKNOWN,
			      "host key of %s (%s) is unknown: %s %s is not "
			      "in %s",
			      s->remote.name, ap, kt->name, info->fingerprint,
			      kh_shown);
		return unknown_hint(s, o, kh_shown, 0, err);
	}
	rf_error_kind(err, RF_KIND_HOSTKEY_CHANGED,
		      "host key of %s (%s) has CHANGED: the server offered %s "
		      "%s, and %s lists another %s key for %s",
		      s->remote.name, ap, kt->name, info->fingerprint, kh_shown,
		      kt->name, entry);
	if (o->port != 22 && entry[0] != '[')
		return rf_error_hint(err,
				     "if the server was rebuilt, run "
				     "ssh-keygen -R %s -f %s and add the new "
				     "key as [%s]:%d; if not, someone may be "
				     "intercepting the connection",
				     entry, kh_shown, o->address, o->port);
	return rf_error_hint(err,
			     "if the server was rebuilt, run ssh-keygen -R "
			     "'%s' -f %s and add the new key; if not, someone "
			     "may be intercepting the connection",
			     entry, kh_shown);
}

/* Connecting: the handshake. */

static int
handshake(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	  int armed, struct rf_error *err)
{
	char ap[300], text[256], thr[100];
	int rc;

	addr_port(o->address, o->port, ap, sizeof(ap));
	while ((rc = libssh2_session_handshake(s->session, s->sock)) ==
	       LIBSSH2_ERROR_EAGAIN) {
		if (armed && interrupted)
			return conn_interrupted(err);
		if (ssh_wait(s, deadline) != 0) {
			rf_error_kind(err, RF_KIND_TIMEOUT,
				      "cannot connect to %s (%s)%s: timed out "
				      "after %g s",
				      s->remote.name, ap,
				      through(s, thr, sizeof(thr)),
				      o->connect_timeout);
			return rf_error_hint(
			    err,
			    "the server accepted the connection but sent "
			    "no SSH greeting within connect_timeout (%g s): is "
			    "it sshd on port %d? raise [ssh] connect_timeout "
			    "if it is slow",
			    o->connect_timeout, o->port);
		}
	}
	if (rc == 0)
		return 0;
	ssh_errtext(s->session, text, sizeof(text));
	rf_error_kind(err, RF_KIND_PROTOCOL,
		      "cannot connect to %s (%s)%s: SSH handshake failed: %s",
		      s->remote.name, ap, through(s, thr, sizeof(thr)), text);
	if (rc == LIBSSH2_ERROR_KEX_FAILURE ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED)
		return rf_error_hint(err,
				     "%s needs an ed25519 or ECDSA host key "
				     "(or RSA from 1.11), aes*-ctr and "
				     "hmac-sha2 on the server",
				     s->library);
	return rf_error_hint(err, "is it an SSH server? try: ssh -p %d %s@%s",
			     o->port, o->user, o->address);
}

/* Connecting: user keys. */

/* The key type an SSH public key blob starts with, into type. */
static void
blob_type(const unsigned char *blob, size_t len, char *type, size_t size)
{
	uint32_t n;

	type[0] = '\0';
	if (len < 4)
		return;
	n = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 |
	    (uint32_t)blob[2] << 8 | blob[3];
	if (n > len - 4 || n >= size)
		return;
	memcpy(type, blob + 4, n);
	type[n] = '\0';
}

/*
 * The public key type of a private key's text: "ssh-rsa" for PEM RSA, the
 * type in the clear public part of an OpenSSH-format key, else "".
 */
static void
key_text_type(const char *text, char *type, size_t size)
{
	static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	static const char magic[] = "openssh-key-v1";
	const char *b, *e;
	unsigned char *raw;
	size_t len, off, i;
	uint32_t n;

	type[0] = '\0';
	if (strstr(text, "-----BEGIN RSA PRIVATE KEY-----") != NULL) {
		snprintf(type, size, "ssh-rsa");
		return;
	}
	b = strstr(text, begin);
	if (b == NULL)
		return;
	b += sizeof(begin) - 1;
	e = strstr(b, "-----END");
	if (e == NULL)
		e = b + strlen(b);
	raw = xmalloc((size_t)(e - b));
	len = b64_decode(b, (size_t)(e - b), raw, (size_t)(e - b));
	/* magic, then cipher, kdf, kdf options, count, public key */
	off = sizeof(magic);
	if (len < off || memcmp(raw, magic, sizeof(magic)) != 0)
		goto out;
	for (i = 0; i < 5; i++) {
		if (len - off < 4)
			goto out;
		n = (uint32_t)raw[off] << 24 | (uint32_t)raw[off + 1] << 16 |
		    (uint32_t)raw[off + 2] << 8 | raw[off + 3];
		if (i == 3) { /* the number of keys: no string follows */
			off += 4;
			continue;
		}
		if (i == 4) {
			blob_type(raw + off + 4, len - off - 4, type, size);
			break;
		}
		if (n > len - off - 4)
			goto out;
		off += 4 + n;
	}
out:
	explicit_bzero(raw, (size_t)(e - b));
	free(raw);
}

/* Whether a key file holds an RSA key, from its text or its .pub file. */
static int
key_file_is_rsa(const char *path)
{
	char type[64], head[16], *text, *pub;
	ssize_t n;
	size_t len = 0;
	int fd, rsa;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	text = xmalloc(KEY_TEXT_MAX + 1);
	while (len < KEY_TEXT_MAX) {
		n = read(fd, text + len, KEY_TEXT_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	text[len] = '\0';
	key_text_type(text, type, sizeof(type));
	explicit_bzero(text, len);
	free(text);
	if (type[0] != '\0')
		return strcmp(type, "ssh-rsa") == 0;

	/* PKCS#8 and the like: the .pub file next to it tells. */
	pub = xasprintf("%s.pub", path);
	fd = open(pub, O_RDONLY | O_CLOEXEC);
	free(pub);
	if (fd == -1)
		return 0;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	head[n] = '\0';
	rsa = strncmp(head, "ssh-rsa ", 8) == 0;
	return rsa;
}

/* An RSA key, where the library signs RSA with SHA-1 only (1.10). */
static int
rsa_refused(const struct ssh *s, const char *keyname, struct rf_error *err)
{
	rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
		      "RSA key %s cannot be used: %s signs only with ssh-rsa "
		      "(SHA-1), which OpenSSH 8.8 and later refuse",
		      keyname, s->library);
	return rf_error_hint(err, "use an ed25519 or ECDSA key: ssh-keygen "
				  "-t ed25519 (or run relflip with libssh2 "
				  "1.11 or later)");
}

/* What one authentication attempt came to. */
enum auth_result {
	AUTH_OK = 0,
	AUTH_NEXT = 1,  /* this key did not work (err says why); try more */
	AUTH_STOP = -1, /* give up: timeout, signal, lost connection */
};

/* Drive one userauth call to its end; rc is its first return value. */
#define AUTH_LOOP(s, rc, call, deadline, armed)                                \
	while (((rc) = (call)) == LIBSSH2_ERROR_EAGAIN) {                      \
		if (((armed) && interrupted) ||                                \
		    ssh_wait((s), (deadline)) != 0)                            \
			break;                                                 \
	}

/* Turn a failed userauth call into err, and say whether to go on. */
static enum auth_result
auth_failed(struct ssh *s, const struct ssh_options *o, int rc,
	    const char *keyname, int armed, struct rf_error *err)
{
	char text[256];

	if (rc == LIBSSH2_ERROR_EAGAIN) {
		if (armed && interrupted) {
			conn_interrupted(err);
			return AUTH_STOP;
		}
		rf_error_kind(err, RF_KIND_TIMEOUT,
			      "authentication as %s on %s failed: timed out "
			      "after %g s",
			      o->user, s->remote.name, o->connect_timeout);
		return AUTH_STOP;
	}
	ssh_errtext(s->session, text, sizeof(text));
	if (rc == LIBSSH2_ERROR_FILE ||
	    rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED) {
		rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
			      "cannot use the key %s: %s", keyname, text);
		rf_error_hint(err,
			      "if it has a passphrase, set %s; %s reads "
			      "OpenSSH and PEM keys, not RFC 4716 ones",
			      PASSPHRASE_ENV, s->library);
		return AUTH_NEXT;
	}
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		rf_error_kind(err, RF_KIND_AUTH_REFUSED,
			      "authentication as %s on %s failed: %s", o->user,
			      s->remote.name, text);
		rf_error_hint(err,
			      "the server did not accept the key %s: add "
			      "its public key to ~%s/.ssh/authorized_keys on "
			      "%s",
			      keyname, o->user, s->remote.name);
		return AUTH_NEXT;
	}
	/* The connection itself failed. */
	rf_error_kind(err, RF_KIND_CONNECTION_LOST,
		      "authentication as %s on %s failed: %s", o->user,
		      s->remote.name, text);
	return AUTH_STOP;
}

/* Authenticate with a key file; *tried is set when it was offered. */
static enum auth_result
auth_file(struct ssh *s, const struct ssh_options *o, const char *path,
	  const char *shown, int64_t deadline, int armed, struct rf_error *err)
{
	const char *pass = getenv(PASSPHRASE_ENV);
	int rc;

	if (access(path, R_OK) != 0) {
		rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
			      "cannot read the key file %s: %s", shown,
			      strerror(errno));
		rf_error_hint(err, "check [ssh] identity (or IdentityFile in "
				   "the ssh config)");
		return AUTH_STOP;
	}
	if (!rsa_sha2_ok() && key_file_is_rsa(path)) {
		rsa_refused(s, shown, err);
		return AUTH_NEXT;
	}
	AUTH_LOOP(s, rc,
		  libssh2_userauth_publickey_fromfile_ex(
		      s->session, o->user, (unsigned int)strlen(o->user), NULL,
		      path, pass != NULL ? pass : ""),
		  deadline, armed);
	if (rc == 0)
		return AUTH_OK;
	return auth_failed(s, o, rc, shown, armed, err);
}

/*
 * The key text from a variable, tidied the way CI secrets arrive: CRs
 * dropped, "\n" escapes turned into newlines when there is no newline,
 * and a final newline added. The caller zeroes and frees it.
 */
static char *
key_text_copy(const char *v, size_t *lenp)
{
	size_t i, o = 0, len = strlen(v);
	int escaped = strchr(v, '\n') == NULL && strstr(v, "\\n") != NULL;
	char *t = xmalloc(len + 2);

	for (i = 0; i < len; i++) {
		if (v[i] == '\r')
			continue;
		if (escaped && v[i] == '\\' && v[i + 1] == 'n') {
			t[o++] = '\n';
			i++;
			continue;
		}
		t[o++] = v[i];
	}
	if (o == 0 || t[o - 1] != '\n')
		t[o++] = '\n';
	t[o] = '\0';
	*lenp = o;
	return t;
}

/*
 * Say what a variable's text is when it is not a private key, which
 * libssh2 reports as "Error parsing PEM: offset out of bounds": a public
 * key, a file name, or something else. Only the public key's type is
 * shown; the value itself never is.
 */
static int
env_key_check(const struct ssh_options *o, const char *text,
	      struct rf_error *err)
{
	static const char *const pubtypes[] = { "ssh-", "ecdsa-sha2-",
						"sk-ssh-", "sk-ecdsa-" };
	const char *p = text + strspn(text, " \t\n");
	const char *begin, *end;
	char type[48];
	size_t i, n;

	if ((begin = strstr(p, "PRIVATE KEY-----")) != NULL) {
		/* CI secrets pasted through `echo $VAR` or a one-line field
		 * arrive with the line breaks gone. */
		begin += strlen("PRIVATE KEY-----");
		end = strstr(begin, "-----END");
		if (end == NULL || memchr(begin, '\n', (size_t)(end - begin)))
			return 0;
		rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
			      "$%s holds the private key on one line: its "
			      "line breaks were lost",
			      o->identity_env);
		return rf_error_hint(err,
				     "store the key file unchanged, with its "
				     "line breaks, and pass it quoted "
				     "(\"$%s\", never echo $%s)",
				     o->identity_env, o->identity_env);
	}
	n = strcspn(p, " \t\n");
	for (i = 0; i < sizeof(pubtypes) / sizeof(pubtypes[0]); i++) {
		if (strncmp(p, pubtypes[i], strlen(pubtypes[i])) != 0 ||
		    n >= sizeof(type) || strncmp(p + n, " AAAA", 5) != 0)
			continue;
		snprintf(type, sizeof(type), "%.*s", (int)n, p);
		rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
			      "$%s holds a public key (%s AAAA...), not a "
			      "private key",
			      o->identity_env, type);
		return rf_error_hint(err,
				     "put the private key in $%s: the key "
				     "file without .pub, from its -----BEGIN "
				     "line to its -----END line",
				     o->identity_env);
	}
	if (p[n] == '\n' && p[n + 1 + strspn(p + n + 1, " \t\n")] == '\0' &&
	    (p[0] == '/' || p[0] == '~' || p[0] == '.' ||
	     memchr(p, '/', n) != NULL)) {
		rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
			      "$%s holds a file name, not the key's text",
			      o->identity_env);
		return rf_error_hint(err,
				     "name the file with [ssh] identity = "
				     "FILE instead of identity_env, or put "
				     "the file's contents in $%s",
				     o->identity_env);
	}
	rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
		      "$%s does not hold a private key: it has no -----BEGIN "
		      "... PRIVATE KEY----- line",
		      o->identity_env);
	return rf_error_hint(err,
			     "put the private key's text in $%s, the whole "
			     "file with its BEGIN and END lines",
			     o->identity_env);
}

/* Authenticate with the key text in the variable o->identity_env. */
static enum auth_result
auth_env(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	 int armed, struct rf_error *err)
{
	const char *pass = getenv(PASSPHRASE_ENV);
	const char *v = getenv(o->identity_env);
	char keyname[128], type[64], *text;
	size_t len;
	enum auth_result ar;
	int rc;

	snprintf(keyname, sizeof(keyname), "in $%s", o->identity_env);
	if (v == NULL || *v == '\0') {
		rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
			      "the variable %s named by [ssh] identity_env is "
			      "%s",
			      o->identity_env, v == NULL ? "unset" : "empty");
		rf_error_hint(err,
			      "put the private key's text in $%s, e.g. "
			      "from a CI secret",
			      o->identity_env);
		return AUTH_STOP;
	}
	text = key_text_copy(v, &len);
	if (env_key_check(o, text, err) != 0) {
		explicit_bzero(text, len);
		free(text);
		return AUTH_STOP;
	}
	key_text_type(text, type, sizeof(type));
	if (!rsa_sha2_ok() && strcmp(type, "ssh-rsa") == 0) {
		explicit_bzero(text, len);
		free(text);
		rsa_refused(s, keyname, err);
		return AUTH_STOP;
	}
	AUTH_LOOP(s, rc,
		  libssh2_userauth_publickey_frommemory(
		      s->session, o->user, strlen(o->user), NULL, 0, text, len,
		      pass != NULL ? pass : ""),
		  deadline, armed);
	explicit_bzero(text, len);
	free(text);
	if (rc == 0)
		return AUTH_OK;
	ar = auth_failed(s, o, rc, keyname, armed, err);
	return ar == AUTH_NEXT ? AUTH_STOP : ar;
}

/*
 * Authenticate with each identity ssh-agent holds, RSA ones skipped where
 * the library signs RSA with SHA-1 only. Sets *rsa_seen when an RSA
 * identity was skipped, *tried when one was offered.
 */
static enum auth_result
auth_agent(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	   int armed, int *rsa_seen, char *rsa_name, size_t rsa_size,
	   int *tried, struct rf_error *err)
{
	LIBSSH2_AGENT *agent;
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	enum auth_result ar = AUTH_NEXT;
	char type[64];
	int rc;

	if (getenv("SSH_AUTH_SOCK") == NULL)
		return AUTH_NEXT;
	agent = libssh2_agent_init(s->session);
	if (agent == NULL)
		return AUTH_NEXT;
	if (libssh2_agent_connect(agent) != 0 ||
	    libssh2_agent_list_identities(agent) != 0)
		goto out;
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		prev = id;
		blob_type(id->blob, id->blob_len, type, sizeof(type));
		if (!rsa_sha2_ok() && strcmp(type, "ssh-rsa") == 0) {
			if (!*rsa_seen)
				snprintf(rsa_name, rsa_size, "%s",
					 id->comment != NULL && *id->comment
					     ? id->comment
					     : "in ssh-agent");
			*rsa_seen = 1;
			continue;
		}
		*tried = 1;
		AUTH_LOOP(s, rc, libssh2_agent_userauth(agent, o->user, id),
			  deadline, armed);
		if (rc == 0) {
			ar = AUTH_OK;
			break;
		}
		ar = auth_failed(s, o, rc,
				 id->comment != NULL && *id->comment
				     ? id->comment
				     : "from ssh-agent",
				 armed, err);
		if (ar == AUTH_STOP)
			break;
	}
	(void)libssh2_agent_disconnect(agent);
out:
	libssh2_agent_free(agent);
	return ar;
}

/*
 * After every key was refused: when the server does not take public keys
 * at all, say that instead. The method list costs a round trip, so it is
 * asked only here, never before the first key (-1: keep err as it is).
 */
static int
auth_methods_check(struct ssh *s, const struct ssh_options *o, int64_t deadline,
		   int armed, struct rf_error *err)
{
	char *methods;

	while ((methods = libssh2_userauth_list(
		    s->session, o->user, (unsigned int)strlen(o->user))) ==
	       NULL) {
		if (libssh2_session_last_errno(s->session) !=
			LIBSSH2_ERROR_EAGAIN ||
		    (armed && interrupted) || ssh_wait(s, deadline) != 0)
			return -1;
	}
	if (strstr(methods, "publickey") != NULL)
		return -1;
	rf_error_kind(err, RF_KIND_AUTH_REFUSED,
		      "authentication as %s on %s failed: the server does "
		      "not take public keys (it offers: %s)",
		      o->user, s->remote.name, methods);
	return rf_error_hint(err,
			     "enable PubkeyAuthentication for %s in the "
			     "server's sshd_config",
			     o->user);
}

/*
 * Authenticate: identity_env, else the identity file, else each key in
 * ssh-agent and then the identity files (ssh_config's IdentityFile, or
 * ~/.ssh/id_ed25519 and ~/.ssh/id_ecdsa). No method list is asked first
 * (a round trip saved): the first key goes out at once.
 */
static int
authenticate(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	     int armed, struct ssh_info *info, struct rf_error *err)
{
	static const char *const defaults[] = { "~/.ssh/id_ed25519",
						"~/.ssh/id_ecdsa" };
	const char *const *files = o->identities;
	size_t nfiles = o->nidentities, i;
	char *path, rsa_name[128];
	enum auth_result ar;
	int rsa_seen = 0, tried = 0;

	if (o->identity_env != NULL && *o->identity_env != '\0') {
		ar = auth_env(s, o, deadline, armed, err);
		if (ar != AUTH_OK) {
			if (err->kind == RF_KIND_AUTH_REFUSED)
				auth_methods_check(s, o, deadline, armed, err);
			return -1;
		}
		snprintf(info->auth, sizeof(info->auth), "identity_env");
		return 0;
	}
	if (o->identity != NULL && *o->identity != '\0') {
		path = expand_home(o->identity);
		ar = auth_file(s, o, path, o->identity, deadline, armed, err);
		free(path);
		if (ar != AUTH_OK) {
			if (err->kind == RF_KIND_AUTH_REFUSED)
				auth_methods_check(s, o, deadline, armed, err);
			return -1;
		}
		snprintf(info->auth, sizeof(info->auth), "key file");
		return 0;
	}

	ar = auth_agent(s, o, deadline, armed, &rsa_seen, rsa_name,
			sizeof(rsa_name), &tried, err);
	if (ar == AUTH_OK) {
		snprintf(info->auth, sizeof(info->auth), "agent");
		return 0;
	}
	if (ar == AUTH_STOP)
		return -1;
	if (files == NULL) {
		files = defaults;
		nfiles = sizeof(defaults) / sizeof(defaults[0]);
	}
	for (i = 0; i < nfiles; i++) {
		path = expand_home(files[i]);
		if (access(path, F_OK) != 0) {
			free(path);
			continue;
		}
		if (!rsa_sha2_ok() && key_file_is_rsa(path)) {
			if (!rsa_seen)
				snprintf(rsa_name, sizeof(rsa_name), "%s",
					 files[i]);
			rsa_seen = 1;
			free(path);
			continue;
		}
		tried = 1;
		ar = auth_file(s, o, path, files[i], deadline, armed, err);
		free(path);
		if (ar == AUTH_OK) {
			snprintf(info->auth, sizeof(info->auth), "key file");
			return 0;
		}
		if (ar == AUTH_STOP)
			return -1;
	}
	if (tried) {
		/* err holds the last key's failure */
		if (err->kind == RF_KIND_AUTH_REFUSED)
			auth_methods_check(s, o, deadline, armed, err);
		return -1;
	}
	if (rsa_seen)
		return rsa_refused(s, rsa_name, err);
	rf_error_kind(err, RF_KIND_KEY_UNUSABLE,
		      "authentication as %s on %s failed: no key to offer",
		      o->user, s->remote.name);
	return rf_error_hint(err, "set [ssh] identity or identity_env, or "
				  "load an ed25519 key into ssh-agent");
}

/*
 * Every read of the session's socket, as libssh2's own recv does it, with
 * the time of the last bytes from the server kept: a keepalive reply is
 * read and dropped inside libssh2 (often inside a channel read that then
 * says EAGAIN), and a server that answers only those is still alive.
 */
static ssize_t
ssh_recv(libssh2_socket_t sock, void *buffer, size_t length, int flags,
	 void **abstract)
{
	struct ssh *s = *abstract;
	ssize_t n = recv(sock, buffer, length, flags);

	if (n > 0) {
		s->heard = now_ms();
		s->silent_ms = 0;
	}
	if (n < 0)
		return errno == EWOULDBLOCK || errno == ENOENT ? -EAGAIN
							       : -errno;
	return n;
}

/*
 * Bring up the SSH session on s->sock (a TCP connection, or a tunnel
 * through a jump host): handshake, host key, authentication. Leaves the
 * session in non-blocking mode.
 */
static int
session_start(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	      int armed, struct ssh_info *info, struct rf_error *err)
{
	struct buf revoked = BUF_INIT;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	const char *m;
	char *kh_path, bracketed[300];
	int kh_missing = 0, r = -1;

	kh_path = expand_home(o->known_hosts);
	s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (s->session != NULL)
		libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_RECV,
					     (void *)ssh_recv);
	if (s->session == NULL) {
		rf_error_kind(err, RF_KIND_PROTOCOL,
			      "cannot start an SSH session for %s",
			      s->remote.name);
		goto out;
	}
	ssh_nonblocking(s);
	kh = libssh2_knownhost_init(s->session);
	if (kh == NULL) {
		rf_error_kind(err, RF_KIND_KNOWN_HOSTS,
			      "cannot start libssh2's known_hosts check");
		goto out;
	}
	if (kh_load(kh, kh_path, &revoked, o->known_hosts, &kh_missing, err) !=
	    0)
		goto out;
	if (o->port != 22)
		snprintf(bracketed, sizeof(bracketed), "[%s]:%d", o->address,
			 o->port);
	kh_prefer(s->session, kh, o->port != 22 ? bracketed : NULL, o->address);

	if (handshake(s, o, deadline, armed, err) != 0)
		goto out;
	m = libssh2_session_methods(s->session, LIBSSH2_METHOD_KEX);
	snprintf(info->kex, sizeof(info->kex), "%s", m != NULL ? m : "");
	m = libssh2_session_methods(s->session, LIBSSH2_METHOD_CRYPT_CS);
	snprintf(info->cipher, sizeof(info->cipher), "%s", m != NULL ? m : "");
	m = libssh2_session_methods(s->session, LIBSSH2_METHOD_MAC_CS);
	snprintf(info->mac, sizeof(info->mac), "%s", m != NULL ? m : "");
	if (hostkey_verify(s, o, kh, &revoked, o->known_hosts, kh_missing, info,
			   err) != 0)
		goto out;

	/* Authentication gets a connect_timeout of its own. */
	if (authenticate(s, o, deadline_after(o->connect_timeout), armed, info,
			 err) != 0)
		goto out;
	r = 0;
out:
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	buf_release(&revoked);
	free(kh_path);
	return r;
}

static void jump_release(struct jump *j);

/* A struct ssh for the host called name in messages. */
static struct ssh *
ssh_new(const char *name)
{
	struct ssh *s = xcalloc(1, sizeof(*s));
	const char *v = libssh2_version(0);

	s->sock = -1;
	s->remote.ops = &ssh_ops;
	s->remote.impl = s;
	snprintf(s->remote.name, sizeof(s->remote.name), "%s", name);
	snprintf(s->library, sizeof(s->library), "libssh2 %s",
		 v != NULL ? v : "?");
	return s;
}

/* Free everything a struct ssh holds; the session is closed first. */
static void
ssh_free(struct ssh *s)
{
	if (s == NULL)
		return;
	if (s->session != NULL) {
		/*
		 * Blocking, bounded by a short timeout: nothing is pending
		 * unless the session is broken, and then libssh2 fails fast.
		 */
		libssh2_session_set_timeout(s->session, GRACE_MS);
		ssh_blocking(s);
		if (s->broken[0] != '\0' && s->sock != -1)
			(void)shutdown(s->sock, SHUT_RDWR);
		if (s->sftp != NULL)
			(void)libssh2_sftp_shutdown(s->sftp);
		if (s->broken[0] == '\0')
			(void)libssh2_session_disconnect(s->session,
							 "relflip is done");
		/*
		 * Channels given up after a timeout still wait for the
		 * server's CLOSE: with the socket shut, libssh2 frees them
		 * at once instead of waiting.
		 */
		if (s->sock != -1)
			(void)shutdown(s->sock, SHUT_RDWR);
		(void)libssh2_session_free(s->session);
	}
	if (s->sock != -1)
		close(s->sock);
	jump_release(s->jump);
	free(s);
}

/*
 * Jump hosts.
 *
 * One connection per jump host (the same chain of hops, address, user and
 * keys), shared by every session behind it. libssh2 sessions are not
 * thread-safe, so one thread, the pump, owns the jump host's session once
 * it is up: for each server it opens a direct-tcpip channel and pumps it
 * both ways to one end of a socketpair, whose other end the server's own
 * session (in its own thread) uses as its socket. A jump host behind
 * another is reached the same way, through its predecessor's pump.
 *
 * The pump keeps the non-blocking rule of LIBRARY-NOTES section 2: after a
 * call returns EAGAIN with a packet half sent, the next call on the
 * session is that same call (the `pend` below), whatever channel the
 * other work is for. Channel opens go one at a time: libssh2 keeps the
 * state of an open in the session.
 *
 * Jump hosts live in a registry keyed by their chain, counted by the
 * sessions (and jump hosts) using them: the last one to close stops the
 * pump and disconnects. A jump host that failed to connect stays in the
 * registry with its error, so every server behind it fails at once with
 * the same message instead of trying again.
 */

enum jump_state {
	JUMP_CONNECTING,
	JUMP_UP,
	JUMP_FAILED,
};

/* A request to the pump for a tunnel to host:port. */
struct tunnel_req {
	struct tunnel_req *next;
	char host[256];
	int port;
	int fd;        /* the pump's end of the socketpair */
	int done;      /* 1: opened; -1: failed */
	int abandoned; /* the asker gave up: the pump frees it */
	int rc;        /* libssh2's error when it failed */
	char text[256];
};

struct tbuf {
	char data[READ_BUF_SIZE];
	size_t off, len;
};

/* One server's (or jump host's) connection through this jump host. */
struct tunnel {
	struct tunnel *next;
	LIBSSH2_CHANNEL *ch;
	int fd;
	struct tbuf up, down; /* up: fd to channel; down: the reverse */
	int fd_eof, eof_sent, ch_eof, shut, gone;
	int64_t closing; /* when closing began; 0: open */
};

struct jump {
	struct jump *next; /* in the registry */
	int linked;        /* in the registry; 0 once found broken */
	char *key;
	char name[64];
	struct jump *via; /* the hop before, referenced; or NULL */
	int refs;
	enum jump_state state;
	struct rf_error err; /* JUMP_FAILED: why */
	struct ssh_hop_info info;
	struct ssh *s;
	pthread_t thread;
	int wake[2]; /* a byte in wake[1] wakes the pump */
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* a request is done */
	struct tunnel_req *reqs; /* waiting, oldest first */
	int stop;
	int stopping;       /* the pump saw stop: no waiting for CLOSEs */
	char dead[256];     /* why the connection broke, or "" */
	char jumpspec[600]; /* the chain up to it, as ssh -J takes it */
	char login[700];    /* ssh's arguments to log in there, for hints */
};

static pthread_mutex_t jumps_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jumps_cond = PTHREAD_COND_INITIALIZER;
static struct jump *jumps;
static int jumps_closing; /* at exit: the last reference closes */

/* Wait on cond for at most a slice, then the caller looks again. */
static void
cond_wait_slice(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline)
{
	struct timespec ts;
	int64_t left = WAIT_SLICE_MS;

	if (deadline != NO_DEADLINE && deadline - now_ms() < left)
		left = deadline - now_ms();
	if (left < 1)
		left = 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	(void)pthread_cond_timedwait(cond, lock, &ts);
}

static void
jump_wake(struct jump *j)
{
	ssize_t n;

	do
		n = write(j->wake[1], "", 1);
	while (n == -1 && errno == EINTR);
}

/* Whether a libssh2 error means the session itself is gone. */
static int
session_error(int rc)
{
	return rc == LIBSSH2_ERROR_SOCKET_SEND ||
	       rc == LIBSSH2_ERROR_SOCKET_RECV ||
	       rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
	       rc == LIBSSH2_ERROR_SOCKET_TIMEOUT ||
	       rc == LIBSSH2_ERROR_DECRYPT || rc == LIBSSH2_ERROR_ENCRYPT ||
	       rc == LIBSSH2_ERROR_INVALID_MAC || rc == LIBSSH2_ERROR_PROTO ||
	       rc == LIBSSH2_ERROR_BAD_USE || rc == LIBSSH2_ERROR_ALLOC;
}

/* Hand a request back: to its asker, or freed when it was abandoned. */
static void
req_finish(struct jump *j, struct tunnel_req *r, int done, int rc,
	   const char *text)
{
	pthread_mutex_lock(&j->lock);
	r->done = done;
	r->rc = rc;
	snprintf(r->text, sizeof(r->text), "%s", text);
	if (done < 0)
		close(r->fd);
	if (r->abandoned)
		free(r);
	else
		pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* The pump's ops that may be left half sent, and must be repeated. */
enum pend_op {
	P_NONE,
	P_OPEN,
	P_READ,
	P_WRITE,
	P_EOF,
	P_CLOSE,
	P_FREE,
};

struct pend {
	enum pend_op op;
	struct tunnel *t;
};

/* Note an EAGAIN: with a packet half sent, the same call goes next. */
static void
pend_set(struct ssh *s, struct pend *pend, enum pend_op op, struct tunnel *t)
{
	if (half_sent(s)) {
		pend->op = op;
		pend->t = t;
	} else {
		pend->op = P_NONE;
		pend->t = NULL;
	}
}

/* The session broke: remember why; the pump fails everything. */
static void
jump_die(struct jump *j, const char *why)
{
	pthread_mutex_lock(&j->lock);
	if (j->dead[0] == '\0')
		snprintf(j->dead, sizeof(j->dead), "%s", why);
	pthread_mutex_unlock(&j->lock);
	ssh_break(j->s, why);
}

/* Open the next requested tunnel; 1 when something moved. */
static int
pump_open(struct jump *j, struct tunnel_req **openingp, struct tunnel **tunnels,
	  struct pend *pend)
{
	struct ssh *s = j->s;
	struct tunnel_req *r = *openingp;
	struct tunnel *t;
	LIBSSH2_CHANNEL *ch;
	char text[256];
	int rc;

	if (r == NULL || (pend->op != P_NONE && pend->op != P_OPEN))
		return 0;
	ch = libssh2_channel_direct_tcpip_ex(s->session, r->host, r->port,
					     "127.0.0.1", 0);
	if (ch == NULL) {
		rc = libssh2_session_last_errno(s->session);
		if (rc == LIBSSH2_ERROR_EAGAIN) {
			pend_set(s, pend, P_OPEN, NULL);
			return 0;
		}
		pend->op = P_NONE;
		ssh_errtext(s->session, text, sizeof(text));
		*openingp = NULL;
		req_finish(j, r, -1, rc, text);
		if (session_error(rc))
			jump_die(j, text);
		return 1;
	}
	pend->op = P_NONE;
	t = xcalloc(1, sizeof(*t));
	t->ch = ch;
	t->fd = r->fd;
	pthread_mutex_lock(&j->lock);
	t->gone = r->abandoned; /* nobody reads it: close it again */
	pthread_mutex_unlock(&j->lock);
	t->next = *tunnels;
	*tunnels = t;
	*openingp = NULL;
	req_finish(j, r, 1, 0, "");
	return 1;
}

/*
 * Close a finished tunnel's channel; t->ch is NULL once it is freed. The
 * far end's CLOSE is waited for within a grace period, letting other
 * work go on meanwhile; after it the channel is freed anyway.
 */
static int
tunnel_close(struct jump *j, struct tunnel *t, struct pend *pend)
{
	struct ssh *s = j->s;
	int rc;

	if (t->closing == 0)
		t->closing = now_ms();
	if (pend->op != P_FREE) {
		rc = libssh2_channel_close(t->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN) {
			pend_set(s, pend, P_CLOSE, t);
			if (pend->op != P_NONE ||
			    (now_ms() - t->closing < GRACE_MS && !j->stopping))
				return 0;
		}
	}
	rc = libssh2_channel_free(t->ch);
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		pend_set(s, pend, P_FREE, t);
		return 0;
	}
	pend->op = P_NONE;
	pend->t = NULL;
	t->ch = NULL;
	return 1;
}

/*
 * Move what can move between a tunnel's channel and its socket; 1 when
 * something did. Only the pending call runs while one is pending.
 */
static int
pump_tunnel(struct jump *j, struct tunnel *t, struct pend *pend)
{
	struct ssh *s = j->s;
	int progress = 0, mine = pend->op == P_NONE || pend->t == t;
	ssize_t n;

	if (!mine)
		return 0;
	if (t->closing != 0 || pend->op == P_CLOSE || pend->op == P_FREE)
		return tunnel_close(j, t, pend);

	/* channel -> down */
	if (t->down.off > 0 && t->down.off == t->down.len)
		t->down.off = t->down.len = 0;
	if (!t->ch_eof && t->down.len < sizeof(t->down.data) &&
	    (pend->op == P_NONE || pend->op == P_READ)) {
		n = libssh2_channel_read(t->ch, t->down.data + t->down.len,
					 sizeof(t->down.data) - t->down.len);
		if (n > 0) {
			t->down.len += (size_t)n;
			progress = 1;
			pend->op = P_NONE;
		} else if (n == LIBSSH2_ERROR_EAGAIN) {
			pend_set(s, pend, P_READ, t);
		} else {
			/* 0 at EOF; a channel error ends it as well */
			pend->op = P_NONE;
			t->ch_eof = 1;
			progress = 1;
			if (n < 0 && session_error((int)n)) {
				char text[256];

				jump_die(j, ssh_errtext(s->session, text,
							sizeof(text)));
				return 1;
			}
		}
	}
	if (pend->op == P_NONE) {
		/* down -> fd, then SHUT_WR after the channel's EOF */
		if (t->down.off < t->down.len) {
			n = send(t->fd, t->down.data + t->down.off,
				 t->down.len - t->down.off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				t->down.off += (size_t)n;
				progress = 1;
			} else if (n == -1 && errno != EAGAIN &&
				   errno != EINTR) {
				t->gone = 1;
			}
		}
		if (t->ch_eof && t->down.off == t->down.len && !t->shut) {
			(void)shutdown(t->fd, SHUT_WR);
			t->shut = 1;
			progress = 1;
		}
		/* fd -> up */
		if (!t->fd_eof && t->up.off == t->up.len) {
			t->up.off = t->up.len = 0;
			n = recv(t->fd, t->up.data, sizeof(t->up.data),
				 MSG_DONTWAIT);
			if (n > 0) {
				t->up.len = (size_t)n;
				progress = 1;
			} else if (n == 0) {
				t->fd_eof = 1;
				progress = 1;
			} else if (errno != EAGAIN && errno != EINTR) {
				t->fd_eof = t->gone = 1;
			}
		}
	}
	/* up -> channel, then EOF */
	if (t->up.off < t->up.len &&
	    (pend->op == P_NONE || pend->op == P_WRITE)) {
		n = libssh2_channel_write(t->ch, t->up.data + t->up.off,
					  t->up.len - t->up.off);
		if (n >= 0) {
			t->up.off += (size_t)n;
			progress |= n > 0;
			pend->op = P_NONE;
		} else if (n == LIBSSH2_ERROR_EAGAIN) {
			pend_set(s, pend, P_WRITE, t);
		} else {
			/* the far end is gone: drop what is left */
			t->up.off = t->up.len;
			t->eof_sent = 1;
			pend->op = P_NONE;
		}
	} else if (t->fd_eof && t->up.off == t->up.len && !t->eof_sent &&
		   (pend->op == P_NONE || pend->op == P_EOF)) {
		n = libssh2_channel_send_eof(t->ch);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			pend_set(s, pend, P_EOF, t);
		} else {
			t->eof_sent = 1;
			progress = 1;
			pend->op = P_NONE;
		}
	}
	if (pend->op == P_NONE &&
	    ((t->fd_eof && t->eof_sent && t->ch_eof && t->shut) || t->gone)) {
		t->closing = now_ms();
		progress = 1;
	}
	return progress;
}

/* Whether the pump needs the session's socket polled for input. */
static int
pump_wants_session(const struct tunnel *tunnels,
		   const struct tunnel_req *opening, const struct pend *pend)
{
	const struct tunnel *t;

	if (opening != NULL || pend->op != P_NONE)
		return 1;
	for (t = tunnels; t != NULL; t = t->next)
		if (t->closing != 0 ||
		    (!t->ch_eof && t->down.len < sizeof(t->down.data)) ||
		    t->up.off < t->up.len || (t->fd_eof && !t->eof_sent))
			return 1;
	return 0;
}

/* After the session broke: drop every tunnel and fail every request. */
static void
pump_fail_all(struct jump *j, struct tunnel **tunnels,
	      struct tunnel_req **opening)
{
	struct tunnel *t;
	struct tunnel_req *r;

	while ((t = *tunnels) != NULL) {
		*tunnels = t->next;
		(void)shutdown(t->fd, SHUT_RDWR);
		close(t->fd);
		free(t); /* the channel goes with the session */
	}
	if (*opening != NULL) {
		req_finish(j, *opening, -1, LIBSSH2_ERROR_SOCKET_DISCONNECT,
			   j->dead);
		*opening = NULL;
	}
	pthread_mutex_lock(&j->lock);
	while ((r = j->reqs) != NULL) {
		j->reqs = r->next;
		pthread_mutex_unlock(&j->lock);
		req_finish(j, r, -1, LIBSSH2_ERROR_SOCKET_DISCONNECT, j->dead);
		pthread_mutex_lock(&j->lock);
	}
	pthread_mutex_unlock(&j->lock);
}

static void *
jump_pump(void *arg)
{
	struct jump *j = arg;
	struct ssh *s = j->s;
	struct tunnel *tunnels = NULL, *t, **tp;
	struct tunnel_req *opening = NULL;
	struct pend pend = { P_NONE, NULL };
	struct pollfd *pfd = NULL;
	size_t npfd, cap = 0;
	int64_t stop_at = 0;
	int progress, stop, dead;
	char drain[64];

	for (;;) {
		pthread_mutex_lock(&j->lock);
		stop = j->stop;
		dead = j->dead[0] != '\0';
		if (opening == NULL && j->reqs != NULL && !dead) {
			opening = j->reqs;
			j->reqs = opening->next;
		}
		pthread_mutex_unlock(&j->lock);
		if (dead)
			pump_fail_all(j, &tunnels, &opening);
		if (stop) {
			/* The last user is gone; what is left closes. */
			if (stop_at == 0)
				stop_at = now_ms();
			j->stopping = 1;
			for (t = tunnels; t != NULL; t = t->next)
				t->gone = 1;
			if ((tunnels == NULL && opening == NULL &&
			     pend.op == P_NONE) ||
			    now_ms() - stop_at > GRACE_MS)
				break;
		}
		progress = 0;
		if (!dead) {
			progress |= pump_open(j, &opening, &tunnels, &pend);
			for (t = tunnels; t != NULL; t = t->next)
				progress |= pump_tunnel(j, t, &pend);
		}
		for (tp = &tunnels; *tp != NULL;) {
			t = *tp;
			if (t->ch != NULL) {
				tp = &t->next;
				continue;
			}
			*tp = t->next;
			close(t->fd);
			free(t);
		}
		if (progress)
			continue;

		npfd = 0;
		for (t = tunnels; t != NULL; t = t->next)
			npfd++;
		if (npfd + 2 > cap) {
			cap = npfd + 2;
			pfd = xreallocarray(pfd, cap, sizeof(*pfd));
		}
		npfd = 0;
		pfd[npfd].fd = j->wake[0];
		pfd[npfd].events = POLLIN;
		pfd[npfd++].revents = 0;
		if (!dead && pump_wants_session(tunnels, opening, &pend)) {
			session_pollfd(s, &pfd[npfd++]);
		}
		/*
		 * A socket with nothing to wait for stays out: its POLLHUP
		 * would wake poll again and again.
		 */
		for (t = tunnels; t != NULL && pend.op == P_NONE; t = t->next) {
			pfd[npfd].fd = t->fd;
			pfd[npfd].events = 0;
			if (!t->fd_eof && t->up.off == t->up.len)
				pfd[npfd].events |= POLLIN;
			if (t->down.off < t->down.len)
				pfd[npfd].events |= POLLOUT;
			pfd[npfd].revents = 0;
			if (pfd[npfd].events != 0)
				npfd++;
		}
		(void)poll(pfd, npfd, WAIT_SLICE_MS);
		while (read(j->wake[0], drain, sizeof(drain)) > 0)
			;
	}
	while ((t = tunnels) != NULL) {
		tunnels = t->next;
		(void)shutdown(t->fd, SHUT_RDWR);
		close(t->fd);
		free(t);
	}
	if (opening != NULL)
		req_finish(j, opening, -1, LIBSSH2_ERROR_SOCKET_DISCONNECT,
			   "the jump host connection was closed");
	free(pfd);
	return NULL;
}

/*
 * Ask the pump of j for a tunnel to o->address:o->port and make it s's
 * socket, within the deadline.
 */
static int
jump_tunnel(struct jump *j, struct ssh *s, const struct ssh_options *o,
	    int64_t deadline, int armed, struct rf_error *err)
{
	struct tunnel_req *r, **rp;
	char ap[300], text[256];
	int sv[2], done, rc, timed_out;

	addr_port(o->address, o->port, ap, sizeof(ap));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return rf_error_kind(err, RF_KIND_CONNECTION_LOST,
				     "cannot connect to %s (%s) through jump "
				     "host %s: socketpair: %s",
				     s->remote.name, ap, j->name,
				     strerror(errno));
	r = xcalloc(1, sizeof(*r));
	snprintf(r->host, sizeof(r->host), "%s", o->address);
	r->port = o->port;
	r->fd = sv[0];
	pthread_mutex_lock(&j->lock);
	if (j->dead[0] != '\0') {
		snprintf(text, sizeof(text), "%s", j->dead);
		pthread_mutex_unlock(&j->lock);
		close(sv[0]);
		close(sv[1]);
		free(r);
		return rf_error_kind(err, RF_KIND_CONNECTION_LOST,
				     "cannot connect to %s (%s): the "
				     "connection to jump host %s broke: %s",
				     s->remote.name, ap, j->name, text);
	}
	for (rp = &j->reqs; *rp != NULL; rp = &(*rp)->next)
		;
	*rp = r;
	pthread_mutex_unlock(&j->lock);
	jump_wake(j);

	pthread_mutex_lock(&j->lock);
	while (r->done == 0 && !(armed && interrupted) && now_ms() < deadline)
		cond_wait_slice(&j->cond, &j->lock, deadline);
	done = r->done;
	if (done == 0) {
		timed_out = !(armed && interrupted);
		r->abandoned = 1; /* the pump frees it */
		pthread_mutex_unlock(&j->lock);
		close(sv[1]);
		if (!timed_out)
			return conn_interrupted(err);
		rf_error_kind(err, RF_KIND_TIMEOUT,
			      "cannot connect to %s (%s) through jump host %s: "
			      "timed out after %g s",
			      s->remote.name, ap, j->name, o->connect_timeout);
		return rf_error_hint(err,
				     "%s did not open a connection to %s "
				     "within connect_timeout: check the "
				     "address and firewalls between them, or "
				     "raise [ssh] connect_timeout",
				     j->name, ap);
	}
	rc = r->rc;
	snprintf(text, sizeof(text), "%s", r->text);
	pthread_mutex_unlock(&j->lock);
	free(r);
	if (done > 0) {
		s->sock = sv[1];
		return 0;
	}
	close(sv[1]);
	if (strstr(text, "prohibited") != NULL) {
		rf_error_kind(err, RF_KIND_CHANNEL_PROHIBITED,
			      "cannot connect to %s (%s) through jump host %s: "
			      "it refuses to forward connections (%s)",
			      s->remote.name, ap, j->name, text);
		return rf_error_hint(err,
				     "allow TCP forwarding on %s for its "
				     "login user: AllowTcpForwarding yes in "
				     "its sshd_config, or permitopen=\"%s\" "
				     "in its authorized_keys",
				     j->name, ap);
	}
	if (session_error(rc))
		return rf_error_kind(err, RF_KIND_CONNECTION_LOST,
				     "cannot connect to %s (%s): the "
				     "connection to jump host %s broke: %s",
				     s->remote.name, ap, j->name, text);
	rf_error_kind(err, RF_KIND_REFUSED,
		      "cannot connect to %s (%s) through jump host %s: it "
		      "could not connect there (%s)",
		      s->remote.name, ap, j->name, text);
	return rf_error_hint(err,
			     "is sshd running on %s, and the address and "
			     "port right as seen from %s? try: ssh -J %s -p "
			     "%d %s@%s",
			     s->remote.name, j->name, j->jumpspec, o->port,
			     o->user, o->address);
}

/* "user@addr:port" of a hop, as ssh -J takes it ([] around IPv6). */
static void
hop_login(const struct ssh_options *o, char *buf, size_t size)
{
	char ap[300];

	addr_port(o->address, o->port, ap, sizeof(ap));
	snprintf(buf, size, "%s@%s", o->user, ap);
}

/*
 * Bring up jump host j (hop o; through j->via when set) and start its
 * pump. On failure err names it.
 */
static int
jump_connect(struct jump *j, const struct ssh_options *o, int64_t deadline,
	     int armed, struct rf_error *err)
{
	struct ssh_info scratch;
	sigset_t block, old;
	struct ssh *s;
	char name[80];
	int64_t t0 = now_ms();

	memset(&scratch, 0, sizeof(scratch));
	snprintf(name, sizeof(name), "jump host %s", j->name);
	s = ssh_new(name);
	s->is_jump = 1;
	if (j->via != NULL) {
		snprintf(s->via, sizeof(s->via), "%s", j->via->name);
		snprintf(s->via_login, sizeof(s->via_login), "%s",
			 j->via->login);
	}
	if (j->via != NULL ? jump_tunnel(j->via, s, o, deadline, armed, err)
			   : tcp_connect(s, o, deadline, armed, err))
		goto fail;
	if (session_start(s, o, deadline, armed, &scratch, err) != 0)
		goto fail;
	j->info.connect_ms = (double)(now_ms() - t0);
	snprintf(j->info.kex, sizeof(j->info.kex), "%s", scratch.kex);
	snprintf(j->info.hostkey_type, sizeof(j->info.hostkey_type), "%s",
		 scratch.hostkey_type);
	snprintf(j->info.fingerprint, sizeof(j->info.fingerprint), "%s",
		 scratch.fingerprint);
	snprintf(j->info.auth, sizeof(j->info.auth), "%s", scratch.auth);

	if (pipe2(j->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		rf_error_kind(err, RF_KIND_CONNECTION_LOST,
			      "cannot start the pump for %s: pipe: %s", name,
			      strerror(errno));
		goto fail;
	}
	j->s = s;
	/* Signals go to the other threads, which act on them. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_create(&j->thread, NULL, jump_pump, j) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		close(j->wake[0]);
		close(j->wake[1]);
		j->s = NULL;
		rf_error_kind(err, RF_KIND_CONNECTION_LOST,
			      "cannot start the pump thread for %s", name);
		goto fail;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
fail:
	ssh_break(s, "connecting failed");
	ssh_free(s);
	snprintf(err->via, sizeof(err->via), "%s", j->name);
	return -1;
}

/* Whether the jump host's connection broke. */
static int
jump_dead(struct jump *j)
{
	int dead;

	pthread_mutex_lock(&j->lock);
	dead = j->dead[0] != '\0';
	pthread_mutex_unlock(&j->lock);
	return dead;
}

/* Unlink j from the registry; the caller holds jumps_lock. */
static void
jump_unlink(struct jump *j)
{
	struct jump **jp;

	for (jp = &jumps; *jp != NULL; jp = &(*jp)->next)
		if (*jp == j) {
			*jp = j->next;
			break;
		}
	j->linked = 0;
}

/* Stop the pump, disconnect, free; then let go of the hop before. */
static void
jump_destroy(struct jump *j)
{
	struct jump *via = j->via;

	pthread_mutex_lock(&j->lock);
	j->stop = 1;
	pthread_mutex_unlock(&j->lock);
	jump_wake(j);
	pthread_join(j->thread, NULL);
	ssh_free(j->s);
	close(j->wake[0]);
	close(j->wake[1]);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j->key);
	free(j);
	jump_release(via);
}

/*
 * Drop a reference. A jump host nobody uses stays connected (idle) for
 * the next server behind it, until the process exits (jumps_close_idle)
 * or its connection breaks: `check` with max_parallel = 1 closes each
 * server before it connects the next.
 */
static void
jump_release(struct jump *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&jumps_lock);
	if (--j->refs > 0 || j->state != JUMP_UP ||
	    (j->linked && !jumps_closing && !jump_dead(j))) {
		pthread_mutex_unlock(&jumps_lock);
		return;
	}
	if (j->linked)
		jump_unlink(j);
	pthread_mutex_unlock(&jumps_lock);
	jump_destroy(j);
}

/*
 * At exit: disconnect the idle jump hosts, the last hop first. Skipped
 * when another thread holds the registry (an exit from a broken
 * invariant): the kernel closes the sockets then.
 */
static void
jumps_close_idle(void)
{
	struct jump *j;

	if (pthread_mutex_trylock(&jumps_lock) != 0)
		return;
	jumps_closing = 1;
	for (;;) {
		for (j = jumps; j != NULL; j = j->next)
			if (j->state != JUMP_CONNECTING && j->refs == 0)
				break;
		if (j == NULL)
			break;
		jump_unlink(j);
		if (j->state == JUMP_FAILED) {
			/* No thread, no session: only its error was kept. */
			pthread_mutex_destroy(&j->lock);
			pthread_cond_destroy(&j->cond);
			free(j->key);
			free(j);
			continue;
		}
		pthread_mutex_unlock(&jumps_lock);
		jump_destroy(j);
		pthread_mutex_lock(&jumps_lock);
	}
	pthread_mutex_unlock(&jumps_lock);
}

/*
 * The jump host for hop o behind via (whose reference this takes over):
 * the one already up for key, or a new connection. *info tells which.
 */
static int
jump_get(const struct ssh_options *o, const char *key, struct jump *via,
	 int64_t deadline, int armed, struct ssh_hop_info *info,
	 struct jump **out, struct rf_error *err)
{
	struct buf spec = BUF_INIT;
	struct jump *j;
	char ap[300];
	int rc;

	*out = NULL;
	pthread_mutex_lock(&jumps_lock);
	for (;;) {
		for (j = jumps; j != NULL; j = j->next)
			if (strcmp(j->key, key) == 0)
				break;
		/* A broken one is left to its users; a new one replaces it. */
		if (j != NULL && j->state == JUMP_UP && jump_dead(j)) {
			jump_unlink(j);
			if (j->refs == 0) {
				pthread_mutex_unlock(&jumps_lock);
				jump_destroy(j);
				pthread_mutex_lock(&jumps_lock);
			}
			continue;
		}
		if (j == NULL || j->state != JUMP_CONNECTING)
			break;
		if (armed && interrupted) {
			pthread_mutex_unlock(&jumps_lock);
			jump_release(via);
			return conn_interrupted(err);
		}
		if (now_ms() >= deadline) {
			pthread_mutex_unlock(&jumps_lock);
			jump_release(via);
			addr_port(o->address, o->port, ap, sizeof(ap));
			rf_error_kind(err, RF_KIND_TIMEOUT,
				      "cannot connect to jump host %s (%s): "
				      "timed out after %g s",
				      o->name, ap, o->connect_timeout);
			snprintf(err->via, sizeof(err->via), "%s", o->name);
			return -1;
		}
		cond_wait_slice(&jumps_cond, &jumps_lock, deadline);
	}
	if (j != NULL && j->state == JUMP_FAILED) {
		*err = j->err;
		pthread_mutex_unlock(&jumps_lock);
		jump_release(via);
		return -1;
	}
	if (j != NULL) {
		j->refs++;
		*info = j->info;
		info->shared = 1;
		pthread_mutex_unlock(&jumps_lock);
		jump_release(via); /* j holds its own */
		*out = j;
		return 0;
	}
	j = xcalloc(1, sizeof(*j));
	j->key = xstrdup(key);
	snprintf(j->name, sizeof(j->name), "%s", o->name);
	j->via = via;
	j->refs = 1;
	j->state = JUMP_CONNECTING;
	j->wake[0] = j->wake[1] = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	snprintf(j->info.name, sizeof(j->info.name), "%s", o->name);
	addr_port(o->address, o->port, j->info.address,
		  sizeof(j->info.address));
	hop_login(o, j->jumpspec, sizeof(j->jumpspec));
	if (via != NULL) {
		snprintf(j->login, sizeof(j->login), "-J %s -p %d %s@%s",
			 via->jumpspec, o->port, o->user, o->address);
		buf_addf(&spec, "%s,%s", via->jumpspec, j->jumpspec);
		snprintf(j->jumpspec, sizeof(j->jumpspec), "%s",
			 buf_str(&spec));
		buf_release(&spec);
	} else {
		snprintf(j->login, sizeof(j->login), "-p %d %s@%s", o->port,
			 o->user, o->address);
	}
	j->next = jumps;
	j->linked = 1;
	jumps = j;
	pthread_mutex_unlock(&jumps_lock);

	rc = jump_connect(j, o, deadline, armed, err);

	pthread_mutex_lock(&jumps_lock);
	if (rc != 0) {
		j->state = JUMP_FAILED;
		j->err = *err;
		j->refs = 0;
		via = j->via;
		j->via = NULL;
	} else {
		j->state = JUMP_UP;
		*info = j->info;
		*out = j;
	}
	pthread_cond_broadcast(&jumps_cond);
	pthread_mutex_unlock(&jumps_lock);
	if (rc != 0)
		jump_release(via);
	return rc;
}

/* The registry key of hop i: every hop up to it, and how it logs in. */
static void
jump_key(const struct ssh_options *jumps_v, size_t i, struct buf *key)
{
	const struct ssh_options *o;
	size_t k, n;

	for (k = 0; k <= i; k++) {
		o = &jumps_v[k];
		buf_addf(key, "%s%s@%s:%d|%s|%s|%s|", k > 0 ? "," : "", o->user,
			 o->address, o->port, o->identity ? o->identity : "",
			 o->identity_env ? o->identity_env : "",
			 o->known_hosts);
		for (n = 0; n < o->nidentities; n++)
			buf_addf(key, "%s;", o->identities[n]);
	}
}

/* The hops' defaults, as remote_ssh_connect fills a server's. */
static void
hop_defaults(struct ssh_options *o)
{
	if (o->port <= 0)
		o->port = 22;
	if (o->user == NULL || *o->user == '\0')
		o->user = getenv("USER") != NULL ? getenv("USER") : "root";
	if (o->known_hosts == NULL || *o->known_hosts == '\0')
		o->known_hosts = "~/.ssh/known_hosts";
	if (o->name == NULL)
		o->name = o->address;
}

/* Every jump host of o, up or brought up; *out is the last one's. */
static int
jump_chain(const struct ssh_options *o, int64_t deadline, int armed,
	   struct ssh_info *info, struct jump **out, struct rf_error *err)
{
	struct ssh_options hops[SSH_JUMPS_MAX];
	struct jump *via = NULL, *j;
	struct buf key = BUF_INIT;
	size_t i;

	*out = NULL;
	for (i = 0; i < o->njumps; i++) {
		hops[i] = o->jumps[i];
		hops[i].connect_timeout = o->connect_timeout;
		hop_defaults(&hops[i]);
	}
	for (i = 0; i < o->njumps; i++) {
		buf_reset(&key);
		jump_key(hops, i, &key);
		if (jump_get(&hops[i], buf_str(&key), via, deadline, armed,
			     &info->jumps[i], &j, err) != 0) {
			buf_release(&key);
			return -1;
		}
		info->njumps = i + 1;
		via = j;
	}
	buf_release(&key);
	*out = via;
	return 0;
}

int
remote_ssh_global_init(void)
{
	static int done;

	if (done)
		return 0;
	if (libssh2_init(0) != 0)
		return -1;
	(void)atexit(jumps_close_idle);
	done = 1;
	return 0;
}

int
remote_ssh_connect(const struct ssh_options *opts, struct remote **out,
		   struct ssh_info *info, struct rf_error *err)
{
	struct ssh_options o = *opts;
	struct ssh_info scratch;
	struct ssh *s;
	int64_t t0 = now_ms(), deadline;
	int armed = !interrupted;

	*out = NULL;
	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	if (o.address == NULL || *o.address == '\0') {
		rf_error_kind(err, RF_KIND_RESOLVE, "host %s has no address",
			      o.name != NULL ? o.name : "?");
		rf_error_host(err, o.name);
		return -1;
	}
	hop_defaults(&o);
	if (o.njumps > SSH_JUMPS_MAX) {
		rf_error_kind(err, RF_KIND_PROTOCOL,
			      "cannot connect to %s: %zu jump hosts, more "
			      "than the %d relflip follows",
			      o.name, o.njumps, SSH_JUMPS_MAX);
		rf_error_host(err, o.name);
		return -1;
	}

	s = ssh_new(o.name);
	snprintf(info->library, sizeof(info->library), "%s", s->library);
	addr_port(o.address, o.port, info->address, sizeof(info->address));
	snprintf(info->user, sizeof(info->user), "%s", o.user);
	deadline = deadline_after(o.connect_timeout);
	if (o.njumps > 0) {
		if (jump_chain(&o, deadline, armed, info, &s->jump, err) != 0)
			goto fail;
		snprintf(s->via, sizeof(s->via), "%s", s->jump->name);
		snprintf(s->via_login, sizeof(s->via_login), "%s",
			 s->jump->login);
		if (jump_tunnel(s->jump, s, &o, deadline, armed, err) != 0)
			goto fail;
	} else if (tcp_connect(s, &o, deadline, armed, err) != 0) {
		goto fail;
	}
	if (session_start(s, &o, deadline, armed, info, err) != 0)
		goto fail;

	ssh_blocking(s);
	info->connect_ms = (double)(now_ms() - t0);
	*out = &s->remote;
	return 0;

fail:
	/* A failed handshake or authentication leaves nothing to close. */
	ssh_break(s, "connecting failed");
	ssh_free(s);
	rf_error_host(err, o.name);
	return -1;
}

/* Channels. */

/*
 * Close a channel and free it. When wait is set, wait within the grace
 * period for the server's CLOSE. Without wait (a timeout, a signal), only
 * our EOF and CLOSE go out: sshd answers only once the command has let go
 * of its output. Such a channel is left to libssh2, which drops what still
 * arrives for it and frees it with the session.
 */
static void
channel_finish(struct ssh *s, LIBSSH2_CHANNEL *ch, int wait, int64_t grace)
{
	int rc;

	while ((rc = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN) {
		if (!wait && !half_sent(s))
			return; /* our CLOSE is out */
		if (ssh_wait(s, grace) != 0) {
			if (half_sent(s))
				ssh_break(s, "closing a channel timed out");
			return;
		}
	}
	if (rc == 0 && wait) {
		while ((rc = libssh2_channel_wait_closed(ch)) ==
		       LIBSSH2_ERROR_EAGAIN) {
			if (ssh_wait(s, grace) != 0)
				break;
		}
	}
	/* Once closed, freeing sends nothing more. */
	while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN) {
		if (ssh_wait(s, grace) != 0)
			break;
	}
}

static LIBSSH2_CHANNEL *
open_call(struct ssh *s, int kind, const char *host, int port)
{
	if (kind == STALE_SESSION)
		return libssh2_channel_open_session(s->session);
	return libssh2_channel_direct_tcpip_ex(s->session, host, port,
					       "127.0.0.1", 0);
}

/* What waiting for a request came to. */
enum wait_end {
	WAIT_DONE,
	WAIT_TIMEOUT,     /* the caller's deadline passed */
	WAIT_INTERRUPTED, /* a signal arrived (and the caller was armed) */
	WAIT_FAILED,      /* err is set */
};

/*
 * Wait a while for a request's answer, or stop waiting: only between
 * calls (never with a packet half sent), once the caller's deadline or the
 * I/O timeout has passed, a signal has arrived or the server has been
 * silent for SILENCE_MS. WAIT_DONE: call again.
 */
static enum wait_end
request_wait(struct ssh *s, int64_t deadline, int64_t io, int armed,
	     const char *what, struct rf_error *err)
{
	if (half_sent(s))
		goto wait;
	if (armed && interrupted)
		return WAIT_INTERRUPTED;
	if (now_ms() >= deadline)
		return WAIT_TIMEOUT;
	if (now_ms() >= io) {
		ssh_timed_out(s, RF_EXIT_CONNECT, NULL, what, err);
		return WAIT_FAILED;
	}
	if (s->silent_ms >= SILENCE_MS) {
		ssh_silent(s, RF_EXIT_CONNECT, NULL, err);
		return WAIT_FAILED;
	}
wait:
	if (ssh_wait_owed(s, hard_deadline(io < deadline ? io : deadline)) !=
	    0) {
		ssh_break(s, "the server stopped reading");
		rf_error_set(err, RF_EXIT_CONNECT, NULL,
			     "%s stopped reading from the SSH connection",
			     s->remote.name);
		return WAIT_FAILED;
	}
	return WAIT_DONE;
}

/*
 * Finish an open left half done before any other: libssh2 keeps its state
 * in the session, and the next open of any kind (sftp_init's too) would
 * resume it instead, with the old request's type and destination.
 */
static enum wait_end
drain_stale_open(struct ssh *s, int64_t deadline, int armed,
		 struct rf_error *err)
{
	LIBSSH2_CHANNEL *ch;
	int64_t io = now_ms() + IO_TIMEOUT_MS;
	enum wait_end end;

	while (s->stale != STALE_NONE) {
		ch = open_call(s, s->stale, "127.0.0.1", 1);
		if (ch != NULL) {
			s->stale = STALE_NONE;
			channel_finish(s, ch, 1, now_ms() + GRACE_MS);
			break;
		}
		if (libssh2_session_last_errno(s->session) !=
		    LIBSSH2_ERROR_EAGAIN) {
			s->stale = STALE_NONE;
			break;
		}
		end = request_wait(s, deadline, io, armed, "a channel request",
				   err);
		if (end != WAIT_DONE)
			return end;
	}
	return WAIT_DONE;
}

/*
 * Open a channel of the kind (host and port for STALE_TCPIP), within the
 * deadline. On WAIT_FAILED without err set, *rcp holds libssh2's error.
 */
static enum wait_end
channel_open(struct ssh *s, int kind, const char *host, int port,
	     int64_t deadline, int armed, LIBSSH2_CHANNEL **out, int *rcp,
	     struct rf_error *err)
{
	int64_t io = now_ms() + IO_TIMEOUT_MS;
	enum wait_end end;

	*out = NULL;
	*rcp = 0;
	end = drain_stale_open(s, deadline, armed, err);
	if (end != WAIT_DONE)
		return end;
	for (;;) {
		*out = open_call(s, kind, host, port);
		if (*out != NULL)
			return WAIT_DONE;
		*rcp = libssh2_session_last_errno(s->session);
		if (*rcp != LIBSSH2_ERROR_EAGAIN)
			return WAIT_FAILED;
		*rcp = 0;
		end = request_wait(s, deadline, io, armed, "a channel request",
				   err);
		if (end != WAIT_DONE) {
			if (end != WAIT_FAILED)
				s->stale = kind;
			return end;
		}
	}
}

/* Exec. */

/*
 * Poll the session's socket (when want_session) and fd (when not -1) until
 * something may have changed, a signal arrives, a slice of time passes or
 * the deadline comes. With a packet half sent, only writability counts for
 * the session: polling for input too would spin while nothing reads it.
 * fd's revents go to *fd_revents (POLLHUP is reported even for no events).
 */
static void
wait_both(struct ssh *s, int want_session, int fd, short fd_events,
	  int64_t deadline, short *fd_revents)
{
	struct pollfd pfd[2];
	int64_t left = WAIT_SLICE_MS;
	nfds_t n = 0;

	if (deadline != NO_DEADLINE) {
		left = deadline - now_ms();
		if (left < 0)
			left = 0;
		if (left > WAIT_SLICE_MS)
			left = WAIT_SLICE_MS;
	}
	if (want_session) {
		session_pollfd(s, &pfd[n++]);
	}
	if (fd != -1) {
		pfd[n].fd = fd;
		pfd[n].events = fd_events;
		pfd[n].revents = 0;
		n++;
	}
	if (fd_revents != NULL)
		*fd_revents = 0;
	if (poll(pfd, n, (int)left) > 0 && fd != -1 && fd_revents != NULL)
		*fd_revents = pfd[n - 1].revents;
}

enum pending {
	PEND_NONE,
	PEND_WRITE,
	PEND_EOF,
	PEND_READ,
	PEND_KEEPALIVE,
};

/* Open a session channel and start cmd on it, within the deadline. */
static enum wait_end
exec_start(struct ssh *s, const char *cmd, int64_t deadline, int armed,
	   LIBSSH2_CHANNEL **out, struct rf_error *err)
{
	LIBSSH2_CHANNEL *ch;
	int64_t io;
	enum wait_end end;
	char text[256];
	int rc;

	*out = NULL;
	end = channel_open(s, STALE_SESSION, NULL, 0, deadline, armed, &ch, &rc,
			   err);
	if (end == WAIT_FAILED && rc != 0) {
		ssh_errtext(s->session, text, sizeof(text));
		rf_error_set(err, RF_EXIT_CONNECT, NULL,
			     "cannot run a command on %s: %s", s->remote.name,
			     text);
	}
	if (end != WAIT_DONE)
		return end;
	io = now_ms() + IO_TIMEOUT_MS;
	while ((rc = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN) {
		end = request_wait(s, deadline, io, armed, "an exec request",
				   err);
		if (end != WAIT_DONE) {
			channel_finish(s, ch, 0, now_ms() + GRACE_MS);
			return end;
		}
	}
	if (rc != 0) {
		ssh_errtext(s->session, text, sizeof(text));
		rf_error_set(err, RF_EXIT_CONNECT, NULL,
			     "cannot run a command on %s: %s", s->remote.name,
			     text);
		channel_finish(s, ch, 1, now_ms() + GRACE_MS);
		return WAIT_FAILED;
	}
	*out = ch;
	return WAIT_DONE;
}

/* Streams: a command kept open for many requests. */

struct ssh_stream {
	LIBSSH2_CHANNEL *ch;
	int eof_sent;
	int ended[2]; /* EOF seen on stdout, stderr */
};

static int
ssh_stream_open(void *impl, const char *cmd, void **out,
		struct rf_error *err)
{
	struct ssh *s = impl;
	struct ssh_stream *st;
	LIBSSH2_CHANNEL *ch;
	enum wait_end end;

	*out = NULL;
	if (ssh_usable(s, RF_EXIT_CONNECT, NULL, err) != 0)
		return -1;
	ssh_nonblocking(s);
	end = exec_start(s, cmd, now_ms() + IO_TIMEOUT_MS, !interrupted, &ch,
			 err);
	ssh_blocking(s);
	switch (end) {
	case WAIT_DONE:
		break;
	case WAIT_INTERRUPTED:
		return ssh_interrupted(err);
	case WAIT_TIMEOUT:
		return rf_error_set(err, RF_EXIT_CONNECT, NULL,
				    "%s did not start a command in time",
				    s->remote.name);
	case WAIT_FAILED:
		return -1;
	}
	st = xcalloc(1, sizeof(*st));
	st->ch = ch;
	*out = st;
	return 0;
}

/*
 * Like ssh_exec's loop, but the channel outlives the exchange: write the
 * request, then read until the caller has its reply. Deadlines and
 * signals are acted on only between whole calls, so the session is never
 * left with a packet half sent.
 */
static int
ssh_stream_io(void *impl, void *stream, const struct stream_request *req,
	      struct stream_result *res, struct rf_error *err)
{
	struct ssh *s = impl;
	struct ssh_stream *st = stream;
	const char *data = req->data;
	enum pending pending = PEND_NONE;
	int64_t deadline = deadline_after(req->timeout);
	int64_t hard = NO_DEADLINE, asked = 0;
	size_t off = 0;
	int armed = !interrupted, progress, i, r = -1;
	char *buf, text[256];
	ssize_t n;

	memset(res, 0, sizeof(*res));
	if (ssh_usable(s, RF_EXIT_CONNECT, NULL, err) != 0)
		return -1;
	ssh_nonblocking(s);
	buf = xmalloc(READ_BUF_SIZE);
	for (;;) {
		if (pending == PEND_NONE && req->silence > 0 &&
		    now_ms() - s->heard >= KEEPALIVE_MS &&
		    now_ms() - asked >= KEEPALIVE_MS)
			pending = PEND_KEEPALIVE;
		if (pending == PEND_KEEPALIVE) {
			/*
			 * A quiet step: ask sshd itself for a reply (a global
			 * request it answers), so that a live server is heard
			 * and a cut or black-holed link is not waited on.
			 */
			int next;

			libssh2_keepalive_config(s->session, 1, 1);
			n = libssh2_keepalive_send(s->session, &next);
			libssh2_keepalive_config(s->session, 1, 0);
			if (n == LIBSSH2_ERROR_EAGAIN && half_sent(s)) {
				wait_both(s, 1, -1, 0, hard_deadline(deadline),
					  NULL);
				continue;
			}
			asked = now_ms();
			pending = PEND_NONE;
		}
		if (pending == PEND_NONE) {
			hard = NO_DEADLINE;
			if (res->done || (st->ended[0] && st->ended[1])) {
				res->closed = st->ended[0] && st->ended[1];
				r = 0;
				break;
			}
			if (armed && interrupted) {
				ssh_interrupted(err);
				break;
			}
			if (deadline != NO_DEADLINE && now_ms() >= deadline) {
				res->timed_out = 1;
				r = 0;
				break;
			}
			if (req->silence > 0 &&
			    s->silent_ms >= (int64_t)(req->silence * 1000)) {
				ssh_silent(s, RF_EXIT_CONNECT, NULL, err);
				break;
			}
		} else {
			if (hard == NO_DEADLINE)
				hard = hard_deadline(deadline);
			if (now_ms() >= hard) {
				ssh_break(s, "the server stopped reading");
				rf_error_set(err, RF_EXIT_CONNECT, NULL,
					     "%s stopped reading from the SSH "
					     "connection",
					     s->remote.name);
				break;
			}
		}
		progress = 0;
		if (!st->eof_sent && (pending == PEND_NONE ||
				      pending == PEND_WRITE ||
				      pending == PEND_EOF)) {
			if (off < req->len) {
				n = libssh2_channel_write(st->ch, data + off,
							  req->len - off);
				if (n >= 0) {
					off += (size_t)n;
					progress |= n > 0;
					pending = PEND_NONE;
				} else if (n == LIBSSH2_ERROR_EAGAIN) {
					pending = half_sent(s) ? PEND_WRITE
							       : PEND_NONE;
				} else {
					/* The command is gone: reading says how. */
					st->eof_sent = 1;
					pending = PEND_NONE;
				}
			} else if (req->eof) {
				n = libssh2_channel_send_eof(st->ch);
				if (n == LIBSSH2_ERROR_EAGAIN) {
					pending = half_sent(s) ? PEND_EOF
							       : PEND_NONE;
				} else {
					st->eof_sent = 1;
					progress = 1;
					pending = PEND_NONE;
				}
			}
		}
		for (i = 0; i < 2; i++) {
			if (st->ended[i] ||
			    (pending != PEND_NONE && pending != PEND_READ))
				continue;
			n = libssh2_channel_read_ex(st->ch, i, buf,
						    READ_BUF_SIZE);
			if (n > 0) {
				if (req->on_data(req->arg, i, buf, (size_t)n))
					res->done = 1;
				progress = 1;
				pending = PEND_NONE;
			} else if (n == 0) {
				st->ended[i] = 1;
				progress = 1;
				pending = PEND_NONE;
			} else if (n == LIBSSH2_ERROR_EAGAIN) {
				pending = half_sent(s) ? PEND_READ : PEND_NONE;
			} else {
				ssh_errtext(s->session, text, sizeof(text));
				rf_error_set(err, RF_EXIT_CONNECT, NULL,
					     "lost the connection's output on "
					     "%s: %s",
					     s->remote.name, text);
				st->ended[0] = st->ended[1] = 1;
				goto out;
			}
		}
		/* Data written but not read yet: look again before waiting. */
		if (!progress && !res->done) {
			int64_t t0 = now_ms();

			wait_both(s, 1, -1, 0,
				  pending == PEND_NONE ? deadline : hard, NULL);
			s->silent_ms += now_ms() - t0;
		}
	}
out:
	free(buf);
	ssh_blocking(s);
	return r;
}

static void
ssh_stream_close(void *impl, void *stream)
{
	struct ssh *s = impl;
	struct ssh_stream *st = stream;

	if (st == NULL)
		return;
	if (s->broken[0] == '\0') {
		ssh_nonblocking(s);
		channel_finish(s, st->ch, 0, now_ms() + GRACE_MS);
		ssh_blocking(s);
	}
	free(st);
}

/* SFTP. */

static const char *
fx_text(unsigned long code)
{
	static const char *const texts[] = {
		"ok",
		"end of file",
		"no such file",
		"permission denied",
		"failure",
		"bad message",
		"no connection",
		"connection lost",
		"operation unsupported",
		"invalid handle",
		"no such path",
		"file already exists",
		"write protected",
		"no media",
		"no space on the filesystem",
		"quota exceeded",
		"unknown principal",
		"lock conflict",
		"directory not empty",
		"not a directory",
		"invalid file name",
		"link loop",
	};

	if (code < sizeof(texts) / sizeof(texts[0]))
		return texts[code];
	return "unknown SFTP error";
}

/* The text for a failed SFTP call: the server's status, or libssh2's. */
static const char *
sftp_errtext(struct ssh *s, int rc, char *buf, size_t size)
{
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && s->sftp != NULL) {
		snprintf(buf, size, "%s",
			 fx_text(libssh2_sftp_last_error(s->sftp)));
		return buf;
	}
	return ssh_errtext(s->session, buf, size);
}

/* Open the SFTP session on first use. Non-blocking mode is set. */
static int
sftp_ready(struct ssh *s, enum rf_exit code, const char *stage,
	   struct rf_error *err)
{
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;
	char text[256];

	if (s->sftp != NULL)
		return 0;
	if (drain_stale_open(s, NO_DEADLINE, 0, err) != WAIT_DONE) {
		err->code = code;
		err->stage = stage;
		return -1;
	}
	while ((s->sftp = libssh2_sftp_init(s->session)) == NULL) {
		if (libssh2_session_last_errno(s->session) !=
		    LIBSSH2_ERROR_EAGAIN) {
			/*
			 * A server that refuses the subsystem says so at
			 * once; one silent this long lost the link.
			 */
			if (s->silent_ms >= KEEPALIVE_MS)
				return ssh_silent(s, code, stage, err);
			ssh_errtext(s->session, text, sizeof(text));
			rf_error_set(err, code, stage,
				     "cannot start SFTP on %s: %s",
				     s->remote.name, text);
			err->kind = RF_KIND_SFTP;
			return rf_error_hint(err,
					     "the server needs an SFTP "
					     "subsystem: Subsystem sftp in "
					     "sshd_config");
		}
		if (s->silent_ms >= SILENCE_MS)
			return ssh_silent(s, code, stage, err);
		if (ssh_wait_owed(s, deadline) != 0)
			return ssh_timed_out(s, code, stage, "an SFTP start",
					     err);
	}
	return 0;
}

/* Close an SFTP handle within the grace period; 0 or the error code. */
static int
sftp_handle_close(struct ssh *s, LIBSSH2_SFTP_HANDLE *h, int64_t deadline)
{
	int rc;

	while ((rc = libssh2_sftp_close(h)) == LIBSSH2_ERROR_EAGAIN) {
		if (ssh_wait(s, deadline) != 0) {
			ssh_break(s, "closing a remote file timed out");
			break;
		}
	}
	return rc;
}

/* Upload errors name the path and the server's reason. */
static int
put_error(struct ssh *s, const char *what, const char *path, int rc,
	  struct rf_error *err)
{
	char text[256];
	unsigned long fx = 0;

	sftp_errtext(s, rc, text, sizeof(text));
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && s->sftp != NULL)
		fx = libssh2_sftp_last_error(s->sftp);
	rf_error_set(err, RF_EXIT_UPLOAD, "upload", "cannot %s '%s': %s", what,
		     path, text);
	err->kind = fx == LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM ? RF_KIND_NO_SPACE
							    : RF_KIND_SFTP;
	if (fx == LIBSSH2_FX_PERMISSION_DENIED)
		return rf_error_hint(err,
				     "the login user needs write access "
				     "to the directory on %s",
				     s->remote.name);
	if (fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NO_SUCH_PATH)
		return rf_error_hint(err, "its directory does not exist on %s",
				     s->remote.name);
	if (fx == LIBSSH2_FX_FAILURE || fx == LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM)
		return rf_error_hint(err,
				     "the server gave no reason: is the "
				     "disk full? try: df -h on %s",
				     s->remote.name);
	return -1;
}

/*
 * Stream the file with the sliding technique of LIBRARY-NOTES section 1:
 * each call hands libssh2 the next PUT_WINDOW bytes from the first unacked
 * one, and the pointer moves on by what was acked. Bytes already handed
 * over stay as they are; the buffer is refilled, moving the unacked tail
 * to the front only when it reaches the buffer's end (about once per
 * window, not once per call).
 */
static int
ssh_put(void *impl, const struct put_request *req, struct rf_error *err)
{
	struct ssh *s = impl;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	unsigned long flags;
	unsigned char *buf = NULL;
	size_t head = 0, tail = 0, want, chunk, bufsize;
	size_t window = req->window ? req->window : PUT_WINDOW;
	uint64_t filepos = req->offset, acked = req->offset;
	int64_t deadline;
	ssize_t n;
	int armed = !interrupted, rc, r = -1;

	if (ssh_usable(s, RF_EXIT_UPLOAD, "upload", err) != 0)
		return -1;
	if (req->offset > req->size)
		return rf_error_set(err, RF_EXIT_UPLOAD, "upload",
				    "cannot resume '%s': the remote part is "
				    "larger than the file",
				    req->path);
	ssh_nonblocking(s);
	if (sftp_ready(s, RF_EXIT_UPLOAD, "upload", err) != 0)
		goto out;

	flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT;
	if (req->offset == 0)
		flags |= LIBSSH2_FXF_TRUNC;
	deadline = now_ms() + IO_TIMEOUT_MS;
	while ((h = libssh2_sftp_open(s->sftp, req->path, flags, 0644)) ==
	       NULL) {
		rc = libssh2_session_last_errno(s->session);
		if (rc != LIBSSH2_ERROR_EAGAIN) {
			put_error(s, "create", req->path, rc, err);
			goto out;
		}
		if (ssh_wait(s, deadline) != 0) {
			ssh_timed_out(s, RF_EXIT_UPLOAD, "upload",
				      "an SFTP open", err);
			goto out;
		}
	}
	if (req->offset > 0)
		libssh2_sftp_seek64(h, req->offset);
	/*
	 * What is in flight stays in buf until acknowledged (libssh2 may ask
	 * for it again), and libssh2 holds a copy too: memory per upload is
	 * about twice the window, which the caller shares out among hosts.
	 */
	if (window < PUT_WINDOW_MIN)
		window = PUT_WINDOW_MIN;
	if (window > PUT_WINDOW)
		window = PUT_WINDOW;
	bufsize = window + PUT_READ;
	buf = xmalloc(bufsize);
	if (req->on_progress != NULL)
		req->on_progress(req->arg, acked, req->size);

	while (acked < req->size) {
		if (armed && interrupted) {
			/* The partial file stays, for a later run to resume. */
			ssh_interrupted(err);
			goto out;
		}
		if (tail - head < window && filepos < req->size) {
			if (tail == bufsize) {
				memmove(buf, buf + head, tail - head);
				tail -= head;
				head = 0;
			}
			want = bufsize - tail;
			if (want > req->size - filepos)
				want = (size_t)(req->size - filepos);
			n = pread(req->fd, buf + tail, want, (off_t)filepos);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1) {
				rf_error_set(err, RF_EXIT_UPLOAD, "upload",
					     "cannot read the file to upload: "
					     "%s",
					     strerror(errno));
				goto out;
			}
			if (n == 0) {
				rf_error_set(err, RF_EXIT_UPLOAD, "upload",
					     "the file to upload ended at %llu "
					     "bytes, not %llu: did it change?",
					     (unsigned long long)filepos,
					     (unsigned long long)req->size);
				goto out;
			}
			tail += (size_t)n;
			filepos += (uint64_t)n;
		}
		chunk = tail - head < window ? tail - head : window;
		deadline = now_ms() + IO_TIMEOUT_MS;
		while ((n = libssh2_sftp_write(h, (char *)buf + head, chunk)) ==
		       LIBSSH2_ERROR_EAGAIN) {
			if (armed && interrupted && !half_sent(s))
				break;
			if (ssh_wait(s, deadline) != 0) {
				ssh_timed_out(s, RF_EXIT_UPLOAD, "upload",
					      "an SFTP write", err);
				goto out;
			}
		}
		if (n == LIBSSH2_ERROR_EAGAIN)
			continue; /* interrupted: said at the loop's top */
		if (n < 0) {
			put_error(s, "write", req->path, (int)n, err);
			goto out;
		}
		head += (size_t)n;
		acked += (uint64_t)n;
		if (req->on_progress != NULL)
			req->on_progress(req->arg, acked, req->size);
	}

	if (req->offset > 0) {
		/* A resumed file may have had more than offset bytes. */
		memset(&attrs, 0, sizeof(attrs));
		attrs.flags = LIBSSH2_SFTP_ATTR_SIZE;
		attrs.filesize = req->size;
		deadline = now_ms() + IO_TIMEOUT_MS;
		while ((rc = libssh2_sftp_fsetstat(h, &attrs)) ==
		       LIBSSH2_ERROR_EAGAIN) {
			if (ssh_wait(s, deadline) != 0) {
				ssh_timed_out(s, RF_EXIT_UPLOAD, "upload",
					      "an SFTP setstat", err);
				goto out;
			}
		}
		if (rc != 0) {
			put_error(s, "truncate", req->path, rc, err);
			goto out;
		}
	}
	/*
	 * No fsync: the server checks the upload's SHA-256 before unpacking
	 * it, and throws away a file a crash left short or torn, so a flush
	 * to disk would cost a tenth of a second per deploy and buy nothing.
	 */
	rc = sftp_handle_close(s, h, now_ms() + IO_TIMEOUT_MS);
	h = NULL;
	if (rc != 0) {
		put_error(s, "close", req->path, rc, err);
		goto out;
	}
	r = 0;
out:
	if (h != NULL)
		(void)sftp_handle_close(s, h, now_ms() + GRACE_MS);
	free(buf);
	ssh_blocking(s);
	return r;
}

static int
ssh_file_size(void *impl, const char *path, int64_t *size, struct rf_error *err)
{
	struct ssh *s = impl;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;
	unsigned long fx;
	char text[256];
	int rc, r = -1;

	*size = -1;
	if (ssh_usable(s, RF_EXIT_UPLOAD, "upload", err) != 0)
		return -1;
	ssh_nonblocking(s);
	if (sftp_ready(s, RF_EXIT_UPLOAD, "upload", err) != 0)
		goto out;
	memset(&attrs, 0, sizeof(attrs));
	while ((rc = libssh2_sftp_stat_ex(
		    s->sftp, path, (unsigned int)strlen(path),
		    LIBSSH2_SFTP_STAT, &attrs)) == LIBSSH2_ERROR_EAGAIN) {
		if (ssh_wait(s, deadline) != 0) {
			ssh_timed_out(s, RF_EXIT_UPLOAD, "upload",
				      "an SFTP stat", err);
			goto out;
		}
	}
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		fx = libssh2_sftp_last_error(s->sftp);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE ||
		    fx == LIBSSH2_FX_NO_SUCH_PATH) {
			r = 0;
			goto out;
		}
	}
	if (rc != 0) {
		sftp_errtext(s, rc, text, sizeof(text));
		rf_error_set(err, RF_EXIT_UPLOAD, "upload",
			     "cannot stat '%s': %s", path, text);
		goto out;
	}
	if (!(attrs.flags & LIBSSH2_SFTP_ATTR_SIZE)) {
		rf_error_set(err, RF_EXIT_UPLOAD, "upload",
			     "the server did not say the size of '%s'", path);
		goto out;
	}
	*size = (int64_t)attrs.filesize;
	r = 0;
out:
	ssh_blocking(s);
	return r;
}

static int
ssh_statvfs(void *impl, const char *path, uint64_t *avail, struct rf_error *err)
{
	struct ssh *s = impl;
	LIBSSH2_SFTP_STATVFS st;
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;
	char text[256];
	int rc, r = -1;

	*avail = 0;
	if (ssh_usable(s, RF_EXIT_UPLOAD, "preflight", err) != 0)
		return -1;
	ssh_nonblocking(s);
	if (sftp_ready(s, RF_EXIT_UPLOAD, "preflight", err) != 0)
		goto out;
	memset(&st, 0, sizeof(st));
	while ((rc = libssh2_sftp_statvfs(s->sftp, path, strlen(path), &st)) ==
	       LIBSSH2_ERROR_EAGAIN) {
		if (ssh_wait(s, deadline) != 0) {
			ssh_timed_out(s, RF_EXIT_UPLOAD, "preflight",
				      "an SFTP statvfs", err);
			goto out;
		}
	}
	if (rc != 0) {
		sftp_errtext(s, rc, text, sizeof(text));
		rf_error_set(err, RF_EXIT_UPLOAD, "preflight",
			     "cannot find the free space at '%s': %s", path,
			     text);
		goto out;
	}
	*avail = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	r = 0;
out:
	ssh_blocking(s);
	return r;
}

/* Forward. */

/* Open a direct-tcpip channel to host:port; NULL and err if not. */
static LIBSSH2_CHANNEL *
forward_open(struct ssh *s, const char *host, int port, int64_t deadline,
	     int armed, struct rf_error *err)
{
	LIBSSH2_CHANNEL *ch;
	char text[256];
	int rc;

	switch (channel_open(s, STALE_TCPIP, host, port, deadline, armed, &ch,
			     &rc, err)) {
	case WAIT_DONE:
		return ch;
	case WAIT_TIMEOUT:
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "no answer from %s:%d on %s: the tunnel did not "
			     "open in time",
			     host, port, s->remote.name);
		return NULL;
	case WAIT_INTERRUPTED:
		ssh_interrupted(err);
		return NULL;
	case WAIT_FAILED:
		if (rc == 0) {
			err->code = RF_EXIT_HEALTH;
			err->stage = "health";
			return NULL;
		}
		break;
	}
	ssh_errtext(s->session, text, sizeof(text));
	if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE &&
	    strstr(text, "prohibited") != NULL) {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "the SSH server on %s refuses to open a tunnel to "
			     "%s:%d: %s",
			     s->remote.name, host, port, text);
		err->kind = RF_KIND_CHANNEL_PROHIBITED;
		rf_error_hint(err,
			      "allow TCP forwarding for the deploy user: "
			      "AllowTcpForwarding yes (or local) in %s's "
			      "sshd_config, or permitopen=\"%s:%d\" on its "
			      "key in authorized_keys",
			      s->remote.name, host, port);
	} else if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE) {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "nothing listens on %s:%d on %s (the SSH server "
			     "could not connect)",
			     host, port, s->remote.name);
		err->kind = RF_KIND_CHANNEL_REFUSED;
		rf_error_hint(err,
			      "is the app running on %s? check [health] "
			      "url",
			      s->remote.name);
	} else {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "cannot open a tunnel to %s:%d on %s: %s", host,
			     port, s->remote.name, text);
	}
	return NULL;
}

/* Bytes waiting to go one way through the tunnel. */
struct pipebuf {
	char data[READ_BUF_SIZE];
	size_t off, len;
};

/*
 * Pump bytes between the channel and fd until both directions have ended
 * (EOF from fd is passed on as the channel's EOF, the channel's EOF as
 * shutdown(fd, SHUT_WR)), the local peer has closed its socket, or the
 * deadline passes. fd stays open, its flags untouched (MSG_DONTWAIT).
 */
static int
ssh_forward(void *impl, const char *host, int port, int fd, double timeout,
	    struct rf_error *err)
{
	struct ssh *s = impl;
	LIBSSH2_CHANNEL *ch;
	struct pipebuf *up, *down; /* up: fd to channel; down: the reverse */
	enum pending pending = PEND_NONE;
	int64_t deadline = deadline_after(timeout), hard = NO_DEADLINE;
	int armed = !interrupted, r = -1, progress, want_session;
	int fd_eof = 0, eof_sent = 0, ch_eof = 0, shut = 0, gone = 0;
	short fd_events, revents;
	char text[256];
	ssize_t n;

	if (ssh_usable(s, RF_EXIT_HEALTH, "health", err) != 0)
		return -1;
	ssh_nonblocking(s);
	ch = forward_open(s, host, port, deadline, armed, err);
	if (ch == NULL) {
		ssh_blocking(s);
		return -1;
	}
	up = xcalloc(1, sizeof(*up));
	down = xcalloc(1, sizeof(*down));

	for (;;) {
		if (pending == PEND_NONE) {
			hard = NO_DEADLINE;
			if ((fd_eof && eof_sent && ch_eof && shut) || gone) {
				r = 0;
				break;
			}
			if (armed && interrupted) {
				ssh_interrupted(err);
				break;
			}
			if (deadline != NO_DEADLINE && now_ms() >= deadline) {
				/* One side had finished: the exchange did. */
				if (fd_eof || ch_eof)
					r = 0;
				else
					rf_error_set(err, RF_EXIT_HEALTH,
						     "health",
						     "no answer from %s:%d on "
						     "%s within %g s",
						     host, port, s->remote.name,
						     timeout);
				break;
			}
		} else {
			if (hard == NO_DEADLINE)
				hard = hard_deadline(deadline);
			if (now_ms() >= hard) {
				ssh_break(s, "the server stopped reading");
				rf_error_set(err, RF_EXIT_HEALTH, "health",
					     "%s stopped reading from the SSH "
					     "connection",
					     s->remote.name);
				break;
			}
		}
		progress = 0;

		/* channel -> down */
		if (down->off > 0 && down->off == down->len)
			down->off = down->len = 0;
		if (!ch_eof && down->len < sizeof(down->data) &&
		    (pending == PEND_NONE || pending == PEND_READ)) {
			n = libssh2_channel_read(ch, down->data + down->len,
						 sizeof(down->data) -
						     down->len);
			if (n > 0) {
				down->len += (size_t)n;
				progress = 1;
				pending = PEND_NONE;
			} else if (n == 0) {
				ch_eof = 1;
				progress = 1;
				pending = PEND_NONE;
			} else if (n == LIBSSH2_ERROR_EAGAIN) {
				pending = half_sent(s) ? PEND_READ : PEND_NONE;
			} else {
				ssh_errtext(s->session, text, sizeof(text));
				rf_error_set(
				    err, RF_EXIT_HEALTH, "health",
				    "the tunnel to %s:%d on %s failed: "
				    "%s",
				    host, port, s->remote.name, text);
				break;
			}
		}
		/* down -> fd, then SHUT_WR after the channel's EOF */
		if (down->off < down->len) {
			n = send(fd, down->data + down->off,
				 down->len - down->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				down->off += (size_t)n;
				progress = 1;
			} else if (n == -1 && errno != EAGAIN &&
				   errno != EWOULDBLOCK && errno != EINTR) {
				gone = 1; /* the local peer closed */
			}
		}
		if (ch_eof && down->off == down->len && !shut) {
			(void)shutdown(fd, SHUT_WR);
			shut = 1;
			progress = 1;
		}
		/* fd -> up */
		if (!fd_eof && up->off == up->len) {
			up->off = up->len = 0;
			n = recv(fd, up->data, sizeof(up->data), MSG_DONTWAIT);
			if (n > 0) {
				up->len = (size_t)n;
				progress = 1;
			} else if (n == 0) {
				fd_eof = 1;
				progress = 1;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
				   errno != EINTR) {
				fd_eof = gone = 1;
			}
		}
		/* up -> channel, then EOF */
		if (up->off < up->len &&
		    (pending == PEND_NONE || pending == PEND_WRITE)) {
			n = libssh2_channel_write(ch, up->data + up->off,
						  up->len - up->off);
			if (n >= 0) {
				up->off += (size_t)n;
				progress |= n > 0;
				pending = PEND_NONE;
			} else if (n == LIBSSH2_ERROR_EAGAIN) {
				pending = half_sent(s) ? PEND_WRITE : PEND_NONE;
			} else {
				/* the far end is gone: drop what is left */
				up->off = up->len;
				eof_sent = 1;
				pending = PEND_NONE;
			}
		} else if (fd_eof && up->off == up->len && !eof_sent &&
			   (pending == PEND_NONE || pending == PEND_EOF)) {
			n = libssh2_channel_send_eof(ch);
			if (n == LIBSSH2_ERROR_EAGAIN) {
				pending = half_sent(s) ? PEND_EOF : PEND_NONE;
			} else {
				eof_sent = 1;
				progress = 1;
				pending = PEND_NONE;
			}
		}
		if (progress)
			continue;

		/*
		 * Poll the session only when the next round calls libssh2,
		 * which drains the socket: readable data that nobody reads
		 * would wake poll at once, again and again.
		 */
		want_session = pending != PEND_NONE ||
			       (!ch_eof && down->len < sizeof(down->data)) ||
			       up->off < up->len || (fd_eof && !eof_sent);
		fd_events = 0;
		if (!fd_eof && up->off == up->len)
			fd_events |= POLLIN;
		if (down->off < down->len)
			fd_events |= POLLOUT;
		wait_both(s, want_session, fd, fd_events,
			  pending == PEND_NONE ? deadline : hard, &revents);
		/*
		 * After its EOF, POLLHUP means the local peer closed both
		 * ways (curl is done): no one is left to read an answer.
		 */
		if (fd_eof && (revents & (POLLHUP | POLLERR)))
			gone = 1;
	}

	/*
	 * channel_close sends the EOF that may still be missing. Nothing is
	 * waited for: the exchange is over, and the server's CLOSE, a round
	 * trip away, would only delay the health check's verdict. libssh2
	 * takes it whenever it reads next, and frees the channel with the
	 * session.
	 */
	channel_finish(s, ch, 0, now_ms() + GRACE_MS);
	free(up);
	free(down);
	ssh_blocking(s);
	return r;
}

static void
ssh_close(void *impl)
{
	ssh_free(impl);
}
