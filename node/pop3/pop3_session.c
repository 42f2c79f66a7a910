/* pop3_session.c - one POP3 connection: the state machine (AUTHORIZATION, TRANSACTION,
 * UPDATE), the verb table whose flags carry the policy, the input loop and the small
 * commands. Pipelined commands are handled in order, one asynchronous step (a login on
 * the auth pool, streaming a message, the commit at QUIT) at a time: input waits in
 * the connection's buffer meanwhile. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "pop3_int.h"

/* Policy flags of the verb table: the checks sit here, not in the handlers. */
#define F_AUTHZ   0x01u   /* allowed in AUTHORIZATION */
#define F_TRANS   0x02u   /* allowed in TRANSACTION */
#define F_PRE_TLS 0x04u   /* only on a plaintext connection of the STLS port */

typedef int (*pop3_handler)(pop3_session *s, pop3_cmd *cmd);

/* APOP needs the password in clear on the server: refused, and logged as a try. */
static int cmd_apop(pop3_session *s, pop3_cmd *cmd);
static int cmd_stls(pop3_session *s, pop3_cmd *cmd);
static int cmd_capa(pop3_session *s, pop3_cmd *cmd);
static int cmd_quit(pop3_session *s, pop3_cmd *cmd);
/* STAT and the listings count only messages not marked deleted (RFC 1939 5). */
static int cmd_stat(pop3_session *s, pop3_cmd *cmd);
static int cmd_list(pop3_session *s, pop3_cmd *cmd);
/* DELE only marks; the store changes at QUIT. */
static int cmd_dele(pop3_session *s, pop3_cmd *cmd);
/* NOOP: a keep-alive for clients that poll. */
static int cmd_noop(pop3_session *s, pop3_cmd *cmd);
/* RSET unmarks every message marked by DELE. */
static int cmd_rset(pop3_session *s, pop3_cmd *cmd);

static const struct {
	pop3_handler fn;
	unsigned flags;
} verbs[POP3_VERB_COUNT] = {
	[POP3_VERB_USER] = { pop3_cmd_user, F_AUTHZ },
	[POP3_VERB_PASS] = { pop3_cmd_pass, F_AUTHZ },
	[POP3_VERB_APOP] = { cmd_apop, F_AUTHZ },
	[POP3_VERB_AUTH] = { pop3_cmd_auth, F_AUTHZ },
	[POP3_VERB_STLS] = { cmd_stls, F_AUTHZ | F_PRE_TLS },
	[POP3_VERB_CAPA] = { cmd_capa, F_AUTHZ | F_TRANS },
	[POP3_VERB_QUIT] = { cmd_quit, F_AUTHZ | F_TRANS },
	[POP3_VERB_STAT] = { cmd_stat, F_TRANS },
	[POP3_VERB_LIST] = { cmd_list, F_TRANS },
	[POP3_VERB_RETR] = { pop3_cmd_retr, F_TRANS },
	[POP3_VERB_DELE] = { cmd_dele, F_TRANS },
	[POP3_VERB_NOOP] = { cmd_noop, F_TRANS },
	[POP3_VERB_RSET] = { cmd_rset, F_TRANS },
	[POP3_VERB_TOP] = { pop3_cmd_top, F_TRANS },
	[POP3_VERB_UIDL] = { cmd_list, F_TRANS },
};

static void session_free(pop3_session **sp);
static void pop3_process(pop3_session *s);

/* The one place the state changes; the idle limit follows it. */
void pop3_enter_state(pop3_session *s, pop3_state st)
{
	s->state = st;
	if (s->conn != NULL && st != POP3_ST_CLOSING && !s->busy)
		tern_conn_set_idle_timeout(s->conn, (int)s->srv->env.conf->pop3_timeout);
}

