/* imap_int.h - private to node/imap/: the command parser (imap_parse.c), the server and
 * its shared folder views (imap_server.c, imap_view.c), the session (imap_session.c) and
 * the command handlers (cmd_*.c). The message engines are declared in imap_msg.h. */
#ifndef TERN_IMAP_INT_H
#define TERN_IMAP_INT_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "auth_sasl.h"
#include "imap.h"
#include "imap_args.h"
#include "imap_msg.h"
#include "proxy.h"

/* ---- limits ---- */

#define IMAP_LINE_MAX (64 * 1024)            /* a command line, literals not counted */
#define IMAP_LINE_MAX_PREAUTH 8192
#define IMAP_LITERAL_MAX (64 * 1024)         /* literals of one command other than APPEND */
#define IMAP_LITERAL_MAX_PREAUTH 4096
#define IMAP_DEPTH_MAX 32                    /* parenthesis nesting */
#define IMAP_DEPTH_HARD_MAX 64
#define IMAP_ARGS_MAX 10000                  /* arguments of one command, lists included */
#define IMAP_ARGS_MAX_PREAUTH 64
#define IMAP_APPEND_MAX_DEFAULT (64ull << 20) /* when smtpd.max_message_kb is 0 (unlimited) */
#define IMAP_APPEND_INLINE_MAX (256 * 1024)   /* larger APPENDs are analysed on the cpu pool */
#define IMAP_BAD_MAX 20                      /* BAD replies before the session is closed */
#define IMAP_IDLE_TIMEOUT 1800               /* RFC 3501 §5.4: at least 30 minutes */
#define IMAP_PREAUTH_TIMEOUT 60
#define IMAP_OUT_FLUSH (64 * 1024)           /* write buffered responses past this */
#define IMAP_NAME_MAX 1000                   /* a mailbox name */
#define IMAP_SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
#define IMAP_KEYWORDS_MAX 512                /* keywords announced in FLAGS per folder */

/* ---- the command parser ---- */

typedef struct imap_limits {
	size_t line_max;
	uint64_t literal_max;       /* all literals of a command other than APPEND */
	uint64_t append_max;        /* the message literal of APPEND */
	unsigned depth_max;
	unsigned args_max;
} imap_limits;

typedef struct imap_cmd {
	const char *tag;
	const char *name;           /* upper case: "FETCH", "UID", ... */
	const imap_arg *args;       /* the arguments after the name */
	size_t nargs;
} imap_cmd;

enum {
	IMAP_PARSE_MORE = 0,        /* all bytes used, the command is not complete */
	IMAP_PARSE_DONE = 1,        /* p->cmd holds a command */
	IMAP_PARSE_LITERAL = 2,     /* a synchronising literal: send "+ ..." then feed on */
	IMAP_PARSE_BAD = 3,         /* a bad command was skipped: reply BAD (p->error, p->tag) */
	IMAP_PARSE_FATAL = 4,       /* a refused non-synchronising literal: reply and close */
};

struct imap_level {
	imap_arg *v;
	size_t n, cap;
};

typedef struct imap_parser {
	imap_limits lim;
	int state;
	tbuf tag;
	char name[24];
	tbuf tok;
	struct imap_chunk *chunks;  /* arena of the current command */
	struct imap_level lv[IMAP_DEPTH_HARD_MAX + 1];
	unsigned depth;
	unsigned nargs;
	size_t line_len;
	uint64_t lit_total, lit_left;
	char *lit_buf;
	size_t lit_len;
	int lit_sync, lit8;
	int bracket;                /* inside [...] of an atom */
	int need_sep;               /* an argument just ended */
	int is_append;
	/* results */
	const char *error;          /* why the command is bad (static text) */
	int toobig;                 /* the error is a literal over its bound */
	int fatal;
	imap_cmd cmd;               /* after DONE, valid until the next feed or reset */
} imap_parser;

void imap_parser_init(imap_parser *p, const imap_limits *lim);
void imap_parser_set_limits(imap_parser *p, const imap_limits *lim);
void imap_parser_reset(imap_parser *p);
void imap_parser_free(imap_parser *p);
/* Consume bytes of data[0..n); *used_r says how many (all of them unless a result other
 * than MORE ends early). After BAD/FATAL, p->tag holds the tag when one was read. */
int imap_parser_feed(imap_parser *p, const char *data, size_t n, size_t *used_r);

/* ---- shared views of open folders (imap_view.c) ---- */

/* An immutable list of UIDs (message n is uids[n-1]); replaced, never changed, when the
 * folder changes, so that sessions that have not been told yet keep the old one. */
typedef struct imap_snap {
	unsigned refs;              /* under the owning mbox's lock */
	uint32_t n;
	uint32_t uids[];
} imap_snap;

