/* proxy.c - one proxied session: find the home node, connect, run the login dialogue
 * (proxy_login.c) under one deadline, then splice the client and the home node with
 * back-pressure.
 *
 * Two owners share the proxy (refs): the session (until proxy_free) and the home side
 * (the pending start, the DNS look-up, then the home connection until its on_close).
 * Every step that can fail reports through done() from the event loop, never from
 * inside proxy_start(), so the session always holds its handle before any callback. */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include "cluster.h"
#include "dns.h"
#include "proxy.h"

#define PROXY_POLL_MS 20       /* back-pressure: how often a held side is looked at */

enum { P_START, P_LOGIN, P_READY, P_SPLICE, P_OVER };

struct proxy {
	int refs;
	int phase;
	int detached;                 /* the session let go: no callback any more */
	int reported;                 /* done() was called */
	tern_io *io;
	struct event_base *base;
	struct event *timer;          /* the login deadline, then back-pressure polls */
	tern_dns *dns;
	char home[64];
	char host[256];
	unsigned port;
	char fingerprint[65];
	int timeout;
	void (*done)(void *ctx, int ok, const char *reply);
	void *ctx;
	tern_conn *up;                /* the home node, NULL before open and after close */
	tern_conn *client;            /* set by proxy_splice */
	int client_held, up_held;     /* reading stopped: the other side's output is full */
	tern_line_reader lines;
	proxy_login login;
};

static void release(proxy *p)
{
	if (--p->refs > 0)
		return;
	event_free(p->timer);
	tern_line_clear(&p->lines);
	proxy_login_clear(&p->login);
	free(p);
}

/* The login ends without success: say why once, close the home side. */
static void fail(proxy *p, const char *why)
{
	if (p->reported || p->phase == P_OVER)
		return;
	p->reported = 1;
	p->phase = P_OVER;
	evtimer_del(p->timer);
	if (p->up != NULL)
		tern_conn_close(p->up);
	if (!p->detached && p->done != NULL)
		p->done(p->ctx, 0, why);
}

/* ---- the home connection ---- */

static void *up_open(tern_conn *c, void *ctx)
{
	proxy *p = ctx;

	p->up = c;
	if (p->detached || p->phase == P_OVER) {
		tern_conn_close(c);
		return p;
	}
	p->phase = P_LOGIN;
	return p;
}

static void arm_poll(proxy *p)
{
	struct timeval tv = { 0, PROXY_POLL_MS * 1000 };

	if (!evtimer_pending(p->timer, NULL))
		evtimer_add(p->timer, &tv);
}

/* Move every byte waiting on `from` to `to`; stop reading `from` while `to` has too
 * much to write (arm_poll resumes it). */
static void forward(proxy *p, tern_conn *from, tern_conn *to, int *held)
{
	struct evbuffer *in = tern_conn_input(from);
	struct evbuffer_iovec v[8];

	while (evbuffer_get_length(in) > 0) {
		int n = evbuffer_peek(in, -1, NULL, v, 8);
		size_t moved = 0;

		for (int i = 0; i < n && i < 8; i++) {
			tern_conn_write(to, v[i].iov_base, v[i].iov_len);
			moved += v[i].iov_len;
		}
		evbuffer_drain(in, moved);
	}
	if (!*held && tern_conn_output_pending(to) > PROXY_OUTPUT_HIGH) {
		*held = 1;
		tern_conn_pause(from);
		arm_poll(p);
	}
}

/* The login dialogue: one line of the home node at a time. */
static void login_read(proxy *p, tern_conn *c)
{
	tbuf out = TBUF_INIT;

	while (p->phase == P_LOGIN) {
		const char *reply = NULL;
		int rc = tern_line_read(&p->lines, tern_conn_input(c));

		if (rc == TERN_LINE_MORE)
			break;
		if (rc == TERN_LINE_TOOLONG) {
			fail(p, "over-long line from the home node");
			break;
		}
		rc = proxy_login_step(&p->login, tbuf_cstr(&p->lines.line), &out, &reply);
		tbuf_reset(&p->lines.line);
		if (out.len > 0)
			tern_conn_write(c, out.data, out.len);
		tbuf_reset(&out);
		if (rc == PROXY_STEP_TLS) {
			if (tern_conn_starttls_client(c, p->host, p->fingerprint) != 0) {
				fail(p, "cannot start TLS");
				break;
			}
			tern_line_clear(&p->lines);
			/* what follows is queued until the handshake (and the pin) succeed */
			rc = proxy_login_step(&p->login, NULL, &out, &reply);
			if (out.len > 0)
				tern_conn_write(c, out.data, out.len);
			tbuf_reset(&out);
		}
		if (rc == PROXY_STEP_FAIL) {
			fail(p, reply);
		} else if (rc == PROXY_STEP_DONE) {
			p->phase = P_READY;
			p->reported = 1;
			evtimer_del(p->timer);
			tern_conn_pause(c);
			tern_conn_set_idle_timeout(c, 0);
			if (!p->detached && p->done != NULL)
				p->done(p->ctx, 1, reply);
		}
	}
	if (out.data != NULL)
		explicit_bzero(out.data, out.cap);
	tbuf_free(&out);
}

