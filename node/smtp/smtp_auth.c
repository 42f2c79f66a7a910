/* smtp_auth.c - the AUTH command (RFC 4954) on node/auth's SASL: base64 framing,
 * "*" to cancel, the [security] auth_policy, security.log lines, and each SASL step run
 * on the auth pool (it looks users up and hashes) with the session paused meanwhile.
 * Client responses are never logged. */
#include <string.h>
#include <strings.h>
#include "cluster.h"
#include "smtp_int.h"

/* auth_policy "none": anything anywhere; otherwise plaintext mechanisms need TLS (or a
 * client of insecure_auth_ipgroup); "secure-auth" still lets SCRAM, which never sends
 * the password, run without TLS; "encrypted" wants TLS for every mechanism. */
int smtp_auth_allowed(smtp_session *s, auth_sasl_mech mech)
{
	const char *policy = s->srv->env.conf->security_auth_policy;

	if (s->srv->env.auth_pool == NULL || (mech == AUTH_SASL_GSSAPI && s->srv->env.gssapi == NULL))
		return 0;
	if (s->tls || s->insecure_auth_ok || policy == NULL || strcasecmp(policy, "none") == 0)
		return 1;
	return strcasecmp(policy, "secure-auth") == 0 && !auth_sasl_mech_plaintext(mech);
}

void smtp_auth_mechs(smtp_session *s, tbuf *out)
{
	for (int m = 0; m < AUTH_SASL_MECH_COUNT; m++)
		if (smtp_auth_allowed(s, (auth_sasl_mech)m))
			tbuf_appendf(out, " %s", auth_sasl_mech_name((auth_sasl_mech)m));
}

void smtp_auth_clear(smtp_session *s)
{
	auth_sasl_free(&s->sasl);
	tbuf_free(&s->sasl_in);
	tbuf_free(&s->sasl_out);
}

static void auth_log(smtp_session *s, const char *fmt, const char *arg)
{
	char why[160];

	snprintf(why, sizeof(why), fmt, arg);
	tlog(TLOG_SECURITY, "Failed SMTP login from %s, %s", s->ip, why);
}

/* The exchange ends without success. */
static void auth_end_failed(smtp_session *s, const char *reply)
{
	auth_sasl_free(&s->sasl);
	tbuf_free(&s->sasl_in);
	s->auth_failed = 1;
	smtp_server_count(s->srv, &s->srv->stats.auth_failed);
	smtp_enter_state(s, SMTP_ST_READY);
	smtp_reply(s, "%s", reply);
	smtp_failed(s);
}

/* Auth pool thread: one SASL step. */
static void auth_job(void *arg)
{
	smtp_session *s = arg;

	s->sasl_rc = auth_sasl_step(s->sasl, s->sasl_in.data, s->sasl_in.len, s->sasl_has_input,
				    &s->sasl_out, &s->sasl_reason);
}

/* Back on the I/O thread: answer the step's outcome. */
static void auth_job_done(void *arg)
{
	smtp_session *s = arg;

	tbuf_free(&s->sasl_in);
	if (s->closed) {
		smtp_async_done(s);
		return;
	}
	const char *mech = auth_sasl_mech_name(s->mech);
	switch (s->sasl_rc) {
	case AUTH_SASL_CONTINUE: {
		tbuf b64 = TBUF_INIT;
		auth_b64_encode(s->sasl_out.data ? s->sasl_out.data : "", s->sasl_out.len, &b64);
		smtp_enter_state(s, SMTP_ST_AUTH);
		smtp_reply(s, "334 %s", tbuf_cstr(&b64));
		tbuf_free(&b64);
		break;
	}
	case AUTH_SASL_OK: {
		const char *node = auth_sasl_node(s->sasl);
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", auth_sasl_account(s->sasl));
		/* a node login for itself (no authzid) makes the session a cluster peer */
		if (node != NULL && strncmp(s->auth_user, CLUSTER_NODE_AUTHCID_PREFIX,
					    strlen(CLUSTER_NODE_AUTHCID_PREFIX)) == 0)
			snprintf(s->peer_node, sizeof(s->peer_node), "%s", node);
		auth_sasl_free(&s->sasl);
		smtp_enter_state(s, SMTP_ST_READY);
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	}
	case AUTH_SASL_FAIL:
		auth_log(s, "%s", s->sasl_reason ? s->sasl_reason : "bad credentials");
		auth_end_failed(s, "535 5.7.8 Authentication credentials invalid");
		break;
	default:
		auth_log(s, "error during authentication with method %s", mech);
		auth_end_failed(s, "501 5.5.2 Malformed authentication response");
		break;
	}
	tbuf_free(&s->sasl_out);
	smtp_async_done(s);
}

/* Decode a client response and run the next step on the auth pool. */
static void auth_step(smtp_session *s, const char *b64, size_t len, int has_input)
{
	const char *mech = auth_sasl_mech_name(s->mech);

	s->sasl_has_input = has_input;
	tbuf_reset(&s->sasl_in);
	if (has_input && !(len == 1 && b64[0] == '=') && auth_b64_decode(b64, len, &s->sasl_in) < 0) {
		auth_log(s, "error during authentication with method %s", mech);
		auth_end_failed(s, "501 5.5.2 Cannot decode response");
		return;
	}
	smtp_async_begin(s);
	if (tern_pool_submit(s->srv->env.auth_pool, auth_job, auth_job_done, s, s->io) != 0) {
		tbuf_free(&s->sasl_in);
		auth_sasl_free(&s->sasl);
		smtp_enter_state(s, SMTP_ST_READY);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure, try again later");
		smtp_async_done(s);
	}
}

int smtp_cmd_auth(smtp_session *s, smtp_cmd *cmd)
{
	char name[32];
	const char *arg = cmd->arg;
	size_t n = strcspn(arg, " ");
	auth_sasl_mech mech;

	if (n == 0 || n >= sizeof(name)) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return -1;
	}
	memcpy(name, arg, n);
	name[n] = '\0';
	if (auth_sasl_mech_parse(name, &mech) < 0) {
		auth_log(s, "authentication method %s is invalid or unknown", name);
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return -1;
	}
	if (!smtp_auth_allowed(s, mech)) {
		auth_log(s, "authentication method %s is disabled", auth_sasl_mech_name(mech));
		smtp_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return -1;
	}
	const char *ir = arg[n] == ' ' ? arg + n + 1 : NULL;
	auth_sasl_env env = { s->srv->env.st, s->srv->env.lockout, s->srv->env.gssapi };
	s->mech = mech;
	s->sasl = auth_sasl_new(&env, mech, s->ip);
	if (s->sasl == NULL) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return 0;
	}
	smtp_enter_state(s, SMTP_ST_AUTH);
	auth_step(s, ir ? ir : "", ir ? strlen(ir) : 0, ir != NULL);
	return 0;
}

void smtp_auth_line(smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		tlog(TLOG_SECURITY, "Failed SMTP login from %s, authentication cancelled by user", s->ip);
		auth_sasl_free(&s->sasl);
		s->auth_failed = 1;
		smtp_enter_state(s, SMTP_ST_READY);
		smtp_reply(s, "501 5.7.0 Authentication cancelled");
		smtp_failed(s);
		return;
	}
	auth_step(s, line, len, 1);
}
