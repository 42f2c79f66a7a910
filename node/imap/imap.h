/* imap.h - the IMAP4rev1 server of a node (node/imap/): services imap (143, STARTTLS) and
 * imaps (993, implicit TLS).
 *
 * One imap_server serves both services on every I/O thread. A session is a state machine
 * (imap_session.c) fed by a resumable command parser (imap_parse.c) and a table of
 * commands (cmd_*.c). The state of a selected folder - its UID list and message numbers -
 * is one object per open folder shared by every session of every I/O thread
 * (imap_view.c), kept current by the store's change notifier. Writes go through the
 * store's asynchronous calls; a session waits, paused, until its change is durable. */
#ifndef TERN_IMAP_H
#define TERN_IMAP_H
#include <stdint.h>
#include "auth.h"
#include "auth_gssapi.h"
#include "store.h"
#include "tern.h"

typedef struct imap_server imap_server;

typedef struct imap_env {
	store *st;
	const tern_conf *conf;          /* [security] and smtpd.max_message_kb; must outlive the server */
	const char *hostname;           /* greeting; copied; NULL/"" = tern_conf_hostname() */
	tern_pool *auth_pool;           /* LOGIN / AUTHENTICATE steps (user look-up, hashing) */
	tern_pool *cpu_pool;            /* large SEARCHes, MIME analysis of large APPENDs;
					 * NULL = on the I/O thread */
	auth_lockout *lockout;          /* account lockout shared with the other protocols */
	/* SASL GSSAPI acceptor (service "imap"), offered only when set: the node sets it when
	 * auth_gssapi_available() finds a key in the keytab. Must outlive the server. */
	const auth_gssapi_conf *gssapi;
	int idle_timeout;               /* seconds of client silence before close; 0 = 1800 */
} imap_env;

/* Make the server; nothing listens yet. NULL on bad input (missing store or conf). */
imap_server *imap_server_new(const imap_env *env);
/* The connection handler of TERN_SVC_imap or TERN_SVC_imaps (NULL for any other
 * service). Valid until imap_server_free. */
const tern_service_handler *imap_server_handler(imap_server *s, tern_service_id svc);
/* Free after tern_server_run has returned (no session is left). */
void imap_server_free(imap_server **s);

typedef struct imap_stats {
	uint64_t sessions;        /* connections accepted by both services */
	uint64_t logins;          /* successful LOGIN / AUTHENTICATE */
	uint64_t auth_failed;     /* failed LOGIN / AUTHENTICATE */
	uint64_t commands;        /* tagged commands handled */
	uint64_t appended;        /* messages added by APPEND */
	uint64_t open_folders;    /* shared folder views alive now */
} imap_stats;
void imap_server_stats(imap_server *s, imap_stats *out);

#endif
