/* imap_session.c - one IMAP connection: the state machine (RFC 3501 §3), the command
 * table and the input loop. Input goes to the command parser, or as raw lines to an
 * AUTHENTICATE exchange or to IDLE. Pipelined commands run in order; an asynchronous
 * command (a store write, a login) pauses the input until it ends. Responses are
 * buffered and written at the end of each round of input. */
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"

#define NA IMAP_F_NOAUTH
#define AU IMAP_F_AUTH
#define SE (IMAP_F_AUTH | IMAP_F_SELECTED)

static const imap_command commands[] = {
	{ "CAPABILITY", imap_cmd_capability, NA | AU },
	{ "NOOP", imap_cmd_noop, NA | AU },
	{ "LOGOUT", imap_cmd_logout, NA | AU },
	{ "ID", imap_cmd_id, NA | AU },
	{ "STARTTLS", imap_cmd_starttls, NA },
	{ "LOGIN", imap_cmd_login, NA },
	{ "AUTHENTICATE", imap_cmd_authenticate, NA },
	{ "ENABLE", imap_cmd_enable, AU },
	{ "NAMESPACE", imap_cmd_namespace, AU },
	{ "SELECT", imap_cmd_select, AU },
	{ "EXAMINE", imap_cmd_examine, AU },
	{ "CREATE", imap_cmd_create, AU },
	{ "DELETE", imap_cmd_delete, AU },
	{ "RENAME", imap_cmd_rename, AU },
	{ "SUBSCRIBE", imap_cmd_subscribe, AU },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, AU },
	{ "LIST", imap_cmd_list, AU },
	{ "LSUB", imap_cmd_lsub, AU },
	{ "STATUS", imap_cmd_status, AU },
	{ "APPEND", imap_cmd_append, AU },
	{ "IDLE", imap_cmd_idle, AU },
	{ "GETQUOTA", imap_cmd_getquota, AU },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, AU },
	{ "CHECK", imap_cmd_check, SE },
	{ "CLOSE", imap_cmd_close, SE },
	{ "UNSELECT", imap_cmd_unselect, SE },
	{ "EXPUNGE", imap_cmd_expunge, SE | IMAP_F_UID | IMAP_F_WRITE },
	{ "FETCH", imap_cmd_fetch, SE | IMAP_F_UID | IMAP_F_NOEXPUNGE },
	{ "STORE", imap_cmd_store, SE | IMAP_F_UID | IMAP_F_NOEXPUNGE | IMAP_F_WRITE },
	{ "SEARCH", imap_cmd_search, SE | IMAP_F_UID | IMAP_F_NOEXPUNGE },
	{ "COPY", imap_cmd_copy, SE | IMAP_F_UID },
	{ "MOVE", imap_cmd_move, SE | IMAP_F_UID | IMAP_F_WRITE },
};

static void session_free(imap_session **sp);
static void process(imap_session *s);

static const imap_command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Tighter parser limits before authentication (STYLE: limits tighter before auth). */
static void set_limits(imap_session *s)
{
	const tern_conf *conf = s->srv->env.conf;
	imap_limits lim = { IMAP_LINE_MAX, IMAP_LITERAL_MAX, IMAP_APPEND_MAX_DEFAULT, IMAP_DEPTH_MAX,
			    IMAP_ARGS_MAX };

	if (conf->smtpd_max_message_kb > 0)
		lim.append_max = (uint64_t)conf->smtpd_max_message_kb * 1024;
	if (s->state == IMAP_ST_NOAUTH) {
		lim.line_max = IMAP_LINE_MAX_PREAUTH;
		lim.literal_max = IMAP_LITERAL_MAX_PREAUTH;
		lim.append_max = 0;
		lim.args_max = IMAP_ARGS_MAX_PREAUTH;
	}
	imap_parser_set_limits(&s->parser, &lim);
	s->lines.max = lim.line_max;
}

