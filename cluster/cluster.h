/* cluster.h - the distributed domain's control plane (DESIGN.md §5). The one public
 * header of cluster/; the only module that includes zmq.h.
 *
 * One cluster thread owns every ZeroMQ socket and polls them with zmq_poll plus an
 * eventfd for requests from other threads. A master binds a ROUTER socket on the cluster
 * port ([cluster] port + port base) with CURVE; its ZAP handler admits the CURVE public
 * keys of registered nodes only (config "node/<name>" rows), and a peer is known by its
 * key (ZAP User-Id = the node name), never by the routing id it picks. A slave connects a
 * DEALER to the master's endpoint with its own key pair and the master's public key.
 *
 * Wire: proto/cluster.proto, one Envelope per frame with a oneof body; every frame fully
 * decoded and validated before it is acted on; every request carries an id and gets one
 * reply or an error.
 *
 * Replication: the master's store writes a ChangeRecord with every change of a shared row
 * (store.h, STORE_REPL_MASTER). The cluster thread streams records to every connected
 * slave from the slave's acknowledged (epoch, seq); a slave applies them in order with
 * store_repl_apply, acknowledges, and asks for a snapshot when the master says the log was
 * compacted past it or the epoch changed. Heartbeats every [cluster] heartbeat_interval;
 * a node silent for unavailable_after seconds is shown unavailable.
 *
 * Roles live in the node-local "cluster/self" record: a node is standalone until it
 * admits its first slave (it becomes master, with a new epoch) or joins a master (it
 * becomes a slave). Leave (on the slave) and remove (on the master) return a slave to
 * standalone. */
#ifndef TERN_CLUSTER_H
#define TERN_CLUSTER_H
#include <stddef.h>
#include <stdint.h>
#include "store.h"
#include "tern.h"

typedef struct cluster cluster;

typedef struct cluster_options {
	store *st;
	const tern_conf *conf;          /* [cluster] settings, port_base, service ports */
	const char *data_dir;           /* DATA: the shared secret DATA/ssl/secret.key */
	const char *node_name;
	const char *fingerprint;        /* SHA-256 hex of this node's TLS certificate */
} cluster_options;

/* Load (or make, at first start) the CURVE key pair and "cluster/self", set the store's
 * node name and replication mode from the role, and start the cluster thread: a master
 * binds its port, a slave connects to its master. -1 with *error_r (malloc'd), e.g. the
 * port cannot be bound. */
int cluster_open(const cluster_options *o, cluster **cl_r, char **error_r);
/* Stop the thread, close the sockets. */
void cluster_close(cluster **cl);

typedef enum { CLUSTER_STANDALONE = 0, CLUSTER_MASTER = 1, CLUSTER_SLAVE = 2 } cluster_role;
cluster_role cluster_get_role(cluster *cl);
const char *cluster_role_name(cluster_role r);   /* "standalone", "master", "slave" */

/* ---- join, leave, remove ---- */

/* What a node tells the master when it joins: its identity, as the Node record that will
 * describe it (name, curve_public, address, fingerprint, ports). */
int cluster_identity(cluster *cl, Tern__Node **n_r);

/* The master's answer to an admitted node. */
typedef struct cluster_admission {
	Tern__Node *master;             /* the master's Node record */
	char *endpoint;                 /* "tcp://HOST:PORT" */
	uint8_t credential[32];         /* the new node's node credential */
	uint8_t secret[32];             /* the domain's shared secret (DATA/ssl/secret.key):
					 * directory bind passwords are encrypted with it */
} cluster_admission;
void cluster_admission_free(cluster_admission **a);

/* Master side of a join (blocking; call on a worker thread), after the admin API has
 * checked the administrator's credentials and right: validate the candidate (name not
 * this node's, not taken by a node with another key unless `replace`, key 32 bytes,
 * fingerprint 64 hex), make a node credential, write the Node record (replicated; a
 * standalone node becomes master first, with a new epoch), and fill *a. 0, or -1 with a
 * message in err (e.g. "node name 'b' is taken by another node"). */
int cluster_admit(cluster *cl, const Tern__Node *candidate, cluster_admission **a_r, tbuf *err);

/* Slave side of a join (blocking; worker thread), once the master admitted this node:
 * refused unless standalone and no mailbox here holds messages; stores the secret and
 * "cluster/self" (role slave), switches the store to STORE_REPL_SLAVE and connects; the
 * first contact brings a snapshot (the slave inherits the domain settings). 0 or -1. */
int cluster_join(cluster *cl, const cluster_admission *a, tbuf *err);

