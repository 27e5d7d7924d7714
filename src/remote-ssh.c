#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
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
 * include/remote.h over libssh2 1.10 as Debian 12 ships it; the only file
 * that includes the libssh2 headers. ../shared/LIBRARY-NOTES.md sections 1
 * and 2 hold the measured behaviour the comments below refer to.
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
#define PUT_BUF_SIZE (4 * 1024 * 1024)
#define PUT_WINDOW (2 * 1024 * 1024) /* bytes in flight, see section 1 */
#define READ_BUF_SIZE (32 * 1024)
#define KEY_TEXT_MAX (64 * 1024)
#define PASSPHRASE_ENV "RELFLIP_KEY_PASSPHRASE"

/* Kinds of channel open, for one left half done. */
enum {
	STALE_NONE,
	STALE_SESSION, /* libssh2_channel_open_session */
	STALE_TCPIP,   /* libssh2_channel_direct_tcpip_ex */
};

struct ssh {
	struct remote remote; /* what remote_ssh_connect hands out */
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp; /* opened on first use, then kept */
	int sock;
	int stale; /* an open left half done: STALE_SESSION or STALE_TCPIP */
	char broken[256]; /* why the session is unusable, or "" */
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
 * Wait until the socket is ready the way libssh2 last blocked, a signal
 * arrives, or a slice of time passes: 0 to call libssh2 again, -1 once the
 * deadline has passed.
 */
static int
ssh_wait(struct ssh *s, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left = WAIT_SLICE_MS;
	int dir;

	if (deadline != NO_DEADLINE) {
		left = deadline - now_ms();
		if (left <= 0)
			return -1;
		if (left > WAIT_SLICE_MS)
			left = WAIT_SLICE_MS;
	}
	dir = libssh2_session_block_directions(s->session);
	pfd.fd = s->sock;
	/* A half-sent packet goes first; nothing else moves until then. */
	pfd.events = (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) ? POLLOUT : POLLIN;
	pfd.revents = 0;
	/* EINTR is fine: the caller looks at `interrupted`. */
	(void)poll(&pfd, 1, (int)left);
	return 0;
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
	return rf_error_set(err, code, stage, "%s from %s", why,
			    s->remote.name);
}

static int
ssh_interrupted(struct rf_error *err)
{
	return rf_error_set(err, RF_EXIT_INTERRUPTED, NULL, "interrupted");
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
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot connect to %s (%s): cannot resolve %s: %s",
			     s->remote.name, ap, o->address,
			     rc == EAI_SYSTEM ? strerror(errno)
					      : gai_strerror(rc));
		return rf_error_hint(err,
				     "check the address of host '%s' in "
				     "the config",
				     s->remote.name);
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
			return ssh_interrupted(err);
		}
		if (rc == -1) {
			timed_out = 1;
			break;
		}
		why = rc;
	}
	freeaddrinfo(res);
	if (fd == -1 && timed_out) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot connect to %s (%s): timed out after %g s",
			     s->remote.name, ap, o->connect_timeout);
		return rf_error_hint(
		    err,
		    "nothing answered within "
		    "connect_timeout (%g s): check the address, "
		    "the port and firewalls, or raise [ssh] "
		    "connect_timeout",
		    o->connect_timeout);
	}
	if (fd == -1) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
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
 */
static int
kh_load(LIBSSH2_KNOWNHOSTS *kh, const char *path, struct buf *revoked,
	const char *shown, struct rf_error *err)
{
	FILE *f;
	char *line = NULL, *p, *tok[4];
	size_t cap = 0;
	ssize_t n;
	int i;

	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0; /* every key is unknown */
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot read known_hosts %s: %s", shown,
			     strerror(errno));
		return rf_error_hint(err, "check [ssh] known_hosts");
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
			buf_addf(&list, "%s%s", list.len > 0 ? "," : "",
				 keytypes[i].name);
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
 * for "[addr]:port" is a changed key whatever else is listed. A plain entry
 * still vouches for the same key on another port (what libssh2 does; ssh
 * would ask), but its mismatch there only makes the key unknown, as the
 * other port may well be another server.
 */
static enum kh_verdict
kh_check(LIBSSH2_KNOWNHOSTS *kh, const char *addr, int port, const char *key,
	 size_t keylen, int knownhost)
{
	char bracketed[300];
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
		   knownhost;
	int r;

	if (port != 22) {
		snprintf(bracketed, sizeof(bracketed), "[%s]:%d", addr, port);
		r = libssh2_knownhost_checkp(kh, bracketed, -1, key, keylen,
					     mask, NULL);
		if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
			return KH_OK;
		if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
			return KH_CHANGED;
	}
	r = libssh2_knownhost_checkp(kh, addr, -1, key, keylen, mask, NULL);
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return KH_OK;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && port == 22)
		return KH_CHANGED;
	return KH_UNKNOWN;
}