void imap_set_timeout(imap_session *s)
{
	int t = s->srv->env.idle_timeout > 0 ? s->srv->env.idle_timeout : IMAP_IDLE_TIMEOUT;

	if (s->state == IMAP_ST_NOAUTH && t > IMAP_PREAUTH_TIMEOUT)
		t = IMAP_PREAUTH_TIMEOUT;
	if (s->conn != NULL && !s->busy)
		tern_conn_set_idle_timeout(s->conn, t);
}

/* The one place the state changes. */
void imap_enter_state(imap_session *s, imap_state st)
{
	if (st != IMAP_ST_SELECTED && s->sel != NULL)
		imap_view_close(s);
	s->state = st;
	set_limits(s);
	imap_set_timeout(s);
	if (st == IMAP_ST_LOGOUT && s->conn != NULL) {
		imap_flush(s);
		tern_conn_close(s->conn);
	}
}

void imap_flush(imap_session *s)
{
	if (s->conn != NULL && s->out.len > 0)
		tern_conn_write(s->conn, s->out.data, s->out.len);
	tbuf_reset(&s->out);
	if (s->out.cap > IMAP_OUT_FLUSH * 2)
		tbuf_free(&s->out);
}

void imap_write(imap_session *s, const void *p, size_t n)
{
	if (s->conn == NULL)
		return;
	tbuf_append(&s->out, p, n);
	if (s->out.len >= IMAP_OUT_FLUSH)
		imap_flush(s);
}

void imap_untagged(imap_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->conn == NULL)
		return;
	tbuf_append_str(&s->out, "* ");
	va_start(ap, fmt);
	tbuf_vappendf(&s->out, fmt, ap);
	va_end(ap);
	tbuf_append(&s->out, "\r\n", 2);
	if (s->out.len >= IMAP_OUT_FLUSH)
		imap_flush(s);
}

void imap_reply(imap_session *s, const char *status, const char *fmt, ...)
{
	va_list ap;

	if (s->state == IMAP_ST_SELECTED && s->sel != NULL)
		imap_view_sync(s, s->cur == NULL || !(s->cur->flags & IMAP_F_NOEXPUNGE));
	if (s->conn == NULL)
		return;
	tbuf_appendf(&s->out, "%s %s ", s->cmd ? s->cmd->tag : "*", status);
	va_start(ap, fmt);
	tbuf_vappendf(&s->out, fmt, ap);
	va_end(ap);
	tbuf_append(&s->out, "\r\n", 2);
	if (strcmp(status, "BAD") == 0 && ++s->bad_count > IMAP_BAD_MAX) {
		imap_untagged(s, "BYE Too many invalid commands");
		imap_enter_state(s, IMAP_ST_LOGOUT);
	}
}

void imap_async_begin(imap_session *s)
{
	s->busy = 1;
	imap_flush(s);
	if (s->conn != NULL) {
		tern_conn_pause(s->conn);
		tern_conn_set_idle_timeout(s->conn, 0);
	}
}

static void store_trampoline(const store_result *res, void *arg)
{
	imap_session *s = arg;
	imap_store_done fn = s->store_done;

	s->store_done = NULL;
	if (s->closed || fn == NULL) {
		imap_async_done(s);
		return;
	}
	fn(s, res);
}

store_cb imap_store_cb(imap_session *s, imap_store_done fn)
{
	if (!s->busy)
		imap_async_begin(s);
	s->store_done = fn;
	return (store_cb){ store_trampoline, s, s->io };
}

struct imap_job {
	imap_session *s;
	void *op;
	void (*job)(void *op);
	void (*done)(imap_session *s);
};

static void job_run(void *arg)
{
	struct imap_job *j = arg;
	j->job(j->op);
}

/* Back on the session's I/O thread; a closed session only ends its command. */
static void job_done(void *arg)
{
	struct imap_job *j = arg;
	imap_session *s = j->s;
	void (*done)(imap_session *s) = j->done;

	free(j);
	if (s->closed) {
		imap_async_done(s);
		return;
	}
	done(s);
}

