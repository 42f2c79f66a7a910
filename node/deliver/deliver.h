/* deliver.h - recipient resolution (node/deliver/): aliases, groups, forwarding.
 * Alias rules of the guide (ch. 12.3): patterns with '*' (any run) and '?' (one
 * character); one alias name with several targets delivers to every target; chains are
 * followed, each visited name is flagged, and on reaching a flagged name the chain
 * delivers to the last unflagged one (jwayne -> wayne -> john.wayne -> wayne delivers to
 * john.wayne). Groups expand to their members.
 * Which aliases apply to a name: the first of these classes that matches, all of its
 * matching aliases: (1) aliases whose pattern is exactly the name (even for a user or
 * group: "jwayne -> info" takes jwayne's mail unless "jwayne -> jwayne" is added);
 * (2) else an existing user or group (by any of its addresses) is final - wildcards
 * never capture a mailbox; (3) else wildcard patterns with a literal character
 * ("*sms*", "a*00*", "?ime"); (4) else catch-alls made of '*'/'?' only ("* -> Admin"):
 * the guide's "invalid addresses". A local name that nothing applies to is unknown. */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H
#include <stddef.h>
#include "store.h"

/* 1 when alias pattern (local part, '*' and '?') matches local part `local`. */
int deliver_alias_match(const char *pattern, const char *local);

typedef enum {
	DELIVER_LOCAL_USER,   /* a mailbox of this server: address = user@domain */
	DELIVER_REMOTE,       /* an address outside the local domains */
	DELIVER_PUBLIC,       /* "#public/Folder" */
	DELIVER_UNKNOWN,      /* local domain, no such user, group or alias */
	DELIVER_RESOURCE,     /* a room or equipment (guide ch. 22): no mailbox, its iTIP
	                       * mail is a booking request (node/dav dav_sched_imip_in) */
} deliver_kind;

typedef struct deliver_rcpt {
	deliver_kind kind;
	char address[320];    /* final address, lower case (or #public/...) */
} deliver_rcpt;

typedef struct deliver_expansion {
	deliver_rcpt *rcpts;  /* distinct final recipients, in order of discovery */
	size_t n;
	tbuf trace;           /* human-readable steps, one per line ("team -> bob@x (alias)") */
} deliver_expansion;

/* Expand an address through aliases, groups and user forwarding (a forward with
 * keep-copy yields the user and the targets; without, the targets only) to its final
 * recipients. Depth and fan-out are bounded. 0 ok; negative store error. */
int deliver_expand(store *st, const char *address, deliver_expansion *out);
void deliver_expansion_free(deliver_expansion *e);

/* The guide's alias resolution for one local part in a domain, on a list of aliases
 * (store records), for tests and for deliver_expand: fills targets (malloc'd strings) of
 * the aliases that match `local`, following chains within the domain. Exposed so that
 * the unit tests run the guide's examples as a table without a store. */
typedef struct deliver_alias_entry {
	const char *pattern;
	const char *target;
} deliver_alias_entry;
/* is_name(local, ctx) says whether local is a user or group of the domain (chains stop
 * there). Returns the number of results written to out (at most max); each result is a
 * local part or full address, malloc'd. */
size_t deliver_alias_resolve(const deliver_alias_entry *aliases, size_t naliases, const char *local,
			     int (*is_name)(const char *local, void *ctx), void *ctx,
			     char **out, size_t max);


/* ---- local delivery and hand-off to the queue (SMTP, DSNs, server messages) ----
 *
 * A deliverer takes one accepted message and, in ONE durable store batch (store_submit),
 * delivers it to the local mailboxes of its final recipients - each with its own header
 * prefix (Return-Path, Received "for <rcpt>", optional X-Envelope-To) - and queues it for
 * the remote ones and for users of a local domain homed on another node of the
 * distributed domain (cluster_user_home; the queue relays them to their home node). The domain footer is appended for senders in a local domain (not for
 * internal recipients when the domain says so). Per-user and per-domain outgoing size
 * limits apply to authenticated senders. A local recipient over quota does not stop the
 * others: it gets a DSN (failure) to the sender. A recipient reaching the warning
 * threshold gets a quota warning message, at most once per interval. The callback runs
 * on the caller's I/O thread once everything is durable. */
typedef struct deliverer deliverer;

typedef struct deliver_env {
	store *st;
	const tern_conf *conf;
	const char *hostname;          /* Internet hostname, for Received and DSNs */
	tern_pool *cpu_pool;           /* MIME/footer work on large messages; may be NULL */
} deliver_env;

deliverer *deliverer_new(const deliver_env *env);
void deliverer_free(deliverer **d);

/* RFC 3461 NOTIFY bits, as in Tern__QueueRcpt.notify. */
#define DELIVER_NOTIFY_SUCCESS 1u
#define DELIVER_NOTIFY_FAILURE 2u
#define DELIVER_NOTIFY_DELAY 4u
#define DELIVER_NOTIFY_NEVER 8u

typedef struct deliver_rcpt_req {
	const char *address;           /* as accepted at RCPT TO, lower-case domain */
	uint32_t notify;               /* DELIVER_NOTIFY_* bits; 0 = default (FAILURE) */
	const char *orcpt;             /* RFC 3461 ORCPT or NULL */
} deliver_rcpt_req;

