/* smtp_int.h - private to node/smtp/: the command parser (smtp_parse.c),
 * the DATA reader (smtp_data.c), per-address policy state (smtp_policy.c) and the
 * session (smtp_session.c, smtp_auth.c). */
#ifndef TERN_SMTP_INT_H
#define TERN_SMTP_INT_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "auth_sasl.h"
#include "smtp.h"

/* ---- commands ---- */

typedef enum {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
	SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY, SMTP_VERB_EXPN,
	SMTP_VERB_HELP, SMTP_VERB_ETRN, SMTP_VERB_AUTH, SMTP_VERB_STARTTLS, SMTP_VERB_BDAT,
	SMTP_VERB_COUNT
} smtp_verb;

#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_ADDR_MAX 320        /* local@domain, quoted local parts included */
#define SMTP_XTEXT_MAX 100       /* ENVID (RFC 3461: 100 chars) */
#define SMTP_ORCPT_MAX 500

typedef struct smtp_path {
	int null;                      /* "<>" */
	int postmaster;                /* "<Postmaster>" without a domain (RFC 5321 4.5.1) */
	int source_route;              /* "<@a,@b:user@x>" (the route is not kept) */
	int quoted;                    /* the local part was a quoted string */
	int relay_form;                /* '%', '!' or '@' in the local part: a relay probe */
	char addr[SMTP_ADDR_MAX + 1];  /* "local@domain" as given (quotes kept), domain lower-cased */
	char local[SMTP_LOCAL_MAX + 1];/* unquoted local part */
	char domain[SMTP_DOMAIN_MAX + 1]; /* lower case; may be an address literal "[1.2.3.4]" */
} smtp_path;

typedef enum { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME } smtp_body;

typedef struct smtp_params {
	int has_size;
	uint64_t size;                 /* SIZE= */
	smtp_body body;                /* BODY= */
	uint32_t ret;                  /* RET=: 0 none, 1 FULL, 2 HDRS */
	char envid[SMTP_XTEXT_MAX + 1];/* ENVID= (xtext as sent) */
	int has_auth;
	char auth[SMTP_ADDR_MAX + 1];  /* AUTH= (xtext as sent, "<>" allowed) */
	uint32_t notify;               /* NOTIFY=: DELIVER_NOTIFY_* bits */
	char orcpt[SMTP_ORCPT_MAX + 1];/* ORCPT= "addr-type;xtext" as sent */
} smtp_params;

typedef struct smtp_cmd {
	smtp_verb verb;
	const char *arg;               /* the text after the verb and its space ("" if none) */
	smtp_path path;                /* MAIL, RCPT */
	smtp_params params;            /* MAIL, RCPT */
} smtp_cmd;

/* The verb of a command line and its argument (points into line). Unknown verbs give
 * SMTP_VERB_UNKNOWN. */
smtp_verb smtp_parse_verb(const char *line, const char **arg_r);
const char *smtp_verb_name(smtp_verb v);
/* Parse a whole command line into cmd: the verb, and for MAIL/RCPT the path and the
 * ESMTP parameters allowed with that verb. 0 ok; -1 with *reply_r a full SMTP reply
 * ("501 5.1.7 Bad sender address syntax") for a syntax error, an unknown parameter or a
 * NUL byte. line must be NUL-terminated after len (it may hold NULs before). */
int smtp_parse_command(const char *line, size_t len, smtp_cmd *cmd, const char **reply_r);
/* Parse "<path>" (or a bare address) at s into p; *end_r points after it. 0 ok. */
int smtp_parse_path(const char *s, int allow_null, smtp_path *p, const char **end_r);
/* 1 when s is valid xtext (RFC 3461) of at most max characters. */
int smtp_xtext_valid(const char *s, size_t max);

/* ---- DATA ---- */

enum { SMTP_DATA_MORE = 0, SMTP_DATA_DONE = 1 };

