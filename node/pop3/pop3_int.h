/* pop3_int.h - private to node/pop3/: the command parser and dot-stuffer
 * (pop3_parse.c), the maildrop snapshot and message streaming (pop3_maildrop.c), the
 * logins (pop3_auth.c) and the session (pop3_session.c). */
#ifndef TERN_POP3_INT_H
#define TERN_POP3_INT_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "auth_sasl.h"
#include "pop3.h"
#include "proxy.h"

/* ---- limits ---- */

#define POP3_CMD_LINE_MAX 255        /* RFC 2449: a command line, without its CRLF */
#define POP3_SASL_LINE_MAX 8192      /* AUTH with an initial response, SASL responses */
#define POP3_ARG_MAX 40              /* RFC 2449: one argument (USER/PASS/AUTH excepted) */
#define POP3_MAX_FAILED_CMDS 10      /* failed commands before the session is closed */
#define POP3_CHUNK (256u * 1024)     /* bytes of a body read at a time: one store blob chunk */
#define POP3_OUTPUT_HIGH (512u * 1024) /* stop streaming while this much output waits */

/* ---- commands ---- */

typedef enum {
	POP3_VERB_UNKNOWN = 0,
	POP3_VERB_USER, POP3_VERB_PASS, POP3_VERB_APOP, POP3_VERB_AUTH, POP3_VERB_STLS,
	POP3_VERB_CAPA, POP3_VERB_QUIT, POP3_VERB_STAT, POP3_VERB_LIST, POP3_VERB_RETR,
	POP3_VERB_DELE, POP3_VERB_NOOP, POP3_VERB_RSET, POP3_VERB_TOP, POP3_VERB_UIDL,
	POP3_VERB_COUNT
} pop3_verb;

typedef struct pop3_cmd {
	pop3_verb verb;
	unsigned nargs;                /* numeric verbs: arguments given (0..2) */
	uint32_t num[2];               /* LIST/RETR/DELE/UIDL: num[0]; TOP: num[0] num[1] */
	const char *text;              /* USER/PASS: the rest of the line; AUTH: "mech [ir]" */
} pop3_cmd;

const char *pop3_verb_name(pop3_verb v);
/* Parse a command line (NUL-terminated after len) into cmd. 0 ok; -1 with *reply_r a
 * whole "-ERR ..." reply (without CRLF) for an unknown verb, a line too long for its
 * verb, a NUL byte, or a wrong number or form of arguments. Pointers in cmd point into
 * line. */
int pop3_parse_command(const char *line, size_t len, pop3_cmd *cmd, const char **reply_r);

/* ---- dot-stuffing of a message being sent (RETR, TOP) ---- */

typedef struct pop3_stuffer {
	uint64_t col;           /* bytes of the current line so far (0: at its start) */
	int line_empty;         /* the current line holds nothing but (maybe) a CR so far */
	int in_header;          /* still in the header section */
	int top;                /* TOP: stop after `lines_left` body lines */
	uint64_t lines_left;
	int done;               /* TOP's limit reached: nothing more is sent */
} pop3_stuffer;

/* top = 0: the whole message; else the header section and `lines` body lines. */
void pop3_stuff_init(pop3_stuffer *f, int top, uint64_t lines);
/* Append p[0..n) to out with every line starting with '.' stuffed. Returns the bytes
 * used: n, or fewer once TOP's limit is reached (f->done). */
size_t pop3_stuff(pop3_stuffer *f, const char *p, size_t n, tbuf *out);
/* Close the multi-line response: a CRLF when the data did not end a line, then ".". */
void pop3_stuff_end(pop3_stuffer *f, tbuf *out);

/* ---- the maildrop: INBOX as a snapshot taken at login ---- */

typedef struct pop3_msg {
	uint32_t uid;
	int deleted;            /* DELE in this session */
	uint64_t size;          /* RFC 822 size: header prefix + body */
} pop3_msg;

typedef struct pop3_maildrop {
	uint8_t user[16];
	uint8_t folder[16];
	uint32_t uidvalidity;
	pop3_msg *msgs;
	size_t n;
	size_t ndeleted;
	uint64_t bytes;         /* of the messages not marked deleted */
} pop3_maildrop;

/* Snapshot the INBOX of the account ("name@domain"). 0 ok; a STORE_* error else. */
int pop3_maildrop_load(store *st, const char *account, pop3_maildrop *md);
void pop3_maildrop_clear(pop3_maildrop *md);
/* Message number n (1-based) or NULL when out of range. */
pop3_msg *pop3_maildrop_msg(pop3_maildrop *md, uint32_t n);
void pop3_maildrop_delete(pop3_maildrop *md, pop3_msg *m);
void pop3_maildrop_reset(pop3_maildrop *md);
/* The UIDs marked deleted (malloc'd, *n_r of them; NULL when none). */
uint32_t *pop3_maildrop_deleted(const pop3_maildrop *md, size_t *n_r);

/* Sending one message from the stored bytes, chunk by chunk. */
typedef struct pop3_sender {
	Tern__MessageMeta *meta;
	pop3_stuffer stuff;
	uint64_t off;           /* bytes of prefix + body already read */
	tbuf chunk;
} pop3_sender;

/* Look the message up for sending (NULL meta: it was expunged meanwhile: STORE_ENOTFOUND). */
int pop3_sender_open(pop3_sender *sd, store *st, const pop3_maildrop *md, const pop3_msg *m,
		     int top, uint64_t lines);
/* Append the next stuffed piece to out. 1 when the message is complete (terminator
 * included), 0 when more remains, -1 on a store error (the message is cut short). */
