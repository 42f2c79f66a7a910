/* auth_gssapi.h - Kerberos single sign-on on the server side: the SASL GSSAPI mechanism
 * (RFC 4752) for IMAP, POP3 and SMTP, and SPNEGO (RFC 4559, "Authorization: Negotiate")
 * for the admin API. Tickets are accepted with the service keys of a keytab
 * (imap/, pop/, smtp/, HTTP/ or host/ principals); the client's principal
 * ("user@REALM") is turned into a Tern account by a callback of the caller, since only
 * the directory knows which mail domain has which realm.
 *
 * GSSAPI calls may touch the keytab and the replay cache: run them on the auth pool.
 * An exchange is used by one thread at a time. */
#ifndef TERN_AUTH_GSSAPI_H
#define TERN_AUTH_GSSAPI_H
#include <stddef.h>
#include "tern.h"

#define AUTH_GSSAPI_TOKEN_MAX 65536    /* bytes of one client token accepted */
#define AUTH_PRINCIPAL_MAX 400

/* Principal "user@REALM" -> login (a bare name or "name@domain" for the store).
 * 0 ok, -1 the principal has no account here. */
typedef int (*auth_gssapi_map_fn)(void *arg, const char *principal, char *login_r, size_t n);

typedef struct auth_gssapi_conf {
	const char *keytab;            /* NULL or "" = KRB5_KTNAME / the default keytab */
	const char *service;           /* "imap", "pop", "smtp", "HTTP"; NULL = any key in the keytab */
	const char *hostname;          /* with service: service@hostname; NULL = any host */
	auth_gssapi_map_fn map;        /* NULL: the principal itself is the login */
	void *map_arg;
} auth_gssapi_conf;

/* 1 when the keytab holds a usable key for conf's service (so GSSAPI or Negotiate may be
 * offered), else 0 with why_r (malloc'd, or NULL when why_r is NULL) saying what is
 * missing, e.g. "no keytab: FILE:/etc/krb5.keytab missing or empty". */
int auth_gssapi_available(const auth_gssapi_conf *conf, char **why_r);

enum {
	AUTH_GSSAPI_OK = 0,            /* authenticated: auth_gssapi_login() / _principal() */
	AUTH_GSSAPI_CONTINUE = 1,      /* send *out, wait for the client's next message */
	AUTH_GSSAPI_FAIL = -1,         /* ticket refused, unknown principal, bad authzid */
	AUTH_GSSAPI_MALFORMED = -2,    /* a message that breaks RFC 4752 */
};

typedef struct auth_gssapi auth_gssapi;

/* A SASL GSSAPI server exchange. NULL when conf's credentials cannot be had, with
 * *why_r (malloc'd) saying why. */
auth_gssapi *auth_gssapi_new(const auth_gssapi_conf *conf, char **why_r);
void auth_gssapi_free(auth_gssapi **g);
/* One step with the client's decoded message (the first is the initial context token;
 * an empty first message gets an empty challenge). On CONTINUE *out holds the challenge
 * (reset first). On FAIL/MALFORMED *reason_r is a static text for the security log.
 * Blocking. */
int auth_gssapi_step(auth_gssapi *g, const void *in, size_t n, tbuf *out, const char **reason_r);
/* The client's principal ("alice@EXAMPLE.TEST") once the context is established, else "". */
const char *auth_gssapi_principal(const auth_gssapi *g);
/* The login the principal maps to after AUTH_GSSAPI_OK, else "". */
const char *auth_gssapi_login(const auth_gssapi *g);
/* The authorization identity the client asked for in its last message ("" = none): the
 * caller allows it only when it names the same account as the login. */
const char *auth_gssapi_authzid(const auth_gssapi *g);

/* SPNEGO for HTTP: accept the token of "Authorization: Negotiate <b64>" in one round.
 * 0 ok with the mapped login in login_r (and the principal in principal_r) and the
 * mutual-authentication token in out_b64 (may be empty; send it as
 * "WWW-Authenticate: Negotiate <out_b64>"); -1 refused or malformed, with *reason_r.
 * Blocking. */
int auth_spnego_accept(const auth_gssapi_conf *conf, const char *b64, size_t b64_len, tbuf *out_b64,
		       char *principal_r, size_t principal_n, char *login_r, size_t login_n,
		       const char **reason_r);

#endif
