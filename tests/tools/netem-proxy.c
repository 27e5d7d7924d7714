/*
 * netem-proxy: a WAN-shaped, fault-injecting TCP proxy for relflip's tests.
 *
 *   netem-proxy --listen ADDR:PORT --to HOST:PORT [--delay-ms N]
 *       [--rate-mbit R] [--control FIFO] [--state-file F] [--pidfile F]
 *       [--ready-file F] [--lifetime S] [-v]
 *
 * Each accepted connection is forwarded to the target. In each direction
 * every byte is held for --delay-ms (one-way: 25 gives a 50 ms round trip)
 * and then paced by a token bucket to --rate-mbit, per direction and per
 * connection, as `tc qdisc add ... netem delay 25ms rate 100mbit` would. The
 * TCP handshakes themselves are not delayed: the first bytes are.
 *
 * Faults, at run time, by a line written to the control FIFO or a signal:
 *   cut        (SIGUSR1) reset every connection at once (RST both ways)
 *   blackhole  (SIGUSR2) forward nothing, read nothing, keep the sockets:
 *              the peers hang until their own timeouts; new connections
 *              are accepted and held, unconnected, too
 *   refuse     close the listening socket: new connections are refused
 *   resume     (SIGHUP) back to normal: forward, accept (held connections
 *              are connected now)
 *   accept     listen again (undo refuse only)
 *   delay MS, rate MBIT   change the shaping for every connection
 * After each command, and whenever the number of connections changes, the
 * state file is rewritten (atomically) with
 * "seq=N mode=forward|blackhole listen=on|off conns=N delay_ms=N
 * rate_mbit=R accepted=N cuts=N", so a test can wait for seq to reach the
 * number of commands it sent. SIGTERM or SIGINT: close everything, remove
 * the pid, ready and state files and the FIFO, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX (64 * 1024)
/*
 * Read a side again only when this much room is free, and write once the
 * bucket holds a quantum: a queue kept just under its cap otherwise moves
 * in reads and sends of a few hundred bytes, each its own segment (4 MiB at
 * 10 Mbit/s took 32,000 sends and a core).
 */
#define READ_MIN (16 * 1024)
#define QUEUE_MARGIN (256 * 1024)
#define QUEUE_UNSHAPED (4 * 1024 * 1024)
#define QUEUE_LIMIT (64 * 1024 * 1024)
#define CTL_LINE_MAX 256
#define NS_PER_S 1000000000LL

struct chunk {
	struct chunk *next;
	int64_t arrival; /* ns, CLOCK_MONOTONIC */
	size_t len, off;
	char data[];
};

/* One direction of a connection: bytes read from `from`, written to `to`. */
struct dir {
	struct chunk *head, *tail;
	size_t queued;
	int eof;          /* `from` said EOF */
	int64_t eof_time; /* when it did: the FIN is delayed like data */
	int shut;         /* shutdown(to, SHUT_WR) done */
	double tokens;    /* bytes */
	int64_t refilled; /* ns of the last refill */
};

enum conn_state { CONN_HELD, CONN_CONNECTING, CONN_OPEN };

struct conn {
	int cfd, sfd; /* client side, server (target) side */
	enum conn_state state;
	struct dir up;   /* client -> target */
	struct dir down; /* target -> client */
	int dead;
};

struct proxy {
	struct sockaddr_storage listen_addr, to_addr;
	socklen_t listen_len, to_len;
	int lfd;
	int ctlfd;
	char ctlbuf[CTL_LINE_MAX];
	size_t ctllen;
	int sigpipe[2];
	struct conn **conns;
	size_t nconns, capconns;
	int64_t delay_ns;
	double rate_bps; /* bytes per second; 0: unshaped */
	int blackhole;
	unsigned long seq, accepted, cuts;
	const char *ctl_path, *state_path, *pid_path, *ready_path;
	int verbose;
};

static int sig_wfd = -1;

