/* net_conn.c - one accepted connection: admission (IP group, connection limit), the
 * bufferevent (plain, implicit TLS, or a TLS filter after STARTTLS), output back-pressure,
 * and the one way a connection ends (conn_finish).
 *
 * Every bufferevent is made with BEV_OPT_DEFER_CALLBACKS, so writing or pausing from a
 * session callback never re-enters another callback of the same connection. A
 * connection is freed only from its own close event or from a bufferevent event callback,
 * never from inside a session callback that is still running (in_cb guards it). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include "net_int.h"

#define CLOSE_POLL_MS 20

static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short what, void *arg);

/* The end of every connection: unlink, count down, on_close once, free. */
static void conn_finish(tern_conn *c)
{
	tern_server *srv = c->io->srv;

	if (c->finished)
		return;
	if (c->in_cb > 0) {
		/* A session callback of this connection is still on the stack. */
		c->force_close = 1;
		event_active(c->close_ev, EV_TIMEOUT, 1);
		return;
	}
	c->finished = 1;
	LIST_REMOVE(c, link);
	if (c->session != NULL && c->svc->h.on_close != NULL) {
		void *session = c->session;
		c->session = NULL;
		c->in_cb++;
		c->svc->h.on_close(c, session);
		c->in_cb--;
	} else if (c->is_client && !c->opened && c->svc->h.on_close != NULL) {
		/* An outgoing connection that never opened: its owner learns it from its ctx. */
		c->in_cb++;
		c->svc->h.on_close(c, c->svc->h.ctx);
		c->in_cb--;
	}
	atomic_fetch_sub(&srv->nconn[c->svc->id], 1);
	atomic_fetch_sub(&srv->total_conns, 1);
	event_free(c->close_ev);
	event_free(c->resume_ev);
	bufferevent_free(c->bev);
	if (c->is_client)
		free(c->svc);
	free(c);
}

/* Read inactivity limit of an open connection (not while closing or handshaking). */
static void conn_apply_timeouts(tern_conn *c)
{
	struct timeval tv = { c->idle_timeout, 0 };

	bufferevent_set_timeouts(c->bev, c->idle_timeout > 0 ? &tv : NULL, NULL);
}

/* Stop reading while too much output waits for the peer; conn_writecb resumes. */
static void conn_check_output(tern_conn *c)
{
	if (c->throttled || c->closing || c->finished ||
	    tern_conn_output_pending(c) <= NET_OUTPUT_HIGH)
		return;
	c->throttled = 1;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, NET_OUTPUT_LOW, 0);
}

/* Hand buffered input to the session if it may have it now. */
static void conn_deliver(tern_conn *c)
{
	if (c->closing || c->finished || c->paused || c->throttled || c->handshaking ||
	    c->session == NULL)
		return;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		return;
	c->in_cb++;
	c->svc->h.on_read(c, c->session);
	c->in_cb--;
	conn_check_output(c);
}

/* The session starts: on accept for plain ports, after the handshake for TLS ports. */
static void conn_open(tern_conn *c)
{
	c->handshaking = 0;
	c->opened = 1;
	conn_apply_timeouts(c);
	c->in_cb++;
	c->session = c->svc->h.on_open(c, c->svc->h.ctx);
	c->in_cb--;
	if (c->session == NULL) {
		/* Refused by the session: send what it wrote (a greeting with an error), then go. */
		tern_conn_close(c);
		return;
	}
	if (c->closing)
		return;
	bufferevent_enable(c->bev, c->paused ? EV_WRITE : EV_READ | EV_WRITE);
	/* Input that came with the end of the handshake. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		event_active(c->resume_ev, EV_TIMEOUT, 1);
}

/* The close event: force, or wait (polling) until the output is flushed or the flush
 * time is up. The output of a STARTTLS filter's socket has no callback of ours. */
static void conn_close_cb(evutil_socket_t fd, short what, void *arg)
{
	tern_conn *c = arg;

	if (!c->force_close && c->closing && tern_conn_output_pending(c) > 0 &&
	    tern_mono_ms() < c->close_deadline_ms) {
		struct timeval tv = { 0, CLOSE_POLL_MS * 1000 };
		event_add(c->close_ev, &tv);
		return;
	}
	conn_finish(c);
}

static void conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_deliver(arg);
}

