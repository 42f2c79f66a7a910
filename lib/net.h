/* net.h - I/O threads, listeners and connections on libevent, with TLS (OpenSSL).
 *
 * A tern_server owns N I/O threads, each with its own event base. Every TCP listener is
 * opened once per I/O thread with SO_REUSEPORT, so the kernel spreads connections; a
 * connection lives on the thread that accepted it for its whole life. TLS is implicit or
 * by STARTTLS, from one SSL_CTX made from DATA/ssl/server.{crt,key} (a self-signed pair is
 * made at first start), with SSL_MODE_RELEASE_BUFFERS.
 *
 * Protocol sessions plug in through tern_service_handler; they read from the connection's
 * input evbuffer and write with tern_conn_write(). Callbacks of one connection always run
 * on its I/O thread, one at a time. */
#ifndef TERN_NET_H
#define TERN_NET_H
#include <stddef.h>
#include <sys/socket.h>
#include "conf.h"

struct event_base;
struct evbuffer;
typedef struct tern_server tern_server;
typedef struct tern_io tern_io;
typedef struct tern_conn tern_conn;

typedef struct tern_service_handler {
	/* A new connection was accepted (after the TLS handshake on implicit-TLS ports).
	 * Return the session, or NULL to close the connection at once. */
	void *(*on_open)(tern_conn *c, void *ctx);
	/* New bytes are in tern_conn_input(c). Consume what you use. */
	void (*on_read)(tern_conn *c, void *session);
	/* The peer went away, an error or timeout happened, or tern_conn_close() finished
	 * flushing. Free the session here; c is freed right after this returns. */
	void (*on_close)(tern_conn *c, void *session);
	/* The server is draining (SIGTERM): say goodbye and tern_conn_close() when convenient.
	 * May be NULL: the connection is then closed at the end of the drain timeout. */
	void (*on_drain)(tern_conn *c, void *session);
	void *ctx;
	/* Seconds of read inactivity before the connection is closed; 0 = none. */
	int idle_timeout;
	/* The idle timeout fired: say goodbye (e.g. "421 ... timeout"); the connection is
	 * closed after this returns, once the output is flushed. May be NULL: silent close. */
	void (*on_timeout)(tern_conn *c, void *session);
} tern_service_handler;

/* Decide whether peer may use a service limited to the IP address group `ipgroup`.
 * Returns 1 to allow. Installed by the node (IP groups live in the store). */
typedef int (*tern_access_fn)(const char *ipgroup, const struct sockaddr *peer, void *ctx);

/* Make the server: I/O threads (conf->server_io_threads, 0 = one per core) and the TLS
 * context from data_dir/ssl (made when missing). Nothing listens or runs yet. */
tern_server *tern_server_new(const tern_conf *conf, const char *data_dir, char **error_r);
void tern_server_set_access_check(tern_server *srv, tern_access_fn fn, void *ctx);
/* Open the listeners of one service as configured (all its addresses, on every I/O
 * thread). A disabled service is skipped and returns 0. -1 with *error_r (malloc'd),
 * e.g. "smtp: cannot listen on 0.0.0.0:25: Address already in use". */
int tern_server_listen(tern_server *srv, tern_service_id svc, const tern_service_handler *h,
		       char **error_r);
/* A Unix-domain listener (mode 0600), accepted on the first I/O thread; no TLS. */
int tern_server_listen_unix(tern_server *srv, const char *path, const tern_service_handler *h,
			    char **error_r);
/* Run the I/O threads; returns after tern_server_stop() and the drain. */
int tern_server_run(tern_server *srv);
/* Begin an orderly stop from any thread: close the listeners, call on_drain of every
 * connection, wait for them up to the drain timeout, then close the rest and return from
 * tern_server_run(). Async-signal-safe (it only writes to a pipe). */