static void logmsg(const struct proxy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logmsg(const struct proxy *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->verbose)
		return;
	va_start(ap, fmt);
	fputs("netem-proxy: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("netem-proxy: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* The self-pipe carries the signal's number to the poll loop. */
static void
on_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;
	ssize_t r;

	r = write(sig_wfd, &c, 1);
	(void)r; /* a full pipe wakes poll() all the same */
	errno = saved;
}

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		die("fcntl: %s", strerror(errno));
}

/* HOST:PORT or [V6]:PORT to an address; exits 2 with the reason. */
static void
parse_addr(const char *what, const char *spec, int passive,
	   struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon, *port, *h = spec;
	size_t hl;
	struct addrinfo hints, *res = NULL;
	int r;

	colon = strrchr(spec, ':');
	if (colon == NULL || colon[1] == '\0')
		die("%s '%s': expected HOST:PORT", what, spec);
	port = colon + 1;
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		h = spec + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		die("%s '%s': expected HOST:PORT", what, spec);
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		die("%s '%s': %s", what, spec, gai_strerror(r));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
}

static int
addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Write TEXT to PATH through a temporary file and rename(2). */
static int
write_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;
	int n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static size_t
live_conns(const struct proxy *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->nconns; i++)
		if (!p->conns[i]->dead)
			n++;
	return n;
}

static void
write_state(struct proxy *p)
{
	char text[512];

	if (p->state_path == NULL)
		return;
	snprintf(text, sizeof(text),
		 "seq=%lu mode=%s listen=%s conns=%zu delay_ms=%lld "
		 "rate_mbit=%g accepted=%lu cuts=%lu\n",
		 p->seq, p->blackhole ? "blackhole" : "forward",
		 p->lfd >= 0 ? "on" : "off", live_conns(p),
		 (long long)(p->delay_ns / 1000000), p->rate_bps * 8 / 1e6,
		 p->accepted, p->cuts);
	if (write_atomic(p->state_path, text) != 0)
		fprintf(stderr, "netem-proxy: warning: cannot write %s: %s\n",
			p->state_path, strerror(errno));
}

static int
open_listener(struct proxy *p)
{
	int fd, one = 1;

	fd = socket(p->listen_addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&p->listen_addr, p->listen_len) != 0 ||
	    listen(fd, 128) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	set_nonblock(fd);
	/* Port 0 on the first bind: keep the port the kernel chose. */
	p->listen_len = sizeof(p->listen_addr);
	getsockname(fd, (struct sockaddr *)&p->listen_addr, &p->listen_len);
	return fd;
}

/* Bytes a direction may queue: one bandwidth-delay product plus a margin. */
static size_t
queue_cap(const struct proxy *p)
{
	double bdp;

	if (p->rate_bps <= 0)
		return QUEUE_UNSHAPED;
	bdp = p->rate_bps * (double)p->delay_ns / NS_PER_S;
	if (bdp > QUEUE_LIMIT)
		bdp = QUEUE_LIMIT;
	return (size_t)bdp + QUEUE_MARGIN;
}

/*
 * The bucket: 20 ms of traffic (at least 16 KiB), so that a wake-up late by
 * less than that on a loaded machine loses no rate.
 */
static double
bucket_size(const struct proxy *p)
{
	double b = p->rate_bps * 0.02;

	return b < 16384 ? 16384 : b;
}

/* What to wait for before writing again once the bucket ran dry. */
static double
bucket_quantum(const struct proxy *p)
{
	double q = p->rate_bps * 0.001;

	if (q < 1448)
		q = 1448;
	if (q > 16384)
		q = 16384;
	return q;
}

/* The tokens a write waits for: a quantum, or all that is queued. */
static double
send_min(const struct proxy *p, const struct dir *d)
{
	double q = bucket_quantum(p);

	return (double)d->queued < q ? (double)d->queued : q;
}

static void
refill(const struct proxy *p, struct dir *d, int64_t now)
{
	double cap = bucket_size(p);

	if (p->rate_bps <= 0)
		return;
	d->tokens += p->rate_bps * (double)(now - d->refilled) / NS_PER_S;
	if (d->tokens > cap)
		d->tokens = cap;
	d->refilled = now;
}

