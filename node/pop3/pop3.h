/* pop3.h - the POP3 server of a node (node/pop3/): services pop3 (110, STLS) and pop3s
 * (995, implicit TLS). RFC 1939 with CAPA (RFC 2449), SASL AUTH (RFC 5034), STLS
 * (RFC 2595) and the response codes of RFC 2449 / RFC 3206.
 *
 * Users see their INBOX only. At login the maildrop is taken as a snapshot (message
 * numbers and sizes stay fixed for the session); DELE only marks, and the marked
 * messages are expunged from the store at QUIT, which answers +OK once that batch is
 * durable. Messages are streamed from the stored bytes (per-recipient header prefix,
 * then the body blob in chunks), dot-stuffed, with output back-pressure. APOP is not
 * offered: Tern never keeps reversible passwords.
 *
 * A session is a state machine (pop3_session.c) fed by a bounded line framer and a
 * command parser (pop3_parse.c); logins run on the auth pool (pop3_auth.c). */
#ifndef TERN_POP3_H
#define TERN_POP3_H
#include <stdint.h>
#include <sys/socket.h>
#include "auth.h"
#include "auth_gssapi.h"
#include "store.h"
#include "tern.h"

typedef struct pop3_server pop3_server;

typedef struct pop3_env {
	store *st;
	const tern_conf *conf;          /* [pop3] and [security] settings; must outlive the server */
	const char *hostname;           /* Internet hostname for the greeting; copied; NULL = conf's */
	tern_pool *auth_pool;           /* password checks and SASL steps; NULL = no login at all */
	auth_lockout *lockout;          /* account lockout shared with the other protocols */
	/* SASL GSSAPI acceptor (service "pop"), offered only when set: the node sets it when
	 * auth_gssapi_available() finds a key in the keytab. Must outlive the server. */
	const auth_gssapi_conf *gssapi;
	/* POP3 before SMTP: called on the I/O thread after every successful login with the
	 * client's address (e.g. a wrapper around smtp_pop3_login). May be NULL. */
	void (*pop3_login)(const struct sockaddr *addr, void *ctx);
	void *pop3_login_ctx;
} pop3_env;

/* Make the server; nothing listens yet (the node calls tern_server_listen with the
 * handlers below). NULL on bad input (missing store or conf). */
pop3_server *pop3_server_new(const pop3_env *env);
/* The connection handler of TERN_SVC_pop3 or TERN_SVC_pop3s (NULL for any other
 * service). Valid until pop3_server_free. */
const tern_service_handler *pop3_server_handler(pop3_server *s, tern_service_id svc);
/* Free after tern_server_run has returned (no session is left). */
void pop3_server_free(pop3_server **s);

typedef struct pop3_stats {
	uint64_t sessions;        /* connections accepted by both services */
	uint64_t logins;          /* successful logins */
	uint64_t auth_failed;     /* failed USER/PASS or AUTH attempts */
	uint64_t retrieved;       /* messages sent by RETR */
	uint64_t deleted;         /* messages expunged at QUIT */
} pop3_stats;
void pop3_server_stats(pop3_server *s, pop3_stats *out);

#endif