typedef struct deliver_message {
	const char *sender;            /* envelope sender, "" = null sender */
	const deliver_rcpt_req *rcpts;
	size_t nrcpts;
	const void *data;              /* the message as received: CRLF lines, dot-unstuffed */
	size_t len;
	const char *helo;              /* client's EHLO/HELO argument */
	const char *client_ip;         /* "" for messages the server makes itself */
	const char *client_host;       /* reverse DNS name or NULL */
	const char *auth_user;         /* authenticated sender account or NULL */
	const char *protocol;          /* Received "with": SMTP, ESMTP, ESMTPS, ESMTPSA, ... */
	const char *tls_info;          /* for Received, or NULL */
	const char *envid;             /* RFC 3461 ENVID or NULL */
	uint32_t ret;                  /* RFC 3461 RET: 0 default, 1 FULL, 2 HDRS */
	const char *service;           /* mail.log "Service:": "SMTP", "DSN", ... */
	const char *report;            /* mail.log "Report:" of a DSN (failed, delayed, ...) or NULL */
	/* Routing in a distributed domain (DESIGN.md §5): the name of the node that accepted
	 * the message first, or NULL. That node expanded the recipients (here they are final
	 * addresses: no alias, group or forward applies again), added the footer and applied
	 * the sender's limits; here a recipient homed on this node is delivered, one homed
	 * elsewhere is queued for its home again. mail.log "Recv:" says "Relayed-From: node
	 * NAME". Set by the SMTP session of a cluster peer, and by the queue with this node's
	 * own name when a queued recipient's home became this node. */
	const char *relayed_from;
} deliver_message;

typedef struct deliver_result {
	int rc;                        /* STORE_OK; STORE_EDISK = try later (4xx); else failed */
	char queue_id[40];             /* mail.log Queue-ID of the accepted message */
	char reply[256];               /* SMTP reply: "250 2.0.0 Ok: queued as ID", or the failure
	                                * ("552 5.3.4 ..." size limit, "552 5.2.2 ..." every
	                                * recipient over quota, "452 4.3.1 ..." disk low) */
	unsigned delivered_local;      /* mailboxes that got it */
	unsigned queued_remote;        /* remote recipients queued */
	unsigned queued_node;          /* recipients queued for their home node (another node
	                                * of the distributed domain) */
	unsigned over_quota;           /* local recipients refused for quota (DSN sent) */
} deliver_result;

/* Deliver or queue m; cb runs on io after the batch is durable (or on failure). The
 * message bytes are copied: m may be freed once this returns. */
void deliver_submit(deliverer *d, const deliver_message *m, tern_io *io,
		    void (*cb)(const deliver_result *r, void *arg), void *arg);

/* RCPT-time check of one address for a message of `size` bytes as announced by MAIL
 * SIZE= (0 = unknown): expands it (deliver_expand) and says how SMTP should answer. 0 = accept (a remote address is accepted here: relay control is the session's
 * job); otherwise a negative store code with the SMTP reply written to reply:
 * STORE_ENOTFOUND "550 5.1.1 <x>: Recipient address rejected: no such user" (counts for
 * harvest protection), STORE_EREFUSED "550 5.2.1 ..." (account disabled), STORE_EQUOTA
 * "552 5.2.2 <x>: Mailbox full", STORE_EINVAL "501 5.1.3 ..." (not an address),
 * STORE_EIO "451 4.3.0 ..." (store error: try later). An alias or group is accepted when
 * any of its final recipients can take mail. *local_r is set when the address is in a
 * local domain (for relay control). */
int deliver_check_rcpt(deliverer *d, const char *address, uint64_t size, int *local_r, char *reply,
		       size_t reply_n);

/* RCPT-time check of a recipient relayed by a cluster peer (deliver_message.relayed_from):
 * the address is final - a user of a local domain, taken as it is (no alias, group or
 * forward). 0 = accept: an enabled user homed here with room for `size` bytes, or one
 * homed on another node (the mail is queued for that node again). Otherwise a store code
 * with the reply as deliver_check_rcpt (STORE_ENOTFOUND "550 5.1.1 ...", STORE_EREFUSED
 * "550 5.2.1 ...", STORE_EQUOTA "552 5.2.2 ...", STORE_EIO "451 4.3.0 ..."), and
 * STORE_EINVAL "550 5.7.1 ..." for an address outside the local domains (a node relays
 * only mail of the domain). */
int deliver_check_relayed_rcpt(deliverer *d, const char *address, uint64_t size, char *reply,
			       size_t reply_n);

/* Counters since deliverer_new (for ternctl stats). */
typedef struct deliver_stats {
	uint64_t received;             /* messages accepted (durable) */
	uint64_t delivered_local;      /* mailbox deliveries */
	uint64_t queued_remote;        /* remote recipients queued */
	uint64_t queued_node;          /* recipients queued for another node of the domain */
	uint64_t over_quota;           /* local recipients refused for quota */
	uint64_t failed_local;         /* other local recipients that failed (unknown, disabled) */
	uint64_t dsn_sent;             /* delivery reports made (here and by the queue) */
	uint64_t quota_warnings;       /* quota warning messages */
	uint64_t refused;              /* whole messages refused (size limit, all over quota) */
} deliver_stats;
void deliverer_stats(deliverer *d, deliver_stats *out);

#endif