/* One reply line; CRLF is added. Nothing is sent once the connection is gone. */
void pop3_reply(pop3_session *s, const char *fmt, ...)
{
	tbuf b = TBUF_INIT;
	va_list ap;

	if (s->conn == NULL)
		return;
	va_start(ap, fmt);
	tbuf_vappendf(&b, fmt, ap);
	va_end(ap);
	tbuf_append(&b, "\r\n", 2);
	tern_conn_write(s->conn, b.data, b.len);
	tbuf_free(&b);
}

/* Say reply (if any), ignore further input and close once the output is flushed. */
void pop3_close(pop3_session *s, const char *reply)
{
	if (reply != NULL)
		pop3_reply(s, "%s", reply);
	pop3_enter_state(s, POP3_ST_CLOSING);
	if (s->conn != NULL)
		tern_conn_close(s->conn);
}

/* A client that keeps failing is probing or broken: close after POP3_MAX_FAILED_CMDS. */
void pop3_failed(pop3_session *s)
{
	s->failed_cmds++;
	if (s->failed_cmds >= POP3_MAX_FAILED_CMDS && s->state != POP3_ST_CLOSING)
		pop3_close(s, "-ERR Too many errors, closing connection");
}

/* Input waits (and no idle limit runs) until pop3_async_done. */
void pop3_async_begin(pop3_session *s)
{
	s->busy = 1;
	if (s->conn != NULL) {
		tern_conn_pause(s->conn);
		tern_conn_set_idle_timeout(s->conn, 0);
	}
}

/* A step ended (on the I/O thread): free a session whose connection went meanwhile,
 * else go on with the input that waited. */
void pop3_async_done(pop3_session *s)
{
	s->busy = 0;
	if (s->closed) {
		if (!s->in_process)
			session_free(&s);
		return;
	}
	pop3_enter_state(s, s->state);       /* restore the idle limit */
	if (s->draining && s->state == POP3_ST_PROXY) {
		tern_conn_close(s->conn);
		return;
	}
	if (s->draining && s->state != POP3_ST_SASL && s->state != POP3_ST_CLOSING) {
		pop3_close(s, "-ERR [SYS/TEMP] Server shutting down");
		return;
	}
	tern_conn_resume(s->conn);
	pop3_process(s);
}

/* The policy checks of the verb table; 0 when the command may run. */
static int verb_allowed(pop3_session *s, pop3_verb v)
{
	unsigned f = verbs[v].flags;

	if ((s->state == POP3_ST_AUTHORIZATION && !(f & F_AUTHZ)) ||
	    (s->state == POP3_ST_TRANSACTION && !(f & F_TRANS))) {
		pop3_reply(s, "-ERR Command not valid in this state");
		return -1;
	}
	if ((f & F_PRE_TLS) && (s->tls || s->svc != TERN_SVC_pop3)) {
		pop3_reply(s, "-ERR TLS already active");
		return -1;
	}
	return 0;
}

/* One command line: parse, check, run. */
static void pop3_line(pop3_session *s, const char *line, size_t len)
{
	pop3_cmd cmd;
	const char *err = NULL;

	if (s->state == POP3_ST_SASL) {
		pop3_auth_line(s, line, len);
		return;
	}
	if (s->draining) {
		pop3_close(s, "-ERR [SYS/TEMP] Server shutting down");
		return;
	}
	if (pop3_parse_command(line, len, &cmd, &err) < 0) {
		pop3_reply(s, "%s", err);
		pop3_failed(s);
		return;
	}
	if (verb_allowed(s, cmd.verb) < 0 || verbs[cmd.verb].fn(s, &cmd) < 0)
		pop3_failed(s);
}

