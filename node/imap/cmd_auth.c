/* cmd_auth.c - commands of any state and the login family: CAPABILITY, NOOP, LOGOUT,
 * STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN, SCRAM-SHA-256 with SASL-IR), ID, ENABLE,
 * NAMESPACE. Password checks and SASL steps run on the auth pool with the session
 * paused; the [security] auth_policy decides what may run before TLS (LOGINDISABLED);
 * failures go to security.log with the guide's reasons and count toward the lockout. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster.h"
#include "imap_int.h"

/* As node/smtp: "none" allows everything; otherwise plaintext mechanisms need TLS (or a
 * client of insecure_auth_ipgroup); "secure-auth" still allows SCRAM without TLS. */
static int auth_allowed(imap_session *s, auth_sasl_mech mech)
{
	const char *policy = s->srv->env.conf->security_auth_policy;

	if (s->srv->env.auth_pool == NULL || (mech == AUTH_SASL_GSSAPI && s->srv->env.gssapi == NULL))
		return 0;
	if (s->tls || s->insecure_auth_ok || policy == NULL || strcasecmp(policy, "none") == 0)
		return 1;
	return strcasecmp(policy, "secure-auth") == 0 && !auth_sasl_mech_plaintext(mech);
}

void imap_capabilities(imap_session *s, tbuf *out)
{
	tbuf_append_str(out, "CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE");
	if (s->state == IMAP_ST_NOAUTH) {
		if (!s->tls && s->svc != TERN_SVC_imaps)
			tbuf_append_str(out, " STARTTLS");
		for (int m = 0; m < AUTH_SASL_MECH_COUNT; m++)
			if (auth_allowed(s, (auth_sasl_mech)m))
				tbuf_appendf(out, " AUTH=%s", auth_sasl_mech_name((auth_sasl_mech)m));
		if (!auth_allowed(s, AUTH_SASL_PLAIN))
			tbuf_append_str(out, " LOGINDISABLED");
		return;
	}
	tbuf_append_str(out, " UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CONDSTORE QUOTA BINARY");
}

int imap_cmd_capability(imap_session *s, const imap_cmd *c)
{
	tbuf b = TBUF_INIT;

	(void)c;
	imap_capabilities(s, &b);
	imap_untagged(s, "%s", tbuf_cstr(&b));
	tbuf_free(&b);
	imap_reply(s, "OK", "CAPABILITY completed");
	return IMAP_DONE;
}

int imap_cmd_noop(imap_session *s, const imap_cmd *c)
{
	(void)c;
	imap_reply(s, "OK", "NOOP completed");
	return IMAP_DONE;
}

int imap_cmd_logout(imap_session *s, const imap_cmd *c)
{
	(void)c;
	imap_untagged(s, "BYE Logging out");
	imap_reply(s, "OK", "LOGOUT completed");
	imap_enter_state(s, IMAP_ST_LOGOUT);
	return IMAP_DONE;
}

/* RFC 3501 §6.2.1: plaintext pipelined after STARTTLS is dropped by the connection. */
int imap_cmd_starttls(imap_session *s, const imap_cmd *c)
{
	(void)c;
	if (s->tls || s->svc == TERN_SVC_imaps) {
		imap_reply(s, "BAD", "TLS already active");
		return IMAP_DONE;
	}
	imap_reply(s, "OK", "Begin TLS negotiation now");
	imap_flush(s);
	if (tern_conn_starttls(s->conn) != 0) {
		imap_untagged(s, "BYE TLS not available");
		imap_enter_state(s, IMAP_ST_LOGOUT);
		return IMAP_DONE;
	}
	s->tls = 1;
	return IMAP_DONE;
}

int imap_cmd_id(imap_session *s, const imap_cmd *c)
{
	if (c->nargs != 1 || (c->args[0].type != IMAP_ARG_LIST && c->args[0].type != IMAP_ARG_NIL)) {
		imap_reply(s, "BAD", "Syntax: ID (params) or ID NIL");
		return IMAP_DONE;
	}
	imap_id_params(s, &c->args[0]);
	imap_untagged(s, "ID (\"name\" \"Tern\" \"version\" \"%s\")", TERN_VERSION);
	imap_reply(s, "OK", "ID completed");
	return IMAP_DONE;
}

