/* smtp_session.c - one SMTP connection: the state machine, the verb table and the
 * input loop. Input is framed into lines (smtp_parse.c) or read as DATA (smtp_data.c);
 * every complete pipelined command is handled in order, but only one asynchronous step
 * (AUTH, the sender-domain look-up, the hand-off of a message) runs at a time: input
 * then waits in the connection's buffer and the loop goes on when the step is done. */
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "smtp_int.h"

/* Policy flags of the verb table: the checks sit here, not in the handlers. */
#define F_NEED_HELO   0x01u   /* after EHLO/HELO */
#define F_SUBMIT_AUTH 0x02u   /* on submission, after AUTH (530) */
#define F_NEED_MAIL   0x04u   /* inside a mail transaction */
#define F_NEED_RCPT   0x08u   /* with at least one recipient */
#define F_NO_TXN      0x10u   /* not inside a mail transaction */
#define F_PRE_TLS     0x20u   /* only before TLS */
#define F_PRE_AUTH    0x40u   /* only before a successful AUTH */

typedef int (*smtp_handler)(smtp_session *s, smtp_cmd *cmd);

static int cmd_helo(smtp_session *s, smtp_cmd *cmd);
static int cmd_ehlo(smtp_session *s, smtp_cmd *cmd);
static int cmd_rset(smtp_session *s, smtp_cmd *cmd);
static int cmd_noop(smtp_session *s, smtp_cmd *cmd);
static int cmd_quit(smtp_session *s, smtp_cmd *cmd);
static int cmd_vrfy(smtp_session *s, smtp_cmd *cmd);
static int cmd_help(smtp_session *s, smtp_cmd *cmd);
static int cmd_etrn(smtp_session *s, smtp_cmd *cmd);
static int cmd_starttls(smtp_session *s, smtp_cmd *cmd);

static const struct {
	smtp_handler fn;       /* NULL: recognised but not implemented (502) */
	unsigned flags;
} verbs[SMTP_VERB_COUNT] = {
	[SMTP_VERB_HELO] = { cmd_helo, 0 },
	[SMTP_VERB_EHLO] = { cmd_ehlo, 0 },
	[SMTP_VERB_MAIL] = { smtp_cmd_mail, F_NEED_HELO | F_SUBMIT_AUTH | F_NO_TXN },
	[SMTP_VERB_RCPT] = { smtp_cmd_rcpt, F_NEED_HELO | F_SUBMIT_AUTH | F_NEED_MAIL },
	[SMTP_VERB_DATA] = { smtp_cmd_data, F_NEED_HELO | F_SUBMIT_AUTH | F_NEED_MAIL | F_NEED_RCPT },
	[SMTP_VERB_RSET] = { cmd_rset, 0 },
	[SMTP_VERB_NOOP] = { cmd_noop, 0 },
	[SMTP_VERB_QUIT] = { cmd_quit, 0 },
	[SMTP_VERB_VRFY] = { cmd_vrfy, 0 },
	[SMTP_VERB_EXPN] = { NULL, 0 },
	[SMTP_VERB_HELP] = { cmd_help, 0 },
	[SMTP_VERB_ETRN] = { cmd_etrn, F_NEED_HELO | F_NO_TXN },
	[SMTP_VERB_AUTH] = { smtp_cmd_auth, F_NEED_HELO | F_NO_TXN | F_PRE_AUTH },
	[SMTP_VERB_STARTTLS] = { cmd_starttls, F_NO_TXN | F_PRE_TLS },
	[SMTP_VERB_BDAT] = { NULL, 0 },
};

static void session_free(smtp_session **sp);

/* The one place the state changes; the idle limit follows it. */
void smtp_enter_state(smtp_session *s, smtp_state st)
{
	const tern_conf *conf = s->srv->env.conf;

	s->state = st;
	if (s->conn != NULL && st != SMTP_ST_CLOSING && !s->busy)
		tern_conn_set_idle_timeout(s->conn, (int)(st == SMTP_ST_DATA ? conf->smtpd_data_timeout
									 : conf->smtpd_command_timeout));
}

void smtp_reply(smtp_session *s, const char *fmt, ...)
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

