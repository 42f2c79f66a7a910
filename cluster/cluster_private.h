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
	CL_REQ_FB_QUERY,              /* slave: ask the master for a user's busy time */
	CL_REQ_BOOK,                  /* slave: forward a booking decision to the master */
	CL_REQ_HOME_MOVE,             /* slave: forward a home move to the master */
} cl_req_kind;

/* One request from another thread; it waits on cv until done. */
typedef struct cl_request {
	cl_req_kind kind;
	char node[64];
	uint8_t user_id[16];
	/* CL_REQ_FB_QUERY (address, from, to) and CL_REQ_BOOK (address = the resource) */
	const char *address;
	int64_t from, to;
	const char *organizer, *uid, *ical;
	size_t ical_len;
	int cancel;
	/* CL_REQ_HOME_MOVE (user_id, move_op, target) */
	int move_op;
	char target[64];
	/* results */
	cluster_busy *busy;           /* CL_REQ_FB_QUERY: malloc'd, the caller frees */
	size_t nbusy;
	int decision;                 /* CL_REQ_BOOK: 1 accepted, 0 declined, -1 failed */
	int rc;
	int has_data;
	char source[64];              /* CL_REQ_HOME_MOVE: the home before the move */
	char error[256];
	int done;
	/* thread only: a request waiting for a peer's reply */
	uint64_t wire_id;
	int64_t deadline_ms;
	struct cl_request *next;
} cl_request;

/* Slave: the latest busy time of one local user, waiting for the master's FreeBusyPushOk. */
typedef struct cl_fb_out {
	char *address;
	int64_t from, to, computed;
	cluster_busy *periods;
	size_t n;
	uint64_t wire_id;             /* 0 = not sent (since the last change) */
	int64_t sent_ms;
	struct cl_fb_out *next;
} cl_fb_out;

/* Master: the latest push for one user (hash chain). */
typedef struct cl_fb_entry {
	char *address;
	int64_t from, to, computed;
	cluster_busy *periods;
	size_t n;
	struct cl_fb_entry *next;
} cl_fb_entry;
#define CL_FB_BUCKETS 1024
#define CL_FB_OUT_MAX 100000          /* users waiting for a push on a slave */

/* A home move asked on the master itself: its caller waits for the service thread. */
typedef struct cl_move_wait {
	int done;                     /* under svc_mu; svc_done_cv signalled */
	int rc;                       /* 0, -1 refused, -2 not decided */
	char source[64];
	char error[CLUSTER_TEXT_MAX + 1];
} cl_move_wait;

/* Master: a request for the service thread (a booking, the busy time of a user homed on
 * the master, or a home move - of a slave, or of the master itself when local is set). */
typedef enum { CL_JOB_FREEBUSY, CL_JOB_BOOK, CL_JOB_MOVE } cl_job_kind;
typedef struct cl_job {
	char node[64];                /* the asking slave ("" for a local move) */
	uint64_t id;                  /* its request id */
	cl_job_kind kind;
	char *address, *organizer, *uid;
	tbuf ical;
	int64_t from, to;
	int cancel;
	uint8_t user_id[16];          /* CL_JOB_MOVE */
	int move_op;
	char target[64];
	cl_move_wait *local;          /* CL_JOB_MOVE on the master: its waiter */
	struct cl_job *next;
} cl_job;

/* An encoded reply of the service thread, sent by the cluster thread. */
typedef struct cl_out {
	char node[64];
	tbuf frame;
	struct cl_out *next;
} cl_out;

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
	cl_fb_out *fb_out;            /* slave: pushes not yet acknowledged */
	size_t nfb_out;
	cl_out *outbox;               /* replies of the service thread */

	/* free/busy pushes kept by the master (cluster_fb.c) */
	pthread_mutex_t fb_mu;
	cl_fb_entry *fb[CL_FB_BUCKETS];

	/* the service thread (cluster_svc.c) */
	pthread_mutex_t svc_mu;       /* guards jobs and svc_quit */
	pthread_cond_t svc_cv;
	pthread_cond_t svc_done_cv;   /* a local move was decided */
	cl_job *jobs;
	size_t njobs;
	int svc_quit;
	pthread_t svc_thread;
	int svc_started;
	int svc_inited;
	pthread_mutex_t handler_mu;   /* held while a handler runs */
	cluster_handlers handlers;
	int has_handlers;

	/* the bulk channel (cluster_bulk.c) */
	pthread_mutex_t bulk_mu;      /* guards the bulk thread's start and stop */
	pthread_mutex_t bulk_call_mu; /* guards bulk_fn/bulk_arg; held while the handler runs */
	cluster_bulk_fn bulk_fn;
	void *bulk_arg;
	void *bulk_ctx, *bulk_zap, *bulk_router;  /* owned by the bulk thread while it runs */
	pthread_t bulk_thread;
	int bulk_running;
	atomic_int bulk_quit;
	int64_t bulk_warn_window_ms;  /* bulk thread: warning.log budget */
	int bulk_warn_count;

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
/* A warning.log budget: 1 when a line may be written (at most 30 a minute). */
int cl_budget_ok(int64_t *window_ms, int *count);
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