/* One open folder, shared by every session that has it selected. */
typedef struct imap_mbox {
	struct imap_mbox *next;
	uint8_t user[16], folder[16];
	unsigned refs;              /* sessions; under the registry lock */
	pthread_mutex_t lock;       /* snap, modseq, recent_floor */
	imap_snap *snap;
	uint64_t modseq;            /* changes up to here are in snap */
	uint32_t recent_floor;      /* highest UID given as \Recent (kept by the registry) */
	char **kw;                  /* keywords seen in the folder, in order of appearance; */
	size_t nkw, kw_cap;         /* only grows while the folder is open */
} imap_mbox;

typedef struct imap_registry {
	pthread_mutex_t lock;
	imap_mbox *open;
	unsigned nopen;
	struct imap_floor { uint8_t key[32]; uint32_t floor; } *floors;
	size_t nfloors, floors_cap;
} imap_registry;

typedef struct imap_session imap_session;

/* What one session has selected: its own position in the shared state. */
typedef struct imap_sel {
	imap_mbox *mb;
	imap_snap *snap;            /* what this session has been told */
	store_watch *watch;
	uint8_t folder[16];
	char name[IMAP_NAME_MAX + 1];
	int readonly;
	uint32_t uidvalidity;
	uint64_t flags_modseq;      /* flag changes up to here were reported */
	size_t nkw_told;            /* keywords of mb->kw announced by FLAGS */
	int dirty;                  /* an event came since the last refresh */
	uint32_t *recent;           /* sorted UIDs that are \Recent in this session */
	size_t nrecent, recent_cap;
	struct { uint64_t lo, hi; } own[8];   /* this session's own STOREs: not echoed */
	size_t nown;
} imap_sel;

int imap_registry_init(imap_registry *r);
void imap_registry_free(imap_registry *r);

/* SELECT/EXAMINE: open the shared view of folder f for session s (s->sel filled; the
 * previous selection must be closed). 0 ok or a negative store code. */
int imap_view_open(imap_session *s, const Tern__Folder *f, int readonly);
void imap_view_close(imap_session *s);
/* Send what the session has not been told: EXPUNGE (only when allow_expunge), EXISTS,
 * RECENT, and FETCH FLAGS of messages changed by others. */
void imap_view_sync(imap_session *s, int allow_expunge);
/* Send "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" with the folder's keywords
 * (SELECT), marking them announced. */
void imap_view_send_flags(imap_session *s);
/* Catch up with the folder and send FLAGS when keywords appeared that the session was not
 * told about (RFC 3501 §7.2.6) - before FETCH responses that may carry them. */
void imap_view_announce_keywords(imap_session *s);
/* Message number <-> UID in the session's view (0 = none). */
uint32_t imap_view_uid(const imap_session *s, uint32_t msn);
uint32_t imap_view_msn(const imap_session *s, uint32_t uid);
uint32_t imap_view_count(const imap_session *s);
int imap_view_is_recent(const imap_session *s, uint32_t uid);
uint32_t imap_view_recent_count(const imap_session *s);
/* A STORE of this session with modseqs [lo, hi]: not reported again by the sync. */
void imap_view_own_change(imap_session *s, uint64_t lo, uint64_t hi);
/* Resolve a sequence set (message numbers, or UIDs when uid) to the UIDs present in the
 * session's view, ascending; *uids_r malloc'd. 0 ok, -1 with *error_r (BAD text). */
int imap_view_resolve(const imap_session *s, const imap_arg *set, int uid, uint32_t **uids_r,
		      size_t *n_r, const char **error_r);

/* ---- the server ---- */

struct imap_server {
	imap_env env;
	char hostname[256];
	tern_service_handler handlers[2];   /* imap, imaps */
	imap_registry reg;
	pthread_mutex_t lock;               /* stats */
	imap_stats stats;
};

void imap_server_count(imap_server *srv, uint64_t *field);

/* Migration (DESIGN.md §6): watch every folder of the logged-in user for the MOVED event
 * (the mailbox froze for its cut-over); the session then says "BYE Mailbox is being moved
 * to another server" - at once when idle (IDLE included), else after its command. 0 or
 * STORE_EIO. */
int imap_watch_user(imap_session *s);
/* The BYE of a moved mailbox and the logout. */
void imap_moved_bye(imap_session *s);

/* ---- the session ---- */

typedef enum {
	IMAP_ST_NOAUTH,      /* greeted, not authenticated */
	IMAP_ST_AUTH,        /* authenticated, nothing selected */
	IMAP_ST_SELECTED,
	IMAP_ST_LOGOUT,      /* input ignored, closing */
	IMAP_ST_PROXY,       /* logged in at the user's home node: bytes are spliced */
} imap_state;

