/* pop3_auth.c - logins: USER/PASS (RFC 1939 7) and AUTH (RFC 5034) on node/auth's SASL,
 * with the [security] auth_policy, the lockout, security.log lines and each password
 * check or SASL step run on the auth pool while the session waits. After a login the
 * maildrop snapshot is taken, held against other POP3 sessions, and the
 * POP3-before-SMTP hook is called. Passwords and SASL responses are never logged. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "cluster.h"
#include "pop3_int.h"

/* auth_policy "none": anything anywhere; otherwise a password in clear needs TLS (or a
 * client of insecure_auth_ipgroup). */
int pop3_plaintext_allowed(pop3_session *s)
{
	const char *policy = s->srv->env.conf->security_auth_policy;

	if (s->srv->env.auth_pool == NULL)
		return 0;
	return s->tls || s->insecure_auth_ok || policy == NULL || strcasecmp(policy, "none") == 0;
}

/* "secure-auth" still lets SCRAM, which never sends the password, run without TLS;
 * "encrypted" wants TLS for every mechanism. */
static int mech_allowed(pop3_session *s, auth_sasl_mech mech)
{
	const char *policy = s->srv->env.conf->security_auth_policy;

	if (mech == AUTH_SASL_GSSAPI && s->srv->env.gssapi == NULL)
		return 0;
	if (pop3_plaintext_allowed(s))
		return 1;
	return s->srv->env.auth_pool != NULL && policy != NULL &&
	       strcasecmp(policy, "secure-auth") == 0 && !auth_sasl_mech_plaintext(mech);
}

/* For CAPA's SASL line. */
void pop3_auth_mechs(pop3_session *s, tbuf *out)
{
	for (int m = 0; m < AUTH_SASL_MECH_COUNT; m++)
		if (mech_allowed(s, (auth_sasl_mech)m))
			tbuf_appendf(out, " %s", auth_sasl_mech_name((auth_sasl_mech)m));
}

/* Drop an exchange and any password still held, wiping the secret. */
void pop3_auth_clear(pop3_session *s)
{
	auth_sasl_free(&s->sasl);
	tbuf_free(&s->sasl_in);
	tbuf_free(&s->sasl_out);
	if (s->password != NULL) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
		s->password = NULL;
	}
}

static void auth_log(pop3_session *s, const char *fmt, const char *arg)
{
	char why[160];

	snprintf(why, sizeof(why), fmt, arg);
	tlog(TLOG_SECURITY, "Failed POP3 login from %s, %s", s->ip, why);
}

/* A login attempt failed: count it for the figures and the failed-command limit. */
static void login_failed(pop3_session *s, const char *reply)
{
	pop3_server_count(s->srv, &s->srv->stats.auth_failed, 1);
	if (s->state == POP3_ST_SASL)
		pop3_enter_state(s, POP3_ST_AUTHORIZATION);
	pop3_reply(s, "%s", reply);
	pop3_failed(s);
}

