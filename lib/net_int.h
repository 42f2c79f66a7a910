/* net_int.h - private structures shared by the files of the net layer (net_server.c,
 * net_listen.c, net_conn.c, net_tls.c). Nothing outside lib/net_*.c includes it. */
#ifndef TERN_NET_INT_H
#define TERN_NET_INT_H
#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include "tern.h"

/* Output above this many bytes stops on_read until the peer has taken enough of it. */
#define NET_OUTPUT_HIGH (4u * 1024 * 1024)
/* ... and reading resumes once output is back under this. */
#define NET_OUTPUT_LOW (256u * 1024)
/* Seconds a client may take for the implicit-TLS handshake. */
#define NET_HANDSHAKE_TIMEOUT 30
/* Seconds tern_conn_close() waits for the peer to take pending output. */
#define NET_CLOSE_FLUSH_TIMEOUT 30
#define NET_ADDR_STRLEN 64

/* What a listen call installed: the handler and the service policy, shared by every
 * listener socket of the call and by the connections they accepted. Lives until the
 * server is freed, so a connection may outlive its listener (drain). */
typedef struct net_service {
	tern_service_handler h;
	tern_service_id id;           /* TERN_SVC_COUNT for Unix sockets */
	tern_tls_mode tls;
	unsigned max_connections;     /* 0 = unlimited */
	char name[32];
	char ipgroup[64];
	struct net_service *next;
} net_service;

/* One listening socket on one I/O thread. */
typedef struct net_listener {
	tern_io *io;
	net_service *svc;
	struct evconnlistener *lev;
	struct event *retry_ev;       /* re-enables accepting after EMFILE and the like */
	int is_unix;
	char local[128];              /* "127.0.0.1:10025", "[::]:10025" or the socket path */
	LIST_ENTRY(net_listener) link;
} net_listener;

struct tern_conn {
	tern_io *io;
	net_service *svc;
	struct bufferevent *bev;      /* the TLS filter after STARTTLS */
	struct event *close_ev;       /* runs the deferred end of the connection */
	struct event *resume_ev;      /* re-delivers buffered input after resume */
	void *session;
	int is_tls;
	int handshaking;              /* implicit TLS, on_open not yet called */
	int closing;                  /* tern_conn_close() called: flushing */
	int finished;                 /* on_close done, being freed */
	int paused;                   /* by the session */
	int throttled;                /* by us: too much output pending */
	int force_close;              /* close_ev ends the connection without flushing */
	int in_cb;                    /* depth of session callbacks running for it */
	int64_t close_deadline_ms;    /* flushing gives up at this tern_mono_ms() */
	int idle_timeout;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char peer_ip[NET_ADDR_STRLEN];
	char local_ip[NET_ADDR_STRLEN];
	unsigned local_port;
	/* Outgoing connections (net_client.c). */
	int is_client;                /* made by tern_client_connect; svc is its own, freed with it */
	int opened;                   /* on_open has been called */
	char error[128];              /* why a client connection failed or ended, "" = none */
	char pin[65];                 /* STARTTLS client: required SHA-256 of the peer cert, "" = any */
	char tls_info[96];            /* tern_conn_tls_info() text, made on first use */
	LIST_ENTRY(tern_conn) link;
};

struct tern_io {
	tern_server *srv;
	unsigned index;
	struct event_base *base;
	pthread_t thread;
	int started;
	/* Touched only on this I/O thread. */
	LIST_HEAD(, tern_conn) conns;
	/* Guarded by srv->lock: listeners may be opened from the main thread. */
	LIST_HEAD(, net_listener) listeners;
};

struct tern_server {
	unsigned nio;
	tern_io *io;
	SSL_CTX *ssl_ctx;
	SSL_CTX *client_ctx;          /* made on the first STARTTLS as a client (under lock) */
	char fingerprint[65];
	char hostname[256];
	tern_service_conf services[TERN_SVC_COUNT];
	int drain_timeout;

	tern_access_fn access_fn;
	void *access_ctx;

	pthread_mutex_t lock;         /* services, listeners, bound */
	net_service *svcs;
	tbuf bound;                   /* describe_listeners lines */

	atomic_uint nconn[TERN_SVC_COUNT + 1];
	atomic_uint total_conns;
	atomic_int draining;

	int stop_pipe[2];
	struct event *stop_ev;        /* on io[0] */
	struct event *drain_timer;    /* on io[0] */
	int64_t drain_deadline_ms;
};

/* net_tls.c: load DATA/ssl/server.{key,crt}, making a self-signed pair when missing;
 * build the server SSL_CTX and the certificate fingerprint. */
int net_tls_setup(tern_server *srv, const char *data_dir, char **error_r);

/* net_conn.c */
/* Take an accepted socket on io (the caller's thread) and start the connection. */
void net_conn_accept(tern_io *io, net_service *svc, evutil_socket_t fd,
		     const struct sockaddr *peer, socklen_t peer_len);
/* Call on_drain of every connection of io (on io's thread). */
void net_conn_drain_all(tern_io *io);
/* End every connection of io at once, on_close included (on io's thread). */
void net_conn_close_all(tern_io *io);
/* Free a connection without callbacks (server teardown after the threads ended). */
void net_conn_discard(tern_conn *c);
/* Give a connection the caller allocated (io, svc, peer set) its events and bev, with the
 * connection callbacks, and link it into its io's list. 0 ok; -1 leaves c unlinked. */
int net_conn_setup(tern_conn *c, struct bufferevent *bev);
/* Put a TLS filter (ssl, in BUFFEREVENT_SSL_ACCEPTING or _CONNECTING state) over the plain
 * bufferevent of c, discarding unread plaintext input. 0 ok; ssl is freed on failure. */
int net_conn_start_tls(tern_conn *c, SSL *ssl, int state);

/* net_client.c */
/* Record in c->error why an outgoing connection failed or ended (a bufferevent event). */
void net_client_event(tern_conn *c, short what);

/* net_listen.c */
/* Free the listeners of io (on io's thread, or when no thread runs). */
void net_listen_close_io(tern_io *io);

/* Format an address as "1.2.3.4" / "::1" into ip and its port into *port_r. */
void net_addr_format(const struct sockaddr *sa, char *ip, size_t n, unsigned *port_r);
/* Set *error_r to a malloc'd formatted message. */
void net_error(char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
