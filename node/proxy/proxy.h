/* proxy.h - IMAP and POP3 logins at a node that is not the user's home (DESIGN.md §5):
 * the front node has authenticated the user itself (lockout, logs); the proxy then logs
 * in to the home node and splices the two connections.
 *
 * From the session's I/O thread the proxy connects to the home node's IMAP or POP3 port
 * (its Node record: address, imap_port / pop3_port), reads the greeting, starts TLS
 * with the certificate pinned to Node.fingerprint, and logs in with SASL PLAIN: authzid
 * = the user, authcid and password = this node's node login (cluster_node_login). IMAP
 * first sends ID ("x-originating-ip" CLIENT-IP "x-originating-port" PORT) so the home
 * node logs the client's address. Connect and login together get [cluster]
 * request_timeout seconds; a home node that does not answer in time fails the login.
 *
 * Once logged in, bytes are copied both ways unchanged (IDLE is just bytes) until either
 * side closes, which closes the other after its pending output. Back-pressure: while
 * more than PROXY_OUTPUT_HIGH bytes wait for one side, the other side is not read.
 *
 * Ownership: the session holds the proxy from proxy_start() until proxy_free(); the
 * home connection holds it until it is closed. Everything runs on the session's I/O
 * thread. */
#ifndef TERN_PROXY_H
#define TERN_PROXY_H
#include "net.h"
#include "store.h"

/* Stop reading one side while this much waits to be written to the other... */
#define PROXY_OUTPUT_HIGH (256u * 1024)
/* ... and read it again once the other side's output is below this. */
#define PROXY_OUTPUT_LOW (64u * 1024)
/* Longest line of the home node's answers during the login. */
#define PROXY_LINE_MAX 8192

typedef struct proxy proxy;

typedef enum { PROXY_IMAP, PROXY_POP3 } proxy_proto;

typedef struct proxy_request {
	store *st;
	tern_io *io;                  /* the session's I/O thread: the caller runs on it */
	proxy_proto proto;
	const char *home;             /* the home node's name */
	const char *account;          /* the user, "name@domain": the login's authzid */
	const char *client_ip;        /* for IMAP ID x-originating-ip */
	unsigned client_port;
	int timeout;                  /* seconds for connect + TLS + login */
	/* The login at the home node ended, on io's thread; called once, never after
	 * proxy_free(). ok = 1: reply is the home node's answer to the login (IMAP: the
	 * text after the tag, "OK [CAPABILITY ...] ..."; POP3: the "+OK ..." line), then
	 * call proxy_splice() or proxy_free(). ok = 0: reply says why (for warning.log);
	 * call proxy_free(). */
	void (*done)(void *ctx, int ok, const char *reply);
	void *ctx;
} proxy_request;

/* Start the login at the home node. 0 with *p_r, or -1 with *error_r (static text:
 * "unknown node", "this node has no node login", ...); done is then never called. */
int proxy_start(const proxy_request *rq, proxy **p_r, const char **error_r);
/* After done(ok = 1): copy bytes between client (the session's connection, which the
 * session keeps handling: its on_read calls proxy_client_read) and the home node. Input
 * the client already sent is forwarded at once. */
void proxy_splice(proxy *p, tern_conn *client);
/* The client connection has new input (the session's on_read while spliced). */
void proxy_client_read(proxy *p);
/* The session lets go (its connection closed, or the login failed): the home
 * connection is closed after its pending output; no callback follows. NULLs *p. */
void proxy_free(proxy **p);

/* ---- proxy_login.c: the login dialogues (private to the proxy) ---- */

enum {
	PROXY_STEP_MORE = 0,          /* wait for the next line */
	PROXY_STEP_TLS = 1,           /* start TLS now, then call the step with line NULL */
	PROXY_STEP_DONE = 2,          /* logged in: *reply_r is the home node's answer */
	PROXY_STEP_FAIL = 3,          /* *reply_r says why */
};

typedef struct proxy_login {
	proxy_proto proto;
	int state;
	char account[400];
	char client_ip[64];
	unsigned client_port;
	char authcid[128];
	char password[128];           /* the node credential in hex: wiped after use */
	char reply[512];
} proxy_login;

/* One line from the home node (NULL: TLS is up). Commands to send are appended to out.
 * Returns a PROXY_STEP_* code; *reply_r points into l->reply. */
int proxy_login_step(proxy_login *l, const char *line, tbuf *out, const char **reply_r);
/* Wipe the credential. */
void proxy_login_clear(proxy_login *l);

#endif
