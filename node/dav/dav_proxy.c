/* dav_proxy.c - forwarding a DAV request to the user's home node (see dav_proxy.h), and
 * the home node's acceptance of a node login on a user's behalf.
 *
 * Front node: the job on the auth pool (dav_job) prepares everything that reads the
 * store or blocks - the Node record, this node's node login, the address lookup, the
 * request bytes - then its done callback runs the exchange on the request's I/O thread:
 * connect, implicit TLS pinned to Node.fingerprint (the request, which carries the node
 * credential, is queued until the handshake and the pin have succeeded), read the
 * answer, relay it. One deadline covers it all.
 *
 * Two owners share the proxy (refs): the DAV request (until dav_proxy_free) and the home
 * connection (until its on_close). The request is answered exactly once (answer()). */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include "auth_sasl.h"
#include "cluster.h"
#include "dav_proxy.h"

struct dav_proxy {
	int refs;
	dav_req *r;                       /* NULL once answered */
	void (*finish)(dav_req *r);
	char home[64];
	char host[256];
	unsigned port;
	char pin[65];
	struct sockaddr_storage sa;
	socklen_t salen;
	int timeout;
	tbuf request;                     /* holds the node credential: wiped once sent */
	tern_conn *c;                     /* the home connection, NULL before open / after close */
	struct event *timer;              /* the deadline */
	dav_proxy_reply reply;
};

static void release(dav_proxy *p)
{
	if (--p->refs > 0)
		return;
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->request.data != NULL)
		OPENSSL_cleanse(p->request.data, p->request.cap);
	tbuf_free(&p->request);
	dav_proxy_reply_clear(&p->reply);
	free(p);
}

/* Reply to the client once: close the home side, hand r to finish (which frees r and,
 * through dav_proxy_free, r's reference). */
static void answer(dav_proxy *p)
{
	dav_req *r = p->r;

	if (r == NULL)
		return;
	p->r = NULL;
	if (p->timer != NULL)
		evtimer_del(p->timer);
	if (p->c != NULL)
		tern_conn_close(p->c);
	p->refs++;                        /* r->ctype may point into p until finish returns */
	p->finish(r);
	release(p);
}

/* The home node could not give an answer: say why to the client and in warning.log. */
static void fail(dav_proxy *p, int status, const char *why)
{
	dav_req *r = p->r;

	if (r == NULL)
		return;
	tlog(TLOG_WARNING, "DAV request of %s from %s: home node %s unreachable: %s", r->account, r->ip, p->home,
	     why);
	dav_error(r, status, "the calendars and contacts of %s are on node %s, which cannot be reached now; "
		  "try again later", r->account, p->home);
	answer(p);
}

/* The whole answer is in p->reply: relay status, end-to-end headers and body. */
static void relay(dav_proxy *p)
{
	dav_proxy_reply *rp = &p->reply;
	dav_req *r = p->r;

	if (rp->status == 401 || rp->status == 407) {
		/* the user's credentials were good here: the home refused this node's login */
		fail(p, 502, "the home node refused this node's login");
		return;
	}
	for (unsigned i = 0; i < rp->nheaders; i++)
		dav_header(r, rp->headers[i].name, rp->headers[i].value);
	r->status = rp->status;
	r->ctype = rp->ctype;
	tbuf body = r->body;
	r->body = rp->body;
	rp->body = body;
	answer(p);
}

/* ---- the home connection (r's I/O thread) ---- */

static void *up_open(tern_conn *c, void *ctx)
{
	dav_proxy *p = ctx;

	p->c = c;
	if (p->r == NULL) {
		tern_conn_close(c);
		return p;
	}
	/* implicit TLS: nothing was read yet, the handshake starts at once */
	if (tern_conn_starttls_client(c, p->host, p->pin) != 0) {
		fail(p, 502, "cannot start TLS");
		return p;
	}
	tern_conn_write(c, p->request.data, p->request.len);
	OPENSSL_cleanse(p->request.data, p->request.cap);
	tbuf_free(&p->request);
	return p;
}