static void up_read(tern_conn *c, void *session)
{
	proxy *p = session;

	if (p->phase == P_LOGIN)
		login_read(p, c);
	else if (p->phase == P_SPLICE && p->client != NULL)
		forward(p, c, p->client, &p->up_held);
	else if (p->phase == P_OVER) {
		struct evbuffer *in = tern_conn_input(c);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
}

/* The home side ended (or never opened: session is then the proxy as ctx). */
static void up_close(tern_conn *c, void *session)
{
	proxy *p = session;
	const char *why = tern_conn_error(c);

	p->up = NULL;
	if (p->phase == P_START || p->phase == P_LOGIN)
		fail(p, why && why[0] ? why : "connection closed by the home node");
	else if (p->client != NULL)
		tern_conn_close(p->client);
	p->phase = P_OVER;
	release(p);
}

static void connect_to(proxy *p, struct sockaddr_storage *sa)
{
	tern_service_handler h = { 0 };
	socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)p->port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)p->port);
	h.on_open = up_open;
	h.on_read = up_read;
	h.on_close = up_close;
	h.ctx = p;
	h.idle_timeout = p->timeout;
	if (tern_client_connect(p->io, (struct sockaddr *)sa, len, p->timeout, &h) != 0) {
		fail(p, "cannot open a connection");
		release(p);
	}
	/* from here the connection's on_close releases the home side's reference */
}

static void dns_free_cb(evutil_socket_t fd, short what, void *arg)
{
	tern_dns *dns = arg;

	(void)fd;
	(void)what;
	tern_dns_free(&dns);
}

static void dns_cb(tern_dns_status st, const struct sockaddr_storage *a, size_t n, void *arg)
{
	proxy *p = arg;
	struct timeval now = { 0, 0 };

	/* the resolver is freed once its callback has returned */
	event_base_once(p->base, -1, EV_TIMEOUT, dns_free_cb, p->dns, &now);
	p->dns = NULL;
	if (p->detached || p->phase == P_OVER) {
		release(p);
		return;
	}
	if (st != TERN_DNS_OK || n == 0) {
		fail(p, "cannot resolve the home node's address");
		release(p);
		return;
	}
	struct sockaddr_storage sa = a[0];
	connect_to(p, &sa);
}