static void
dir_init(const struct proxy *p, struct dir *d)
{
	memset(d, 0, sizeof(*d));
	d->refilled = now_ns();
	d->tokens = bucket_size(p);
}

static void
dir_free(struct dir *d)
{
	struct chunk *c, *next;

	for (c = d->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	d->head = d->tail = NULL;
	d->queued = 0;
}

/* Close a socket so that the peer sees a reset, not an orderly FIN. */
static void
close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void
conn_kill(struct conn *c, int rst)
{
	if (c->dead)
		return;
	if (rst) {
		close_rst(c->cfd);
		close_rst(c->sfd);
	} else {
		if (c->cfd >= 0)
			close(c->cfd);
		if (c->sfd >= 0)
			close(c->sfd);
	}
	c->cfd = c->sfd = -1;
	dir_free(&c->up);
	dir_free(&c->down);
	c->dead = 1;
}

static void
conn_connect(struct proxy *p, struct conn *c)
{
	int fd, one = 1;

	fd = socket(p->to_addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		logmsg(p, "socket: %s", strerror(errno));
		conn_kill(c, 1);
		return;
	}
	set_nonblock(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->sfd = fd;
	if (connect(fd, (struct sockaddr *)&p->to_addr, p->to_len) == 0) {
		c->state = CONN_OPEN;
	} else if (errno == EINPROGRESS) {
		c->state = CONN_CONNECTING;
	} else {
		logmsg(p, "connect to target: %s", strerror(errno));
		conn_kill(c, 1);
	}
}

static void
accept_one(struct proxy *p)
{
	struct conn *c;
	int fd, one = 1;

	fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return;
	set_nonblock(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->cfd = fd;
	c->sfd = -1;
	c->state = CONN_HELD;
	dir_init(p, &c->up);
	dir_init(p, &c->down);
	if (p->nconns == p->capconns) {
		size_t n = p->capconns ? p->capconns * 2 : 16;
		struct conn **a = realloc(p->conns, n * sizeof(*a));

		if (a == NULL)
			die("out of memory");
		p->conns = a;
		p->capconns = n;
	}
	p->conns[p->nconns++] = c;
	p->accepted++;
	logmsg(p, "accepted connection %lu", p->accepted);
	if (!p->blackhole)
		conn_connect(p, c);
	write_state(p);
}

/* Read what `from` has into d's queue; 0 on EOF, -1 on a reset. */
static int
dir_read(struct proxy *p, struct dir *d, int from, int64_t now)
{
	size_t room = queue_cap(p) - d->queued;
	struct chunk *ch;
	ssize_t n;

	if (room > CHUNK_MAX)
		room = CHUNK_MAX;
	ch = malloc(sizeof(*ch) + room);
	if (ch == NULL)
		die("out of memory");
	n = recv(from, ch->data, room, 0);
	if (n <= 0) {
		free(ch);
		if (n == 0) {
			d->eof = 1;
			d->eof_time = now;
			return 0;
		}
		return (errno == EAGAIN || errno == EINTR) ? 1 : -1;
	}
	ch->next = NULL;
	ch->arrival = now;
	ch->len = (size_t)n;
	ch->off = 0;
	if (d->tail != NULL)
		d->tail->next = ch;
	else
		d->head = ch;
	d->tail = ch;
	d->queued += (size_t)n;
	return 1;
}

/*
 * Write d's due bytes to `to`, as far as the bucket and the socket allow.
 * -1 when the peer is gone.
 */
static int
dir_write(struct proxy *p, struct dir *d, int to, int64_t now)
{
	refill(p, d, now);
	while (d->head != NULL && d->head->arrival + p->delay_ns <= now) {
		struct chunk *ch = d->head;
		size_t want = ch->len - ch->off;
		ssize_t n;

		if (p->rate_bps > 0) {
			if (d->tokens < 1 || d->tokens < send_min(p, d))
				break;
			if ((double)want > d->tokens)
				want = (size_t)d->tokens;
		}
		n = send(to, ch->data + ch->off, want, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		ch->off += (size_t)n;
		d->queued -= (size_t)n;
		if (p->rate_bps > 0)
			d->tokens -= (double)n;
		if (ch->off == ch->len) {
			d->head = ch->next;
			if (d->head == NULL)
				d->tail = NULL;
			free(ch);
		}
		if ((size_t)n < want)
			break;
	}
	/* Forward the FIN once the data before it went, and its delay ran. */
	if (d->eof && !d->shut && d->head == NULL &&
	    d->eof_time + p->delay_ns <= now) {
		shutdown(to, SHUT_WR);
		d->shut = 1;
	}
	return 0;
}

/* Does d have bytes to write now (due, and tokens for them)? */
static int
dir_ready(const struct proxy *p, struct dir *d, int64_t now)
{
	if (d->head == NULL)
		return d->eof && !d->shut && d->eof_time + p->delay_ns <= now;
	if (d->head->arrival + p->delay_ns > now)
		return 0;
	refill(p, d, now);
	return p->rate_bps <= 0 || d->tokens >= send_min(p, d);
}

/* The next time d has something to do without any socket event; -1: none. */
static int64_t
dir_next(const struct proxy *p, const struct dir *d, int64_t now)
{
	int64_t due;
	double need;

	if (d->head == NULL) {
		if (d->eof && !d->shut)
			return d->eof_time + p->delay_ns;
		return -1;
	}
	due = d->head->arrival + p->delay_ns;
	if (due > now)
		return due;
	if (p->rate_bps <= 0 || d->tokens >= send_min(p, d))
		return -1; /* waiting for POLLOUT */
	need = send_min(p, d) - d->tokens;
	return now + (int64_t)ceil(need / p->rate_bps * NS_PER_S);
}

static void
cut_all(struct proxy *p)
{
	size_t i;

	for (i = 0; i < p->nconns; i++)
		conn_kill(p->conns[i], 1);
	p->cuts++;
	logmsg(p, "cut: every connection reset");
}

static void
set_blackhole(struct proxy *p, int on)
{
	size_t i;

	p->blackhole = on;
	if (on)
		return;
	for (i = 0; i < p->nconns; i++) {
		struct conn *c = p->conns[i];
		int64_t now = now_ns();

		if (c->dead)
			continue;
		/* The bucket does not fill up while nothing may flow. */
		c->up.refilled = c->down.refilled = now;
		if (c->state == CONN_HELD)
			conn_connect(p, c);
	}
}

static void
set_listen(struct proxy *p, int on)
{
	if (on && p->lfd < 0) {
		p->lfd = open_listener(p);
		if (p->lfd < 0)
			fprintf(stderr,
				"netem-proxy: warning: cannot listen on port "
				"%d again: %s\n",
				addr_port(&p->listen_addr), strerror(errno));
	} else if (!on && p->lfd >= 0) {
		close(p->lfd);
		p->lfd = -1;
	}
}

static void
control_line(struct proxy *p, char *line)
{
	char *arg, *end;
	double v;

	while (*line == ' ' || *line == '\t')
		line++;
	arg = strchr(line, ' ');
	if (arg != NULL)
		*arg++ = '\0';
	if (*line == '\0')
		return;
	if (strcmp(line, "cut") == 0) {
		cut_all(p);
	} else if (strcmp(line, "blackhole") == 0) {
		set_blackhole(p, 1);
	} else if (strcmp(line, "resume") == 0) {
		set_listen(p, 1);
		set_blackhole(p, 0);
	} else if (strcmp(line, "refuse") == 0) {
		set_listen(p, 0);
	} else if (strcmp(line, "accept") == 0) {
		set_listen(p, 1);
	} else if (strcmp(line, "delay") == 0 || strcmp(line, "rate") == 0) {
		errno = 0;
		v = arg != NULL ? strtod(arg, &end) : -1;
		if (arg == NULL || errno != 0 || end == arg || *end != '\0' ||
		    v < 0 || v > 1e6) {
			fprintf(stderr,
				"netem-proxy: warning: control: '%s' needs a "
				"number from 0 to 1000000\n",
				line);
		} else if (line[0] == 'd') {
			p->delay_ns = (int64_t)(v * 1e6);
		} else {
			p->rate_bps = v * 1e6 / 8;
		}
	} else {
		fprintf(stderr,
			"netem-proxy: warning: control: unknown command '%s' "
			"(cut, blackhole, resume, refuse, accept, delay MS, "
			"rate MBIT)\n",
			line);
	}
	p->seq++;
	logmsg(p, "control: %s -> seq %lu", line, p->seq);
	write_state(p);
}

static void
control_read(struct proxy *p)
{
	char buf[512];
	ssize_t n;
	size_t i;

	n = read(p->ctlfd, buf, sizeof(buf));
	if (n <= 0)
		return;
	for (i = 0; i < (size_t)n; i++) {
		if (buf[i] == '\n') {
			p->ctlbuf[p->ctllen] = '\0';
			control_line(p, p->ctlbuf);
			p->ctllen = 0;
		} else if (p->ctllen + 1 < sizeof(p->ctlbuf)) {
			p->ctlbuf[p->ctllen++] = buf[i];
		}
	}
}

/* Returns 1 when the proxy should stop. */
static int
signals_read(struct proxy *p)
{
	unsigned char sigs[64];
	ssize_t n, i;
	int stop = 0;

	n = read(p->sigpipe[0], sigs, sizeof(sigs));
	for (i = 0; i < n; i++) {
		switch (sigs[i]) {
		case SIGUSR1:
			control_line(p, (char[]){ "cut" });
			break;
		case SIGUSR2:
			control_line(p, (char[]){ "blackhole" });
			break;
		case SIGHUP:
			control_line(p, (char[]){ "resume" });
			break;
		default:
			stop = 1;
		}
	}
	return stop;
}

/* Drop dead connections from the table; the state file shows the count. */
static void
reap(struct proxy *p)
{
	size_t i, j = 0;

	for (i = 0; i < p->nconns; i++) {
		if (p->conns[i]->dead)
			free(p->conns[i]);
		else
			p->conns[j++] = p->conns[i];
	}
	if (j != p->nconns) {
		p->nconns = j;
		write_state(p);
	}
}

static void
conn_events(struct proxy *p, struct conn *c, struct pollfd *pc,
	    struct pollfd *ps, int64_t now)
{
	size_t cap = queue_cap(p);
	short ce = 0, se = 0;

	pc->fd = -1;
	ps->fd = -1;
	pc->events = ps->events = 0;
	if (c->dead || p->blackhole || c->state == CONN_HELD)
		return;
	if (c->state == CONN_CONNECTING) {
		ps->fd = c->sfd;
		ps->events = POLLOUT;
		return;
	}
	if (!c->up.eof && c->up.queued + READ_MIN <= cap)
		ce |= POLLIN;
	if (!c->down.eof && c->down.queued + READ_MIN <= cap)
		se |= POLLIN;
	if (dir_ready(p, &c->up, now))
		se |= POLLOUT;
	if (dir_ready(p, &c->down, now))
		ce |= POLLOUT;
	/* An fd with nothing wanted is left out: POLLHUP would spin. */
	if (ce != 0) {
		pc->fd = c->cfd;
		pc->events = ce;
	}
	if (se != 0) {
		ps->fd = c->sfd;
		ps->events = se;
	}
}

static void
conn_handle(struct proxy *p, struct conn *c, const struct pollfd *pc,
	    const struct pollfd *ps, int64_t now)
{
	if (c->dead || p->blackhole)
		return;
	if (c->state == CONN_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (ps->revents == 0)
			return;
		getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr != 0) {
			logmsg(p, "connect to target: %s", strerror(soerr));
			conn_kill(c, 1);
			return;
		}
		c->state = CONN_OPEN;
		return;
	}
	if (c->state != CONN_OPEN)
		return;
	if ((pc->revents | ps->revents) & POLLERR) {
		logmsg(p, "connection reset by a peer");
		conn_kill(c, 1);
		return;
	}
	if ((pc->revents & (POLLIN | POLLHUP)) && (pc->events & POLLIN) &&
	    dir_read(p, &c->up, c->cfd, now) < 0) {
		conn_kill(c, 1);
		return;
	}
	if ((ps->revents & (POLLIN | POLLHUP)) && (ps->events & POLLIN) &&
	    dir_read(p, &c->down, c->sfd, now) < 0) {
		conn_kill(c, 1);
		return;
	}
	/* Timers expire without a socket event: try both ways each round. */
	if (dir_write(p, &c->up, c->sfd, now) < 0 ||
	    dir_write(p, &c->down, c->cfd, now) < 0) {
		conn_kill(c, 1);
		return;
	}
	if (c->up.shut && c->down.shut)
		conn_kill(c, 0);
}

static void
run(struct proxy *p, int64_t deadline)
{
	struct pollfd *fds = NULL;
	size_t capfds = 0;

	for (;;) {
		size_t i, n, base;
		int64_t now = now_ns(), next = deadline;
		struct timespec ts, *tsp = NULL;

		reap(p);
		n = 3 + 2 * p->nconns;
		if (n > capfds) {
			free(fds);
			capfds = n * 2;
			fds = xcalloc(capfds, sizeof(*fds));
		}
		fds[0].fd = p->sigpipe[0];
		fds[0].events = POLLIN;
		fds[1].fd = p->ctlfd;
		fds[1].events = POLLIN;
		fds[2].fd = p->lfd;
		fds[2].events = POLLIN;
		base = 3;
		for (i = 0; i < p->nconns; i++) {
			struct conn *c = p->conns[i];

			conn_events(p, c, &fds[base + 2 * i],
				    &fds[base + 2 * i + 1], now);
			if (!c->dead && !p->blackhole &&
			    c->state == CONN_OPEN) {
				int64_t t1 = dir_next(p, &c->up, now);
				int64_t t2 = dir_next(p, &c->down, now);

				if (t1 >= 0 && (next < 0 || t1 < next))
					next = t1;
				if (t2 >= 0 && (next < 0 || t2 < next))
					next = t2;
			}
		}
		if (next >= 0) {
			int64_t wait = next - now;

			if (wait < 0)
				wait = 0;
			ts.tv_sec = wait / NS_PER_S;
			ts.tv_nsec = wait % NS_PER_S;
			tsp = &ts;
		}
		fds[0].revents = fds[1].revents = fds[2].revents = 0;
		if (ppoll(fds, n, tsp, NULL) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		now = now_ns();
		if (deadline >= 0 && now >= deadline) {
			logmsg(p, "lifetime over");
			break;
		}
		if ((fds[0].revents & POLLIN) && signals_read(p))
			break;
		if (fds[1].revents & POLLIN)
			control_read(p);
		if (fds[2].fd >= 0 && fds[2].fd == p->lfd &&
		    (fds[2].revents & POLLIN))
			accept_one(p);
		for (i = 0; i < p->nconns && base + 2 * i + 1 < n; i++)
			conn_handle(p, p->conns[i], &fds[base + 2 * i],
				    &fds[base + 2 * i + 1], now);
	}
	free(fds);
}

static void
usage(FILE *f, int code)
{
	fputs("usage: netem-proxy --listen ADDR:PORT --to HOST:PORT "
	      "[--delay-ms N] [--rate-mbit R]\n"
	      "       [--control FIFO] [--state-file F] [--pidfile F] "
	      "[--ready-file F]\n"
	      "       [--lifetime SECONDS] [-v]\n"
	      "Port 0 picks a free port (see --ready-file). Control commands "
	      "(one a line):\n"
	      "cut, blackhole, resume, refuse, accept, delay MS, rate MBIT.\n"
	      "Signals: USR1 cut, USR2 blackhole, HUP resume, TERM/INT "
	      "stop.\n",
	      f);
	exit(code);
}

static double
parse_num(const char *opt, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > max)
		die("%s '%s': expected a number from 0 to %g", opt, s, max);
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "rate-mbit", required_argument, NULL, 'r' },
		{ "control", required_argument, NULL, 'c' },
		{ "state-file", required_argument, NULL, 's' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "lifetime", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct proxy px;
	struct sigaction sa;
	const char *listen_spec = NULL, *to_spec = NULL;
	double delay_ms = 0, rate = 0, lifetime = 0;
	int64_t deadline = -1;
	char text[64];
	size_t i;
	int o;

	memset(&px, 0, sizeof(px));
	px.lfd = px.ctlfd = -1;
	while ((o = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen_spec = optarg;
			break;
		case 't':
			to_spec = optarg;
			break;
		case 'd':
			delay_ms = parse_num("--delay-ms", optarg, 1e6);
			break;
		case 'r':
			rate = parse_num("--rate-mbit", optarg, 1e6);
			break;
		case 'c':
			px.ctl_path = optarg;
			break;
		case 's':
			px.state_path = optarg;
			break;
		case 'p':
			px.pid_path = optarg;
			break;
		case 'R':
			px.ready_path = optarg;
			break;
		case 'L':
			lifetime = parse_num("--lifetime", optarg, 1e6);
			break;
		case 'v':
			px.verbose = 1;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc || listen_spec == NULL || to_spec == NULL)
		usage(stderr, 2);
	px.delay_ns = (int64_t)(delay_ms * 1e6);
	px.rate_bps = rate * 1e6 / 8;
	parse_addr("--listen", listen_spec, 1, &px.listen_addr, &px.listen_len);
	parse_addr("--to", to_spec, 0, &px.to_addr, &px.to_len);

	if (pipe(px.sigpipe) != 0)
		die("pipe: %s", strerror(errno));
	set_nonblock(px.sigpipe[0]);
	set_nonblock(px.sigpipe[1]);
	sig_wfd = px.sigpipe[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	px.lfd = open_listener(&px);
	if (px.lfd < 0)
		die("cannot listen on %s: %s", listen_spec, strerror(errno));
	if (px.ctl_path != NULL) {
		unlink(px.ctl_path);
		if (mkfifo(px.ctl_path, 0600) != 0)
			die("cannot make the control FIFO %s: %s", px.ctl_path,
			    strerror(errno));
		/* Read-write, so that no writer closing gives EOF. */
		px.ctlfd = open(px.ctl_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (px.ctlfd < 0)
			die("cannot open %s: %s", px.ctl_path, strerror(errno));
	}
	if (px.pid_path != NULL) {
		snprintf(text, sizeof(text), "%ld\n", (long)getpid());
		if (write_atomic(px.pid_path, text) != 0)
			die("cannot write %s: %s", px.pid_path,
			    strerror(errno));
	}
	write_state(&px);
	/* Last: the ready file says everything above is in place. */
	if (px.ready_path != NULL) {
		snprintf(text, sizeof(text), "%d\n",
			 addr_port(&px.listen_addr));
		if (write_atomic(px.ready_path, text) != 0)
			die("cannot write %s: %s", px.ready_path,
			    strerror(errno));
	}
	logmsg(&px, "listening on port %d, delay %g ms, rate %g Mbit/s",
	       addr_port(&px.listen_addr), delay_ms, rate);
	if (lifetime > 0)
		deadline = now_ns() + (int64_t)(lifetime * NS_PER_S);

	run(&px, deadline);

	for (i = 0; i < px.nconns; i++) {
		conn_kill(px.conns[i], 0);
		free(px.conns[i]);
	}
	free(px.conns);
	if (px.lfd >= 0)
		close(px.lfd);
	if (px.ctlfd >= 0) {
		close(px.ctlfd);
		unlink(px.ctl_path);
	}
	close(px.sigpipe[0]);
	close(px.sigpipe[1]);
	if (px.pid_path != NULL)
		unlink(px.pid_path);
	if (px.ready_path != NULL)
		unlink(px.ready_path);
	if (px.state_path != NULL)
		unlink(px.state_path);
	return 0;
}
