/* deliver_int.h - private to node/deliver/: the alias walk with a trace (deliver_alias.c,
 * deliver_expand.c) and the pieces of local delivery (deliver_local.c and its helpers:
 * recipient plan, header lines, footer, size limits and quota warnings; the follow-ups
 * of a submission in deliver_followup.c). */
#ifndef TERN_DELIVER_INT_H
#define TERN_DELIVER_INT_H
#include "deliver.h"

/* Longest chain followed (aliases, groups, forwards) and most final recipients. */
#define DELIVER_DEPTH_MAX 16
#define DELIVER_FANOUT_MAX 1000

/* deliver_alias_resolve(), also writing one line per alias step to trace (when not
 * NULL), names shown as name@domain. *truncated_r (when not NULL) is set to 1 when
 * results were dropped because out was full or a bound was reached. */
size_t deliver_alias_resolve_traced(const deliver_alias_entry *aliases, size_t naliases,
				    const char *local, int (*is_name)(const char *local, void *ctx),
				    void *ctx, char **out, size_t max, const char *domain,
				    tbuf *trace, int *truncated_r);

/* ---- local delivery ---- */
#include <pthread.h>
#include <stdatomic.h>

#define DELIVER_ADDR_MAX 320
#define DELIVER_WARN_INFLIGHT_MAX 64

struct deliverer {
	store *st;
	const tern_conf *conf;
	char hostname[256];
	tern_pool *cpu_pool;
	atomic_ullong received, delivered_local, queued_remote, queued_node, over_quota, failed_local,
		dsn_sent, warnings_sent, refused;
	/* Users whose quota warning is being written: two deliveries finishing together
	 * must not both warn before quota_warned_at is durable. */
	pthread_mutex_t warn_mu;
	uint8_t warn_inflight[DELIVER_WARN_INFLIGHT_MAX][16];
	size_t nwarn_inflight;
};

/* One final local mailbox of a message: the first RCPT that reached it gives the
 * RFC 3461 parameters. */
typedef struct dlv_local {
	uint8_t id[16];
	char address[DELIVER_ADDR_MAX];   /* name@domain, lower case */
	size_t rcpt;                       /* index of the RCPT in the message */
} dlv_local;

/* A recipient for the queue: a remote address (node "") or a user of a local domain
 * homed on another node of the distributed domain (node = its home when planned; the
 * queue looks the home up again when it delivers). */
#define DELIVER_NODE_MAX 64
typedef struct dlv_remote {
	char address[DELIVER_ADDR_MAX];
	size_t rcpt;
	char node[DELIVER_NODE_MAX];
} dlv_remote;

/* A final recipient that cannot be delivered locally (unknown since RCPT time, disabled
 * account, public folder). Quota refusals are added after the store has answered. */
typedef struct dlv_failed {
	char address[DELIVER_ADDR_MAX];
	size_t rcpt;
	char status[8];
	char diagnostic[200];
} dlv_failed;

typedef struct dlv_plan {
	dlv_local *local;
	size_t nlocal;
	dlv_remote *remote;           /* remote and node-routed recipients, for the queue */
	size_t nremote;
	size_t nnode;                 /* how many of them are node-routed */
	dlv_remote *resource;         /* resources (node unused): their iTIP mail is a booking */
	size_t nresource;
	dlv_failed *failed;
	size_t nfailed, failed_cap;
	int held;                     /* refused (STORE_EREFUSED): a mailbox held by a migration */
	char held_address[DELIVER_ADDR_MAX];
	/* Mail relayed by node from_node for users this node sees homed on from_node: the two
	 * nodes' views of a home differ until replication settles (a migration's commit, a
	 * home set), so sending it straight back would ping-pong it between them. bounced:
	 * such a recipient is queued; its entry waits [cluster] relay_retry first. */
	char from_node[DELIVER_NODE_MAX];
	int bounced;
} dlv_plan;

/* dlv_plan_build flags. FINAL: mail relayed by a cluster peer or handed back by the
 * queue - the RCPTs are final addresses, not expanded again. HANDBACK: the queue of this
 * node hands back mail for users homed here; a mailbox held by a migration then fails
 * the plan with STORE_EREFUSED (p->held) instead of being queued again. */
#define DLV_PLAN_FINAL 1u
#define DLV_PLAN_HANDBACK 2u

/* Expand every RCPT into distinct final recipients (deliver_plan.c): a user homed here
 * is a local mailbox, one homed on another node goes to the queue for that node, and so
 * does one homed here whose mailbox a migration holds (queued for this node). flags:
 * DLV_PLAN_*; from_node: the peer that relayed the mail (NULL: none; sets p->bounced).
 * 0 ok; negative store error (the message must then be refused with a
 * temporary error; STORE_EREFUSED with p->held: a held mailbox, see DLV_PLAN_HANDBACK). */
int dlv_plan_build(store *st, const deliver_rcpt_req *rcpts, size_t n, unsigned flags, const char *from_node,
		   dlv_plan *p);