/* Fill info with the key's type and fingerprint, then verify it. */
static int
hostkey_verify(struct ssh *s, const struct ssh_options *o,
	       LIBSSH2_KNOWNHOSTS *kh, const struct buf *revoked,
	       const char *kh_shown, struct ssh_info *info,
	       struct rf_error *err)
{
	const struct keytype *kt = NULL;
	const char *key, *hash;
	char ap[300], b64[64], *blob;
	size_t keylen, i;
	int type, r;
	enum kh_verdict v;

	addr_port(o->address, o->port, ap, sizeof(ap));
	key = libssh2_session_hostkey(s->session, &keylen, &type);
	hash = libssh2_hostkey_hash(s->session, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (key == NULL || hash == NULL)
		return rf_error_set(
		    err, RF_EXIT_CONNECT, "connect",
		    "cannot connect to %s (%s): the server sent "
		    "no host key",
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
		return rf_error_set(err, RF_EXIT_CONNECT, "connect",
				    "host key of %s (%s) has a type libssh2 "
				    "cannot check (%d)",
				    s->remote.name, ap, type);

	blob = xmalloc(keylen * 4 / 3 + 8);
	b64_encode((const unsigned char *)key, keylen, 1, blob,
		   keylen * 4 / 3 + 8);
	r = kh_revoked(revoked, blob);
	free(blob);
	if (r) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "host key of %s (%s) is REVOKED: %s marks %s %s "
			     "@revoked",
			     s->remote.name, ap, kh_shown, kt->name,
			     info->fingerprint);
		return rf_error_hint(err, "do not connect until the server's "
					  "owner has replaced its key");
	}

	v = kh_check(kh, o->address, o->port, key, keylen, kt->knownhost);
	if (v == KH_OK)
		return 0;
	if (v == KH_UNKNOWN) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "host key of %s (%s) is unknown: %s %s is not in "
			     "%s",
			     s->remote.name, ap, kt->name, info->fingerprint,
			     kh_shown);
		return rf_error_hint(err,
				     "check the fingerprint with the "
				     "server's owner, then add the key: "
				     "ssh-keyscan -p %d %s >> %s",
				     o->port, o->address, kh_shown);
	}
	rf_error_set(err, RF_EXIT_CONNECT, "connect",
		     "host key of %s (%s) has CHANGED: the server offered %s "
		     "%s, which %s does not list for it",
		     s->remote.name, ap, kt->name, info->fingerprint, kh_shown);
	if (o->port != 22)
		return rf_error_hint(err,
				     "if the server was rebuilt, run "
				     "ssh-keygen -R '[%s]:%d' -f %s and add "
				     "the new key; if not, someone may be "
				     "intercepting the connection",
				     o->address, o->port, kh_shown);
	return rf_error_hint(err,
			     "if the server was rebuilt, run ssh-keygen "
			     "-R %s -f %s and add the new key; if not, someone "
			     "may be intercepting the connection",
			     o->address, kh_shown);
}

/* Connecting: the handshake. */