int imap_cmd_enable(imap_session *s, const imap_cmd *c)
{
	tbuf b = TBUF_INIT;

	if (c->nargs == 0) {
		imap_reply(s, "BAD", "Syntax: ENABLE capability...");
		return IMAP_DONE;
	}
	tbuf_append_str(&b, "ENABLED");
	for (size_t i = 0; i < c->nargs; i++) {
		if (imap_arg_is_atom(&c->args[i], "CONDSTORE") && !s->condstore) {
			s->condstore = 1;
			tbuf_append_str(&b, " CONDSTORE");
		}
	}
	imap_untagged(s, "%s", tbuf_cstr(&b));
	tbuf_free(&b);
	imap_reply(s, "OK", "ENABLE completed");
	return IMAP_DONE;
}

int imap_cmd_namespace(imap_session *s, const imap_cmd *c)
{
	(void)c;
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_reply(s, "OK", "NAMESPACE completed");
	return IMAP_DONE;
}

/* ---- login ---- */

void imap_auth_clear(imap_session *s)
{
	auth_sasl_free(&s->sasl);
	tbuf_free(&s->sasl_in);
	tbuf_free(&s->sasl_out);
	if (s->login_pass != NULL) {
		explicit_bzero(s->login_pass, strlen(s->login_pass));
		free(s->login_pass);
		s->login_pass = NULL;
	}
	free(s->login_user);
	s->login_user = NULL;
}

static void login_failed(imap_session *s, const char *reason, const char *reply)
{
	tlog(TLOG_SECURITY, "Failed IMAP login from %s, %s", s->ip, reason);
	imap_server_count(s->srv, &s->srv->stats.auth_failed);
	imap_auth_clear(s);
	s->input = IMAP_IN_CMD;
	imap_reply(s, "NO", "%s", reply);
}

/* The folders are ready: the session is authenticated. */
static void login_ready(imap_session *s)
{
	tbuf b = TBUF_INIT;

	imap_server_count(s->srv, &s->srv->stats.logins);
	imap_enter_state(s, IMAP_ST_AUTH);
	imap_capabilities(s, &b);
	imap_reply(s, "OK", "[%s] Logged in", tbuf_cstr(&b));
	tbuf_free(&b);
	imap_async_done(s);
}

/* A node logged in for a user (node/proxy at the front node): the client's address is
 * the one the node gave with ID. */
static void login_by_node(imap_session *s, const char *account, const char *node)
{
	snprintf(s->via_node, sizeof(s->via_node), "%s", node);
	if (s->orig_ip[0] != '\0')
		snprintf(s->ip, sizeof(s->ip), "%s", s->orig_ip);
	tlog(TLOG_SECURITY, "IMAP login of %s from %s (port %u) by node %s", account, s->ip, s->orig_port, node);
}

/* A check succeeded for `account` (node: the peer node of a node login, else NULL): a
 * user homed on another node is proxied there; else find the user, then prepare its
 * folders. */
static void login_succeeded(imap_session *s, const char *account, const char *node)
{
	Tern__User *u = NULL;
	char home[64];

	s->input = IMAP_IN_CMD;
	if (node != NULL)
		login_by_node(s, account, node);
	imap_auth_clear(s);
	int h = cluster_user_home(s->srv->env.st, account, home, sizeof(home));
	if (h == 1) {
		imap_proxy_login(s, account, home);
		return;
	}
	if (h < 0 || store_user_find(s->srv->env.st, account, &u) != STORE_OK || u->id.len != 16) {
		store_free_record(u);
		imap_reply(s, "NO", "[UNAVAILABLE] Account not available");
		imap_async_done(s);
		return;
	}
	memcpy(s->user_id, u->id.data, 16);
	snprintf(s->account, sizeof(s->account), "%s", account);
	store_free_record(u);
	/* A mailbox held by a migration here (frozen at the cut-over, or still arriving) is
	 * not served: the client retries and reaches the new home through any node. The
	 * watch comes first, so a freeze after the check reaches the session. */
	store_mbox_state ms = STORE_MBOX_ACTIVE;
	int src = imap_watch_user(s);
	if (src == 0)
		src = store_mbox_state_get(s->srv->env.st, s->user_id, &ms, NULL);
	if (src != STORE_OK || ms != STORE_MBOX_ACTIVE) {
		if (s->user_watch != NULL)
			store_watch_remove(s->srv->env.st, &s->user_watch);
		s->account[0] = '\0';
		imap_reply(s, "NO", src != STORE_OK ? "[UNAVAILABLE] Account not available"
			   : "[UNAVAILABLE] Mailbox is being moved to another server, try again shortly");
		imap_async_done(s);
		return;
	}
	imap_folders_prepare(s, login_ready);
}