typedef struct smtp_data_reader {
	tbuf msg;                      /* the message: CRLF lines, dot-unstuffed */
	size_t line_max;               /* longest line without CRLF */
	uint64_t size_max;             /* 0 = unlimited */
	unsigned received_max;
	int state;                     /* byte state (smtp_data.c) */
	int prev_crlf;                 /* the previous line ended with CRLF (or start) */
	int in_header;                 /* still in the header section */
	size_t line_len;               /* bytes of the current line so far */
	char head[10];                 /* first bytes of the current line */
	uint64_t size;                 /* message bytes seen, stored or not */
	unsigned received;             /* Received: header lines */
	int too_long, too_big, has_nul, bare_cr;
} smtp_data_reader;

void smtp_data_init(smtp_data_reader *r, size_t line_max, uint64_t size_max, unsigned received_max);
void smtp_data_clear(smtp_data_reader *r);
/* Consume input up to the end of DATA ("CRLF.CRLF"); *used_r bytes were used. Bare LF
 * ends a line (stored as CRLF) but never the message. */
int smtp_data_feed(smtp_data_reader *r, const char *p, size_t n, size_t *used_r);
/* After DONE: NULL when the message may be delivered, else the SMTP reply to send. */
const char *smtp_data_verdict(const smtp_data_reader *r);

/* ---- per-address policy, shared by every session ---- */

typedef struct smtp_policy smtp_policy;
smtp_policy *smtp_policy_new(void);
void smtp_policy_free(smtp_policy **p);
/* A connection opens: returns the address's open connections including this one. */
unsigned smtp_policy_conn_open(smtp_policy *p, const char *ip);
void smtp_policy_conn_close(smtp_policy *p, const char *ip);
/* Messages accepted from ip in the sliding hour before now. */
unsigned smtp_policy_msgs_last_hour(smtp_policy *p, const char *ip, int64_t now);
void smtp_policy_msg_accepted(smtp_policy *p, const char *ip, int64_t now);
/* Count one unknown recipient; returns 1 exactly when this one reaches `max` and the
 * address gets blocked until now + block_seconds. */
int smtp_policy_unknown_rcpt(smtp_policy *p, const char *ip, unsigned max, int64_t block_seconds,
			     int64_t now);
/* 1 while the address is blocked for a directory harvest attack. */
int smtp_policy_blocked(smtp_policy *p, const char *ip, int64_t now);
void smtp_policy_pop3_login(smtp_policy *p, const char *ip, int64_t now);
/* 1 when ip logged in by POP3 within window seconds before now. */
int smtp_policy_pop3_recent(smtp_policy *p, const char *ip, int64_t window, int64_t now);

/* Relay control (guide ch. 12.2): the conditions are ORed, except that a failed AUTH
 * in the session stops the IP group from counting when relay_auth is on too. */
typedef struct smtp_relay_facts {
	int in_relay_group;
	int authenticated;
	int auth_failed;
	int pop3_recent;
} smtp_relay_facts;
int smtp_policy_relay_allowed(const tern_conf *conf, const smtp_relay_facts *f);

/* ---- the server and its sessions ---- */

struct smtp_server {
	smtp_env env;
	char hostname[256];
	smtp_policy *policy;
	tern_service_handler handlers[3];   /* smtp, smtps, submission */
	pthread_mutex_t lock;               /* stats */
	smtp_stats stats;
};

void smtp_server_count(smtp_server *srv, uint64_t *field);

typedef enum {
	SMTP_ST_INIT,        /* greeted, no EHLO/HELO yet */
	SMTP_ST_READY,       /* after EHLO/HELO, no mail transaction */
	SMTP_ST_MAIL,        /* MAIL accepted */
	SMTP_ST_RCPT,        /* at least one RCPT accepted */
	SMTP_ST_DATA,        /* reading the message */
	SMTP_ST_AUTH,        /* a SASL exchange: lines are client responses */
	SMTP_ST_CLOSING,     /* QUIT or a fatal error: input is ignored */
} smtp_state;

typedef struct smtp_rcpt {
	char addr[SMTP_ADDR_MAX + 1];
	uint32_t notify;
	char *orcpt;                   /* malloc'd or NULL */
} smtp_rcpt;