/* On a slave: tell the master (best effort, request_timeout), then return to standalone
 * (store mode OFF, "cluster/self" removed). The replicated rows stay as they are. */
int cluster_leave(cluster *cl, tbuf *err);

/* On the master: revoke a node (refused while users are homed there): its Node record is
 * deleted (replicated), its key no longer passes ZAP, its connection is dropped. */
int cluster_remove(cluster *cl, const char *node_name, tbuf *err);

/* ---- status ---- */

typedef struct cluster_node_status {
	char name[64];
	char role[16];                  /* "master", "slave" */
	char status[16];                /* "available", "unavailable", "this server" */
	char address[256];
	int64_t last_seen;              /* unix seconds, 0 = never */
	uint64_t seq;                   /* last applied (slave) / head (master) seq */
	uint64_t lag;                   /* master head seq - seq */
} cluster_node_status;

/* Every node of the domain, this one included (standalone: this node only, role
 * "standalone"). *list_r malloc'd (free()). */
int cluster_status(cluster *cl, cluster_node_status **list_r, size_t *n_r);

/* ---- node-to-node logins (routing and proxying) ----
 * A node logs in to another with SASL PLAIN, authcid "node/<its name>" and its node
 * credential as password (hex); the peer checks it against the Node record's
 * credential_hash. */
#define CLUSTER_NODE_AUTHCID_PREFIX "node/"

/* This node's authcid and password (hex of the credential) for node-to-node logins.
 * -1 when not in a distributed domain. */
int cluster_node_login(store *st, const char *node_name, char *authcid, size_t an,
		       char *password, size_t pn);
/* 1 when authcid/password are a registered node's valid credentials (never this node's
 * own name misused by another: the credential decides), 0 otherwise. Constant time
 * comparison. Safe from any thread. */
int cluster_check_node_login(store *st, const char *authcid, const char *password);
/* Where to reach node `name`: its Node record (free with store_free_record).
 * STORE_ENOTFOUND when unknown. */
int cluster_node_find(store *st, const char *name, Tern__Node **n_r);

/* ---- home nodes ---- */

/* Where the user (an address) lives: 1 with home_r = the node's name when the home is
 * ANOTHER node, 0 when it is this node (or the user is unknown / not homed), <0 on error. */
int cluster_user_home(store *st, const char *address, char *home_r, size_t n);

/* `ternctl user set USER --home NODE` (blocking; worker thread). On the master: NODE
 * must be a registered node (or this one); the user's mailbox must be empty where it is
 * now - checked here when the home is this node, else by asking the current home node
 * over the control plane (request_timeout; no answer = refused) - then the user record
 * is written with home = NODE, HOME_ACTIVE (replicated; the new home makes the mailbox,
 * the old one drops its empty one). On a slave: refused with where to do it; standalone:
 * only this node's name (or "") is accepted. 0 or -1 with a message in err. */
int cluster_user_set_home(cluster *cl, const char *address, const char *node, tbuf *err);

/* ---- free/busy and resource bookings (DESIGN.md §5) ----
 * Each slave pushes the busy time of its users to the master when it changes; the master
 * keeps the latest push per user (in memory, and in the node-local config row
 * "setting/fb/<address>" so that it survives a restart) and answers free/busy for a
 * user of any node, even when that user's home node is down. Resources are homed on the
 * master: a slave forwards each booking decision there; the master decides them one at a
 * time on its service thread. */

typedef struct cluster_busy {
	int64_t start, end;             /* unix seconds, start < end */
	Tern__BusyPeriod__Type type;
} cluster_busy;

/* What the master's node module (node/dav) does for the control plane. Called on the
 * cluster's service thread, one call at a time (never on the cluster thread). */
typedef struct cluster_handlers {
	/* Busy time of a user or resource homed on THIS node over [from, to): 0 with *list_r
	 * (malloc'd, may be NULL when n is 0), or -1 with a reason in why (e.g. no such
	 * user). */
	int (*freebusy)(void *arg, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
			size_t *n_r, tbuf *why);
	/* Decide a booking of resource `resource` by `organizer` for the iTIP REQUEST ical
	 * (or remove booking uid when cancel): 1 accepted (cancel: done), 0 declined, -1
	 * failed; reason in why. */
	int (*book)(void *arg, const char *resource, const char *organizer, const char *uid, const char *ical,
		    size_t len, int cancel, tbuf *why);
	void *arg;
} cluster_handlers;

/* Install the handlers (copied), or remove them (h NULL): waits until a running handler
 * returned, so that arg may be freed afterwards. Without handlers the master refuses
 * those requests. */
void cluster_set_handlers(cluster *cl, const cluster_handlers *h);