void smtp_close_421(smtp_session *s, const char *why)
{
	smtp_reply(s, "421 4.7.0 %s %s", s->srv->hostname, why);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	if (s->conn != NULL)
		tern_conn_close(s->conn);
}

void smtp_failed(smtp_session *s)
{
	int64_t max = s->srv->env.conf->smtpd_max_failed_cmds;

	s->failed_cmds++;
	if (max > 0 && s->failed_cmds > (uint64_t)max && s->state != SMTP_ST_CLOSING)
		smtp_close_421(s, "Too many errors, closing connection");
}

void smtp_txn_reset(smtp_session *s)
{
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i].orcpt);
	s->nrcpts = 0;
	s->sender[0] = '\0';
	memset(&s->mail_params, 0, sizeof(s->mail_params));
	smtp_data_clear(&s->data);
	if (s->state == SMTP_ST_MAIL || s->state == SMTP_ST_RCPT || s->state == SMTP_ST_DATA)
		smtp_enter_state(s, SMTP_ST_READY);
}

void smtp_async_begin(smtp_session *s)
{
	s->busy = 1;
	if (s->conn != NULL) {
		tern_conn_pause(s->conn);
		tern_conn_set_idle_timeout(s->conn, 0);
	}
}

static void smtp_process(smtp_session *s);

/* A step ended (on the I/O thread, outside the input loop or inside it when the step
 * finished at once): free a session whose connection went meanwhile, else go on. */
void smtp_async_done(smtp_session *s)
{
	s->busy = 0;
	if (s->closed) {
		if (!s->in_process)
			session_free(&s);
		return;
	}
	smtp_enter_state(s, s->state);       /* restore the idle limit */
	if (s->draining && s->state != SMTP_ST_DATA && s->state != SMTP_ST_AUTH) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->srv->hostname);
		smtp_enter_state(s, SMTP_ST_CLOSING);
		tern_conn_close(s->conn);
		return;
	}
	tern_conn_resume(s->conn);
	smtp_process(s);
}

/* The policy checks of the verb table; 0 when the command may run. */
static int verb_allowed(smtp_session *s, smtp_verb v)
{
	unsigned f = verbs[v].flags;

	if (verbs[v].fn == NULL) {
		smtp_reply(s, "502 5.5.1 %s not implemented", smtp_verb_name(v));
		return -1;
	}
	if ((f & F_NEED_HELO) && s->state == SMTP_ST_INIT) {
		smtp_reply(s, "503 5.5.1 Send EHLO or HELO first");
		return -1;
	}
	if ((f & F_SUBMIT_AUTH) && s->svc == TERN_SVC_submission && s->auth_user[0] == '\0') {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return -1;
	}
	if ((f & F_NO_TXN) && (s->state == SMTP_ST_MAIL || s->state == SMTP_ST_RCPT)) {
		smtp_reply(s, "503 5.5.1 Not allowed inside a mail transaction");
		return -1;
	}
	if ((f & F_NEED_MAIL) && s->state != SMTP_ST_MAIL && s->state != SMTP_ST_RCPT) {
		smtp_reply(s, "503 5.5.1 Need MAIL command first");
		return -1;
	}
	if ((f & F_NEED_RCPT) && s->state != SMTP_ST_RCPT) {
		smtp_reply(s, "554 5.5.1 No valid recipients");
		return -1;
	}
	if ((f & F_PRE_TLS) && s->tls) {
		smtp_reply(s, "503 5.5.1 TLS already active");
		return -1;
	}
	if ((f & F_PRE_AUTH) && s->auth_user[0] != '\0') {
		smtp_reply(s, "503 5.5.1 Already authenticated");
		return -1;
	}
	return 0;
}

