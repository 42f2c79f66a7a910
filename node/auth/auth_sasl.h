/* auth_sasl.h - server-side SASL for SMTP, IMAP and POP3: PLAIN (RFC 4616), LOGIN and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) against the store's accounts, GSSAPI (RFC 4752,
 * auth_gssapi.h) when a keytab is configured, and the plain user/password check.
 *
 * The protocol glue frames the exchange (base64 lines) and hands decoded bytes to
 * auth_sasl_step(). Steps look users up and hash passwords: run them on the auth pool,
 * never on an I/O thread. An exchange is used by one thread at a time. Secrets are
 * wiped from memory after use and never appear in a reason text. */
#ifndef TERN_AUTH_SASL_H
#define TERN_AUTH_SASL_H
#include <stddef.h>
#include <stdio.h>
#include "auth.h"
#include "auth_gssapi.h"
#include "store.h"

typedef enum {
	AUTH_SASL_PLAIN,
	AUTH_SASL_LOGIN,
	AUTH_SASL_SCRAM_SHA_256,
	AUTH_SASL_GSSAPI,          /* only with auth_sasl_env.gssapi */
	AUTH_SASL_MECH_COUNT
} auth_sasl_mech;

/* "PLAIN", "LOGIN", "SCRAM-SHA-256", "GSSAPI" (case-insensitive) -> mech. 0 ok, -1 unknown. */
int auth_sasl_mech_parse(const char *name, auth_sasl_mech *mech_r);
const char *auth_sasl_mech_name(auth_sasl_mech mech);
/* Mechanisms that send the password itself (PLAIN, LOGIN): 1. */
int auth_sasl_mech_plaintext(auth_sasl_mech mech);

typedef struct auth_sasl_env {
	store *st;
	auth_lockout *lockout;     /* may be NULL: no lockout */
	/* GSSAPI acceptor (keytab, service, principal -> login); NULL = GSSAPI not offered.
	 * Set it only when auth_gssapi_available() said yes. */
	const auth_gssapi_conf *gssapi;
} auth_sasl_env;

/* 1 when env can run mech (GSSAPI needs env->gssapi): the protocols advertise and
 * accept only these. */
int auth_sasl_mech_available(const auth_sasl_env *env, auth_sasl_mech mech);

/* Check a login name and password: a bare name means the primary domain; the account
 * must exist, be enabled, not be locked out for client_ip, and the yescrypt hash must
 * match. Failures count toward the lockout, a success clears it. 0 ok with the account
 * ("name@domain", lower case) in account_r; -1 with *reason_r (static text for the
 * security log, e.g. "bad credentials"). Blocking. */
int auth_check_password(const auth_sasl_env *env, const char *login, const char *password,
			const char *client_ip, char *account_r, size_t account_n, const char **reason_r);

enum {
	AUTH_SASL_OK = 0,          /* authenticated: auth_sasl_account() */
	AUTH_SASL_CONTINUE = 1,    /* send the challenge in *out and wait for a response */
	AUTH_SASL_FAIL = -1,       /* wrong credentials, locked or disabled account */
	AUTH_SASL_MALFORMED = -2,  /* the client's message breaks the mechanism's syntax */
};

typedef struct auth_sasl auth_sasl;

/* NULL when mech is not available in env (or the GSSAPI credentials cannot be had). */
auth_sasl *auth_sasl_new(const auth_sasl_env *env, auth_sasl_mech mech, const char *client_ip);
void auth_sasl_free(auth_sasl **s);
/* One step. in/in_len: the decoded client message; has_input = 0 for an AUTH command
 * without an initial response (the first challenge is then sent). On CONTINUE the
 * challenge bytes are in *out (reset first; may be empty). On FAIL or MALFORMED
 * *reason_r says why (static text, no secrets). Blocking. */
int auth_sasl_step(auth_sasl *s, const void *in, size_t in_len, int has_input, tbuf *out,
		   const char **reason_r);
/* The authenticated account ("name@domain") after AUTH_SASL_OK, else "". */
const char *auth_sasl_account(const auth_sasl *s);
/* Node-to-node logins (cluster/cluster.h): PLAIN with authcid "node/<name>" and a
 * registered node's credential (cluster_check_node_login). Empty authzid: the session is
 * the peer node itself (SMTP relay between nodes; auth_sasl_account() is "node/<name>");
 * authzid = an account: the session is that account, logged in on the node's word
 * (proxied IMAP/POP3 login; the account must exist and be enabled). The lockout does not
 * apply; a refused node login is logged like any failure. The peer node's name after
 * AUTH_SASL_OK of a node login, else NULL. */
const char *auth_sasl_node(const auth_sasl *s);
/* The login name the client gave (for logs), "" before it is known. */
const char *auth_sasl_login(const auth_sasl *s);
/* Tests: use this server nonce instead of a random one (RFC 7677's example). */
void auth_sasl_set_server_nonce(auth_sasl *s, const char *nonce);

/* Base64 of RFC 4648 for the protocols' framing. decode: 0 ok, -1 on bad input
 * (whitespace is not skipped); the result is NUL-terminated after out->len. */
int auth_b64_decode(const char *s, size_t n, tbuf *out);
void auth_b64_encode(const void *p, size_t n, tbuf *out);

/* An HTTP "Authorization: Basic base64(user:pass)" header: 0 with *user_r (lower case)
 * and *pass_r (both malloc'd), -1 when it is no Basic header, the base64 is bad or over
 * 2048 bytes, or the user is empty or the text holds a NUL. The decoded copy is wiped. */
int auth_basic_parse(const char *hdr, char **user_r, char **pass_r);

#endif