void dlv_plan_free(dlv_plan *p);
/* Record one failed recipient (bounded; the first ones are kept). */
void dlv_plan_fail(dlv_plan *p, const char *address, size_t rcpt, const char *status,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* RFC 5322 date-time of t in local time ("Tue, 01 Jul 2025 14:03:07 +0200"). */
void dlv_date(int64_t t, char out[40]);
/* The Received line of RFC 5321 4.4 (folded, CRLF-terminated) for m, "for <rcpt>" when
 * rcpt is not NULL; hide_client drops the client's address and host name. */
void dlv_received(tbuf *out, const deliver_message *m, const char *hostname, const char *queue_id,
		  const char *rcpt, int hide_client, int64_t now);
/* Return-Path, Received and (x_envelope_to) X-Envelope-To of one local recipient. */
void dlv_local_prefix(tbuf *out, const deliver_message *m, const char *hostname,
		      const char *queue_id, const char *rcpt, int hide_client, int x_envelope_to,
		      int64_t now);

/* Hand a delivered message to scheduling (deliver_imip.c): when it has a text/calendar
 * part, dav_sched_imip_in runs for each recipient address (local users that got the
 * message, resources) on the cpu pool (or a thread of its own), never on the caller. */
void dlv_imip_dispatch(deliverer *d, const void *msg, size_t len, const char *sender,
		       const char *const *rcpts, size_t n);

/* Append `footer` to message msg into out (deliver_footer.c), which must be empty. 1 when
 * out holds the message with the footer; 0 when the structure is not one we change
 * safely (out is then untouched). */
int dlv_footer_apply(const void *msg, size_t len, const char *footer, tbuf *out);

/* The outgoing size limit of an authenticated sender (deliver_quota.c): 0 = none. */
uint64_t dlv_size_limit(store *st, const char *auth_user, const char *sender);
/* Whether user `id` should get a quota warning now; on 1 the user is marked in flight
 * and *domain_r/usage figures are filled; dlv_quota_warn_done() clears the mark. */
typedef struct dlv_quota_view {
	uint64_t bytes, items, quota_bytes, quota_items;
	char address[DELIVER_ADDR_MAX];
	char domain[256];
} dlv_quota_view;
int dlv_quota_warn_needed(deliverer *d, const uint8_t id[16], int64_t now, dlv_quota_view *v);
void dlv_quota_warn_done(deliverer *d, const uint8_t id[16]);
/* The warning message (complete, CRLF lines) from postmaster@<domain> to the user. */
void dlv_quota_warn_message(tbuf *out, const deliverer *d, const dlv_quota_view *v, int64_t now);

/* ---- one submission (deliver_local.c; its follow-ups in deliver_followup.c) ---- */

typedef struct dlv_job {
	deliverer *d;
	tern_io *io;
	void (*cb)(const deliver_result *r, void *arg);
	void *arg;
	deliver_message m;              /* deep copy: every pointer below is owned */
	deliver_rcpt_req *rcpts;
	uint8_t uuid[16];
	char queue_id[40];
	int64_t now;
	int prepared;                   /* 0: refused before the store was asked */
	dlv_plan plan;
	tbuf footed;                    /* the message with the domain footer */
	Tern__MimeInfo *mime;           /* IMAP structure of the local body, shared by every
					 * local recipient (node/mime) */
	tbuf *prefixes;                 /* per local recipient */
	store_append *apps;
	tbuf qprefix;                   /* Received without "for": queue entry, reports */
	Tern__QueueEntry qe;
	Tern__QueueRcpt *qrcpts;
	Tern__QueueRcpt **qrcpt_ptrs;
	const void *qbody;
	size_t qlen;
	int *delivered;                 /* per local recipient: its store code */
	atomic_int pending;             /* follow-ups not yet durable, plus one for the job */
	deliver_result res;
} dlv_job;

/* The mail.log Queue-ID of a 16-byte id (its first 8 bytes in hex, as the queue prints it). */
void dlv_queue_id(const uint8_t id[16], char *out, size_t n);
/* A queue entry of the job's message (header prefix, sender, envelope) with id and the
 * recipients rcpts[0..n); it points into the job, which must outlive it. */
void dlv_job_entry(const dlv_job *j, const uint8_t id[16], Tern__QueueEntry *qe, Tern__QueueRcpt **rcpts,
		   size_t n);
/* One pending queue recipient with the RFC 3461 parameters of RCPT number rcpt. */
void dlv_job_entry_rcpt(const dlv_job *j, Tern__QueueRcpt *r, const char *address, size_t rcpt);
/* Drop one pending reference (the job's own or a follow-up's); the last one finishes. */
void dlv_job_release(dlv_job *j);

/* The follow-ups once the batch is durable (deliver_followup.c); each takes a pending
 * reference for its own write. */
/* The failure/success report to the sender, for the recipients whose NOTIFY asks. */
void dlv_job_report(dlv_job *j);
/* A warning for each delivered recipient that reached the warning level. */
void dlv_job_quota_warnings(dlv_job *j);
/* Resources take the message as a booking request, local users that got it their iTIP. */
void dlv_job_imip(dlv_job *j);
/* The nheld local recipients whose mailbox froze for a migration between the plan and
 * the commit (j->delivered[i] == STORE_EREFUSED): queued for this node. */
void dlv_job_requeue(dlv_job *j, size_t nheld);

#endif