static int
handshake(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	  int armed, struct rf_error *err)
{
	char ap[300], text[256];
	int rc;

	addr_port(o->address, o->port, ap, sizeof(ap));
	while ((rc = libssh2_session_handshake(s->session, s->sock)) ==
	       LIBSSH2_ERROR_EAGAIN) {
		if (armed && interrupted)
			return ssh_interrupted(err);
		if (ssh_wait(s, deadline) != 0) {
			rf_error_set(err, RF_EXIT_CONNECT, "connect",
				     "cannot connect to %s (%s): timed out "
				     "after %g s",
				     s->remote.name, ap, o->connect_timeout);
			return rf_error_hint(
			    err,
			    "the server accepted the connection but sent "
			    "no SSH greeting within connect_timeout (%g s): is "
			    "it sshd on port %d? raise [ssh] connect_timeout "
			    "if "
			    "it is slow",
			    o->connect_timeout, o->port);
		}
	}
	if (rc == 0)
		return 0;
	ssh_errtext(s->session, text, sizeof(text));
	rf_error_set(err, RF_EXIT_CONNECT, "connect",
		     "cannot connect to %s (%s): SSH handshake failed: %s",
		     s->remote.name, ap, text);
	if (rc == LIBSSH2_ERROR_KEX_FAILURE ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED)
		return rf_error_hint(err,
				     "libssh2 1.10 needs an ed25519 or "
				     "ECDSA host key, aes*-ctr and hmac-sha2 "
				     "on the server");
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

static int
rsa_refused(const char *keyname, struct rf_error *err)
{
	rf_error_set(err, RF_EXIT_CONNECT, "connect",
		     "RSA key %s cannot be used: libssh2 1.10 signs only with "
		     "ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse",
		     keyname);
	return rf_error_hint(err, "use an ed25519 or ECDSA key: ssh-keygen "
				  "-t ed25519");
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
			ssh_interrupted(err);
			return AUTH_STOP;
		}
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "authentication as %s on %s failed: timed out "
			     "after %g s",
			     o->user, s->remote.name, o->connect_timeout);
		return AUTH_STOP;
	}
	ssh_errtext(s->session, text, sizeof(text));
	if (rc == LIBSSH2_ERROR_FILE ||
	    rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot use the key %s: %s", keyname, text);
		rf_error_hint(err,
			      "if it has a passphrase, set %s; libssh2 "
			      "1.10 reads OpenSSH and PEM keys, not RFC 4716 "
			      "ones",
			      PASSPHRASE_ENV);
		return AUTH_NEXT;
	}
	rf_error_set(err, RF_EXIT_CONNECT, "connect",
		     "authentication as %s on %s failed: %s", o->user,
		     s->remote.name, text);
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		rf_error_hint(
		    err,
		    "the server did not accept the key %s: add "
		    "its public key to ~%s/.ssh/authorized_keys on %s",
		    keyname, o->user, s->remote.name);
		return AUTH_NEXT;
	}
	return AUTH_STOP; /* the connection itself failed */
}

