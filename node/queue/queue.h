/* queue.h - the outgoing queue (node/queue/): delivery of queued remote recipients over
 * SMTP, retries, delay warnings, bounces (DESIGN.md §3, guide ch. 12.1-12.2).
 *
 * The runner lives on one I/O thread. A timer every queue.check_interval seconds and the
 * store's queue watch (a new entry is durable) make it scan store_queue_due(now); each due
 * entry not already in flight is attempted: its pending recipients are grouped by next hop
 * (a recipient of a local domain: its home node in the distributed domain, looked up at
 * delivery time, over that node's submission port with TLS pinned to its fingerprint and
 * the node login - or the deliverer when the home is this node by now; else the relay
 * host, the entry's fixed route, or the recipient domain: static_mx, else MX by
 * preference with random ties, else the domain's A/AAAA), one SMTP connection per group,
 * at most queue.delivery_threads connections at once. After the attempt, per recipient:
 * 2xx delivered, 5xx failed (failure report to the sender), anything else stays pending
 * for queue.retry_interval (recipients routed inside the domain: [cluster] relay_retry,
 * the entry is tried again after the shorter of the two); a delay warning once after queue.warn_after, and after
 * queue.bounce_after the pending ones fail with "4.4.7". The entry is rewritten (or removed
 * when nothing is pending) durably, after the reports are durable, before it is tried again.
 * Reports go through deliver_dsn_submit; none is ever sent for a null-sender message.
 * mail.log: "Sent: Queue-ID: Q, Recipient: <r>, Result: delivered|deferred|failed, Status: S"
 * with ", Relayed-To: node NAME" for a recipient relayed to another node. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H
#include <stddef.h>
#include <stdint.h>
#include "store.h"
#include "deliver.h"

typedef struct queue_runner queue_runner;

typedef struct queue_env {
	store *st;
	const tern_conf *conf;        /* [queue] settings; must outlive the runner */
	const char *hostname;         /* EHLO name and Reporting-MTA (copied) */
	tern_io *io;                  /* the runner's I/O thread */
	tern_dns *dns;                /* resolver on io's event base */
	deliverer *dlv;               /* delivers the reports; NULL = no report is sent */
} queue_env;

typedef struct queue_stats {
	uint64_t delivered;           /* recipients accepted by a remote server */
	uint64_t deferred;            /* recipient attempts that failed temporarily */
	uint64_t failed;              /* recipients given up (5xx, or expired after bounce_after) */
	uint64_t bounced;             /* failure reports handed to the deliverer */
	uint64_t delayed;             /* delay warnings handed to the deliverer */
	unsigned in_flight;           /* queue entries being attempted now */
	unsigned connections;         /* next hops being worked on now (<= delivery_threads) */
} queue_stats;

/* Make the runner (nothing runs yet). Reads queue.relay_password_file when relay_user is
 * set. NULL with *error_r (malloc'd) on a bad setting (static_mx syntax, password file). */
queue_runner *queue_runner_new(const queue_env *env, char **error_r);
/* Arm the timer and the store watch and scan once; from any thread. */
void queue_runner_start(queue_runner *r);
/* Free the runner. Call once io's thread has stopped (after tern_server_run returned) or
 * before it ever ran; attempts still in flight are dropped (their entries stay queued). */
void queue_runner_free(queue_runner **r);

/* ---- operations (ternctl queue ..., admin API); every function is callable from any
 * thread. The work runs on the runner's io; done (may be NULL) then runs on done_io (or
 * on the runner's io when done_io is NULL) with rc 0 or STORE_ENOTFOUND (no such id) /
 * another store error, and n = the number of entries acted on. ---- */

/* Every queued entry, oldest first (store_queue_list); free with store_free_list. */
int queue_list(queue_runner *r, Tern__QueueEntry ***list_r, size_t *n_r);
/* Make one entry (id 16 bytes) or every entry (id NULL) due now, then scan. Entries in
 * flight are being tried already and count as done. */
void queue_retry(queue_runner *r, const uint8_t *id, tern_io *done_io,
		 void (*done)(int rc, unsigned n, void *arg), void *arg);
/* Make every entry with recipient `address` (any case) still pending due now, then scan:
 * a migration released the mailbox that held it (mail queued for a frozen mailbox goes
 * to its home now). */
void queue_retry_rcpt(queue_runner *r, const char *address);
/* Remove one entry or every entry (id NULL) without a report; an entry in flight is
 * removed as soon as its attempt ends (done does not wait for that). */
void queue_remove(queue_runner *r, const uint8_t *id, tern_io *done_io,
		  void (*done)(int rc, unsigned n, void *arg), void *arg);
/* Scan for due entries now. */
void queue_run(queue_runner *r);
/* Counters since start; lock-free. */
void queue_runner_stats(queue_runner *r, queue_stats *out);

/* The mail.log Queue-ID of an entry: hex of the first 8 bytes of its id,
 * "xxxxxxxx-xxxxxxxx". */
void queue_id_text(const uint8_t *id, size_t id_len, char out[18]);

#endif
