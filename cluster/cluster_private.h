/* cluster_private.h - the cluster object shared by the files of cluster/. The cluster
 * thread (cluster_thread.c) owns every zmq socket; other threads reach it only through
 * requests (cl_request) queued under cl->mu and an eventfd wake-up. Everything another
 * thread may read (role, peer status, the slave's view of the domain) is kept under
 * cl->mu; everything else below "thread only" is touched by the cluster thread alone. */
#ifndef TERN_CLUSTER_PRIVATE_H
#define TERN_CLUSTER_PRIVATE_H
#include <pthread.h>
#include <stdatomic.h>
#include "cluster.h"
#include "cluster_wire.h"

#define CL_KEY_LEN 32
#define CL_RID_MAX 256
#define CL_WINDOW 4096                /* change records in flight to one slave */
#define CL_BATCH 256                  /* records read from the log at a time */
#define CL_TICK_MS 200
#define CL_ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef enum {
	CL_REQ_MASTER_START,          /* bind ZAP + ROUTER, role master */
	CL_REQ_SLAVE_START,           /* connect a DEALER to the master in "cluster/self" */
	CL_REQ_STOP,                  /* close the sockets, role standalone */
	CL_REQ_LEAVE,                 /* Leave to the master (request_timeout), then stop */
	CL_REQ_DROP_NODE,             /* master: forget a removed node, tell it */
	CL_REQ_MAILBOX_USAGE,         /* master: ask a slave whether a mailbox holds mail */
} cl_req_kind;

/* One request from another thread; it waits on cv until done. */
typedef struct cl_request {
	cl_req_kind kind;
	char node[64];
	uint8_t user_id[16];
	/* results */
	int rc;
	int has_data;
	char error[256];
	int done;
	/* thread only: a request waiting for a peer's reply */
	uint64_t wire_id;
	int64_t deadline_ms;
	struct cl_request *next;
} cl_request;

/* What the master knows of one slave (by its ZAP User-Id = node name). */
typedef struct cl_peer {
	char name[64];
	uint8_t rid[CL_RID_MAX];      /* routing id of its latest frame: where replies go */
	size_t rid_len;
	int hello;                    /* said Hello on its present connection */
	int available;                /* as last logged */
	int64_t last_seen;            /* unix seconds, 0 = never */
	int64_t last_seen_ms;         /* monotonic */
	uint64_t ack_epoch, ack_seq;  /* acknowledged */
	uint64_t sent_seq;            /* streamed up to, in the master's epoch */
	uint64_t base_seq;            /* the stream's acknowledged start (window base) */
	int64_t unacked_since_ms;     /* 0 = nothing unacknowledged */
	int need_snapshot;
} cl_peer;

struct cluster {
	store *st;
	const tern_conf *conf;
	char *data_dir;
	char name[64];
	char *fingerprint;
	uint8_t pub[CL_KEY_LEN], sec[CL_KEY_LEN];
	void *zctx;
	int efd;
	pthread_t thread;
	int thread_started;
	atomic_int quit;
	atomic_int repl_dirty;
	pthread_mutex_t admin_mu;     /* one admit/join/leave/remove/set-home at a time */

	pthread_mutex_t mu;           /* guards everything down to "thread only" */
	pthread_cond_t cv;            /* a request is done */
	cl_request *queue;            /* not yet taken by the thread */
	cluster_role role;
	cl_peer *peers;               /* master: the slaves that talked to it */
	size_t npeers, cappeers;
	cluster_node_status *view;    /* slave: the domain as the master's heartbeat said */
	size_t nview;
	char master_name[64];         /* slave */
	int64_t master_seen;          /* slave: unix seconds */
	int master_available;
	int removed;                  /* slave: the master said this node was removed */

	/* thread only */
	void *zap, *router, *dealer;
	cl_request *pending;          /* waiting for a peer's reply */
	uint64_t next_id;
	int64_t next_heartbeat_ms, next_compact_ms;
	/* slave */
	int synced;                   /* HelloOk received on this connection */
	uint64_t hello_id;
	int64_t hello_sent_ms;
	int64_t master_seen_ms;
	Tern__ConfigOp **snap_ops;    /* a snapshot being received */
	size_t nsnap, capsnap;
	uint64_t snap_epoch, snap_seq, snap_time;
	uint32_t snap_part;
	/* warning.log budget for bad frames and refused keys */
	int64_t warn_window_ms;
	int warn_count;
	tbuf wbuf;                    /* encoding buffer */
};

/* cluster_thread.c */
int cl_thread_start(cluster *cl, char **error_r);
void cl_thread_stop(cluster *cl);
/* Queue a request and wait until the thread has done it. */
int cl_request_run(cluster *cl, cl_request *r);
/* Complete a request (thread): wakes its waiter. */
void cl_request_done(cluster *cl, cl_request *r, int rc, const char *error);
int cl_send(cluster *cl, void *sock, const uint8_t *rid, size_t rid_len, const Tern__Cluster__Envelope *e);
int cl_warn_ok(cluster *cl);
uint64_t cl_new_id(cluster *cl);

/* cluster_master.c (thread) */
int cl_master_start(cluster *cl, char *err, size_t errn);
void cl_master_stop(cluster *cl);
void cl_master_recv(cluster *cl);
void cl_master_pump(cluster *cl);
void cl_master_tick(cluster *cl, int64_t now_ms);
void cl_master_drop(cluster *cl, const char *name, int notify);
int cl_master_usage(cluster *cl, cl_request *r);
cl_peer *cl_peer_find(cluster *cl, const char *name);

/* cluster_zap.c (thread) */
void cl_master_zap(cluster *cl);

/* cluster_slave.c (thread) */
int cl_slave_start(cluster *cl, char *err, size_t errn);
void cl_slave_stop(cluster *cl);
void cl_slave_recv(cluster *cl);
void cl_slave_tick(cluster *cl, int64_t now_ms);
int cl_slave_leave(cluster *cl, cl_request *r);

/* cluster_keys.c */
int cl_secret_load(const char *data_dir, uint8_t key[CL_KEY_LEN], tbuf *err);
int cl_secret_store(const char *data_dir, const uint8_t key[CL_KEY_LEN], tbuf *err);
int cl_curve_load(cluster *cl, char **error_r);
void cl_identity_fill(cluster *cl, Tern__Node *n);
int cl_refusal_text(cluster *cl, const Tern__ClusterSelf *self, char *out, size_t n);

/* cluster_status.c: every node as this node sees it (master: from its peers). */
int cl_status_build(cluster *cl, cluster_node_status **list_r, size_t *n_r);

#endif