/* Authenticate with a key file. */
static enum auth_result
auth_file(struct ssh *s, const struct ssh_options *o, const char *path,
	  const char *shown, int64_t deadline, int armed, struct rf_error *err)
{
	const char *pass = getenv(PASSPHRASE_ENV);
	int rc;

	if (access(path, R_OK) != 0) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot read the key file %s: %s", shown,
			     strerror(errno));
		rf_error_hint(err, "check [ssh] identity");
		return AUTH_STOP;
	}
	if (key_file_is_rsa(path)) {
		rsa_refused(shown, err);
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
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
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
	key_text_type(text, type, sizeof(type));
	if (strcmp(type, "ssh-rsa") == 0) {
		explicit_bzero(text, len);
		free(text);
		rsa_refused(keyname, err);
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
 * Authenticate with each identity ssh-agent holds, RSA ones skipped. Sets
 * *rsa_seen when an RSA identity was skipped, *tried when one was offered.
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
		if (strcmp(type, "ssh-rsa") == 0) {
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
 * Authenticate: identity_env, else the identity file, else each key in
 * ssh-agent and then ~/.ssh/id_ed25519 and ~/.ssh/id_ecdsa.
 */
static int
authenticate(struct ssh *s, const struct ssh_options *o, int64_t deadline,
	     int armed, struct ssh_info *info, struct rf_error *err)
{
	static const char *const defaults[] = { "~/.ssh/id_ed25519",
						"~/.ssh/id_ecdsa" };
	char *methods, *path, rsa_name[128], text[256];
	enum auth_result ar;
	int rsa_seen = 0, tried = 0;
	size_t i;

	while ((methods = libssh2_userauth_list(
		    s->session, o->user, (unsigned int)strlen(o->user))) ==
	       NULL) {
		if (libssh2_userauth_authenticated(s->session)) {
			snprintf(info->auth, sizeof(info->auth), "none");
			return 0;
		}
		if (libssh2_session_last_errno(s->session) !=
		    LIBSSH2_ERROR_EAGAIN) {
			ssh_errtext(s->session, text, sizeof(text));
			return rf_error_set(
			    err, RF_EXIT_CONNECT, "connect",
			    "authentication as %s on %s failed: "
			    "%s",
			    o->user, s->remote.name, text);
		}
		if (armed && interrupted)
			return ssh_interrupted(err);
		if (ssh_wait(s, deadline) != 0)
			return rf_error_set(
			    err, RF_EXIT_CONNECT, "connect",
			    "authentication as %s on %s failed: "
			    "timed out after %g s",
			    o->user, s->remote.name, o->connect_timeout);
	}
	if (strstr(methods, "publickey") == NULL) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "authentication as %s on %s failed: the server "
			     "does not take public keys (it offers: %s)",
			     o->user, s->remote.name, methods);
		return rf_error_hint(err,
				     "enable PubkeyAuthentication for %s "
				     "in the server's sshd_config",
				     o->user);
	}

	if (o->identity_env != NULL && *o->identity_env != '\0') {
		if (auth_env(s, o, deadline, armed, err) != AUTH_OK)
			return -1;
		snprintf(info->auth, sizeof(info->auth), "identity_env");
		return 0;
	}
	if (o->identity != NULL && *o->identity != '\0') {
		path = expand_home(o->identity);
		ar = auth_file(s, o, path, o->identity, deadline, armed, err);
		free(path);
		if (ar != AUTH_OK)
			return -1;
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
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		path = expand_home(defaults[i]);
		if (access(path, F_OK) != 0) {
			free(path);
			continue;
		}
		if (key_file_is_rsa(path)) {
			if (!rsa_seen)
				snprintf(rsa_name, sizeof(rsa_name), "%s",
					 defaults[i]);
			rsa_seen = 1;
			free(path);
			continue;
		}
		tried = 1;
		ar = auth_file(s, o, path, defaults[i], deadline, armed, err);
		free(path);
		if (ar == AUTH_OK) {
			snprintf(info->auth, sizeof(info->auth), "key file");
			return 0;
		}
		if (ar == AUTH_STOP)
			return -1;
	}
	if (tried)
		return -1; /* err holds the last key's failure */
	if (rsa_seen)
		return rsa_refused(rsa_name, err);
	rf_error_set(err, RF_EXIT_CONNECT, "connect",
		     "authentication as %s on %s failed: no key to offer",
		     o->user, s->remote.name);
	return rf_error_hint(err, "set [ssh] identity or identity_env, or "
				  "load an ed25519 key into ssh-agent");
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
	free(s);
}

int
remote_ssh_global_init(void)
{
	static int done;

	if (done)
		return 0;
	if (libssh2_init(0) != 0)
		return -1;
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
	struct buf revoked = BUF_INIT;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char *kh_path, bracketed[300];
	int64_t t0 = now_ms(), deadline;
	int armed = !interrupted;

	*out = NULL;
	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	if (o.address == NULL || *o.address == '\0') {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "host %s has no address",
			     o.name != NULL ? o.name : "?");
		rf_error_host(err, o.name);
		return -1;
	}
	if (o.port <= 0)
		o.port = 22;
	if (o.user == NULL || *o.user == '\0')
		o.user = getenv("USER") != NULL ? getenv("USER") : "root";
	if (o.known_hosts == NULL || *o.known_hosts == '\0')
		o.known_hosts = "~/.ssh/known_hosts";
	if (o.name == NULL)
		o.name = o.address;

	s = xcalloc(1, sizeof(*s));
	s->sock = -1;
	s->remote.ops = &ssh_ops;
	s->remote.impl = s;
	snprintf(s->remote.name, sizeof(s->remote.name), "%s", o.name);
	kh_path = expand_home(o.known_hosts);

	deadline = deadline_after(o.connect_timeout);
	if (tcp_connect(s, &o, deadline, armed, err) != 0)
		goto fail;

	s->session = libssh2_session_init();
	if (s->session == NULL) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot start an SSH session for %s",
			     s->remote.name);
		goto fail;
	}
	ssh_nonblocking(s);
	kh = libssh2_knownhost_init(s->session);
	if (kh == NULL) {
		rf_error_set(err, RF_EXIT_CONNECT, "connect",
			     "cannot start libssh2's known_hosts check");
		goto fail;
	}
	if (kh_load(kh, kh_path, &revoked, o.known_hosts, err) != 0)
		goto fail;
	if (o.port != 22)
		snprintf(bracketed, sizeof(bracketed), "[%s]:%d", o.address,
			 o.port);
	kh_prefer(s->session, kh, o.port != 22 ? bracketed : NULL, o.address);

	if (handshake(s, &o, deadline, armed, err) != 0)
		goto fail;
	if (hostkey_verify(s, &o, kh, &revoked, o.known_hosts, info, err) != 0)
		goto fail;
	libssh2_knownhost_free(kh);
	kh = NULL;

	/* Authentication gets a connect_timeout of its own. */
	if (authenticate(s, &o, deadline_after(o.connect_timeout), armed, info,
			 err) != 0)
		goto fail;

	ssh_blocking(s);
	info->connect_ms = (double)(now_ms() - t0);
	buf_release(&revoked);
	free(kh_path);
	*out = &s->remote;
	return 0;