static void up_read(tern_conn *c, void *session)
{
	dav_proxy *p = session;
	struct evbuffer *in = tern_conn_input(c);
	const char *why = NULL;

	if (p->r == NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	int rc = dav_proxy_reply_read(&p->reply, in, 0, &why);
	if (rc == DAV_PROXY_DONE)
		relay(p);
	else if (rc == DAV_PROXY_BAD)
		fail(p, 502, why);
}

/* The home side ended (or never opened: session is then the proxy as ctx). */
static void up_close(tern_conn *c, void *session)
{
	dav_proxy *p = session;
	const char *why = NULL;

	p->c = NULL;
	if (p->r != NULL) {
		int rc = p->reply.head_done || tern_conn_error(c)[0] == '\0' ?
			 dav_proxy_reply_read(&p->reply, tern_conn_input(c), 1, &why) : DAV_PROXY_BAD;
		if (rc == DAV_PROXY_DONE)
			relay(p);
		else
			fail(p, 502, tern_conn_error(c)[0] != '\0' ? tern_conn_error(c) :
				     why ? why : "connection closed by the home node");
	}
	release(p);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	dav_proxy *p = arg;

	(void)fd;
	(void)what;
	fail(p, 504, "timed out waiting for the home node");
}

void dav_proxy_run(dav_req *r, void (*finish)(dav_req *r))
{
	dav_proxy *p = r->proxy;
	tern_service_handler h = { 0 };
	struct timeval deadline = { p->timeout, 0 };

	p->r = r;
	p->finish = finish;
	p->timer = evtimer_new(tern_io_base(r->io), timer_cb, p);
	if (p->timer == NULL) {
		fail(p, 502, "out of memory");
		return;
	}
	evtimer_add(p->timer, &deadline);
	h.on_open = up_open;
	h.on_read = up_read;
	h.on_close = up_close;
	h.ctx = p;
	h.idle_timeout = p->timeout;
	p->refs++;                        /* the home connection's, released by up_close */
	if (tern_client_connect(r->io, (struct sockaddr *)&p->sa, p->salen, p->timeout, &h) != 0) {
		p->refs--;
		fail(p, 502, "cannot open a connection");
	}
}

void dav_proxy_free(dav_proxy **pp)
{
	dav_proxy *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	p->r = NULL;
	if (p->c != NULL)
		tern_conn_close(p->c);
	release(p);
}

/* ---- preparing (worker) ---- */

/* Where the home node is: its Node record's https port, address and fingerprint. NULL,
 * or why not. */
static const char *find_home(dav_proxy *p, store *st)
{
	Tern__Node *n = NULL;
	const char *why = NULL;

	if (cluster_node_find(st, p->home, &n) != STORE_OK)
		return "unknown home node";
	if (n->http_port == 0 || n->http_port > 65535)
		why = "the home node has no https port";
	else if (n->address == NULL || n->address[0] == '\0' || strlen(n->address) >= sizeof(p->host))
		why = "the home node has no address";
	else if (n->fingerprint == NULL || strlen(n->fingerprint) != 64)
		why = "the home node has no certificate fingerprint";
	else {
		snprintf(p->host, sizeof(p->host), "%s", n->address);
		snprintf(p->pin, sizeof(p->pin), "%s", n->fingerprint);
		p->port = n->http_port;
	}
	store_free_record(n);
	return why;
}

/* The home node's address (blocking look-up: this runs on a worker). 0 or -1. */
static int resolve(dav_proxy *p)
{
	struct addrinfo hints, *res = NULL;
	char port[16];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", p->port);
	if (getaddrinfo(p->host, port, &hints, &res) != 0 || res == NULL)
		return -1;
	int rc = -1;
	if (res->ai_addrlen <= sizeof(p->sa)) {
		memcpy(&p->sa, res->ai_addr, res->ai_addrlen);
		p->salen = res->ai_addrlen;
		rc = 0;
	}
	freeaddrinfo(res);
	return rc;
}

/* "Basic base64(node/<self>:<credential hex>)" into out (wipe it after use). */
static int node_authz(store *st, tbuf *out)
{
	char authcid[128], pass[128];
	tbuf raw = TBUF_INIT, b64 = TBUF_INIT;
	const char *self = store_node_name(st);

	if (self == NULL || cluster_node_login(st, self, authcid, sizeof(authcid), pass, sizeof(pass)) < 0)
		return -1;
	tbuf_appendf(&raw, "%s:%s", authcid, pass);
	auth_b64_encode(raw.data, raw.len, &b64);   /* replaces b64's contents */
	tbuf_append_str(out, "Basic ");
	tbuf_append(out, b64.data, b64.len);
	OPENSSL_cleanse(pass, sizeof(pass));
	OPENSSL_cleanse(raw.data, raw.len);
	OPENSSL_cleanse(b64.data, b64.len);
	tbuf_free(&raw);
	tbuf_free(&b64);
	return 0;
}

void dav_proxy_prepare(dav_req *r, const char *home)
{
	const tern_conf *conf = r->env->conf;
	store *st = r->env->st;
	const char *why = NULL;
	tbuf authz = TBUF_INIT;

	if (r->via_node) {
		/* a node sent this user here, yet the home is elsewhere: never proxy twice */
		tlog(TLOG_WARNING, "DAV request of %s by a node refused: the user's home is %s", r->account, home);
		dav_error(r, 503, "the calendars and contacts of %s are not on this node; try again later", r->account);
		return;
	}
	dav_proxy *p = calloc(1, sizeof(*p));
	if (p == NULL)
		abort();
	p->refs = 1;
	snprintf(p->home, sizeof(p->home), "%s", home);
	p->timeout = conf != NULL && conf->cluster_request_timeout > 0 ? (int)conf->cluster_request_timeout : 10;
	size_t max_kb = conf != NULL && conf->dav_max_body_kb > 0 ? (size_t)conf->dav_max_body_kb : 10240;
	dav_proxy_reply_init(&p->reply, strcmp(r->req->method, "HEAD") == 0,
			     max_kb * 1024 * DAV_PROXY_REPLY_FACTOR);
	tbuf_init(&p->request);
	why = find_home(p, st);
	if (why == NULL && node_authz(st, &authz) < 0)
		why = "this node has no node login";
	if (why == NULL && resolve(p) < 0)
		why = "cannot resolve the home node's address";
	if (why == NULL && dav_proxy_build_request(r->req, p->host, p->port, tbuf_cstr(&authz), r->account, r->ip,
						   &p->request) < 0) {
		dav_error(r, 400, "a header of this request cannot be forwarded");
	} else if (why != NULL) {
		tlog(TLOG_WARNING, "DAV request of %s from %s: home node %s unreachable: %s", r->account, r->ip,
		     home, why);
		dav_error(r, 502, "the calendars and contacts of %s are on node %s, which cannot be reached now; "
			  "try again later", r->account, home);
	} else {
		r->proxy = p;
		p = NULL;
	}
	if (authz.data != NULL)
		OPENSSL_cleanse(authz.data, authz.cap);
	tbuf_free(&authz);
	if (p != NULL)
		release(p);
}

/* ---- the home node's side ---- */

int dav_proxy_node_login(dav_req *r)
{
	size_t pre = strlen(CLUSTER_NODE_AUTHCID_PREFIX);

	if (strncmp(r->login_user, CLUSTER_NODE_AUTHCID_PREFIX, pre) != 0)
		return 0;
	/* Node credentials travel over the pinned TLS of another node's proxy only. */
	if (!r->tls) {
		r->fail_reason = "node login without TLS";
		return -1;
	}
	if (r->env->st == NULL || cluster_check_node_login(r->env->st, r->login_user, r->login_pass) != 1) {
		r->fail_reason = "bad node credentials";
		return -1;
	}
	const char *user = http_header_get(r->req, DAV_PROXY_USER_HEADER);
	if (user == NULL || user[0] == '\0' || strlen(user) >= sizeof(r->account) || strchr(user, '@') == NULL) {
		r->fail_reason = "node login without a user";
		return -1;
	}
	snprintf(r->account, sizeof(r->account), "%s", user);
	tern_lower(r->account);
	/* the client's own address for the logs, when the node gives a numeric one */
	const char *fwd = http_header_get(r->req, DAV_PROXY_FOR_HEADER);
	unsigned char bin[sizeof(struct in6_addr)];
	if (fwd != NULL && strlen(fwd) < sizeof(r->ip) &&
	    (inet_pton(AF_INET, fwd, bin) == 1 || inet_pton(AF_INET6, fwd, bin) == 1))
		snprintf(r->ip, sizeof(r->ip), "%s", fwd);
	r->via_node = 1;
	return 1;
}