typedef enum {
	IMAP_IN_CMD,         /* commands */
	IMAP_IN_SASL,        /* AUTHENTICATE: lines are client responses */
	IMAP_IN_IDLE,        /* IDLE: waiting for DONE */
} imap_input;

/* Command handler results. */
enum { IMAP_DONE = 0, IMAP_ASYNC = 1 };

typedef struct imap_command imap_command;
typedef void (*imap_store_done)(imap_session *s, const store_result *res);

struct imap_session {
	imap_server *srv;
	tern_conn *conn;               /* NULL once the connection is gone */
	tern_io *io;
	tern_service_id svc;
	imap_state state;              /* changed only by imap_enter_state() */
	imap_input input;
	imap_parser parser;
	tern_line_reader lines;        /* AUTHENTICATE responses and IDLE's DONE; bounded
					* by the parser's line_max */
	tbuf out;                      /* responses not yet written */
	char ip[64];
	int tls;
	int insecure_auth_ok;
	unsigned bad_count;
	/* the authenticated user */
	char account[400];             /* "name@domain" */
	uint8_t user_id[16];
	int condstore, qresync;        /* ENABLEd (CONDSTORE also by use) */
	imap_sel *sel;                 /* IMAP_ST_SELECTED */
	/* the command running */
	const imap_command *cur;
	const imap_cmd *cmd;
	int uid;                       /* "UID ..." form */
	imap_cmd uid_cmd;              /* the command after "UID" */
	void *op;                      /* the asynchronous command's state */
	void (*op_free)(void *op);
	imap_store_done store_done;
	int busy, in_process, closed, draining;
	/* AUTHENTICATE / LOGIN */
	auth_sasl *sasl;
	auth_sasl_mech mech;
	tbuf sasl_in, sasl_out;
	int sasl_has_input, sasl_rc, sasl_ir_ok;
	const char *sasl_reason;
	char *login_user, *login_pass; /* LOGIN: wiped after the check */
	/* distributed domain */
	char orig_ip[64];              /* ID x-originating-ip: honoured for node logins */
	unsigned orig_port;
	char via_node[64];             /* logged in by this node on the user's behalf */
	char home[64];                 /* IMAP_ST_PROXY: the home node */
	proxy *proxy;                  /* the login at the home node, then the splice */
	/* migration: the user's mailbox moved away (MOVED event of the login watch) */
	store_watch *user_watch;       /* every folder of the user, from login on */
	int moved;                     /* BYE at the next chance */
};

struct imap_command {
	const char *name;
	int (*fn)(imap_session *s, const imap_cmd *c);
	unsigned flags;
};

/* imap_command flags: policy sits in the table, not in the handlers. */
#define IMAP_F_NOAUTH    0x01u   /* allowed before authentication */
#define IMAP_F_AUTH      0x02u   /* allowed when authenticated (and when selected) */
#define IMAP_F_SELECTED  0x04u   /* needs a selected folder */
#define IMAP_F_UID       0x08u   /* has a UID form */
#define IMAP_F_NOEXPUNGE 0x10u   /* FETCH/STORE/SEARCH: no untagged EXPUNGE (RFC 3501 §7.4.1) */
#define IMAP_F_WRITE     0x20u   /* changes the selected folder: refused when read-only */