/* The busy time of `address` (a user homed on this node) over [from, to) changed: on a
 * slave, queue it for the master (the latest push per user wins; sent when the master is
 * reachable, again until it acknowledges); on the master, store it; standalone: nothing.
 * Never blocks on the network. 0, or -1 for invalid arguments. */
int cluster_freebusy_push(cluster *cl, const char *address, const cluster_busy *periods, size_t n, int64_t from,
			  int64_t to);

/* Busy time of a user or resource homed on ANOTHER node (blocking; worker thread): on
 * the master from the pushes (a user with none has no busy time), on a slave by asking
 * the master ([cluster] request_timeout). Periods clipped to [from, to). 0 with *list_r
 * (malloc'd or NULL), or -1 with a reason in err (no master, no answer, refused). */
int cluster_freebusy_get(cluster *cl, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
			 size_t *n_r, tbuf *err);

/* A booking decision for a resource (homed on the master), blocking (worker thread;
 * request_timeout): on a slave forwarded to the master, on the master given to its book
 * handler. 1 accepted (cancel: done), 0 declined, -1 failed (master unreachable ...),
 * reason in why. */
int cluster_book(cluster *cl, const char *resource, const char *organizer, const char *uid, const char *ical,
		 size_t len, int cancel, tbuf *why);

/* ---- migration: home moves and the bulk channel (DESIGN.md §6) ---- */

/* A migration's change of the home-node map, asked by the target (on a slave: over the
 * control plane to the master, [cluster] request_timeout; on the master: done here on
 * the service thread's turn, one at a time with every other decision):
 *   BEGIN   ACTIVE(source) -> MOVING(source -> target), source = the current home. A user
 *           MOVING to the same target: ok (a resume). Refused: unknown user, home already
 *           target, MOVING to another node ("a migration of USER to X is running"), target
 *           or source not a registered node, a standalone node.
 *   COMMIT  MOVING(source -> target) -> ACTIVE(target): the commit point. ACTIVE(target)
 *           already: ok (a replay). Refused otherwise.
 *   ABORT   MOVING(source -> target) -> ACTIVE(source). ACTIVE(not target): ok.
 * The source (the current home) may also ask ABORT: for a move its target gave up.
 * Written with store_user_set_home_state (replicated). source_r (may be NULL) receives the
 * home before the request. Blocking (worker thread). 0 done; -1 refused (err says why);
 * -2 no answer from the master (try again later; nothing is known to have changed). */
typedef enum { CLUSTER_MOVE_BEGIN = 1, CLUSTER_MOVE_COMMIT = 2, CLUSTER_MOVE_ABORT = 3 } cluster_move_op;
int cluster_home_move(cluster *cl, const uint8_t user[16], cluster_move_op op, const char *target,
		      char *source_r, size_t sn, tbuf *err);

/* The bulk channel: every node of a distributed domain (master and slaves) binds a ROUTER
 * on its bulk port ([cluster] bulk_port + port base, published as Node.bulk_port) with
 * CURVE; its own ZAP check admits registered node keys only, as on the control port.
 * It has its own thread and ZeroMQ context, so bulk data never delays control traffic.
 * Frames are opaque to cluster/ (migrate/ puts proto/migrate.proto in them) and at most
 * [cluster] max_frame bytes. */

/* Serve other nodes' bulk requests: fn runs on the bulk thread, one request at a time,
 * with the requesting node's name (from its CURVE key, never from the frame) and fills
 * reply (empty = an empty reply). NULL removes it (waits for a running call). Without a
 * handler requests get an empty reply. */
typedef void (*cluster_bulk_fn)(void *arg, const char *peer, const void *req, size_t n, tbuf *reply);
void cluster_bulk_set_handler(cluster *cl, cluster_bulk_fn fn, void *arg);

/* A client connection to node `node`'s bulk port (CURVE, that node's public key from its
 * Node record). Used by one thread at a time. Requests may be pipelined: each is sent with
 * a tag and its reply comes back with the same tag, in order. 0 or -1 with err. */
typedef struct cluster_bulk cluster_bulk;
int cluster_bulk_open(cluster *cl, const char *node, cluster_bulk **b_r, tbuf *err);
/* 0 queued, -1 failed (err). */
int cluster_bulk_send(cluster_bulk *b, uint64_t tag, const void *req, size_t n, tbuf *err);
/* Wait up to timeout_ms for the next reply: 1 with *tag_r and reply, 0 timeout, -1 error. */
int cluster_bulk_recv(cluster_bulk *b, uint64_t *tag_r, tbuf *reply, int timeout_ms, tbuf *err);
void cluster_bulk_close(cluster_bulk **b);

#endif
