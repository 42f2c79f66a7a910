/* migrate.h - live mailbox migration between the nodes of a distributed domain
 * ("migrate here", DESIGN.md §6). The one public header of migrate/.
 *
 * Run on the target. Users are moved one at a time, in the order they were queued, by
 * the runner thread:
 *   1. BEGIN at the master (cluster_home_move): the user becomes MOVING(source -> target);
 *      the mailbox here gets the state INCOMING (store_mbox_state_set).
 *   2. Copy over the bulk channel (cluster_bulk_*, proto/migrate.proto): the heads, then
 *      the rows of the msg, dav and changes key ranges in key order (blobs fetched only
 *      when missing here), [migrate] window requests in flight; every imported batch
 *      carries the job record with its cursor, so a restart resumes where it stopped.
 *   3. Delta rounds from the delta bases (per folder / collection modseq, taken at BEGIN)
 *      until a round moves at most [migrate] delta_small rows or delta_rounds ran.
 *   4. Cut-over: Freeze on the source (durable; sessions get BYE, deliveries are queued),
 *      the last delta, the digests of both ends compared (store_mig_digest), PREPARED
 *      recorded here, COMMIT at the master - the commit point - then the mailbox here is
 *      ACTIVE and, once this node's replicated record names it the home, Drop on the source.
 *   5. The admin who asked gets a message: result, duration, size.
 * Cancel (before PREPARED): ABORT at the master, Unfreeze on the source when frozen, the
 * rows copied here dropped. Failure: the same, with the reason in the job.
 *
 * On the source the bulk handler answers (Begin, Rows, Delta, Heads, BlobChunk, Freeze,
 * Unfreeze, Digest, Drop) for a user homed here and MOVING to the asking node only. A
 * settler thread looks at every mailbox frozen here every retry_interval (after a restart,
 * or when the target went quiet) and asks the target (Probe): the master committed the
 * move and the target says DONE (or no longer knows it) -> drop; the master's record says
 * the user lives here again -> unfreeze; the master still says MOVING and the target says
 * it will never commit (ABORTED, or UNKNOWN: no such job) -> ABORT at the master (the
 * source may ask that) and unfreeze once it is replicated; otherwise stay frozen. A frozen
 * mailbox is never released while the master says MOVING and the target may commit.
 *
 * Fault injection for tests ([migrate] fault, comma-separated):
 *   crash:POINT    the process dies (SIGKILL) at POINT: copy (target, after the first
 *                  imported batch), delta (target, after the first delta round), frozen
 *                  (source, once the freeze is durable), prepared (target, once PREPARED is
 *                  durable, before the commit), commit (master, once the commit is durable,
 *                  before answering), committed (target, after the master's answer, before
 *                  the Drop), drop (source, before dropping)
 *   corrupt:N      the source damages the body of its N-th reply after the checksum
 *   badblob:N      the source damages its N-th blob chunk before the checksum (caught by
 *                  the blob's hash on the target, which fetches the blob again)
 *   disk_full      the target sees no free disk when it checks for space
 *   slow:MS        the source waits MS milliseconds before each Rows/BlobChunk answer
 */
#ifndef TERN_MIGRATE_H
#define TERN_MIGRATE_H
#include <stddef.h>
#include <stdint.h>
#include "cluster.h"
#include "conf.h"
#include "store.h"

typedef struct migrate migrate;

typedef struct migrate_options {
	store *st;
	cluster *cl;
	const tern_conf *conf;              /* [migrate] settings */
	/* The node's hooks (may be NULL). Called on the runner or bulk thread. */
	/* A frozen mailbox was released here (committed elsewhere, or unfrozen): wake the
	 * queue so that mail held for the user goes out now. */
	void (*released)(void *arg, const uint8_t user[16]);
	/* Deliver a report to `admin` (an address): subject and plain-text body. */
	void (*report)(void *arg, const char *admin, const char *subject, const char *body);
	void *arg;
} migrate_options;

/* Install the bulk handler and start the runner (which resumes unfinished jobs and
 * settles mailboxes left FROZEN here). 0, or -1 with *error_r (malloc'd). */
int migrate_open(const migrate_options *o, migrate **m_r, char **error_r);
void migrate_close(migrate **m);

/* Queue users (addresses) for migration to this node, in order. All or nothing: each
 * must be a user of a distributed domain, homed on another node, not queued or running
 * already. admin: who asked (the report's recipient). 0, or -1 with a one-line err. */
int migrate_here(migrate *m, const char *const *users, size_t n, const char *admin, tbuf *err);

typedef struct migrate_status {
	char user[320];
	char state[16];                     /* queued|copying|cutover|done|failed|cancelled */
	char source[64];
	uint64_t bytes, messages;           /* copied so far */
	uint64_t bytes_total, messages_total; /* the source's at the start, or done when more */
	double rate;                        /* bytes per second over the copy so far */
	int64_t eta;                        /* seconds left, -1 unknown */
	int64_t queued, started, finished;  /* unix seconds, 0 = not yet */
	int64_t cutover_ms;                 /* done: freeze to commit */
	char error[256];
} migrate_status;
/* Every job of this node, in queue order. *list_r malloc'd (free()). */
int migrate_list(migrate *m, migrate_status **list_r, size_t *n_r);
/* Cancel a queued or running migration of user (an address). Refused once PREPARED (the
 * commit is the master's). 0 (the runner cancels it; status shows "cancelled"), or -1
 * with err. */
int migrate_cancel(migrate *m, const char *user, tbuf *err);

#endif
