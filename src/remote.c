#include <string.h>

#include "agent.h"
#include "remote.h"

/* Dispatch through the operations table; name the host in any error. */

static int
named(struct remote *r, int rc, struct rf_error *err)
{
	if (rc != 0 && err != NULL && err->host[0] == '\0')
		rf_error_host(err, r->name);
	return rc;
}

int
remote_exec(struct remote *r, const struct exec_request *req,
	    struct exec_result *res, struct rf_error *err)
{
	memset(res, 0, sizeof(*res));
	res->status = -1;
	/* Where the transport keeps a channel open, every step uses it. */
	if (r->ops->stream_open != NULL)
		return named(r, agent_exec(r, req, res, err), err);
	return named(r, r->ops->exec(r->impl, req, res, err), err);
}

int
remote_put(struct remote *r, const struct put_request *req,
	   struct rf_error *err)
{
	return named(r, r->ops->put(r->impl, req, err), err);
}

int
remote_file_size(struct remote *r, const char *path, int64_t *size,
		 struct rf_error *err)
{
	return named(r, r->ops->file_size(r->impl, path, size, err), err);
}

int
remote_statvfs(struct remote *r, const char *path, uint64_t *avail,
	       struct rf_error *err)
{
	return named(r, r->ops->statvfs(r->impl, path, avail, err), err);
}

int
remote_forward(struct remote *r, const char *host, int port, int fd,
	       double timeout, struct rf_error *err)
{
	return named(r, r->ops->forward(r->impl, host, port, fd, timeout, err),
		     err);
}

void
remote_close(struct remote *r)
{
	if (r == NULL)
		return;
	agent_close(r);
	r->ops->close(r->impl);
}

struct run_capture {
	struct buf *out;
	struct buf *errtext;
	int overflow;
};

static void
run_line(void *arg, int is_stderr, const char *line)
{
	struct run_capture *cap = arg;
	struct buf *b = is_stderr ? cap->errtext : cap->out;

	if (b == NULL)
		return;
	if (buf_adds(b, line) != 0 || buf_addch(b, '\n') != 0) {
		if (!is_stderr)
			cap->overflow = 1;
	}
}

int
remote_run(struct remote *r, const char *cmd, const char *stdin_data,
	   struct buf *out, struct buf *errtext, struct rf_error *err)
{
	return remote_run_limit(r, cmd, stdin_data, 0, out, errtext, err);
}

int
remote_run_limit(struct remote *r, const char *cmd, const char *stdin_data,
		 double limit, struct buf *out, struct buf *errtext,
		 struct rf_error *err)
{
	return remote_run_data(r, cmd, stdin_data,
			       stdin_data ? strlen(stdin_data) : 0, limit, out,
			       errtext, err);
}

int
remote_run_data(struct remote *r, const char *cmd, const void *data,
		size_t len, double limit, struct buf *out, struct buf *errtext,
		struct rf_error *err)
{
	struct run_capture cap = { out, errtext, 0 };
	struct exec_request req = {
		.cmd = cmd,
		.stdin_data = data,
		.stdin_len = len,
		.timeout = limit,
		.on_line = run_line,
		.arg = &cap,
	};
	struct exec_result res;

	if (errtext != NULL && errtext->max == 0)
		errtext->max = 4096;
	if (remote_exec(r, &req, &res, err) != 0)
		return -1;
	if (res.timed_out || res.status == STEP_TIME_LIMIT) {
		rf_error_host(err, r->name);
		return rf_error_set(err, RF_EXIT_INTERNAL, NULL,
				    "a step did not finish within its time "
				    "limit (%.0f s) on %s and was ended",
				    limit > 0 ? limit : AGENT_DEFAULT_LIMIT,
				    r->name);
	}
	if (cap.overflow) {
		rf_error_host(err, r->name);
		return rf_error_set(err, RF_EXIT_INTERNAL, NULL,
				    "the server's reply to a command was larger "
				    "than %zu bytes", out->max);
	}
	return res.status;
}