/* The TLS library's reason for a failure, for debug.log. */
static void tls_error_text(struct bufferevent *bev, char *out, size_t n)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e == 0) {
		snprintf(out, n, "%s", errno ? strerror(errno) : "connection closed");
		return;
	}
	ERR_error_string_n(e, out, n);
	while (bufferevent_get_openssl_error(bev) != 0)
		;
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
	conn_deliver(arg);
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
	tern_conn *c = arg;

	if (c->closing) {
		event_active(c->close_ev, EV_TIMEOUT, 1);
		return;
	}
	if (c->throttled && tern_conn_output_pending(c) <= NET_OUTPUT_LOW) {
		c->throttled = 0;
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		if (!c->paused) {
			bufferevent_enable(c->bev, EV_READ);
			event_active(c->resume_ev, EV_TIMEOUT, 1);
		}
	}
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	tern_conn *c = arg;
	char reason[256];

	if (c->is_client)
		net_client_event(c, what);
	if (what & BEV_EVENT_CONNECTED) {
		/* The handshake is done; after STARTTLS the session already runs. */
		if (c->handshaking)
			conn_open(c);
		return;
	}
	if (c->handshaking && c->is_client) {
		conn_finish(c);
		return;
	}
	if (c->handshaking) {
		tls_error_text(bev, reason, sizeof(reason));
		tlog(TLOG_DEBUG, "TLS handshake from %s to %s failed: %s", c->peer_ip,
		     c->svc->name, (what & BEV_EVENT_TIMEOUT) ? "timeout" : reason);
		conn_finish(c);
		return;
	}
	/* Deferred events merge: EOF may come together with a write error. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->closing &&
	    tern_conn_output_pending(c) > 0) {
		/* The peer stopped sending (perhaps a half close): still deliver our replies. */
		tern_conn_close(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !c->closing) {
		tlog(TLOG_DEBUG, "%s connection from %s: idle timeout", c->svc->name, c->peer_ip);
		if (c->session != NULL && c->svc->h.on_timeout != NULL) {
			c->in_cb++;
			c->svc->h.on_timeout(c, c->session);
			c->in_cb--;
			tern_conn_close(c);
			return;
		}
	} else if ((what & BEV_EVENT_ERROR) && c->is_tls) {
		tls_error_text(bev, reason, sizeof(reason));
		tlog(TLOG_DEBUG, "%s connection from %s: %s", c->svc->name, c->peer_ip, reason);
	}
	conn_finish(c);
}

/* Admission: refused connections are closed before any byte is read. */
static int conn_admit(tern_io *io, net_service *svc, const struct sockaddr *peer,
		      const char *ip)
{
	tern_server *srv = io->srv;

	if (atomic_load(&srv->draining))
		return -1;
	if (svc->ipgroup[0] != '\0' &&
	    (srv->access_fn == NULL || !srv->access_fn(svc->ipgroup, peer, srv->access_ctx))) {
		tlog(TLOG_SECURITY, "Connection from %s to %s refused: not in IP address group %s",
		     ip, svc->name, svc->ipgroup);
		return -1;
	}
	unsigned n = atomic_fetch_add(&srv->nconn[svc->id], 1) + 1;
	if (svc->max_connections > 0 && n > svc->max_connections) {
		atomic_fetch_sub(&srv->nconn[svc->id], 1);
		tlog(TLOG_WARNING, "Connection from %s to %s refused: %u connections open (maximum)",
		     ip, svc->name, svc->max_connections);
		return -1;
	}
	atomic_fetch_add(&srv->total_conns, 1);
	return 0;
}

/* The bufferevent for a new connection: a TLS server or a plain socket. */
static struct bufferevent *conn_make_bev(tern_conn *c, evutil_socket_t fd)
{
	struct event_base *base = c->io->base;
	const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

