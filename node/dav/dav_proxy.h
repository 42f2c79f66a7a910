/* dav_proxy.h - DAV requests of a user whose home is another node (DESIGN.md §5, issue
 * 7): the front node authenticates the user itself (lockout, logs), then forwards the
 * request to the home node's https port (Node.http_port, implicit TLS with the
 * certificate pinned to Node.fingerprint) with the front node's node login as Basic
 * credentials and the user in an X-Tern-User header; the home node's answer (status,
 * headers, body) is relayed to the client. Every node serves the same URL space, so the
 * hrefs in relayed bodies stay valid. Private to node/dav/.
 *
 * The home node accepts X-Tern-User only on a request whose Basic credentials are a
 * registered node's valid node login (cluster_check_node_login); with a user's own
 * credentials the header is ignored. A request that arrived that way is never proxied
 * again (a home that moved meanwhile answers 503).
 *
 * One connection per request (keep-alive pooling towards the home node would be a later
 * improvement). Connect, TLS, request and answer together get [cluster]
 * request_timeout seconds; the answer is bounded (DAV_PROXY_HEAD_MAX for its head, [dav]
 * max_body_kb times DAV_PROXY_REPLY_FACTOR for its body). A home node that cannot be
 * reached or answers badly gives the client 502 (504 after the deadline) and a line in
 * warning.log. */
#ifndef TERN_DAV_PROXY_H
#define TERN_DAV_PROXY_H
#include <event2/buffer.h>
#include "dav_private.h"

#define DAV_PROXY_USER_HEADER "X-Tern-User"
#define DAV_PROXY_FOR_HEADER "X-Forwarded-For"
#define DAV_PROXY_HEAD_MAX (64u * 1024)
/* An answer may be larger than any request (a REPORT over a whole calendar). */
#define DAV_PROXY_REPLY_FACTOR 8

/* ---- front node (dav_proxy.c) ---- */

typedef struct dav_proxy dav_proxy;

/* Worker (dav_job), r authenticated, its home is node `home`: find the node, this
 * node's node login and the address, and build the forwarded request into r->proxy.
 * On failure (unknown node, no node login, a request that already came from a node)
 * the answer is set on r instead (502/503) and warning.log says why. */
void dav_proxy_prepare(dav_req *r, const char *home);
/* r's I/O thread (the job's done callback), r->proxy set: send the request; finish(r)
 * follows exactly once on that thread, with r->status, r->ctype, r->body and the relayed
 * headers set. finish frees r, and r frees its proxy (dav_proxy_free). */
void dav_proxy_run(dav_req *r, void (*finish)(dav_req *r));
/* The request lets go; a connection still open is closed. NULLs *p. */
void dav_proxy_free(dav_proxy **p);

/* ---- home node ---- */

/* Worker: when r's Basic credentials name a node ("node/..."): 1 with r->account the
 * X-Tern-User user, r->ip the X-Forwarded-For address and r->via_node set; -1 refused
 * (r->fail_reason). 0 when the credentials are not a node's (X-Tern-User is then
 * ignored). The caller still checks that the user exists and is enabled. */
int dav_proxy_node_login(dav_req *r);

/* ---- the two halves of the exchange, unit tested ---- */

/* The forwarded request: req's method, target, end-to-end headers and body, with
 * Host, Authorization (authz: "Basic ..."), X-Tern-User, X-Forwarded-For, Connection:
 * close and Content-Length of its own. -1 when a header of req cannot be forwarded
 * safely (CR or LF in it). */
int dav_proxy_build_request(const http_request *req, const char *host, unsigned port, const char *authz,
			    const char *account, const char *client_ip, tbuf *out);

enum { DAV_PROXY_MORE = 0, DAV_PROXY_DONE = 1, DAV_PROXY_BAD = -1 };

/* The home node's answer, read as it arrives. */
typedef struct dav_proxy_reply {
	int head_done;
	int head_only;                 /* the request was HEAD: no body follows */
	int status;
	long long length;              /* Content-Length, -1 = until the connection closes */
	size_t max_body;
	char *ctype;                   /* Content-Type or NULL */
	http_header headers[HTTP_MAX_HEADERS];   /* the end-to-end headers to relay */
	unsigned nheaders;
	tbuf body;
} dav_proxy_reply;

void dav_proxy_reply_init(dav_proxy_reply *rp, int head_only, size_t max_body);
void dav_proxy_reply_clear(dav_proxy_reply *rp);
/* Consume what arrived in `in`. eof: the connection has ended. DAV_PROXY_MORE,
 * DAV_PROXY_DONE (the whole answer is in rp), or DAV_PROXY_BAD with *error_r (static
 * text: malformed, too large, cut short, chunked). */
int dav_proxy_reply_read(dav_proxy_reply *rp, struct evbuffer *in, int eof, const char **error_r);

#endif