int pop3_sender_next(pop3_sender *sd, store *st, tbuf *out);
void pop3_sender_close(pop3_sender *sd);

/* ---- the server and its sessions ---- */

typedef struct pop3_inuse pop3_inuse;

struct pop3_server {
	pop3_env env;
	char hostname[256];
	tern_service_handler handlers[2];   /* pop3, pop3s */
	pthread_mutex_t lock;               /* stats, in-use list */
	pop3_stats stats;
	pop3_inuse *inuse;                  /* users with a session in TRANSACTION */
};

void pop3_server_count(pop3_server *srv, uint64_t *field, uint64_t n);
/* RFC 1939 4: one session per maildrop. 0 taken, -1 when another session holds it. */
int pop3_server_lock_user(pop3_server *srv, const uint8_t user[16]);
void pop3_server_unlock_user(pop3_server *srv, const uint8_t user[16]);

typedef enum {
	POP3_ST_AUTHORIZATION,  /* greeted, not logged in */
	POP3_ST_SASL,           /* an AUTH exchange: lines are client responses */
	POP3_ST_TRANSACTION,    /* logged in, the maildrop is open */
	POP3_ST_UPDATE,         /* QUIT: the deletions are being committed */
	POP3_ST_CLOSING,        /* input is ignored */
	POP3_ST_PROXY,          /* logged in at the user's home node: bytes are spliced */
} pop3_state;

typedef struct pop3_session {
	pop3_server *srv;
	tern_conn *conn;               /* NULL once the connection is gone */
	tern_io *io;
	tern_service_id svc;
	pop3_state state;              /* changed only by pop3_enter_state() */
	tern_line_reader lines;
	char ip[64];
	int tls;
	int insecure_auth_ok;          /* in insecure_auth_ipgroup */
	unsigned failed_cmds;
	char user[256];                /* USER's argument, "" = none yet */
	char account[400];             /* the logged-in account */
	pop3_maildrop md;
	int locked;                    /* holds the maildrop in the server's in-use list */
	/* asynchronous steps: one at a time, input waits meanwhile */
	int busy;
	int in_process;
	int closed;
	int draining;
	/* RETR / TOP in progress */
	pop3_sender sender;
	int sending;
	struct event *tick;
	int64_t send_progress_ms;      /* when output last moved (a client that stops reading
				        * is dropped after [pop3] timeout) */
	unsigned send_wait_us;         /* next look at the output: backs off while it waits */
	/* login on the auth pool */
	char *password;                /* PASS: wiped and freed after the check */
	int login_rc;
	const char *login_reason;
	auth_sasl *sasl;
	auth_sasl_mech mech;
	tbuf sasl_in, sasl_out;
	int sasl_has_input, sasl_rc;
	const char *sasl_reason;
	/* distributed domain */
	char via_node[64];             /* logged in by this node on the user's behalf */
	char home[64];                 /* POP3_ST_PROXY: the home node */
	proxy *proxy;                  /* the login at the home node, then the splice */
	/* migration: every folder of the user watched from login on for MOVED */
	store_watch *user_watch;
	int moved;                     /* the mailbox froze: close at the next chance */
} pop3_session;

/* Migration (DESIGN.md §6): watch the logged-in user (s->md.user) for the MOVED event;
 * the session then closes with "-ERR [SYS/TEMP] Mailbox is being moved ..." without
 * committing deletions - at once when idle, else after the step running. 0 or STORE_EIO. */
int pop3_watch_user(pop3_session *s);
/* Stop watching (session end, refused login). */
void pop3_unwatch_user(pop3_session *s);
/* The close of a moved mailbox. */
void pop3_moved_close(pop3_session *s);

void *pop3_session_open(tern_conn *c, void *ctx);
void pop3_session_on_read(tern_conn *c, void *session);
void pop3_session_on_close(tern_conn *c, void *session);
void pop3_session_on_drain(tern_conn *c, void *session);
void pop3_session_on_timeout(tern_conn *c, void *session);

/* pop3_session.c, for the other session files */
void pop3_enter_state(pop3_session *s, pop3_state st);
void pop3_reply(pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_async_begin(pop3_session *s);
void pop3_async_done(pop3_session *s);
/* Count a failed command; closes past POP3_MAX_FAILED_CMDS. */
void pop3_failed(pop3_session *s);
void pop3_close(pop3_session *s, const char *reply);

/* pop3_auth.c: USER/PASS, AUTH and the end of a login */
int pop3_cmd_user(pop3_session *s, pop3_cmd *cmd);
int pop3_cmd_pass(pop3_session *s, pop3_cmd *cmd);
int pop3_cmd_auth(pop3_session *s, pop3_cmd *cmd);
/* One client response line of an AUTH exchange in progress. */
void pop3_auth_line(pop3_session *s, const char *line, size_t len);
/* 1 when a plaintext password (USER/PASS, PLAIN, LOGIN) may be sent now. */
int pop3_plaintext_allowed(pop3_session *s);
/* The SASL mechanisms allowed now, appended as " PLAIN LOGIN ..." ("" = none). */
void pop3_auth_mechs(pop3_session *s, tbuf *out);
void pop3_auth_clear(pop3_session *s);

/* pop3_maildrop.c: the TRANSACTION commands that read messages, and QUIT's update */
int pop3_cmd_retr(pop3_session *s, pop3_cmd *cmd);
int pop3_cmd_top(pop3_session *s, pop3_cmd *cmd);
void pop3_send_stop(pop3_session *s);
int pop3_update(pop3_session *s);

#endif
