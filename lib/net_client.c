/* net_client.c - outgoing connections (the queue's SMTP client, cluster relays).
 *
 * A client connection is an ordinary tern_conn with is_client set and a net_service of its
 * own holding the caller's handler. While it connects it is "handshaking" (no on_read);
 * BEV_EVENT_CONNECTED opens it exactly like an accepted plain connection. A connection that
 * never opened ends through conn_finish(), which then calls on_close with the handler's
 * ctx as the session. Why a connection failed or ended is kept in c->error.
 *
 * STARTTLS as a client uses one client SSL_CTX per server, made on first use: TLS 1.2 or
 * newer, SNI, and no certificate check unless a fingerprint is pinned - then the peer's
 * leaf certificate must hash (SHA-256 of its DER) to it or the handshake fails. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <event2/bufferevent_ssl.h>
#include "net_int.h"

/* Keep the first reason only: later events (EOF after an error) say less. */
static void client_error(tern_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_error(tern_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->error[0] != '\0')
		return;
	va_start(ap, fmt);
	int n = vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(c->error, sizeof(c->error), "connection error");
}

void net_client_event(tern_conn *c, short what)
{
	if (what & BEV_EVENT_CONNECTED) {
		if (!c->opened) {
			struct sockaddr_storage local;
			socklen_t len = sizeof(local);
			if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)&local, &len) == 0)
				net_addr_format((struct sockaddr *)&local, c->local_ip,
						sizeof(c->local_ip), &c->local_port);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		client_error(c, "%s", c->opened ? "timed out waiting for the server"
						: "connection timed out");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		int err = EVUTIL_SOCKET_ERROR();
		unsigned long e = c->is_tls ? bufferevent_get_openssl_error(c->bev) : 0;
		if (e != 0) {
			char text[100];
			ERR_error_string_n(e, text, sizeof(text));
			while (bufferevent_get_openssl_error(c->bev) != 0)
				;
			client_error(c, "TLS error: %s", text);
		} else if (err != 0) {
			client_error(c, "%s", strerror(err));
		} else {
			client_error(c, "%s", c->is_tls ? "TLS connection failed" : "connection failed");
		}
		return;
	}
	if (what & BEV_EVENT_EOF)
		client_error(c, "connection closed by the server");
}

int tern_client_connect(tern_io *io, const struct sockaddr *addr, socklen_t addrlen, int timeout,
			const tern_service_handler *h)
{
	tern_server *srv = io->srv;
	tern_conn *c = NULL;
	net_service *svc = NULL;
	struct bufferevent *bev = NULL;
	int one = 1;

	if (atomic_load(&srv->draining) || addrlen > sizeof(c->peer) ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return -1;
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	svc = calloc(1, sizeof(*svc));
	c = calloc(1, sizeof(*c));
	if (svc == NULL || c == NULL)
		goto fail;
	svc->h = *h;
	svc->id = TERN_SVC_COUNT;
	svc->tls = TERN_TLS_NONE;
	snprintf(svc->name, sizeof(svc->name), "outgoing");
	c->io = io;
	c->svc = svc;
	c->is_client = 1;
	c->handshaking = 1;
	c->idle_timeout = h->idle_timeout;
	memcpy(&c->peer, addr, addrlen);
	c->peer_len = addrlen;
	net_addr_format(addr, c->peer_ip, sizeof(c->peer_ip), NULL);
	bev = bufferevent_socket_new(io->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		goto fail;
	fd = -1;   /* the bufferevent owns it */
	if (net_conn_setup(c, bev) < 0)
		goto fail;
	atomic_fetch_add(&srv->nconn[TERN_SVC_COUNT], 1);
	atomic_fetch_add(&srv->total_conns, 1);
	struct timeval tv = { timeout > 0 ? timeout : NET_HANDSHAKE_TIMEOUT, 0 };
	bufferevent_set_timeouts(bev, &tv, &tv);
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&c->peer, (int)addrlen) < 0) {
		/* Refused on the spot (no route, ...): end it from the loop like any failure. */
		client_error(c, "%s", strerror(errno ? errno : ECONNREFUSED));
		c->force_close = 1;
		event_active(c->close_ev, EV_TIMEOUT, 1);
	}
	return 0;
fail:
	if (bev != NULL)
		bufferevent_free(bev);
	if (fd >= 0)
		close(fd);
	free(c);
	free(svc);
	return -1;
}

/* The server's client SSL_CTX, made once. */
static SSL_CTX *client_ctx(tern_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->client_ctx == NULL) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		if (ctx != NULL) {
			SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
			SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
			SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
						 SSL_OP_IGNORE_UNEXPECTED_EOF);
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		}
		srv->client_ctx = ctx;
	}
	SSL_CTX *ctx = srv->client_ctx;
	pthread_mutex_unlock(&srv->lock);
	return ctx;
}

/* Certificate check with a pinned fingerprint: the chain is not judged (opportunistic
 * TLS, self-signed peers), only the leaf's SHA-256 must match. */
static int client_verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	tern_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (c == NULL || c->pin[0] == '\0' || X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
		client_error(c, "cannot hash the server certificate");
		return 0;
	}
	tern_hex(md, mdlen, hex);
	if (strcmp(hex, c->pin) != 0) {
		client_error(c, "server certificate fingerprint %s does not match the pinned %s",
			     hex, c->pin);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	X509_STORE_CTX_set_error(xs, X509_V_OK);
	return 1;
}

/* 1 when s is a numeric IPv4/IPv6 address (SNI carries host names only). */
static int is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int tern_conn_starttls_client(tern_conn *c, const char *servername, const char *fingerprint)
{
	if (c->is_tls || c->closing || c->finished)
		return -1;
	c->pin[0] = '\0';
	if (fingerprint != NULL && fingerprint[0] != '\0') {
		unsigned char raw[32];
		if (strlen(fingerprint) != 64 || tern_unhex(fingerprint, raw, sizeof(raw)) < 0)
			return -1;
		tern_hex(raw, sizeof(raw), c->pin);   /* lower case, as tern_hex writes */
	}
	SSL_CTX *ctx = client_ctx(c->io->srv);
	if (ctx == NULL)
		return -1;
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return -1;
	SSL_set_app_data(ssl, c);
	if (servername != NULL && servername[0] != '\0' && !is_ip_literal(servername) &&
	    SSL_set_tlsext_host_name(ssl, servername) != 1) {
		SSL_free(ssl);
		return -1;
	}
	if (c->pin[0] != '\0')
		SSL_set_verify(ssl, SSL_VERIFY_PEER, client_verify_cb);
	return net_conn_start_tls(c, ssl, BUFFEREVENT_SSL_CONNECTING);
}

const char *tern_conn_tls_info(const tern_conn *c)
{
	tern_conn *m = (tern_conn *)c;   /* the text is cached in the connection */

	if (!c->is_tls)
		return NULL;
	SSL *ssl = bufferevent_openssl_get_ssl(m->bev);
	if (ssl == NULL)
		return NULL;
	int n = snprintf(m->tls_info, sizeof(m->tls_info), "%s %s", SSL_get_version(ssl),
			 SSL_get_cipher_name(ssl));
	if (n < 0)
		return NULL;
	return m->tls_info;
}

const char *tern_conn_error(const tern_conn *c)
{
	return c->error;
}