int imap_offload(imap_session *s, void (*job)(void *op), void (*done)(imap_session *s), int use_pool)
{
	tern_pool *pool = s->srv->env.cpu_pool;

	if (!s->busy)
		imap_async_begin(s);
	if (use_pool && pool != NULL) {
		struct imap_job *j = malloc(sizeof(*j));
		if (j == NULL)
			abort();
		*j = (struct imap_job){ s, s->op, job, done };
		if (tern_pool_submit(pool, job_run, job_done, j, s->io) == 0)
			return IMAP_ASYNC;
		free(j);          /* queue full: do it here rather than refuse */
	}
	job(s->op);
	done(s);
	return IMAP_ASYNC;
}

/* The command ran to its end: release its state and the parser's memory. */
static void command_end(imap_session *s)
{
	if (s->op != NULL && s->op_free != NULL)
		s->op_free(s->op);
	s->op = NULL;
	s->op_free = NULL;
	s->cur = NULL;
	s->cmd = NULL;
	s->uid = 0;
	imap_parser_reset(&s->parser);
}

void imap_async_done(imap_session *s)
{
	s->busy = 0;
	if (s->input == IMAP_IN_CMD)
		command_end(s);
	if (s->closed) {
		if (!s->in_process)
			session_free(&s);
		return;
	}
	imap_set_timeout(s);
	if (s->state != IMAP_ST_LOGOUT)
		tern_conn_resume(s->conn);
	process(s);
	if (s != NULL && !s->in_process)
		imap_flush(s);
}

/* Run one parsed command: the table's checks, then the handler. */
static void run_command(imap_session *s, const imap_cmd *c)
{
	const char *name = c->name;
	const imap_command *cmd;

	s->cmd = c;
	s->uid = 0;
	if (strcmp(name, "UID") == 0) {
		if (c->nargs == 0 || c->args[0].type != IMAP_ARG_ATOM) {
			imap_reply(s, "BAD", "Missing UID command");
			return;
		}
		char up[16];
		size_t n = c->args[0].len < sizeof(up) - 1 ? c->args[0].len : sizeof(up) - 1;
		for (size_t i = 0; i < n; i++)
			up[i] = (char)(c->args[0].str[i] >= 'a' && c->args[0].str[i] <= 'z' ? c->args[0].str[i] - 32
										     : c->args[0].str[i]);
		up[n] = '\0';
		cmd = find_command(up);
		if (cmd == NULL || !(cmd->flags & IMAP_F_UID)) {
			imap_reply(s, "BAD", "Unknown UID command");
			return;
		}
		s->uid_cmd = (imap_cmd){ c->tag, cmd->name, c->args + 1, c->nargs - 1 };
		s->uid = 1;
		s->cmd = c = &s->uid_cmd;
	} else {
		cmd = find_command(name);
	}
	if (cmd == NULL) {
		imap_reply(s, "BAD", "Unknown command %s", name);
		goto done;
	}
	s->cur = cmd;
	if (s->state == IMAP_ST_NOAUTH && !(cmd->flags & IMAP_F_NOAUTH)) {
		imap_reply(s, "BAD", "%s needs authentication first", cmd->name);
		goto done;
	}
	if (s->state != IMAP_ST_NOAUTH && !(cmd->flags & IMAP_F_AUTH)) {
		imap_reply(s, "BAD", "%s not allowed now: already authenticated", cmd->name);
		goto done;
	}
	if ((cmd->flags & IMAP_F_SELECTED) && s->state != IMAP_ST_SELECTED) {
		imap_reply(s, "BAD", "No mailbox selected");
		goto done;
	}
	if ((cmd->flags & IMAP_F_WRITE) && s->sel != NULL && s->sel->readonly) {
		imap_reply(s, "NO", "[READ-ONLY] Mailbox is read-only");
		goto done;
	}
	imap_server_count(s->srv, &s->srv->stats.commands);
	if (cmd->fn(s, c) == IMAP_ASYNC)
		return;
done:
	command_end(s);
}