/* One command line: parse, check, run. */
static void smtp_line(smtp_session *s, const char *line, size_t len)
{
	smtp_cmd cmd;
	const char *err = NULL;

	if (s->state == SMTP_ST_AUTH) {
		smtp_auth_line(s, line, len);
		return;
	}
	if (s->draining) {
		smtp_close_421(s, "Service shutting down");
		return;
	}
	if (smtp_ip_limits(s) && smtp_policy_blocked(s->srv->policy, s->ip, tern_now())) {
		smtp_close_421(s, "Too many unknown recipients from your address, try again later");
		return;
	}
	if (smtp_parse_command(line, len, &cmd, &err) < 0) {
		smtp_reply(s, "%s", err);
		smtp_failed(s);
		return;
	}
	if (verb_allowed(s, cmd.verb) < 0 || verbs[cmd.verb].fn(s, &cmd) < 0)
		smtp_failed(s);
}

/* Handle every complete command (or the DATA bytes) in the input buffer, in order. */
static void smtp_process(smtp_session *s)
{
	if (s->in_process)
		return;
	s->in_process = 1;
	while (!s->closed && !s->busy && s->state != SMTP_ST_CLOSING) {
		struct evbuffer *in = tern_conn_input(s->conn);
		if (s->state == SMTP_ST_DATA) {
			struct evbuffer_iovec v;
			size_t used = 0;
			if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			int rc = smtp_data_feed(&s->data, v.iov_base, v.iov_len, &used);
			evbuffer_drain(in, used);
			if (rc == SMTP_DATA_DONE)
				smtp_data_end(s);
			continue;
		}
		int rc = tern_line_read(&s->lines, in);
		if (rc == TERN_LINE_MORE)
			break;
		if (rc == TERN_LINE_TOOLONG) {
			if (s->state == SMTP_ST_AUTH) {
				smtp_auth_line(s, "*", 1);      /* an over-long response cancels */
				continue;
			}
			smtp_reply(s, "500 5.5.2 Line too long");
			smtp_failed(s);
		} else {
			smtp_line(s, s->lines.line.data, s->lines.line.len);
			tbuf_reset(&s->lines.line);
		}
	}
	s->in_process = 0;
	if (s->closed && !s->busy)
		session_free(&s);
}

static void session_free(smtp_session **sp)
{
	smtp_session *s = *sp;

	if (s->conn_counted)
		smtp_policy_conn_close(s->srv->policy, s->ip);
	smtp_txn_reset(s);
	free(s->rcpts);
	tern_line_clear(&s->lines);
	smtp_data_clear(&s->data);
	smtp_auth_clear(s);
	free(s);
	*sp = NULL;
}

/* ---- the connection's callbacks ---- */

/* 1 when ip is the address of a node of the distributed domain: its queue opens as many
 * connections as it has deliveries, so the per-address connection limit does not apply
 * (everything else waits for its node login). */
static int from_cluster_node(store *st, const char *ip)
{
	Tern__Node **list = NULL;
	size_t n = 0;
	int found = 0;

	if (store_node_list(st, &list, &n) != STORE_OK)
		return 0;
	for (size_t i = 0; i < n && !found; i++)
		found = list[i]->address != NULL && strcasecmp(list[i]->address, ip) == 0;
	store_free_list((void **)list, n);
	return found;
}

void *smtp_session_open(tern_conn *c, void *ctx)
{
	smtp_server *srv = ctx;
	const tern_conf *conf = srv->env.conf;
	smtp_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->srv = srv;
	s->conn = c;
	s->io = tern_conn_io(c);
	s->svc = tern_conn_service(c);
	s->tls = tern_conn_is_tls(c);
	snprintf(s->ip, sizeof(s->ip), "%s", tern_conn_peer_ip(c));
	tern_line_init(&s->lines, (size_t)conf->smtpd_command_line_max);
	smtp_data_init(&s->data, 0, 0, 0);
	tbuf_init(&s->sasl_in);
	tbuf_init(&s->sasl_out);
	const struct sockaddr *peer = tern_conn_peer_addr(c);
	store *st = srv->env.st;
	s->exempt = conf->smtpd_exempt_ipgroup[0] && store_ipgroup_match(st, conf->smtpd_exempt_ipgroup, peer);
	s->in_relay_group = conf->smtpd_relay_ipgroup[0] &&
			    store_ipgroup_match(st, conf->smtpd_relay_ipgroup, peer);
	s->insecure_auth_ok = conf->security_insecure_auth_ipgroup[0] &&
			      store_ipgroup_match(st, conf->security_insecure_auth_ipgroup, peer);
	smtp_server_count(srv, &srv->stats.sessions);
	unsigned n = smtp_policy_conn_open(srv->policy, s->ip);
	s->conn_counted = 1;
	smtp_enter_state(s, SMTP_ST_INIT);
	if (!s->exempt && smtp_policy_blocked(srv->policy, s->ip, tern_now())) {
		smtp_close_421(s, "Too many unknown recipients from your address, try again later");
	} else if (!s->exempt && conf->smtpd_max_conns_per_ip > 0 &&
		   n > (uint64_t)conf->smtpd_max_conns_per_ip && !from_cluster_node(st, s->ip)) {
		smtp_close_421(s, "Too many connections from your address");
	} else if (conf->smtpd_show_version) {
		smtp_reply(s, "220 %s ESMTP Tern %s", srv->hostname, TERN_VERSION);
	} else {
		smtp_reply(s, "220 %s ESMTP", srv->hostname);
	}
	return s;
}