void tern_server_stop(tern_server *srv);
void tern_server_free(tern_server **srv);
/* SHA-256 of the server certificate (DER), 64 lowercase hex digits. */
const char *tern_server_fingerprint(const tern_server *srv);
unsigned tern_server_io_count(const tern_server *srv);
tern_io *tern_server_io(tern_server *srv, unsigned i);
/* Number of open connections of a service (all threads). */
unsigned tern_server_connections(const tern_server *srv, tern_service_id svc);
/* Addresses bound for a service, as "ADDR:PORT" lines, for status output. */
void tern_server_describe_listeners(const tern_server *srv, tbuf *out);

/* Run fn(arg) on the I/O thread io, from any thread. */
void tern_io_post(tern_io *io, void (*fn)(void *arg), void *arg);
struct event_base *tern_io_base(tern_io *io);
/* The I/O thread the caller runs on, or NULL outside I/O threads. */
tern_io *tern_io_current(void);

/* Outgoing connections (the SMTP client of the queue, cluster relays): connect to addr
 * from I/O thread io within timeout seconds; h->on_open runs once connected (its ctx
 * argument is h->ctx), h->on_close when the connection fails or ends (session NULL when it
 * never opened: then on_close gets the ctx as session). The connection then works like an
 * accepted one (tern_conn_write, tern_conn_close, ...). 0 ok, -1 when the socket cannot be
 * made at all. Call from io's own thread. */
int tern_client_connect(tern_io *io, const struct sockaddr *addr, socklen_t addrlen, int timeout,
			const tern_service_handler *h);
/* Start TLS as a client (STARTTLS after the server's go-ahead) with SNI servername;
 * verification is opportunistic: the peer certificate is not checked unless
 * fingerprint is given (64 hex digits: SHA-256 of the DER), then it must match.
 * Unread input is discarded. on_read resumes after the handshake; a failed handshake
 * closes the connection. 0 ok. */
int tern_conn_starttls_client(tern_conn *c, const char *servername, const char *fingerprint);
/* The connection's TLS protocol and cipher ("TLSv1.3 TLS_AES_256_GCM_SHA384"), or NULL. */
const char *tern_conn_tls_info(const tern_conn *c);
/* Why an outgoing connection failed or ended ("Connection refused", "timed out",
 * "TLS handshake failed: ...", "connection closed"), "" when nothing went wrong; for the
 * caller's log and reply texts, valid in on_close. */
const char *tern_conn_error(const tern_conn *c);

struct evbuffer *tern_conn_input(tern_conn *c);
void tern_conn_write(tern_conn *c, const void *data, size_t len);
void tern_conn_printf(tern_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes queued for output and not yet written to the socket. */
size_t tern_conn_output_pending(tern_conn *c);
/* Start TLS as a server on a plaintext connection (STARTTLS). Unread plaintext input is
 * discarded first, so pipelined plaintext never reaches the TLS session. 0 ok. */
int tern_conn_starttls(tern_conn *c);
int tern_conn_is_tls(const tern_conn *c);
/* Flush pending output, then close; on_close follows. Idempotent. */
void tern_conn_close(tern_conn *c);
/* Stop / resume calling on_read (while a job for this session runs elsewhere). */
void tern_conn_pause(tern_conn *c);
void tern_conn_resume(tern_conn *c);
void tern_conn_set_idle_timeout(tern_conn *c, int seconds);
const char *tern_conn_peer_ip(const tern_conn *c);      /* numeric, e.g. "127.0.0.1" */
const struct sockaddr *tern_conn_peer_addr(const tern_conn *c);
const char *tern_conn_local_ip(const tern_conn *c);
unsigned tern_conn_local_port(const tern_conn *c);
tern_service_id tern_conn_service(const tern_conn *c); /* TERN_SVC_COUNT for Unix sockets */
int tern_conn_is_unix(const tern_conn *c);
tern_io *tern_conn_io(tern_conn *c);
tern_server *tern_conn_server(tern_conn *c);

#endif