/* ---- LOGIN: auth_check_password on the pool ---- */

struct login_job {
	char account[400];
	const char *reason;
	int rc;
};

static void login_job_run(void *arg)
{
	imap_session *s = arg;
	struct login_job *j = s->op;
	auth_sasl_env env = { s->srv->env.st, s->srv->env.lockout, s->srv->env.gssapi };

	j->rc = auth_check_password(&env, s->login_user, s->login_pass, s->ip, j->account, sizeof(j->account),
				    &j->reason);
}

static void login_job_done(void *arg)
{
	imap_session *s = arg;
	struct login_job *j = s->op;

	if (s->closed) {
		imap_auth_clear(s);
		imap_async_done(s);
		return;
	}
	if (j->rc != 0) {
		login_failed(s, j->reason ? j->reason : "bad credentials",
			     "[AUTHENTICATIONFAILED] Authentication failed");
		imap_async_done(s);
		return;
	}
	login_succeeded(s, j->account, NULL);
}

int imap_cmd_login(imap_session *s, const imap_cmd *c)
{
	const char *user, *pass;
	size_t ulen, plen;

	if (c->nargs != 2 || imap_arg_astring(&c->args[0], &user, &ulen) < 0 ||
	    imap_arg_astring(&c->args[1], &pass, &plen) < 0 || memchr(user, 0, ulen) || memchr(pass, 0, plen)) {
		imap_reply(s, "BAD", "Syntax: LOGIN user password");
		return IMAP_DONE;
	}
	if (!auth_allowed(s, AUTH_SASL_PLAIN)) {
		tlog(TLOG_SECURITY, "Failed IMAP login from %s, plaintext authentication is disabled", s->ip);
		imap_reply(s, "NO", "[PRIVACYREQUIRED] LOGIN is disabled before TLS");
		return IMAP_DONE;
	}
	struct login_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		abort();
	s->op = j;
	s->op_free = free;
	s->login_user = strndup(user, ulen);
	s->login_pass = strndup(pass, plen);
	imap_async_begin(s);
	if (tern_pool_submit(s->srv->env.auth_pool, login_job_run, login_job_done, s, s->io) != 0) {
		imap_auth_clear(s);
		imap_reply(s, "NO", "[UNAVAILABLE] Temporary authentication failure, try again later");
		imap_async_done(s);
	}
	return IMAP_ASYNC;
}

/* ---- AUTHENTICATE ---- */

static void sasl_job(void *arg)
{
	imap_session *s = arg;

	s->sasl_rc = auth_sasl_step(s->sasl, s->sasl_in.data, s->sasl_in.len, s->sasl_has_input, &s->sasl_out,
				    &s->sasl_reason);
}