void smtp_session_on_read(tern_conn *c, void *session)
{
	smtp_session *s = session;

	if (s->state == SMTP_ST_CLOSING) {
		struct evbuffer *in = tern_conn_input(c);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	smtp_process(s);
}

/* The connection is gone; a step still running frees the session when it ends. */
void smtp_session_on_close(tern_conn *c, void *session)
{
	smtp_session *s = session;

	(void)c;
	s->closed = 1;
	s->conn = NULL;
	if (!s->busy && !s->in_process)
		session_free(&s);
}

/* SIGTERM: an idle session says goodbye now; a busy one at its next command boundary. */
void smtp_session_on_drain(tern_conn *c, void *session)
{
	smtp_session *s = session;

	(void)c;
	s->draining = 1;
	if (!s->busy && s->state != SMTP_ST_DATA && s->state != SMTP_ST_CLOSING) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->srv->hostname);
		smtp_enter_state(s, SMTP_ST_CLOSING);
		tern_conn_close(s->conn);
	}
}

/* The client stayed silent past command_timeout (or data_timeout in DATA): RFC 5321
 * 4.5.3.2 lets the server close; it says why first. Nothing of an unfinished DATA is kept. */
void smtp_session_on_timeout(tern_conn *c, void *session)
{
	smtp_session *s = session;

	(void)c;
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->hostname);
	smtp_enter_state(s, SMTP_ST_CLOSING);
}

/* ---- small commands ---- */

/* HELO/EHLO start over: a new greeting ends any transaction (RFC 5321 4.1.4). */
static int greet(smtp_session *s, smtp_cmd *cmd, int esmtp)
{
	const char *arg = cmd->arg;

	while (*arg == ' ')
		arg++;
	size_t n = strcspn(arg, " ");
	if (n == 0 || n >= sizeof(s->helo)) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)arg[i] < 33 || (unsigned char)arg[i] > 126) {
			smtp_reply(s, "501 5.5.4 Invalid hostname");
			return -1;
		}
	memcpy(s->helo, arg, n);
	s->helo[n] = '\0';
	s->esmtp = esmtp;
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_ST_READY);
	return 0;
}

static int cmd_helo(smtp_session *s, smtp_cmd *cmd)
{
	if (greet(s, cmd, 0) < 0)
		return -1;
	smtp_reply(s, "250 %s", s->srv->hostname);
	return 0;
}