	if (c->svc->tls != TERN_TLS_IMPLICIT)
		return bufferevent_socket_new(base, fd, opts);
	SSL *ssl = SSL_new(c->io->srv->ssl_ctx);
	if (ssl == NULL)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl,
								 BUFFEREVENT_SSL_ACCEPTING, opts);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->is_tls = 1;
	c->handshaking = 1;
	return bev;
}

void net_conn_accept(tern_io *io, net_service *svc, evutil_socket_t fd,
		     const struct sockaddr *peer, socklen_t peer_len)
{
	char ip[NET_ADDR_STRLEN];
	int is_unix = svc->id == TERN_SVC_COUNT;

	net_addr_format(peer, ip, sizeof(ip), NULL);
	if (conn_admit(io, svc, peer, ip) < 0) {
		close(fd);
		return;
	}
	tern_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->io = io;
	c->svc = svc;
	c->idle_timeout = svc->h.idle_timeout;
	if (peer_len > sizeof(c->peer))
		peer_len = sizeof(c->peer);
	memcpy(&c->peer, peer, peer_len);
	c->peer_len = peer_len;
	snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", ip);
	if (!is_unix) {
		int one = 1;
		struct sockaddr_storage local;
		socklen_t len = sizeof(local);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
			net_addr_format((struct sockaddr *)&local, c->local_ip, sizeof(c->local_ip),
					&c->local_port);
	} else {
		snprintf(c->local_ip, sizeof(c->local_ip), "local");
	}
	c->close_ev = event_new(io->base, -1, 0, conn_close_cb, c);
	c->resume_ev = event_new(io->base, -1, 0, conn_resume_cb, c);
	if (c->close_ev == NULL || c->resume_ev == NULL)
		goto fail;
	c->bev = conn_make_bev(c, fd);
	if (c->bev == NULL)
		goto fail;
	LIST_INSERT_HEAD(&io->conns, c, link);
	bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
	if (c->handshaking) {
		struct timeval tv = { NET_HANDSHAKE_TIMEOUT, 0 };
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	conn_open(c);
	return;
fail:
	tlog(TLOG_ERROR, "%s: cannot set up the connection from %s", svc->name, ip);
	if (c != NULL) {
		if (c->close_ev != NULL)
			event_free(c->close_ev);
		if (c->resume_ev != NULL)
			event_free(c->resume_ev);
		free(c);
	}
	close(fd);
	atomic_fetch_sub(&io->srv->nconn[svc->id], 1);
	atomic_fetch_sub(&io->srv->total_conns, 1);
}

int net_conn_setup(tern_conn *c, struct bufferevent *bev)
{
	c->close_ev = event_new(c->io->base, -1, 0, conn_close_cb, c);
	c->resume_ev = event_new(c->io->base, -1, 0, conn_resume_cb, c);
	if (c->close_ev == NULL || c->resume_ev == NULL) {
		if (c->close_ev != NULL)
			event_free(c->close_ev);
		if (c->resume_ev != NULL)
			event_free(c->resume_ev);
		c->close_ev = c->resume_ev = NULL;
		return -1;
	}
	c->bev = bev;
	LIST_INSERT_HEAD(&c->io->conns, c, link);
	bufferevent_setcb(bev, conn_readcb, conn_writecb, conn_eventcb, c);
	return 0;
}

void net_conn_drain_all(tern_io *io)
{
	tern_conn *c = LIST_FIRST(&io->conns);

	while (c != NULL) {
		tern_conn *next = LIST_NEXT(c, link);
		if (c->session == NULL)
			conn_finish(c);          /* still in its TLS handshake */
		else if (c->svc->h.on_drain != NULL && !c->closing) {
			c->in_cb++;
			c->svc->h.on_drain(c, c->session);
			c->in_cb--;
		}
		c = next;
	}
}

void net_conn_close_all(tern_io *io)
{
	while (!LIST_EMPTY(&io->conns))
		conn_finish(LIST_FIRST(&io->conns));
}

void net_conn_discard(tern_conn *c)
{
	conn_finish(c);
}

struct evbuffer *tern_conn_input(tern_conn *c)
{
	return bufferevent_get_input(c->bev);
}

void tern_conn_write(tern_conn *c, const void *data, size_t len)
{
	if (c->closing || c->finished)
		return;
	bufferevent_write(c->bev, data, len);
	conn_check_output(c);
}

void tern_conn_printf(tern_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->closing || c->finished)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	conn_check_output(c);
}

