/* migrate_private.h - what the files of migrate/ share: the module object, the bulk wire
 * helpers (checksummed replies, requests asked again on a bad checksum), the fault points
 * and the target's job runner. */
#ifndef TERN_MIGRATE_PRIVATE_H
#define TERN_MIGRATE_PRIVATE_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "buf.h"
#include "migrate.h"
#include "migrate.pb-c.h"

/* [migrate] fault, parsed once at open (migrate.h). */
typedef struct mig_faults {
	int crash_copy, crash_delta, crash_frozen, crash_prepared, crash_committed, crash_drop;
	unsigned corrupt;                   /* damage the N-th reply (1-based), 0 = never */
	unsigned badblob;                   /* damage the N-th blob chunk before its checksum */
	int disk_full;
	int slow_ms;
} mig_faults;

struct migrate {
	store *st;
	cluster *cl;
	const tern_conf *conf;
	void (*released)(void *arg, const uint8_t user[16]);
	void (*report)(void *arg, const char *admin, const char *subject, const char *body);
	void *arg;
	char self[64];
	mig_faults faults;
	atomic_uint replies;                /* replies sent by the source handler */
	atomic_uint chunks;                 /* blob chunks sent by the source handler */

	pthread_t thread, settler;
	int running;
	/* mu guards the job records (every write of one), stop, wake, cur_* */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, wake;
	int has_cur;                        /* the runner works on cur_user */
	uint8_t cur_user[16];
	int cur_cancel;                     /* cancel asked for cur_user */
};

/* ---- migrate_wire.c ---- */
/* Parse [migrate] fault into f. */
void mig_faults_parse(const char *spec, mig_faults *f);
/* Die here when the crash point is set (tests). */
void mig_crash_if(int set, const char *point);
/* Pack a Reply: code, message, body with its SHA-256; damage=1 flips a byte of the body
 * after the checksum (fault corrupt:N). */
void mig_reply_pack(tbuf *out, Tern__Migrate__Reply__Code code, const char *msg, const void *body,
		    size_t n, int damage);
/* Unpack a reply and check its body against the checksum: the reply (free with
 * tern__migrate__reply__free_unpacked) or NULL when it is undecodable or damaged. */
Tern__Migrate__Reply *mig_reply_check(const void *p, size_t n);
/* The most rows one Rows/Delta answer carries (bytes of keys and values, past the last
 * row's start): half the default [cluster] max_frame, the top of [migrate] chunk_kb. */
#define MIG_MAX_ROWS_BYTES (8u << 20)
/* Append any message, packed, to out. */
void mig_pack(tbuf *out, const ProtobufCMessage *msg);
/* How often one request is asked again after damaged (or BUSY) replies. */
#define MIG_ATTEMPTS 5
/* Decode and validate a request (migrate_wire.c): NULL with the reason in why. */
Tern__Migrate__Request *mig_request_decode(const void *p, size_t n, tbuf *why);
/* Pack a request with the migration and user ids. */
void mig_request_pack(tbuf *out, const uint8_t mid[16], const uint8_t user[16], Tern__Migrate__Request *req);

/* A connection of the target to the source's bulk port, with tags for pipelining. */
typedef struct mig_conn {
	migrate *m;
	cluster_bulk *b;
	char node[64];
	char user[320];                     /* for log lines */
	uint64_t next_tag;
} mig_conn;
/* Ask one request and wait for its (checked) reply; a damaged reply makes it ask again
 * (bounded). 0 with *rep_r (any code), -1 no answer / connection failed (err). */
int mig_call(mig_conn *c, const tbuf *req, Tern__Migrate__Reply **rep_r, tbuf *err);
/* The same for one of many requests in flight: send with a fresh tag. */
int mig_send(mig_conn *c, const tbuf *req, uint64_t *tag_r, tbuf *err);

/* ---- migrate_source.c ---- */
/* The bulk handler (cluster_bulk_fn): the source's answers and the target's Probe. */
void mig_bulk_handler(void *arg, const char *peer, const void *req, size_t n, tbuf *reply);
/* Settle the mailboxes frozen here (after a restart, or an abort seen late): the master's
 * record and the target decide (migrate.h). Settler thread. */
void mig_settle_frozen(migrate *m);

/* ---- migrate_run.c / migrate_copy.c ---- */
void *mig_runner(void *arg);
/* The settler thread (migrate_run.c): mig_settle_frozen every retry_interval. */
void *mig_settler(void *arg);

/* The job being run (target) and what it needs while running. */
typedef struct mig_run {
	migrate *m;
	Tern__MigrateJob *job;
	mig_conn conn;
	int connected;
	int frozen;                         /* Freeze was asked of the source */
	int64_t freeze_ms;                  /* tern_mono_ms at the freeze, 0 unknown */
	int64_t unreachable_since;          /* unix seconds, 0 = reachable */
	/* folder/collection names from the last Heads, for error messages */
	struct mig_name { uint8_t id[16]; int dav; char name[128]; } *names;
	size_t nnames;
} mig_run;

/* Outcome of a phase: 0 ok, MIG_RETRY source unreachable (try again later), MIG_FAIL
 * (job->error says why), MIG_CANCEL (cancel asked), MIG_STOP (module closing). */
enum { MIG_RETRY = -2, MIG_FAIL = -3, MIG_CANCEL = -4, MIG_STOP = -5 };

/* Save the job (durable), carrying a cancel asked meanwhile. */
int mig_job_save(mig_run *r);
/* Import rows together with the job record. */
int mig_import(mig_run *r, const store_mig_row *rows, size_t n, int with_job, tbuf *err);
/* 1 when the runner should stop what it does (cancel or close); sets *why. */
int mig_interrupted(mig_run *r, int *why);
/* Set the job's error text (copied). */
void mig_job_error(mig_run *r, const char *msg);
/* Fail the job with a reason (printf). Returns MIG_FAIL. */
int mig_fail(mig_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ask one request of the source; BUSY answers are asked again for a while. Returns 0 with
 * an OK reply, MIG_RETRY, MIG_FAIL (refused: job error set), MIG_CANCEL/MIG_STOP. */
int mig_ask(mig_run *r, Tern__Migrate__Request *req, Tern__Migrate__Reply **rep_r);

/* migrate_copy.c: the initial copy of the key ranges, a delta round. */
int mig_copy(mig_run *r);
int mig_delta_round(mig_run *r, uint64_t *moved_r);
/* The job's cursor of folder / collection (id, dav), made (modseq 0) when absent; NULL
 * when out of memory. */
Tern__MigrateCursor *mig_cursor(Tern__MigrateJob *j, const uint8_t id[16], int dav);
/* migrate_verify.c: the heads (imported; *heads_r the source's, for the delta round), the
 * digest comparison. */
int mig_heads(mig_run *r, Tern__Migrate__RowsOk **heads_r);
int mig_digest_check(mig_run *r, int *same_r);

/* migrate.c: end-of-job report and log line. */
void mig_report(mig_run *r, const char *result);

#endif