static int cmd_ehlo(smtp_session *s, smtp_cmd *cmd)
{
	const tern_conf *conf = s->srv->env.conf;
	tbuf b = TBUF_INIT, mechs = TBUF_INIT;

	if (greet(s, cmd, 1) < 0)
		return -1;
	tbuf_appendf(&b, "250-%s\r\n250-PIPELINING\r\n", s->srv->hostname);
	if (conf->smtpd_max_message_kb > 0)
		tbuf_appendf(&b, "250-SIZE %llu\r\n", (unsigned long long)conf->smtpd_max_message_kb * 1024);
	else
		tbuf_append_str(&b, "250-SIZE\r\n");
	tbuf_append_str(&b, "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n");
	if (conf->smtpd_etrn)
		tbuf_append_str(&b, "250-ETRN\r\n");
	if (!s->tls && s->svc != TERN_SVC_smtps)
		tbuf_append_str(&b, "250-STARTTLS\r\n");
	smtp_auth_mechs(s, &mechs);
	if (mechs.len > 0 && s->auth_user[0] == '\0')
		tbuf_appendf(&b, "250-AUTH%s\r\n", tbuf_cstr(&mechs));
	tbuf_append_str(&b, "250 HELP\r\n");
	if (s->conn != NULL)
		tern_conn_write(s->conn, b.data, b.len);
	tbuf_free(&b);
	tbuf_free(&mechs);
	return 0;
}

static int cmd_rset(smtp_session *s, smtp_cmd *cmd)
{
	(void)cmd;
	smtp_txn_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int cmd_noop(smtp_session *s, smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, "250 2.0.0 Ok");
	return 0;
}

static int cmd_quit(smtp_session *s, smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, "221 2.0.0 %s Bye", s->srv->hostname);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	tern_conn_close(s->conn);
	return 0;
}

/* VRFY answers 252 unless smtpd.vrfy; then local addresses are checked, nothing else. */
static int cmd_vrfy(smtp_session *s, smtp_cmd *cmd)
{
	smtp_path p;
	const char *end = NULL;
	char reply[256];
	int local = 0;

	if (cmd->arg[0] == '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return -1;
	}
	if (!s->srv->env.conf->smtpd_vrfy || smtp_parse_path(cmd->arg, 0, &p, &end) < 0 ||
	    *end != '\0' || p.domain[0] == '\0' || p.relay_form || p.source_route) {
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
		return 0;
	}
	if (deliver_check_rcpt(s->srv->env.deliverer, p.addr, 0, &local, reply, sizeof(reply)) == 0 && local)
		smtp_reply(s, "250 2.1.5 <%s>", p.addr);
	else if (local)
		smtp_reply(s, "%s", reply);
	else
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
	return 0;
}

static int cmd_help(smtp_session *s, smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP ETRN");
	smtp_reply(s, "214 2.0.0 AUTH STARTTLS; see RFC 5321");
	return 0;
}

/* ETRN (RFC 1985) from a trusted client asks the queue to run for a domain. */
static int cmd_etrn(smtp_session *s, smtp_cmd *cmd)
{
	const smtp_env *env = &s->srv->env;
	const char *arg = cmd->arg;

	if (arg[0] == '@' || arg[0] == '#')
		arg++;
	if (arg[0] == '\0' || strchr(arg, ' ') != NULL || strlen(arg) > SMTP_DOMAIN_MAX) {
		smtp_reply(s, "501 5.5.4 Syntax: ETRN domain");
		return -1;
	}
	if (!env->conf->smtpd_etrn || !(s->in_relay_group || s->auth_user[0] != '\0')) {
		smtp_reply(s, "459 4.7.1 <%s>: ETRN not allowed", arg);
		return 0;
	}
	if (env->etrn == NULL || env->etrn(arg, env->etrn_ctx) != 0) {
		smtp_reply(s, "458 4.3.0 Unable to queue messages for node <%s>", arg);
		return 0;
	}
	smtp_reply(s, "250 2.0.0 Queuing for node <%s> started", arg);
	return 0;
}

/* RFC 3207: plaintext sent after STARTTLS is dropped by the connection, and everything
 * learned before (greeting, authentication, transaction) is forgotten. */
static int cmd_starttls(smtp_session *s, smtp_cmd *cmd)
{
	if (cmd->arg[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	if (s->svc == TERN_SVC_smtps) {
		smtp_reply(s, "503 5.5.1 TLS already active");
		return -1;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (tern_conn_starttls(s->conn) != 0) {
		smtp_close_421(s, "TLS not available");
		return 0;
	}
	s->tls = 1;
	s->helo[0] = '\0';
	s->esmtp = 0;
	s->auth_user[0] = '\0';
	s->peer_node[0] = '\0';
	s->auth_failed = 0;
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_ST_INIT);
	return 0;
}
