#ifndef RELFLIP_REMOTE_H
#define RELFLIP_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

/*
 * The transport the core sees: one connection to one server, with exec
 * channels, SFTP uploads and TCP forwarding. src/remote-ssh.c implements it
 * over libssh2; tests/fakes/remote-fake.c scripts it for unit tests.
 *
 * One struct remote is used by one thread at a time (libssh2 sessions are
 * not shareable), but may move between threads between calls.
 */

/* Called for each line a command prints; line has no '\n'. */
typedef void (*exec_line_fn)(void *arg, int is_stderr, const char *line);

/* Called as an upload makes progress; done counts from the file's start. */
typedef void (*progress_fn)(void *arg, uint64_t done, uint64_t total);

/* Longest line handed to exec_line_fn; longer lines arrive in pieces. */
#define EXEC_LINE_MAX 4096

/* The exit status of a step ended by its time limit (timeout(1)'s). */
#define STEP_TIME_LIMIT 124

struct exec_request {
	const char *cmd;        /* a POSIX sh script; quote every word */
	const char *stdin_data; /* written to the command's stdin, then EOF */
	size_t stdin_len;
	double timeout;         /* seconds on the server; 0: the default */
	exec_line_fn on_line;   /* NULL: output is dropped */
	void *arg;
};

struct exec_result {
	int status;        /* exit status; -1 when not reported */
	char signal[32];   /* "TERM" for 128+15: killed by a signal, else "" */
	int timed_out;     /* no reply in time: the step was ended */
};

struct put_request {
	int fd;            /* local file, read with pread */
	uint64_t offset;   /* resume: the remote file already has these bytes */
	uint64_t size;     /* the whole file's size */
	const char *path;  /* remote path; created, or appended at offset */
	size_t window;     /* bytes in flight at most; 0: the adapter's best */
	progress_fn on_progress;
	void *arg;
};

/*
 * A stream: one command kept running on its own channel, to which requests
 * are written and from which replies are read, many times (src/agent.c
 * runs every remote step through one). Called with what arrives, stdout or
 * stderr, in the order it arrives on each; returns 1 once the caller has
 * what it waited for.
 */
typedef int (*stream_data_fn)(void *arg, int is_stderr, const char *data,
			      size_t n);

struct stream_request {
	const void *data; /* written first, all of it */
	size_t len;
	int eof;          /* then EOF: nothing more will be written */
	double timeout;   /* seconds for the whole exchange; 0: no limit */
	/*
	 * Seconds with nothing at all from the server after which it is
	 * taken for gone (a dead or black-holed link): the call fails and
	 * the connection is not used again. 0: no such limit.
	 */
	double silence;
	stream_data_fn on_data;
	void *arg;
};

struct stream_result {
	int done;        /* on_data said it has what it waited for */
	int closed;      /* the command ended: EOF on stdout and stderr */
	int timed_out;   /* the timeout passed first */
};

struct remote_ops {
	/* 0 when the command ran (whatever its status), -1 and err if not. */
	int (*exec)(void *impl, const struct exec_request *req,
		    struct exec_result *res, struct rf_error *err);
	/*
	 * Upload fd from req->offset to req->size. No fsync: the caller
	 * verifies the file's checksum on the server before using it.
	 */
	int (*put)(void *impl, const struct put_request *req,
		   struct rf_error *err);
	/* Size of a remote file; *size = -1 when it does not exist. */
	int (*file_size)(void *impl, const char *path, int64_t *size,
			 struct rf_error *err);
	/* Bytes available to the login user on path's filesystem. */
	int (*statvfs)(void *impl, const char *path, uint64_t *avail,
		       struct rf_error *err);
	/*
	 * Open a TCP connection from the server to host:port and pump bytes
	 * between it and the connected local socket fd until either side
	 * closes or timeout seconds pass. Does not close fd.
	 */
	int (*forward)(void *impl, const char *host, int port, int fd,
		       double timeout, struct rf_error *err);
	/*
	 * Start cmd on a channel of its own and keep it open (*stream is the
	 * handle). NULL in a transport without streams: exec is used then.
	 */
	int (*stream_open)(void *impl, const char *cmd, void **stream,
			   struct rf_error *err);
	/*
	 * Write req->data (and EOF), reading and handing on what arrives
	 * until on_data says done, the command ends, the timeout passes or
	 * a signal arrives (-1, an interrupted error). The stream stays open.
	 */
	int (*stream_io)(void *impl, void *stream,
			 const struct stream_request *req,
			 struct stream_result *res, struct rf_error *err);
	/* Send EOF and close the channel without waiting for the command. */
	void (*stream_close)(void *impl, void *stream);
	void (*close)(void *impl);
};

struct agent;