static void sasl_job_done(void *arg)
{
	imap_session *s = arg;

	tbuf_free(&s->sasl_in);
	if (s->closed) {
		imap_auth_clear(s);
		s->input = IMAP_IN_CMD;
		imap_async_done(s);
		return;
	}
	switch (s->sasl_rc) {
	case AUTH_SASL_CONTINUE: {
		tbuf b64 = TBUF_INIT;
		auth_b64_encode(s->sasl_out.data ? s->sasl_out.data : "", s->sasl_out.len, &b64);
		imap_write(s, "+ ", 2);
		imap_write(s, b64.data ? b64.data : "", b64.len);
		imap_write(s, "\r\n", 2);
		tbuf_free(&b64);
		tbuf_free(&s->sasl_out);
		/* input resumes as raw lines; the command stays open */
		s->input = IMAP_IN_SASL;
		imap_async_done(s);
		return;
	}
	case AUTH_SASL_OK: {
		char account[400], node[64];
		const char *by = auth_sasl_node(s->sasl);
		snprintf(account, sizeof(account), "%s", auth_sasl_account(s->sasl));
		snprintf(node, sizeof(node), "%s", by ? by : "");
		login_succeeded(s, account, by ? node : NULL);
		return;
	}
	case AUTH_SASL_FAIL:
		login_failed(s, s->sasl_reason ? s->sasl_reason : "bad credentials",
			     "[AUTHENTICATIONFAILED] Authentication failed");
		break;
	default:
		login_failed(s, "error during authentication", "[AUTHENTICATIONFAILED] Malformed response");
		break;
	}
	imap_async_done(s);
}

static void sasl_step(imap_session *s, const char *b64, size_t len, int has_input)
{
	s->sasl_has_input = has_input;
	tbuf_reset(&s->sasl_in);
	if (has_input && !(len == 1 && b64[0] == '=') && auth_b64_decode(b64, len, &s->sasl_in) < 0) {
		s->busy = 1;     /* login_failed + async_done end the command */
		login_failed(s, "error during authentication", "Cannot decode response");
		imap_async_done(s);
		return;
	}
	imap_async_begin(s);
	if (tern_pool_submit(s->srv->env.auth_pool, sasl_job, sasl_job_done, s, s->io) != 0) {
		imap_auth_clear(s);
		s->input = IMAP_IN_CMD;
		imap_reply(s, "NO", "[UNAVAILABLE] Temporary authentication failure, try again later");
		imap_async_done(s);
	}
}

int imap_cmd_authenticate(imap_session *s, const imap_cmd *c)
{
	auth_sasl_mech mech;
	const char *ir = NULL;
	size_t irlen = 0;

	if (c->nargs < 1 || c->nargs > 2 || c->args[0].type != IMAP_ARG_ATOM ||
	    (c->nargs == 2 && imap_arg_astring(&c->args[1], &ir, &irlen) < 0)) {
		imap_reply(s, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
		return IMAP_DONE;
	}
	if (auth_sasl_mech_parse(c->args[0].str, &mech) < 0) {
		tlog(TLOG_SECURITY, "Failed IMAP login from %s, authentication method %s is invalid or unknown",
		     s->ip, c->args[0].str);
		imap_reply(s, "NO", "Unsupported authentication mechanism");
		return IMAP_DONE;
	}
	if (!auth_allowed(s, mech)) {
		tlog(TLOG_SECURITY, "Failed IMAP login from %s, authentication method %s is disabled", s->ip,
		     auth_sasl_mech_name(mech));
		imap_reply(s, "NO", "[PRIVACYREQUIRED] Mechanism not allowed before TLS");
		return IMAP_DONE;
	}
	auth_sasl_env env = { s->srv->env.st, s->srv->env.lockout, s->srv->env.gssapi };
	s->mech = mech;
	s->sasl = auth_sasl_new(&env, mech, s->ip);
	if (s->sasl == NULL) {
		imap_reply(s, "NO", "[UNAVAILABLE] Temporary authentication failure");
		return IMAP_DONE;
	}
	sasl_step(s, ir ? ir : "", irlen, ir != NULL);
	return IMAP_ASYNC;
}

/* One client response line of AUTHENTICATE ("*" cancels, RFC 3501 §6.2.2). */
void imap_auth_line(imap_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		s->input = IMAP_IN_CMD;
		tlog(TLOG_SECURITY, "Failed IMAP login from %s, authentication cancelled by user", s->ip);
		imap_auth_clear(s);
		imap_reply(s, "BAD", "Authentication cancelled");
		s->busy = 1;
		imap_async_done(s);
		return;
	}
	sasl_step(s, line, len, 1);
}