/* Handle every complete command in the input buffer, in order. */
static void pop3_process(pop3_session *s)
{
	if (s->in_process)
		return;
	s->in_process = 1;
	while (!s->closed && !s->busy && s->state != POP3_ST_CLOSING && s->state != POP3_ST_UPDATE &&
	       s->state != POP3_ST_PROXY) {
		if (s->moved) {
			pop3_moved_close(s);
			break;
		}
		int rc = tern_line_read(&s->lines, tern_conn_input(s->conn));
		if (rc == TERN_LINE_MORE)
			break;
		if (rc == TERN_LINE_TOOLONG) {
			if (s->state == POP3_ST_SASL) {
				pop3_auth_line(s, "*", 1);      /* an over-long response cancels */
				continue;
			}
			pop3_reply(s, "-ERR Line too long");
			pop3_failed(s);
		} else {
			pop3_line(s, s->lines.line.data, s->lines.line.len);
			tbuf_reset(&s->lines.line);
		}
	}
	s->in_process = 0;
	if (s->closed && !s->busy)
		session_free(&s);
}

void pop3_moved_close(pop3_session *s)
{
	if (s->state == POP3_ST_CLOSING || s->state == POP3_ST_PROXY || s->conn == NULL)
		return;
	tlog(TLOG_DEBUG, "POP3 session of %s from %s closed: mailbox moving to another server", s->account,
	     s->ip);
	pop3_close(s, "-ERR [SYS/TEMP] Mailbox is being moved to another server");
}

/* The login watch: MOVED closes the session (after a step in progress: a RETR stream
 * ends whole, the commit at QUIT answers for itself). */
static void on_user_event(const store_event *ev, void *arg)
{
	pop3_session *s = arg;

	if (ev->kind != TERN__CHANGE__KIND__MOVED || s->moved)
		return;
	s->moved = 1;
	if (!s->busy && !s->in_process && s->state != POP3_ST_UPDATE)
		pop3_moved_close(s);
}

int pop3_watch_user(pop3_session *s)
{
	pop3_unwatch_user(s);
	s->moved = 0;
	s->user_watch = store_watch_add_moved(s->srv->env.st, s->md.user, s->io, on_user_event, s);
	return s->user_watch != NULL ? 0 : STORE_EIO;
}

void pop3_unwatch_user(pop3_session *s)
{
	if (s->user_watch != NULL)
		store_watch_remove(s->srv->env.st, &s->user_watch);
}

/* The one teardown: the stream, the maildrop hold, buffers and secrets. */
static void session_free(pop3_session **sp)
{
	pop3_session *s = *sp;

	proxy_free(&s->proxy);
	pop3_unwatch_user(s);
	pop3_send_stop(s);
	if (s->locked)
		pop3_server_unlock_user(s->srv, s->md.user);
	pop3_maildrop_clear(&s->md);
	tern_line_clear(&s->lines);
	pop3_auth_clear(s);
	explicit_bzero(s->user, sizeof(s->user));
	free(s);
	*sp = NULL;
}

/* ---- the connection's callbacks ---- */

/* A new connection: greet at once (no APOP timestamp: APOP is not offered). */
void *pop3_session_open(tern_conn *c, void *ctx)
{
	pop3_server *srv = ctx;
	const tern_conf *conf = srv->env.conf;
	pop3_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->srv = srv;
	s->conn = c;
	s->io = tern_conn_io(c);
	s->svc = tern_conn_service(c);
	s->tls = tern_conn_is_tls(c);
	snprintf(s->ip, sizeof(s->ip), "%s", tern_conn_peer_ip(c));
	tern_line_init(&s->lines, POP3_SASL_LINE_MAX);
	tbuf_init(&s->sasl_in);
	tbuf_init(&s->sasl_out);
	s->insecure_auth_ok = conf->security_insecure_auth_ipgroup[0] &&
			      store_ipgroup_match(srv->env.st, conf->security_insecure_auth_ipgroup,
						  tern_conn_peer_addr(c));
	pop3_server_count(srv, &srv->stats.sessions, 1);
	pop3_enter_state(s, POP3_ST_AUTHORIZATION);
	pop3_reply(s, "+OK %s POP3 server ready", srv->hostname);
	return s;
}