fail:
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	buf_release(&revoked);
	free(kh_path);
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
 * Whether to stop waiting for a request now: only between calls (never
 * with a packet half sent), once the caller's deadline or the I/O timeout
 * has passed or a signal has arrived.
 */
static enum wait_end
request_stop(struct ssh *s, int64_t deadline, int64_t io, int armed,
	     const char *what, struct rf_error *err)
{
	if (half_sent(s))
		return WAIT_DONE;
	if (armed && interrupted)
		return WAIT_INTERRUPTED;
	if (now_ms() >= deadline)
		return WAIT_TIMEOUT;
	if (now_ms() >= io) {
		ssh_timed_out(s, RF_EXIT_CONNECT, NULL, what, err);
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
		end = request_stop(s, deadline, io, armed, "a channel request",
				   err);
		if (end != WAIT_DONE)
			return end;
		if (ssh_wait(s, hard_deadline(io < deadline ? io : deadline)) !=
		    0) {
			ssh_break(s, "the server stopped reading");
			rf_error_set(err, RF_EXIT_CONNECT, NULL,
				     "%s stopped reading from the SSH "
				     "connection",
				     s->remote.name);
			return WAIT_FAILED;
		}
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
		end = request_stop(s, deadline, io, armed, "a channel request",
				   err);
		if (end != WAIT_DONE) {
			if (end != WAIT_FAILED)
				s->stale = kind;
			return end;
		}
		if (ssh_wait(s, hard_deadline(io < deadline ? io : deadline)) !=
		    0) {
			ssh_break(s, "the server stopped reading");
			rf_error_set(err, RF_EXIT_CONNECT, NULL,
				     "%s stopped reading from the SSH "
				     "connection",
				     s->remote.name);
			return WAIT_FAILED;
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
		pfd[n].fd = s->sock;
		pfd[n].events = half_sent(s) ? POLLOUT : POLLIN;
		pfd[n].revents = 0;
		n++;
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
		end = request_stop(s, deadline, io, armed, "an exec request",
				   err);
		if (end != WAIT_DONE) {
			channel_finish(s, ch, 0, now_ms() + GRACE_MS);
			return end;
		}
		if (ssh_wait(s, hard_deadline(io < deadline ? io : deadline)) !=
		    0) {
			ssh_break(s, "the server stopped reading");
			rf_error_set(err, RF_EXIT_CONNECT, NULL,
				     "%s stopped reading from the SSH "
				     "connection",
				     s->remote.name);
			channel_finish(s, ch, 0, now_ms() + GRACE_MS);
			return WAIT_FAILED;
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
	int64_t hard = NO_DEADLINE;
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
		if (!progress && !res->done)
			wait_both(s, 1, -1, 0,
				  pending == PEND_NONE ? deadline : hard, NULL);
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
			ssh_errtext(s->session, text, sizeof(text));
			rf_error_set(err, code, stage,
				     "cannot start SFTP on %s: %s",
				     s->remote.name, text);
			return rf_error_hint(err,
					     "the server needs an SFTP "
					     "subsystem: Subsystem sftp in "
					     "sshd_config");
		}
		if (ssh_wait(s, deadline) != 0)
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
	size_t head = 0, tail = 0, want, chunk;
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
	buf = xmalloc(PUT_BUF_SIZE);
	if (req->on_progress != NULL)
		req->on_progress(req->arg, acked, req->size);

	while (acked < req->size) {
		if (armed && interrupted) {
			/* The partial file stays, for a later run to resume. */
			ssh_interrupted(err);
			goto out;
		}
		if (tail - head < PUT_WINDOW && filepos < req->size) {
			if (tail == PUT_BUF_SIZE) {
				memmove(buf, buf + head, tail - head);
				tail -= head;
				head = 0;
			}
			want = PUT_BUF_SIZE - tail;
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
		chunk = tail - head < PUT_WINDOW ? tail - head : PUT_WINDOW;
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
		rf_error_hint(err, "allow it in the server's sshd_config: "
				   "AllowTcpForwarding local");
	} else if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE) {
		rf_error_set(err, RF_EXIT_HEALTH, "health",
			     "nothing listens on %s:%d on %s (the SSH server "
			     "could not connect)",
			     host, port, s->remote.name);
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

	/* channel_close sends the EOF that may still be missing. */
	channel_finish(s, ch, r == 0, now_ms() + GRACE_MS);
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