/* The client's port, for the logs. */
static unsigned peer_port(pop3_session *s)
{
	const struct sockaddr *sa = s->conn ? tern_conn_peer_addr(s->conn) : NULL;

	if (sa != NULL && sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa != NULL && sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* The login at the home node ended (on the session's I/O thread): answer the client's
 * login with the home node's answer and splice, or refuse. Ends the asynchronous step. */
static void proxy_done(void *ctx, int ok, const char *reply)
{
	pop3_session *s = ctx;
	pop3_server *srv = s->srv;

	if (!ok) {
		tlog(TLOG_WARNING, "POP3 login of %s from %s: home node %s unreachable: %s", s->account, s->ip,
		     s->home, reply ? reply : "");
		proxy_free(&s->proxy);
		s->account[0] = '\0';
		pop3_reply(s, "-ERR [SYS/TEMP] home server unreachable, try again later");
		pop3_async_done(s);
		return;
	}
	/* POP3 has no ID: the client's address is logged here, where the login happened */
	tlog(TLOG_SECURITY, "POP3 login of %s from %s (port %u) proxied to %s", s->account, s->ip,
	     peer_port(s), s->home);
	pop3_server_count(srv, &srv->stats.logins, 1);
	if (srv->env.pop3_login != NULL && s->conn != NULL)
		srv->env.pop3_login(tern_conn_peer_addr(s->conn), srv->env.pop3_login_ctx);
	pop3_reply(s, "%s", reply);
	pop3_enter_state(s, POP3_ST_PROXY);
	proxy_splice(s->proxy, s->conn);
	pop3_async_done(s);
}

/* A user homed on another node: log in there. 1 when the proxy runs (it ends the
 * asynchronous step), 0 after a refusal was sent. */
static int proxy_to_home(pop3_session *s, const char *home)
{
	const char *why = NULL;
	proxy_request rq = {
		.st = s->srv->env.st,
		.io = s->io,
		.proto = PROXY_POP3,
		.home = home,
		.account = s->account,
		.client_ip = s->ip,
		.client_port = peer_port(s),
		.timeout = (int)s->srv->env.conf->cluster_request_timeout,
		.done = proxy_done,
		.ctx = s,
	};

	snprintf(s->home, sizeof(s->home), "%s", home);
	if (s->via_node[0] != '\0') {
		/* a node logged in here for a user it believes homed here: never proxy twice */
		tlog(TLOG_WARNING, "POP3 login of %s by node %s refused: the user's home is %s", s->account,
		     s->via_node, home);
	} else if (proxy_start(&rq, &s->proxy, &why) == 0) {
		return 1;
	} else {
		tlog(TLOG_WARNING, "POP3 login of %s from %s: home node %s unreachable: %s", s->account, s->ip,
		     home, why);
	}
	s->account[0] = '\0';
	pop3_reply(s, "-ERR [SYS/TEMP] home server unreachable, try again later");
	return 0;
}

/* The account is authenticated (node: the peer node of a node login, else NULL): a user
 * homed on another node is proxied there (returns 1: the proxy ends the asynchronous
 * step); else open the maildrop and enter TRANSACTION (returns 0). */
static int login_finish(pop3_session *s, const char *account, const char *node)
{
	pop3_server *srv = s->srv;
	char home[64];

	snprintf(s->account, sizeof(s->account), "%s", account);
	explicit_bzero(s->user, sizeof(s->user));
	pop3_enter_state(s, POP3_ST_AUTHORIZATION);
	if (node != NULL) {
		snprintf(s->via_node, sizeof(s->via_node), "%s", node);
		tlog(TLOG_SECURITY, "POP3 login of %s by node %s from %s", account, node, s->ip);
	}
	int h = cluster_user_home(srv->env.st, s->account, home, sizeof(home));
	if (h == 1)
		return proxy_to_home(s, home);
	int rc = h < 0 ? h : pop3_maildrop_load(srv->env.st, s->account, &s->md);
	if (rc != STORE_OK) {
		tlog(TLOG_ERROR, "POP3: cannot open the maildrop of %s: %s", s->account, store_strerror(rc));
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the maildrop, try again later");
		return 0;
	}
	/* A mailbox held by a migration here is not served; the watch comes first so that
	 * a freeze after the check reaches the session. */
	store_mbox_state ms = STORE_MBOX_ACTIVE;
	rc = pop3_watch_user(s);
	if (rc == STORE_OK)
		rc = store_mbox_state_get(srv->env.st, s->md.user, &ms, NULL);
	if (rc != STORE_OK || ms != STORE_MBOX_ACTIVE) {
		pop3_unwatch_user(s);
		pop3_maildrop_clear(&s->md);
		pop3_reply(s, rc != STORE_OK ? "-ERR [SYS/TEMP] Cannot open the maildrop, try again later"
			   : "-ERR [SYS/TEMP] Mailbox is being moved to another server, try again shortly");
		return 0;
	}
	if (pop3_server_lock_user(srv, s->md.user) < 0) {
		pop3_unwatch_user(s);
		pop3_maildrop_clear(&s->md);
		pop3_reply(s, "-ERR [IN-USE] Maildrop is in use by another POP3 session");
		return 0;
	}
	s->locked = 1;
	pop3_server_count(srv, &srv->stats.logins, 1);
	/* POP3 before SMTP trusts the client's address: not a front node's */
	if (srv->env.pop3_login != NULL && s->conn != NULL && s->via_node[0] == '\0')
		srv->env.pop3_login(tern_conn_peer_addr(s->conn), srv->env.pop3_login_ctx);
	pop3_enter_state(s, POP3_ST_TRANSACTION);
	pop3_reply(s, "+OK Logged in, %zu messages (%llu octets)", s->md.n,
		   (unsigned long long)s->md.bytes);
	return 0;
}

/* USER only records the name: whether it exists is never revealed before PASS. */
int pop3_cmd_user(pop3_session *s, pop3_cmd *cmd)
{
	if (!pop3_plaintext_allowed(s)) {
		auth_log(s, "authentication method %s is disabled", "USER");
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections");
		return -1;
	}
	if (strlen(cmd->text) >= sizeof(s->user)) {
		pop3_reply(s, "-ERR [AUTH] User name too long");
		return -1;
	}
	snprintf(s->user, sizeof(s->user), "%s", cmd->text);
	pop3_reply(s, "+OK Send your password");
	return 0;
}

/* Auth pool thread: the password check (slow on purpose). */
static void pass_job(void *arg)
{
	pop3_session *s = arg;
	pop3_server *srv = s->srv;
	auth_sasl_env env = { srv->env.st, srv->env.lockout, srv->env.gssapi };

	s->login_rc = auth_check_password(&env, s->user, s->password, s->ip, s->account,
					  sizeof(s->account), &s->login_reason);
	explicit_bzero(s->password, strlen(s->password));
}

/* Back on the I/O thread. */
static void pass_done(void *arg)
{
	pop3_session *s = arg;

	free(s->password);
	s->password = NULL;
	if (!s->closed) {
		if (s->login_rc == 0) {
			char account[sizeof(s->account)];
			snprintf(account, sizeof(account), "%s", s->account);
			if (login_finish(s, account, NULL))
				return;         /* the proxy ends the step */
		} else {
			auth_log(s, "%s", s->login_reason ? s->login_reason : "bad credentials");
			explicit_bzero(s->user, sizeof(s->user));
			login_failed(s, "-ERR [AUTH] Invalid login or password");
		}
	}
	pop3_async_done(s);
}

/* PASS checks the name and password on the auth pool (the lockout counts there). */
int pop3_cmd_pass(pop3_session *s, pop3_cmd *cmd)
{
	if (s->user[0] == '\0') {
		pop3_reply(s, "-ERR Send USER first");
		return -1;
	}
	if (!pop3_plaintext_allowed(s)) {
		auth_log(s, "authentication method %s is disabled", "USER");
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections");
		return -1;
	}
	s->password = strdup(cmd->text);
	if (s->password == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] Out of memory");
		return -1;
	}
	pop3_async_begin(s);
	if (tern_pool_submit(s->srv->env.auth_pool, pass_job, pass_done, s, s->io) != 0) {
		pop3_auth_clear(s);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later");
		pop3_async_done(s);
	}
	return 0;
}

/* ---- AUTH (RFC 5034) ---- */

/* The exchange ends without success. */
static void sasl_end_failed(pop3_session *s, const char *reply)
{
	auth_sasl_free(&s->sasl);
	tbuf_free(&s->sasl_in);
	login_failed(s, reply);
}

/* Auth pool thread: one SASL step. */
static void sasl_job(void *arg)
{
	pop3_session *s = arg;

	s->sasl_rc = auth_sasl_step(s->sasl, s->sasl_in.data, s->sasl_in.len, s->sasl_has_input,
				    &s->sasl_out, &s->sasl_reason);
}

/* Back on the I/O thread: answer the step's outcome. */
static void sasl_done(void *arg)
{
	pop3_session *s = arg;

	if (s->sasl_in.data != NULL)
		explicit_bzero(s->sasl_in.data, s->sasl_in.len);
	tbuf_free(&s->sasl_in);
	if (s->closed) {
		pop3_async_done(s);
		return;
	}
	switch (s->sasl_rc) {
	case AUTH_SASL_CONTINUE: {
		tbuf b64 = TBUF_INIT;
		auth_b64_encode(s->sasl_out.data ? s->sasl_out.data : "", s->sasl_out.len, &b64);
		pop3_reply(s, "+ %s", tbuf_cstr(&b64));
		tbuf_free(&b64);
		break;
	}
	case AUTH_SASL_OK: {
		char account[sizeof(s->account)], node[64];
		const char *by = auth_sasl_node(s->sasl);
		snprintf(account, sizeof(account), "%s", auth_sasl_account(s->sasl));
		snprintf(node, sizeof(node), "%s", by ? by : "");
		auth_sasl_free(&s->sasl);
		if (login_finish(s, account, by ? node : NULL)) {
			tbuf_free(&s->sasl_out);
			return;         /* the proxy ends the step */
		}
		break;
	}
	case AUTH_SASL_FAIL:
		auth_log(s, "%s", s->sasl_reason ? s->sasl_reason : "bad credentials");
		sasl_end_failed(s, "-ERR [AUTH] Authentication failed");
		break;
	default:
		auth_log(s, "error during authentication with method %s", auth_sasl_mech_name(s->mech));
		sasl_end_failed(s, "-ERR Malformed authentication response");
		break;
	}
	tbuf_free(&s->sasl_out);
	pop3_async_done(s);
}

/* Decode a client response and run the next step on the auth pool. */
static void sasl_step(pop3_session *s, const char *b64, size_t len, int has_input)
{
	s->sasl_has_input = has_input;
	tbuf_reset(&s->sasl_in);
	if (has_input && !(len == 1 && b64[0] == '=') && auth_b64_decode(b64, len, &s->sasl_in) < 0) {
		auth_log(s, "error during authentication with method %s", auth_sasl_mech_name(s->mech));
		sasl_end_failed(s, "-ERR Cannot decode response");
		return;
	}
	pop3_async_begin(s);
	if (tern_pool_submit(s->srv->env.auth_pool, sasl_job, sasl_done, s, s->io) != 0) {
		tbuf_free(&s->sasl_in);
		auth_sasl_free(&s->sasl);
		pop3_enter_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later");
		pop3_async_done(s);
	}
}

/* AUTH alone lists the mechanisms (as many clients expect); AUTH mech [ir] starts an
 * exchange. */
int pop3_cmd_auth(pop3_session *s, pop3_cmd *cmd)
{
	char name[32];
	const char *arg = cmd->text;
	size_t n = strcspn(arg, " ");
	auth_sasl_mech mech;

	if (arg[0] == '\0') {
		tbuf b = TBUF_INIT;
		tbuf_append_str(&b, "+OK Supported mechanisms follow\r\n");
		for (int m = 0; m < AUTH_SASL_MECH_COUNT; m++)
			if (mech_allowed(s, (auth_sasl_mech)m))
				tbuf_appendf(&b, "%s\r\n", auth_sasl_mech_name((auth_sasl_mech)m));
		tbuf_append_str(&b, ".\r\n");
		if (s->conn != NULL)
			tern_conn_write(s->conn, b.data, b.len);
		tbuf_free(&b);
		return 0;
	}
	const char *ir = arg[n] == ' ' ? arg + n + 1 : NULL;
	if (n == 0 || n >= sizeof(name) || (ir != NULL && (ir[0] == '\0' || strchr(ir, ' ') != NULL))) {
		tlog(TLOG_SECURITY, "Failed POP3 login from %s, missing parameter in AUTH header", s->ip);
		pop3_reply(s, "-ERR Syntax: AUTH mechanism [initial-response]");
		return -1;
	}
	memcpy(name, arg, n);
	name[n] = '\0';
	if (auth_sasl_mech_parse(name, &mech) < 0) {
		auth_log(s, "authentication method %s is invalid or unknown", name);
		pop3_reply(s, "-ERR Unrecognized authentication type");
		return -1;
	}
	if (!mech_allowed(s, mech)) {
		auth_log(s, "authentication method %s is disabled", auth_sasl_mech_name(mech));
		pop3_reply(s, "-ERR [AUTH] Encryption required for requested authentication mechanism");
		return -1;
	}
	auth_sasl_env env = { s->srv->env.st, s->srv->env.lockout, s->srv->env.gssapi };
	s->mech = mech;
	s->sasl = auth_sasl_new(&env, mech, s->ip);
	if (s->sasl == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
		return 0;
	}
	pop3_enter_state(s, POP3_ST_SASL);
	sasl_step(s, ir ? ir : "", ir ? strlen(ir) : 0, ir != NULL);
	return 0;
}

/* "*" cancels the exchange (RFC 5034 4); anything else is the next base64 response. */
void pop3_auth_line(pop3_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		auth_log(s, "%s", "authentication cancelled by user");
		auth_sasl_free(&s->sasl);
		pop3_enter_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply(s, "-ERR Authentication cancelled");
		pop3_failed(s);
		return;
	}
	sasl_step(s, line, len, 1);
}