/* New input: run the commands, or drop it once the session is ending. */
void pop3_session_on_read(tern_conn *c, void *session)
{
	pop3_session *s = session;

	if (s->state == POP3_ST_PROXY) {
		proxy_client_read(s->proxy);
		return;
	}
	if (s->state == POP3_ST_CLOSING || s->state == POP3_ST_UPDATE) {
		struct evbuffer *in = tern_conn_input(c);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	pop3_process(s);
}

/* The connection is gone: a message being streamed stops at once; a step running on
 * another thread or in the store frees the session when it ends. Without QUIT the
 * deletions are not applied (RFC 1939 6). */
void pop3_session_on_close(tern_conn *c, void *session)
{
	pop3_session *s = session;

	(void)c;
	s->closed = 1;
	s->conn = NULL;
	if (s->sending) {
		pop3_send_stop(s);
		s->busy = 0;
	}
	if (s->proxy != NULL) {
		/* a login at the home node still running ends here, without its callback */
		if (s->state != POP3_ST_PROXY)
			s->busy = 0;
		proxy_free(&s->proxy);
	}
	if (!s->busy && !s->in_process)
		session_free(&s);
}

/* SIGTERM: an idle session says goodbye now; a busy one at its next command boundary. */
void pop3_session_on_drain(tern_conn *c, void *session)
{
	pop3_session *s = session;

	s->draining = 1;
	if (s->state == POP3_ST_PROXY) {
		tern_conn_close(c);     /* never a reply into the middle of the home node's output */
		return;
	}
	if (!s->busy && s->state != POP3_ST_CLOSING && s->state != POP3_ST_SASL)
		pop3_close(s, "-ERR [SYS/TEMP] Server shutting down");
}

/* RFC 1939 3: the autologout timer ends the session without entering UPDATE, so the
 * messages marked by DELE stay. */
void pop3_session_on_timeout(tern_conn *c, void *session)
{
	pop3_session *s = session;

	(void)c;
	if (s->state == POP3_ST_PROXY)
		return;                 /* the connection closes; the home node sees it go */
	pop3_reply(s, "-ERR Autologout; idle for too long");
	pop3_enter_state(s, POP3_ST_CLOSING);
}

/* ---- small commands ---- */

/* APOP needs the password in clear on the server: refused, and logged as a try. */
static int cmd_apop(pop3_session *s, pop3_cmd *cmd)
{
	(void)cmd;
	tlog(TLOG_SECURITY, "Failed POP3 login from %s, authentication method APOP is invalid or unknown",
	     s->ip);
	pop3_reply(s, "-ERR APOP not supported");
	return -1;
}

/* RFC 2595 4: plaintext pipelined after STLS is dropped by the connection, and the
 * session starts over in AUTHORIZATION. */
static int cmd_stls(pop3_session *s, pop3_cmd *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK Begin TLS negotiation");
	if (tern_conn_starttls(s->conn) != 0) {
		pop3_close(s, "-ERR [SYS/TEMP] TLS not available");
		return 0;
	}
	s->tls = 1;
	explicit_bzero(s->user, sizeof(s->user));
	tbuf_reset(&s->lines.line);
	s->lines.overflow = 0;
	pop3_enter_state(s, POP3_ST_AUTHORIZATION);
	return 0;
}

/* RFC 2449 5: what may be used now. USER and the SASL list follow the security policy. */
static int cmd_capa(pop3_session *s, pop3_cmd *cmd)
{
	tbuf b = TBUF_INIT, mechs = TBUF_INIT;

	(void)cmd;
	tbuf_append_str(&b, "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
			    "AUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == POP3_ST_AUTHORIZATION) {
		if (pop3_plaintext_allowed(s))
			tbuf_append_str(&b, "USER\r\n");
		pop3_auth_mechs(s, &mechs);
		if (mechs.len > 0)
			tbuf_appendf(&b, "SASL%s\r\n", tbuf_cstr(&mechs));
		if (!s->tls && s->svc == TERN_SVC_pop3)
			tbuf_append_str(&b, "STLS\r\n");
	}
	tbuf_append_str(&b, "IMPLEMENTATION Tern\r\n.\r\n");
	if (s->conn != NULL)
		tern_conn_write(s->conn, b.data, b.len);
	tbuf_free(&b);
	tbuf_free(&mechs);
	return 0;
}

/* QUIT in AUTHORIZATION just ends; in TRANSACTION it enters UPDATE (pop3_update). */
static int cmd_quit(pop3_session *s, pop3_cmd *cmd)
{
	(void)cmd;
	if (s->state == POP3_ST_TRANSACTION)
		return pop3_update(s);
	pop3_reply(s, "+OK %s POP3 server signing off", s->srv->hostname);
	pop3_close(s, NULL);
	return 0;
}

/* STAT and the listings count only messages not marked deleted (RFC 1939 5). */
static int cmd_stat(pop3_session *s, pop3_cmd *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK %zu %llu", s->md.n - s->md.ndeleted, (unsigned long long)s->md.bytes);
	return 0;
}

/* The message a command names, or NULL after an -ERR reply. */
static pop3_msg *named_msg(pop3_session *s, uint32_t n)
{
	pop3_msg *m = pop3_maildrop_msg(&s->md, n);

	if (m == NULL)
		pop3_reply(s, "-ERR No such message");
	else if (m->deleted)
		pop3_reply(s, "-ERR Message %u already deleted", n);
	return m != NULL && !m->deleted ? m : NULL;
}

/* LIST and UIDL share the scan listing; UIDL's id is UIDVALIDITY and UID in hex, which
 * never names another message of the folder. */
static int cmd_list(pop3_session *s, pop3_cmd *cmd)
{
	int uidl = cmd->verb == POP3_VERB_UIDL;
	tbuf b = TBUF_INIT;

	if (cmd->nargs == 1) {
		pop3_msg *m = named_msg(s, cmd->num[0]);
		if (m == NULL)
			return -1;
		if (uidl)
			pop3_reply(s, "+OK %u %08x%08x", cmd->num[0], s->md.uidvalidity, m->uid);
		else
			pop3_reply(s, "+OK %u %llu", cmd->num[0], (unsigned long long)m->size);
		return 0;
	}
	if (uidl)
		tbuf_append_str(&b, "+OK Unique-ID listing follows\r\n");
	else
		tbuf_appendf(&b, "+OK %zu messages (%llu octets)\r\n", s->md.n - s->md.ndeleted,
			     (unsigned long long)s->md.bytes);
	for (size_t i = 0; i < s->md.n; i++) {
		const pop3_msg *m = &s->md.msgs[i];
		if (m->deleted)
			continue;
		if (uidl)
			tbuf_appendf(&b, "%zu %08x%08x\r\n", i + 1, s->md.uidvalidity, m->uid);
		else
			tbuf_appendf(&b, "%zu %llu\r\n", i + 1, (unsigned long long)m->size);
	}
	tbuf_append_str(&b, ".\r\n");
	if (s->conn != NULL)
		tern_conn_write(s->conn, b.data, b.len);
	tbuf_free(&b);
	return 0;
}

/* DELE only marks; the store changes at QUIT. */
static int cmd_dele(pop3_session *s, pop3_cmd *cmd)
{
	pop3_msg *m = named_msg(s, cmd->num[0]);

	if (m == NULL)
		return -1;
	pop3_maildrop_delete(&s->md, m);
	pop3_reply(s, "+OK Message %u deleted", cmd->num[0]);
	return 0;
}

/* NOOP: a keep-alive for clients that poll. */
static int cmd_noop(pop3_session *s, pop3_cmd *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK");
	return 0;
}

/* RSET unmarks every message marked by DELE. */
static int cmd_rset(pop3_session *s, pop3_cmd *cmd)
{
	(void)cmd;
	pop3_maildrop_reset(&s->md);
	pop3_reply(s, "+OK Maildrop has %zu messages (%llu octets)", s->md.n,
		   (unsigned long long)s->md.bytes);
	return 0;
}
