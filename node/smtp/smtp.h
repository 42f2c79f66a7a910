/* smtp.h - the SMTP server of a node (node/smtp/): services smtp (25, STARTTLS), smtps
 * (465, implicit TLS) and submission (587, AUTH required before MAIL).
 *
 * One smtp_server serves the three services on every I/O thread. Its shared state (per
 * address counters for the guide's security options, POP3-before-SMTP logins, figures)
 * is thread-safe. A session is a state machine (smtp_session.c) fed by a line framer and
 * a command parser (smtp_parse.c); DATA is read by smtp_data.c and handed to the
 * deliverer, and 250 is answered only once the deliverer reports the message durable. */
#ifndef TERN_SMTP_H
#define TERN_SMTP_H
#include <stdint.h>
#include <sys/socket.h>
#include "auth.h"
#include "auth_gssapi.h"
#include "deliver.h"
#include "store.h"
#include "tern.h"

typedef struct smtp_server smtp_server;

typedef struct smtp_env {
	store *st;
	const tern_conf *conf;          /* [smtpd] and [security] settings; must outlive the server */
	const char *hostname;           /* Internet hostname: greeting, EHLO; copied */
	tern_pool *auth_pool;           /* SASL steps (user look-up, password hashing) */
	auth_lockout *lockout;          /* account lockout shared with the other protocols */
	/* SASL GSSAPI acceptor (service "smtp"), offered only when set: the node sets it when
	 * auth_gssapi_available() finds a key in the keytab. Must outlive the server. */
	const auth_gssapi_conf *gssapi;
	deliverer *deliverer;           /* RCPT checks and the hand-off of accepted messages */
	/* The resolver of an I/O thread, for block_unknown_sender_domain; NULL (or a NULL
	 * result) = no DNS: the check is skipped. */
	tern_dns *(*dns_for_io)(tern_io *io, void *ctx);
	void *dns_ctx;
	/* ETRN: ask the queue to run now for domain ("" = everything). 0 = started. NULL =
	 * ETRN answers 458. Runs on the I/O thread: must not block. */
	int (*etrn)(const char *domain, void *ctx);
	void *etrn_ctx;
} smtp_env;

/* Make the server; nothing listens yet (the node calls tern_server_listen with the
 * handlers below). NULL on bad input (missing store, conf or deliverer). */
smtp_server *smtp_server_new(const smtp_env *env);
/* The connection handler of one of TERN_SVC_smtp, TERN_SVC_smtps, TERN_SVC_submission
 * (NULL for any other service). Valid until smtp_server_free. */
const tern_service_handler *smtp_server_handler(smtp_server *s, tern_service_id svc);
/* Free after tern_server_run has returned (no session is left). */
void smtp_server_free(smtp_server **s);

typedef struct smtp_stats {
	uint64_t sessions;        /* connections accepted by the three services */
	uint64_t received;        /* messages accepted (250 after DATA) */
	uint64_t rejected;        /* refused MAIL/RCPT/DATA (not relay refusals) */
	uint64_t relay_refused;   /* RCPTs refused by relay control */
	uint64_t auth_failed;     /* failed AUTH exchanges */
} smtp_stats;
void smtp_server_stats(smtp_server *s, smtp_stats *out);

/* POP3 before SMTP: a successful POP3 login from addr lets that address relay for
 * smtpd.pop3_relay_window seconds (when smtpd.relay_pop3 is on). Thread-safe. */
void smtp_pop3_login(smtp_server *s, const struct sockaddr *addr);

#endif