struct remote {
	const struct remote_ops *ops;
	void *impl;
	char name[64]; /* the host's name in the config, for messages */
	struct agent *agent; /* the long-lived shell steps run in, or NULL */
};

/* What connecting to one jump host found out (or found already up). */
struct ssh_hop_info {
	char name[64];     /* the jump host as configured: "bastion" */
	char address[300]; /* "ADDR:PORT" it was reached at */
	int shared;        /* its connection was already up and shared */
	double connect_ms; /* to open it, when not shared */
	char kex[48];      /* key exchange method */
	char hostkey_type[32];
	char fingerprint[80];
	char auth[32];
};

#define SSH_JUMPS_MAX 8

/*
 * What connecting found out, for `check`, the connect stage and -v. The
 * adapter fills it; it prints nothing itself.
 */
struct ssh_info {
	double connect_ms;     /* TCP connect (or tunnel) + handshake + auth */
	char hostkey_type[32]; /* "ssh-ed25519" */
	char fingerprint[80];  /* "SHA256:..." as ssh-keygen -l prints it */
	char auth[32];         /* "agent", "key file", "identity_env" */
	char kex[48];          /* "curve25519-sha256" */
	char cipher[48];       /* client to server: "aes128-ctr" */
	char mac[48];          /* client to server: "hmac-sha2-256" */
	char library[32];      /* "libssh2 1.10.0" */
	char address[300];     /* "ADDR:PORT" of the server */
	char user[64];         /* the login user */
	struct ssh_hop_info jumps[SSH_JUMPS_MAX]; /* first hop first */
	size_t njumps;
};

struct ssh_options {
	const char *name; /* host name in the config, for messages */
	const char *address;
	int port;
	const char *user;
	const char *identity;     /* key file, or NULL */
	const char *identity_env; /* variable name holding key text, or NULL */
	/*
	 * Key files tried after ssh-agent when neither identity nor
	 * identity_env is set (ssh_config's IdentityFile, expanded); NULL:
	 * ~/.ssh/id_ed25519 and ~/.ssh/id_ecdsa.
	 */
	const char *const *identities;
	size_t nidentities;
	const char *known_hosts;  /* OpenSSH known_hosts file; required */
	double connect_timeout;   /* seconds: bounds reaching the server
				     through every jump host, and then the
				     authentication */
	/*
	 * Jump hosts, first hop first (at most SSH_JUMPS_MAX); each
	 * one's own jumps are ignored. One connection per jump host (the
	 * same chain, address, user and keys) is shared by every server
	 * behind it while any of them is connected.
	 */
	const struct ssh_options *jumps;
	size_t njumps;
};

/*
 * Connect (through the jump hosts, if any), verify every host key
 * strictly against known_hosts, authenticate. On failure err says what
 * went wrong in the adapter's terms: err->kind, a message naming the host
 * (or jump host, also in err->via) and a hint. err->code is 0 and
 * err->stage NULL: the caller picks them (hosts.c: exit 4 and stage
 * "connect", 130 for RF_KIND_INTERRUPTED).
 */
int remote_ssh_connect(const struct ssh_options *opts, struct remote **out,
		       struct ssh_info *info, struct rf_error *err);

/* Call once before any thread starts (libssh2_init is not thread-safe). */
int remote_ssh_global_init(void);

/* Wrappers that dispatch through ops and name the host in errors. */
int remote_exec(struct remote *r, const struct exec_request *req,
		struct exec_result *res, struct rf_error *err);
int remote_put(struct remote *r, const struct put_request *req,
	       struct rf_error *err);
int remote_file_size(struct remote *r, const char *path, int64_t *size,
		     struct rf_error *err);
int remote_statvfs(struct remote *r, const char *path, uint64_t *avail,
		   struct rf_error *err);
int remote_forward(struct remote *r, const char *host, int port, int fd,
		   double timeout, struct rf_error *err);
void remote_close(struct remote *r);

/*
 * Run cmd, collect stdout into out (bounded by out->max when set), and
 * return its exit status, or -1 with err when it could not run. stderr
 * goes into errtext (bounded to 4 KiB) when given, for error messages.
 */
int remote_run(struct remote *r, const char *cmd, const char *stdin_data,
	       struct buf *out, struct buf *errtext, struct rf_error *err);

/*
 * The same under a time limit on the server (seconds; 0: the default). A
 * step ended by its limit is an error.
 */
int remote_run_limit(struct remote *r, const char *cmd,
		     const char *stdin_data, double limit, struct buf *out,
		     struct buf *errtext, struct rf_error *err);

/* The same with len bytes of any kind (a tarball) on stdin. */
int remote_run_data(struct remote *r, const char *cmd, const void *data,
		    size_t len, double limit, struct buf *out,
		    struct buf *errtext, struct rf_error *err);

#endif