/* imap_session.c, for the command files */
void imap_session_handlers(imap_server *srv, tern_service_handler *h);
void imap_enter_state(imap_session *s, imap_state st);
/* Queue response text (CRLF included by the caller) / a formatted untagged line. */
void imap_write(imap_session *s, const void *p, size_t n);
void imap_untagged(imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* End the current command: send pending updates (as its flags allow) and the tagged
 * reply "tag OK|NO|BAD text". */
void imap_reply(imap_session *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void imap_flush(imap_session *s);
/* An asynchronous command ends (on the I/O thread): input goes on. */
void imap_async_begin(imap_session *s);
void imap_async_done(imap_session *s);
/* A store write for the session: imap_async_begin() and the callback; fn runs on the
 * session's I/O thread with the result (not when the connection went meanwhile) and
 * must end with imap_async_done() or start the next write. */
store_cb imap_store_cb(imap_session *s, imap_store_done fn);
/* Run job(s->op) on the cpu pool (on the I/O thread when use_pool is 0, when there is no
 * pool or its queue is full), the connection paused; then done(s) on the session's I/O
 * thread, which must end with imap_async_done() or start the next step. The job sees only
 * the op: everything it needs is copied there first. Returns IMAP_ASYNC. */
int imap_offload(imap_session *s, void (*job)(void *op), void (*done)(imap_session *s), int use_pool);
/* The idle limit that fits the state. */
void imap_set_timeout(imap_session *s);
/* Quote a string for a response: "..." or a literal when needed. */
void imap_append_string(tbuf *out, const char *s, size_t n);
/* A session's folder name as a client sees it ("INBOX" for the inbox). */
int imap_is_inbox(const char *name);

/* Argument helpers: string-ish arguments (atom, quoted, literal). */
int imap_arg_astring(const imap_arg *a, const char **s_r, size_t *n_r);
int imap_arg_is_atom(const imap_arg *a, const char *word);
/* A mailbox name argument, validated (syntax and modified UTF-7), INBOX normalised; into
 * name (IMAP_NAME_MAX+1). -1 with *error_r, a text for the BAD reply. */
int imap_arg_mailbox(const imap_arg *a, char *name, const char **error_r);
/* 1 when s[0..n) is printable US-ASCII in modified UTF-7 (RFC 3501 §5.1.3). */
int imap_mutf7_valid(const char *s, size_t n);

/* cmd_auth.c */
int imap_cmd_capability(imap_session *s, const imap_cmd *c);
int imap_cmd_noop(imap_session *s, const imap_cmd *c);
int imap_cmd_logout(imap_session *s, const imap_cmd *c);
int imap_cmd_starttls(imap_session *s, const imap_cmd *c);
int imap_cmd_login(imap_session *s, const imap_cmd *c);
int imap_cmd_authenticate(imap_session *s, const imap_cmd *c);
int imap_cmd_id(imap_session *s, const imap_cmd *c);
int imap_cmd_enable(imap_session *s, const imap_cmd *c);
int imap_cmd_namespace(imap_session *s, const imap_cmd *c);
void imap_auth_line(imap_session *s, const char *line, size_t len);
void imap_capabilities(imap_session *s, tbuf *out);
void imap_auth_clear(imap_session *s);

/* cmd_proxy.c: logins of users homed on another node */
/* The user `account` is homed on node `home`: log in there and splice (ends the login
 * command: the OK with the home node's capabilities, or NO [UNAVAILABLE]). */
void imap_proxy_login(imap_session *s, const char *account, const char *home);
/* ID's parameters: x-originating-ip / x-originating-port into the session. */
void imap_id_params(imap_session *s, const imap_arg *list);

/* cmd_folder.c */
int imap_cmd_create(imap_session *s, const imap_cmd *c);
int imap_cmd_delete(imap_session *s, const imap_cmd *c);
int imap_cmd_rename(imap_session *s, const imap_cmd *c);
int imap_cmd_subscribe(imap_session *s, const imap_cmd *c);
int imap_cmd_unsubscribe(imap_session *s, const imap_cmd *c);
int imap_cmd_list(imap_session *s, const imap_cmd *c);
int imap_cmd_lsub(imap_session *s, const imap_cmd *c);
int imap_cmd_status(imap_session *s, const imap_cmd *c);
/* After login: make the standard folders that are missing; then cb(s). */
void imap_folders_prepare(imap_session *s, void (*done)(imap_session *s));

/* cmd_select.c */
int imap_cmd_select(imap_session *s, const imap_cmd *c);
int imap_cmd_examine(imap_session *s, const imap_cmd *c);
int imap_cmd_check(imap_session *s, const imap_cmd *c);
int imap_cmd_close(imap_session *s, const imap_cmd *c);
int imap_cmd_unselect(imap_session *s, const imap_cmd *c);
int imap_cmd_expunge(imap_session *s, const imap_cmd *c);
int imap_cmd_idle(imap_session *s, const imap_cmd *c);
void imap_idle_line(imap_session *s, const char *line, size_t len);
/* The view got an event: a session in IDLE sends its updates now. */
void imap_idle_wake(imap_session *s);
/* Write {DELETE} lines to operations.log for messages about to be expunged. */
void imap_log_deletes(imap_session *s, const uint8_t folder[16], const char *folder_name,
		      const uint32_t *uids, size_t n);

/* cmd_append.c */
int imap_cmd_append(imap_session *s, const imap_cmd *c);

/* cmd_fetch.c */
int imap_cmd_fetch(imap_session *s, const imap_cmd *c);
int imap_cmd_store(imap_session *s, const imap_cmd *c);

/* cmd_search.c */
#define IMAP_SEARCH_INLINE_MAX 200     /* messages searched on the I/O thread (no body keys) */
int imap_cmd_search(imap_session *s, const imap_cmd *c);

/* cmd_copy.c */
int imap_cmd_copy(imap_session *s, const imap_cmd *c);
int imap_cmd_move(imap_session *s, const imap_cmd *c);

/* cmd_quota.c */
int imap_cmd_getquota(imap_session *s, const imap_cmd *c);
int imap_cmd_getquotaroot(imap_session *s, const imap_cmd *c);

#endif