/* From the event loop: resolve (unless the address is numeric) and connect. */
static void begin_cb(evutil_socket_t fd, short what, void *arg)
{
	proxy *p = arg;
	struct sockaddr_storage sa;
	char *err = NULL;

	(void)fd;
	(void)what;
	if (p->detached || p->phase == P_OVER) {
		release(p);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, p->host, &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
		sa.ss_family = AF_INET;
	} else if (inet_pton(AF_INET6, p->host, &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
		sa.ss_family = AF_INET6;
	} else {
		p->dns = tern_dns_new(p->base, "", p->timeout, &err);
		if (p->dns == NULL) {
			free(err);
			fail(p, "no resolver for the home node's address");
			release(p);
			return;
		}
		tern_dns_addr(p->dns, p->host, dns_cb, p);
		return;
	}
	connect_to(p, &sa);
}

/* Login phase: the deadline. Splice phase: look at the held sides again. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	proxy *p = arg;

	(void)fd;
	(void)what;
	if (p->phase == P_START || p->phase == P_LOGIN) {
		fail(p, "timed out waiting for the home node");
		return;
	}
	if (p->phase != P_SPLICE)
		return;
	if (p->client_held && (p->up == NULL || tern_conn_output_pending(p->up) <= PROXY_OUTPUT_LOW)) {
		p->client_held = 0;
		if (p->client != NULL)
			tern_conn_resume(p->client);
	}
	if (p->up_held && (p->client == NULL || tern_conn_output_pending(p->client) <= PROXY_OUTPUT_LOW)) {
		p->up_held = 0;
		if (p->up != NULL)
			tern_conn_resume(p->up);
	}
	if (p->client_held || p->up_held)
		arm_poll(p);
}

/* ---- the session's side ---- */

/* Where and how to reach the home node, from its Node record. */
static int find_home(proxy *p, const proxy_request *rq, const char **error_r)
{
	Tern__Node *n = NULL;
	int rc = -1;

	if (cluster_node_find(rq->st, rq->home, &n) != STORE_OK) {
		*error_r = "unknown home node";
		return -1;
	}
	unsigned port = rq->proto == PROXY_IMAP ? n->imap_port : n->pop3_port;
	if (port == 0 || port > 65535)
		*error_r = "the home node has no such port";
	else if (n->address == NULL || n->address[0] == '\0' || strlen(n->address) >= sizeof(p->host))
		*error_r = "the home node has no address";
	else if (n->fingerprint == NULL || strlen(n->fingerprint) != 64)
		*error_r = "the home node has no certificate fingerprint";
	else {
		snprintf(p->host, sizeof(p->host), "%s", n->address);
		snprintf(p->fingerprint, sizeof(p->fingerprint), "%s", n->fingerprint);
		p->port = port;
		rc = 0;
	}
	store_free_record(n);
	return rc;
}

int proxy_start(const proxy_request *rq, proxy **p_r, const char **error_r)
{
	const char *self = store_node_name(rq->st);
	proxy *p;

	*p_r = NULL;
	if (rq->timeout <= 0 || rq->done == NULL || self == NULL || rq->home == NULL ||
	    strlen(rq->home) >= sizeof(p->home)) {
		*error_r = "bad proxy request";
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (find_home(p, rq, error_r) < 0)
		goto fail;
	if (cluster_node_login(rq->st, self, p->login.authcid, sizeof(p->login.authcid),
			       p->login.password, sizeof(p->login.password)) < 0) {
		*error_r = "this node has no node login";
		goto fail;
	}
	p->login.proto = rq->proto;
	snprintf(p->login.account, sizeof(p->login.account), "%s", rq->account);
	snprintf(p->login.client_ip, sizeof(p->login.client_ip), "%s", rq->client_ip ? rq->client_ip : "");
	p->login.client_port = rq->client_port;
	snprintf(p->home, sizeof(p->home), "%s", rq->home);
	p->io = rq->io;
	p->base = tern_io_base(rq->io);
	p->timeout = rq->timeout;
	p->done = rq->done;
	p->ctx = rq->ctx;
	p->refs = 2;                      /* the session and the home side */
	tern_line_init(&p->lines, PROXY_LINE_MAX);
	p->timer = evtimer_new(p->base, timer_cb, p);
	struct timeval now = { 0, 0 }, deadline = { rq->timeout, 0 };
	if (p->timer == NULL || event_base_once(p->base, -1, EV_TIMEOUT, begin_cb, p, &now) != 0) {
		*error_r = "out of memory";
		if (p->timer != NULL)
			event_free(p->timer);
		goto fail;
	}
	evtimer_add(p->timer, &deadline);
	*p_r = p;
	return 0;
fail:
	proxy_login_clear(&p->login);
	tern_line_clear(&p->lines);
	free(p);
	return -1;
}

void proxy_splice(proxy *p, tern_conn *client)
{
	p->client = client;
	if (p->phase != P_READY || p->up == NULL) {
		tern_conn_close(client);
		return;
	}
	p->phase = P_SPLICE;
	tern_conn_resume(p->up);
	tern_conn_resume(client);
	forward(p, p->up, client, &p->up_held);
	forward(p, client, p->up, &p->client_held);
}

void proxy_client_read(proxy *p)
{
	if (p->phase == P_SPLICE && p->up != NULL && p->client != NULL) {
		forward(p, p->client, p->up, &p->client_held);
		return;
	}
	if (p->client != NULL) {
		struct evbuffer *in = tern_conn_input(p->client);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
}

void proxy_free(proxy **pp)
{
	proxy *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	p->detached = 1;
	p->done = NULL;
	p->client = NULL;
	p->phase = P_OVER;
	evtimer_del(p->timer);
	if (p->up != NULL)
		tern_conn_close(p->up);
	release(p);
}