typedef struct smtp_session {
	smtp_server *srv;
	tern_conn *conn;               /* NULL once the connection is gone */
	tern_io *io;
	tern_service_id svc;
	smtp_state state;              /* changed only by smtp_enter_state() */
	tern_line_reader lines;
	smtp_data_reader data;
	char ip[64];
	char helo[256];
	int esmtp;                     /* greeted with EHLO */
	int tls;
	int exempt;                    /* in exempt_ipgroup: no per-address limits */
	int in_relay_group;
	int insecure_auth_ok;          /* in insecure_auth_ipgroup */
	int conn_counted;              /* counted in the policy's connections */
	char auth_user[400];           /* authenticated account, "" = none */
	/* Authenticated as a node of the distributed domain (node login, empty authzid): a
	 * cluster peer relaying mail of the domain (DESIGN.md §5). Its recipients are final
	 * users of the domain; it skips the per-address limits, and the deliverer skips
	 * expansion, footer and sender limits (deliver_message.relayed_from). "" = not. */
	char peer_node[64];
	int auth_failed;               /* an AUTH failed in this session */
	unsigned failed_cmds;
	/* the mail transaction */
	char sender[SMTP_ADDR_MAX + 1];
	smtp_params mail_params;
	smtp_rcpt *rcpts;
	size_t nrcpts, rcpt_cap;
	/* asynchronous steps: one at a time, input waits meanwhile */
	int busy;
	int in_process;
	int closed;
	int draining;
	/* AUTH */
	auth_sasl *sasl;
	auth_sasl_mech mech;
	tbuf sasl_in, sasl_out;
	int sasl_has_input, sasl_rc;
	const char *sasl_reason;
} smtp_session;

void *smtp_session_open(tern_conn *c, void *ctx);
void smtp_session_on_read(tern_conn *c, void *session);
void smtp_session_on_close(tern_conn *c, void *session);
void smtp_session_on_drain(tern_conn *c, void *session);
void smtp_session_on_timeout(tern_conn *c, void *session);

/* The per-address limits (rate, harvest protection, blocks) apply: not for a client of
 * smtpd.exempt_ipgroup nor for a cluster peer. */
static inline int smtp_ip_limits(const smtp_session *s)
{
	return !s->exempt && s->peer_node[0] == '\0';
}

/* smtp_session.c, for the other session files */
void smtp_enter_state(smtp_session *s, smtp_state st);
void smtp_reply(smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Start / end an asynchronous step: input waits until smtp_async_done. */
void smtp_async_begin(smtp_session *s);
void smtp_async_done(smtp_session *s);
/* Forget the mail transaction (RSET, after DATA, STARTTLS). */
void smtp_txn_reset(smtp_session *s);
/* Count a failed command; closes with 421 past smtpd.max_failed_cmds. */
void smtp_failed(smtp_session *s);
/* Reply 421 and close. */
void smtp_close_421(smtp_session *s, const char *why);

/* smtp_txn.c: the mail transaction */
int smtp_cmd_mail(smtp_session *s, smtp_cmd *cmd);
int smtp_cmd_rcpt(smtp_session *s, smtp_cmd *cmd);
int smtp_cmd_data(smtp_session *s, smtp_cmd *cmd);
/* The end of DATA was read. */
void smtp_data_end(smtp_session *s);

/* smtp_auth.c: the AUTH command and its SASL exchange */
int smtp_cmd_auth(smtp_session *s, smtp_cmd *cmd);
/* One client response line of an exchange in progress. */
void smtp_auth_line(smtp_session *s, const char *line, size_t len);
/* Mechanisms the session may use now, appended as " PLAIN LOGIN ..." ("" = none). */
void smtp_auth_mechs(smtp_session *s, tbuf *out);
/* 1 when mech may be used now (TLS, auth_policy, insecure_auth_ipgroup). */
int smtp_auth_allowed(smtp_session *s, auth_sasl_mech mech);
void smtp_auth_clear(smtp_session *s);

#endif