size_t tern_conn_output_pending(tern_conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

int tern_conn_starttls(tern_conn *c)
{
	if (c->is_tls || c->closing || c->finished)
		return -1;
	SSL *ssl = SSL_new(c->io->srv->ssl_ctx);
	if (ssl == NULL)
		return -1;
	return net_conn_start_tls(c, ssl, BUFFEREVENT_SSL_ACCEPTING);
}

int net_conn_start_tls(tern_conn *c, SSL *ssl, int state)
{
	struct bufferevent *plain = c->bev;
	struct evbuffer *in = bufferevent_get_input(plain);

	/* Plaintext sent after STARTTLS was never protected: it must not reach the session. */
	evbuffer_drain(in, evbuffer_get_length(in));
	struct bufferevent *tls = bufferevent_openssl_filter_new(
		c->io->base, plain, ssl, (enum bufferevent_ssl_state)state,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_set_timeouts(plain, NULL, NULL);
	c->bev = tls;
	c->is_tls = 1;
	bufferevent_setcb(tls, conn_readcb, conn_writecb, conn_eventcb, c);
	if (c->throttled)
		bufferevent_setwatermark(tls, EV_WRITE, NET_OUTPUT_LOW, 0);
	conn_apply_timeouts(c);
	bufferevent_enable(tls, (c->paused || c->throttled) ? EV_WRITE : EV_READ | EV_WRITE);
	return 0;
}

int tern_conn_is_tls(const tern_conn *c)
{
	return c->is_tls;
}

void tern_conn_close(tern_conn *c)
{
	struct timeval tv = { NET_CLOSE_FLUSH_TIMEOUT, 0 };

	if (c->closing || c->finished)
		return;
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	c->close_deadline_ms = tern_mono_ms() + NET_CLOSE_FLUSH_TIMEOUT * 1000;
	event_active(c->close_ev, EV_TIMEOUT, 1);
}

void tern_conn_pause(tern_conn *c)
{
	if (c->paused)
		return;
	c->paused = 1;
	bufferevent_disable(c->bev, EV_READ);
}

void tern_conn_resume(tern_conn *c)
{
	if (!c->paused)
		return;
	c->paused = 0;
	if (c->closing || c->finished || c->throttled || c->handshaking)
		return;
	bufferevent_enable(c->bev, EV_READ);
	/* Input may already be buffered: no new byte would call on_read for it. */
	event_active(c->resume_ev, EV_TIMEOUT, 1);
}

void tern_conn_set_idle_timeout(tern_conn *c, int seconds)
{
	c->idle_timeout = seconds > 0 ? seconds : 0;
	if (!c->handshaking && !c->closing)
		conn_apply_timeouts(c);
}

const char *tern_conn_peer_ip(const tern_conn *c)
{
	return c->peer_ip;
}

const struct sockaddr *tern_conn_peer_addr(const tern_conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

const char *tern_conn_local_ip(const tern_conn *c)
{
	return c->local_ip;
}

unsigned tern_conn_local_port(const tern_conn *c)
{
	return c->local_port;
}

tern_service_id tern_conn_service(const tern_conn *c)
{
	return c->svc->id;
}

int tern_conn_is_unix(const tern_conn *c)
{
	return c->svc->id == TERN_SVC_COUNT && !c->is_client;
}

tern_io *tern_conn_io(tern_conn *c)
{
	return c->io;
}

tern_server *tern_conn_server(tern_conn *c)
{
	return c->io->srv;
}