/* A bad command was skipped by the parser. */
static void parse_error(imap_session *s, int rc)
{
	imap_parser *p = &s->parser;
	const char *tag = p->tag.len ? tbuf_cstr(&p->tag) : "*";
	int append = p->is_append && p->toobig;

	tbuf_appendf(&s->out, "%s %s %s\r\n", tag, append && rc != IMAP_PARSE_FATAL ? "NO" : "BAD",
		     p->error ? p->error : "Invalid command");
	if (rc == IMAP_PARSE_FATAL) {
		imap_untagged(s, "BYE Literal too large");
		imap_enter_state(s, IMAP_ST_LOGOUT);
	} else if (!append && ++s->bad_count > IMAP_BAD_MAX) {
		imap_untagged(s, "BYE Too many invalid commands");
		imap_enter_state(s, IMAP_ST_LOGOUT);
	}
	imap_parser_reset(p);
}

/* Handle every complete command in the input buffer, in order. */
static void process(imap_session *s)
{
	if (s->in_process)
		return;
	s->in_process = 1;
	while (!s->closed && !s->busy && s->state != IMAP_ST_LOGOUT && s->state != IMAP_ST_PROXY) {
		if (s->moved) {
			imap_moved_bye(s);
			break;
		}
		struct evbuffer *in = tern_conn_input(s->conn);
		if (s->input != IMAP_IN_CMD) {
			int rc = tern_line_read(&s->lines, in);
			if (rc == TERN_LINE_MORE)
				break;
			/* an over-long line is handed on as "*" (which cancels AUTHENTICATE) */
			const char *line = rc == TERN_LINE_OK ? tbuf_cstr(&s->lines.line) : "*";
			size_t len = rc == TERN_LINE_OK ? s->lines.line.len : 1;
			if (s->input == IMAP_IN_SASL)
				imap_auth_line(s, line, len);
			else
				imap_idle_line(s, line, len);
			tbuf_free(&s->lines.line);
			continue;
		}
		struct evbuffer_iovec v;
		size_t used = 0;
		if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		int rc = imap_parser_feed(&s->parser, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (rc == IMAP_PARSE_LITERAL) {
			imap_write(s, "+ Ready for literal data\r\n", 26);
			imap_flush(s);
		} else if (rc == IMAP_PARSE_DONE) {
			if (s->draining) {
				imap_untagged(s, "BYE Server shutting down");
				imap_enter_state(s, IMAP_ST_LOGOUT);
				break;
			}
			run_command(s, &s->parser.cmd);
		} else if (rc == IMAP_PARSE_BAD || rc == IMAP_PARSE_FATAL) {
			parse_error(s, rc);
		}
	}
	s->in_process = 0;
	if (s->closed && !s->busy) {
		session_free(&s);
		return;
	}
	imap_flush(s);
}

static void session_free(imap_session **sp)
{
	imap_session *s = *sp;

	proxy_free(&s->proxy);
	if (s->sel != NULL)
		imap_view_close(s);
	if (s->user_watch != NULL)
		store_watch_remove(s->srv->env.st, &s->user_watch);
	command_end(s);
	imap_parser_free(&s->parser);
	tern_line_clear(&s->lines);
	imap_auth_clear(s);
	tbuf_free(&s->out);
	free(s);
	*sp = NULL;
}

/* ---- the connection's callbacks ---- */

static void *session_open(tern_conn *c, void *ctx)
{
	imap_server *srv = ctx;
	imap_session *s = calloc(1, sizeof(*s));
	const tern_conf *conf = srv->env.conf;

	if (s == NULL)
		return NULL;
	s->srv = srv;
	s->conn = c;
	s->io = tern_conn_io(c);
	s->svc = tern_conn_service(c);
	s->tls = tern_conn_is_tls(c);
	snprintf(s->ip, sizeof(s->ip), "%s", tern_conn_peer_ip(c));
	s->insecure_auth_ok = conf->security_insecure_auth_ipgroup[0] &&
			      store_ipgroup_match(srv->env.st, conf->security_insecure_auth_ipgroup,
						  tern_conn_peer_addr(c));
	imap_limits lim = { IMAP_LINE_MAX_PREAUTH, IMAP_LITERAL_MAX_PREAUTH, 0, IMAP_DEPTH_MAX,
			    IMAP_ARGS_MAX_PREAUTH };
	imap_parser_init(&s->parser, &lim);
	tern_line_init(&s->lines, lim.line_max);
	tbuf_init(&s->out);
	imap_server_count(srv, &srv->stats.sessions);
	imap_enter_state(s, IMAP_ST_NOAUTH);
	tbuf caps = TBUF_INIT;
	imap_capabilities(s, &caps);
	imap_untagged(s, "OK [%s] %s IMAP4rev1 ready", tbuf_cstr(&caps), srv->hostname);
	tbuf_free(&caps);
	imap_flush(s);
	return s;
}

static void session_on_read(tern_conn *c, void *session)
{
	imap_session *s = session;

	if (s->state == IMAP_ST_PROXY) {
		proxy_client_read(s->proxy);
		return;
	}
	if (s->state == IMAP_ST_LOGOUT) {
		struct evbuffer *in = tern_conn_input(c);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	process(s);
}

/* The connection is gone; a command still running frees the session when it ends. */
static void session_on_close(tern_conn *c, void *session)
{
	imap_session *s = session;

	(void)c;
	s->closed = 1;
	s->conn = NULL;
	if (s->proxy != NULL) {
		/* a login at the home node still running ends here, without its callback */
		if (s->state != IMAP_ST_PROXY)
			s->busy = 0;
		proxy_free(&s->proxy);
	}
	if (!s->busy && !s->in_process)
		session_free(&s);
}

/* SIGTERM: an idle session says BYE now, a busy one after its command. */
static void session_on_drain(tern_conn *c, void *session)
{
	imap_session *s = session;

	s->draining = 1;
	if (s->state == IMAP_ST_PROXY) {
		tern_conn_close(c);     /* never a BYE into the middle of the home node's output */
		return;
	}
	if (!s->busy && s->state != IMAP_ST_LOGOUT) {
		imap_untagged(s, "BYE Server shutting down");
		imap_enter_state(s, IMAP_ST_LOGOUT);
	}
}

void imap_moved_bye(imap_session *s)
{
	if (s->state == IMAP_ST_LOGOUT || s->state == IMAP_ST_PROXY || s->conn == NULL)
		return;
	tlog(TLOG_DEBUG, "IMAP session of %s from %s closed: mailbox moving to another server", s->account,
	     s->ip);
	imap_untagged(s, "BYE Mailbox is being moved to another server");
	imap_enter_state(s, IMAP_ST_LOGOUT);
}

/* The login watch: only MOVED counts (the per-folder watch of the selection handles the
 * ordinary changes). A session in a command says BYE once the command ended. */
static void on_user_event(const store_event *ev, void *arg)
{
	imap_session *s = arg;

	if (ev->kind != TERN__CHANGE__KIND__MOVED || s->moved)
		return;
	s->moved = 1;
	if (!s->busy && !s->in_process) {
		imap_moved_bye(s);
		if (s->conn != NULL && !s->closed)
			imap_flush(s);
	}
}

int imap_watch_user(imap_session *s)
{
	if (s->user_watch != NULL)
		store_watch_remove(s->srv->env.st, &s->user_watch);
	s->moved = 0;
	s->user_watch = store_watch_add_moved(s->srv->env.st, s->user_id, s->io, on_user_event, s);
	return s->user_watch != NULL ? 0 : STORE_EIO;
}

void imap_session_handlers(imap_server *srv, tern_service_handler *h)
{
	h->on_open = session_open;
	h->on_read = session_on_read;
	h->on_close = session_on_close;
	h->on_drain = session_on_drain;
	h->ctx = srv;
	h->idle_timeout = IMAP_PREAUTH_TIMEOUT;
}
