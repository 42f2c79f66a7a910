/* queue_int.h - private structures of node/queue/: the runner (queue_runner.c), the next
 * hops (queue_route.c), routing inside the distributed domain (queue_node.c) and the SMTP
 * client (queue_client.c). */
#ifndef TERN_QUEUE_INT_H
#define TERN_QUEUE_INT_H
#include <stdatomic.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include "queue.h"

/* Longest reply line we accept from a server (RFC 5321 asks 512; be generous). */
#define QC_LINE_MAX 4096
/* Lines in one reply (a long EHLO list is about 20). */
#define QC_REPLY_LINES_MAX 200
/* Bytes of the queued body read from the store at a time. */
#define QC_CHUNK (64u * 1024u)
/* Kept reply text per recipient. */
#define QC_TEXT_MAX 512

/* ---- queue_client.c: one SMTP client session to one address ---- */

typedef struct qc_reply {
	int code;                     /* 0 = no answer for this recipient in this session */
	char status[16];              /* enhanced code: given by the server or derived */
	char text[QC_TEXT_MAX];       /* "550 5.1.1 <x>: no such user" (first line) */
	char mta[256];                /* the server that answered, "" = none (our own reason) */
	int cluster;                  /* routed inside the distributed domain: retried after
				       * [cluster] relay_retry */
	char node[64];                /* the node it was relayed to, "" = none */
} qc_reply;

typedef struct qc_result {
	int transaction;              /* MAIL FROM was answered: rcpt[] is final for this try */
	int tls_failed;               /* STARTTLS or its handshake failed: retry without TLS */
	int code;                     /* session failure code (4xx/5xx) when !transaction */
	char error[QC_TEXT_MAX];      /* session failure text when !transaction */
	qc_reply *rcpt;               /* one per requested recipient */
	size_t n;
} qc_result;

typedef struct qc_request {
	tern_io *io;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *host;             /* the server's name: SNI, texts, Remote-MTA */
	const char *helo;             /* our EHLO name */
	int use_tls;
	/* Relay to a node of the distributed domain: STARTTLS is required and the server's
	 * certificate must have this SHA-256 fingerprint (64 hex), AUTH is PLAIN only; a
	 * mismatch or a refusal is a session failure (451). NULL = opportunistic TLS. */
	const char *fingerprint;
	int connect_timeout, command_timeout;
	const char *auth_user;        /* NULL = no AUTH */
	const char *auth_pass;
	store *st;
	const Tern__QueueEntry *e;    /* must stay valid until done has run */
	const size_t *idx;            /* indexes into e->rcpts */
	size_t n;
} qc_request;

typedef void (*qc_done_fn)(const qc_result *res, void *arg);
/* Run one session; done runs exactly once on req->io (never inside this call). 0 ok; -1
 * when no connection could be started (done is not called). */
int queue_client_start(const qc_request *req, qc_done_fn done, void *arg);

/* ---- queue_route.c: the next hops of one group of recipients ---- */

typedef struct q_static_mx {
	char domain[256];
	char host[256];
	unsigned port;
} q_static_mx;

typedef struct q_host {
	char name[256];
	unsigned port;
} q_host;

struct q_job;

/* One group of recipients of an entry with one next hop, tried host after host. */
typedef struct q_hop {
	struct q_job *job;
	char domain[256];             /* recipient domain ("" for relay/route hops) */
	int relay;                    /* through queue.relay_host: AUTH applies */
	char node[64];                /* relay to this node of the domain (its home node) */
	int local;                    /* the users' home is this node now: the deliverer */
	char pin[65];                 /* node relay: the node's certificate fingerprint */
	char node_user[128];          /* node relay: our node login (cluster_node_login) */
	char node_pass[80];
	size_t local_i;               /* local: the recipient being delivered */
	tbuf local_msg;               /* local: header prefix and body of the entry */
	size_t *idx;                  /* recipients (indexes into job->e->rcpts) */
	size_t n;
	q_host *hosts;
	size_t nhosts, host_i;
	struct sockaddr_storage *addrs;
	size_t naddrs, addr_i;
	int no_tls;                   /* retrying this address without STARTTLS */
	int code;                     /* the last failure: code and text */
	char error[QC_TEXT_MAX];
	int started;                  /* holds a connection slot */
	TAILQ_ENTRY(q_hop) wait;
} q_hop;

/* An entry being attempted (or removed). */
typedef struct q_job {
	struct queue_runner *r;
	Tern__QueueEntry *e;
	uint8_t id[16];
	char qid[18];
	qc_reply *res;                /* per recipient of e; code 0 = not tried */
	q_hop *hops;
	size_t nhops, hops_left;
	unsigned reports_left;        /* DSN submissions not yet durable */
	int remove_after;             /* queue_remove during the attempt */
	int removing;                 /* only a removal in progress (no attempt) */
	struct q_op *op;              /* the removal's operation */
	LIST_ENTRY(q_job) link;
} q_job;

struct queue_runner {
	store *st;
	const tern_conf *conf;
	char hostname[256];
	tern_io *io;
	tern_dns *dns;
	deliverer *dlv;
	char *relay_password;
	q_static_mx *smx;
	size_t nsmx;
	struct event *timer;
	struct event *scan_ev;
	LIST_HEAD(, q_job) jobs;
	TAILQ_HEAD(, q_hop) waiting;  /* hops waiting for a connection slot */
	unsigned active;              /* hops holding a slot */
	atomic_uint_fast64_t n_delivered, n_deferred, n_failed, n_bounced, n_delayed;
	atomic_uint n_in_flight, n_active;
};

/* Parse queue.static_mx ("dom=host[:port],..."); 0 ok, -1 with *error_r. */
int queue_route_parse_static(const char *text, unsigned default_port, q_static_mx **list_r,
			     size_t *n_r, char **error_r);
/* Start working on a hop that holds a slot; queue_hop_done() follows exactly once. */
void queue_route_start(q_hop *h);
/* The hop's only host is host:port (a literal address or a name to resolve): try it. */
void queue_route_to(q_hop *h, const char *host, unsigned port);
/* The hop failed before any session: its recipients get code and text. */
void queue_route_fail(q_hop *h, int code, const char *text);

/* ---- queue_node.c: recipients of the distributed domain ---- */

typedef enum {
	Q_ROUTE_DOMAIN,               /* not a local domain: relay host, static MX or MX */
	Q_ROUTE_NODE,                 /* a user homed on another node: relay to it */
	Q_ROUTE_LOCAL,                /* a user homed on this node: the deliverer */
	Q_ROUTE_ANSWERED,             /* decided now (unknown user, lookup failure): *res set */
} q_route_kind;

/* Where a queued recipient goes, its home looked up now (a user may have moved since it
 * was queued). node_r receives the home node for Q_ROUTE_NODE. */
q_route_kind queue_node_classify(queue_runner *r, const char *address, const char *domain,
				 char *node_r, size_t node_n, qc_reply *res);
/* Start a hop of node or local recipients (h->node / h->local); queue_hop_done() follows. */
void queue_node_start(q_hop *h);
/* queue_runner.c: the hop is finished; job->res has an answer for each of its recipients. */
void queue_hop_done(q_hop *h);

#endif