/* cluster_zap.c */
/* The cluster thread's ZAP socket has a request: answer it. */
void cl_master_zap(cluster *cl);
/* Answer one ZAP request on sock (the control port's or the bulk port's): 200 with
 * User-Id = the node name for a registered node's key (not this node's), else 400 and a
 * warning.log line naming the key, within the budget (window, count). what: "" or
 * "bulk " for the log line. */
void cl_zap_serve(cluster *cl, void *sock, const char *what, int64_t *window_ms, int *count);

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

/* cluster_fb.c */
void cl_fb_init(cluster *cl);
void cl_fb_free(cluster *cl);
/* Master (cluster thread): a push from node `from_node`; 0 stored, -1 refused (why). */
int cl_fb_store(cluster *cl, const char *from_node, const Tern__Cluster__FreeBusyPush *p, char *why,
		size_t whyn);
/* Master (cluster thread): a slave's FreeBusyPush, FreeBusyQuery or BookRequest. */
void cl_master_fb(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e);
/* Master: the pushed busy time of address clipped to [from, to): 1 known, 0 never pushed
 * (*list_r NULL), -1 out of memory. */
int cl_fb_lookup(cluster *cl, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
		 size_t *n_r, int64_t *cov_from, int64_t *cov_to);
/* Slave (cluster thread): send what the master has not acknowledged; all: resend now. */
void cl_fb_send_pending(cluster *cl, int64_t now_ms, int all);
/* Slave: FreeBusyPushOk (or an Error) for wire id. 1 when it was a push. */
int cl_fb_acked(cluster *cl, uint64_t id, const char *error);
/* Periods of a frame as cluster_busy (malloc'd, NULL when none). */
cluster_busy *cl_busy_from_wire(Tern__BusyPeriod *const *p, size_t n);
/* Wire periods pointing into list (free the two arrays with free()). */
Tern__BusyPeriod **cl_busy_to_wire(const cluster_busy *list, size_t n, Tern__BusyPeriod **store_r);

/* cluster_svc.c */
int cl_svc_start(cluster *cl, char **error_r);
/* Stop the thread (before the cluster thread: no job runs afterwards). */
void cl_svc_stop(cluster *cl);
/* After both threads stopped: the unsent replies, the locks. */
void cl_svc_free(cluster *cl);
/* Master (cluster thread): a slave's BookRequest or FreeBusyQuery for the service thread;
 * -1 when it cannot take more (the caller answers with an Error). */
int cl_svc_submit(cluster *cl, const char *node, const Tern__Cluster__Envelope *e);
/* Cluster thread: send the replies the service thread left in the outbox. */
void cl_svc_flush(cluster *cl);
/* Slave (cluster thread): send a FreeBusyQuery or BookRequest for r; 0 when sent (the
 * reply or the deadline completes r), -1 when r was completed at once. */
int cl_slave_ask(cluster *cl, cl_request *r);
/* Slave (cluster thread): complete the pending request answered by e. 1 when one was. */
int cl_slave_answer(cluster *cl, const Tern__Cluster__Envelope *e);
/* Send raw encoded frame bytes (ROUTER: after a routing id). */
int cl_send_raw(cluster *cl, void *sock, const uint8_t *rid, size_t rid_len, const void *data, size_t len);
/* Wake the cluster thread. */
void cl_wake(cluster *cl);

/* cluster_move.c */
/* Service thread (master): decide job j (CL_JOB_MOVE): its waiter is completed, or its
 * slave answered through the outbox. */
void cl_move_run(cluster *cl, cl_job *j);
/* Master (cluster thread): a slave's HomeMove, for the service thread. */
void cl_master_move(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e);
/* Slave (cluster thread): the HomeMove frame for r. */
void cl_move_frame(const cl_request *r, Tern__Cluster__Envelope *e, Tern__Cluster__HomeMove *m);
/* 1 when the comma-separated [migrate] fault setting holds item. */
int cl_fault_has(const tern_conf *conf, const char *item);

/* cluster_svc.c: queue the encoded reply e for node (service thread). */
void cl_svc_reply(cluster *cl, const char *node, const Tern__Cluster__Envelope *e);
/* Queue job j for the service thread; -1 when it takes no more (j is not taken). */
int cl_svc_queue(cluster *cl, cl_job *j);

/* cluster_bulk.c */
void cl_bulk_init(cluster *cl);
/* Start the bulk thread (bind the bulk port) unless it runs; 0 or -1 with err. */
int cl_bulk_start(cluster *cl, tbuf *err);
/* Stop it (after a running handler call) and close its sockets. */
void cl_bulk_stop(cluster *cl);
void cl_bulk_free(cluster *cl);

/* cluster_status.c: every node as this node sees it (master: from its peers). */
int cl_status_build(cluster *cl, cluster_node_status **list_r, size_t *n_r);

/* 1 when name is a registered node of the domain (its "node/<name>" row exists). */
int cl_node_registered(cluster *cl, const char *name);

#endif
