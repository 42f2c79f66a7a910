/* store_private.h - what the files of store/ share; nothing outside store/ includes it. */
#ifndef TERN_STORE_PRIVATE_H
#define TERN_STORE_PRIVATE_H
#include <pthread.h>
#include <stdatomic.h>
#include <rocksdb/c.h>
#include "store.h"
#include "store_keys.h"

enum store_cf {
	CF_DEFAULT, CF_CONFIG, CF_FOLDER, CF_MSG, CF_CHANGES, CF_BLOB, CF_BLOBREF,
	CF_QUEUE, CF_DAV, CF_CHANGELOG,
	CF_COUNT
};

#define STORE_BLOB_CHUNK (256 * 1024)
#define STORE_ERR_MAX 256

/* One batch on its way to the WAL, with what to do once it is durable. */
typedef struct store_commit store_commit;
typedef struct store_mbx store_mbx;
typedef struct store_dav_owner store_dav_owner;
struct store_commit {
	store_commit *next;
	rocksdb_writebatch_t *wb;
	store_event *ev;              /* watchers' events, published after the write */
	size_t nev, ev_cap;
	/* Runs on the commit thread after the write (rc = the write's result), before
	 * watchers and the caller: release in-memory reservations. */
	void (*hook)(store *st, store_commit *c, int rc);
	void *hook_arg;
	uint8_t (*blob_shas)[32];     /* pending blob hashes this batch holds */
	size_t nshas, shas_cap;
	store_mbx **mbx;              /* mailboxes with this batch in flight */
	uint64_t *mbx_epoch;          /* their failure epochs when the batch was built */
	size_t nmbx;
	int doomed;                   /* built on a failed write's state: not written */
	int uv_mark;                  /* creates folders: record the UIDVALIDITY mark */
	store_cb cb;
	store_result res;
	char error[STORE_ERR_MAX];
	int *rcpt_rc;
	/* Config-CF rows an account job wrote, in order (store_cfg_put/_delete): the
	 * master logs the shared ones, a slave refuses them (store_repl.c). */
	Tern__ConfigOp **cfg_ops;
	size_t ncfg_ops, cfg_ops_cap;
	/* Mailboxes whose removal this batch holds (store_mailbox_remove_batch marked
	 * them): the config thread calls store_mailbox_removed for each with the result. */
	uint8_t (*gone)[16];
	size_t ngone;
	/* DAV owners whose rows this batch deletes (store_dav_owner_remove_batch): the config
	 * thread calls store_dav_owner_removed for each with the job's result. */
	uint8_t (*dav_gone)[16];
	size_t ndav_gone;
	/* The replication state this batch writes ("repl/state"): a master's new change
	 * record (repl_log) or a slave's applied record; 0 = none. */
	uint64_t repl_epoch, repl_seq;
	int repl_log;
	int waiting;                  /* a thread waits for `finished` (blocking form) */
	int finished;
};

typedef struct store_pending_blob store_pending_blob;

struct store_watch {
	store_watch *next;
	uint8_t user[16];
	uint8_t folder[16];
	int any_folder;
	int moved_only;               /* store_watch_add_moved: MOVED events only */
	tern_io *io;
	void (*fn)(const store_event *ev, void *arg);
	void *arg;
	atomic_int refs;
	atomic_int removed;
};

typedef struct store_cfg_job store_cfg_job;
typedef struct store_qflight store_qflight;
typedef struct store_qwatch store_qwatch;

struct store {
	store_options opt;
	char *path;
	int is_new;
	rocksdb_t *db;
	rocksdb_options_t *dbopt;
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_column_family_handle_t *cf[CF_COUNT];
	rocksdb_writeoptions_t *wopt;
	rocksdb_readoptions_t *ropt;

	/* commit pipeline (store_commit.c) */
	pthread_mutex_t cmu;
	pthread_cond_t ccond;         /* work queued / stop */
	pthread_cond_t turn_cond;     /* write and completion turns */
	pthread_cond_t done_cond;     /* a blocking caller's batch finished */
	store_commit *qhead, *qtail;
	int cstop;
	uint64_t ticket_next, write_turn, finish_turn;
	pthread_t commit_thr[4];
	unsigned ncommit;
	atomic_uint_fast64_t commits, groups;
	atomic_uint fail_writes;      /* fault injection for the tests: fail the next n writes */
	uint64_t test_ticket;         /* the commit turn held by store_test_hold_commits() */

	/* account changes, one at a time (store_config.c) */
	pthread_mutex_t cfg_mu;
	pthread_cond_t cfg_cond;
	store_cfg_job *cfg_head, *cfg_tail;
	int cfg_stop;
	pthread_t cfg_thr;
	int cfg_started;

	/* mailboxes (store_mailbox.c) */
	pthread_mutex_t mbx_mu;
	store_mbx *mbx[256];
	pthread_mutex_t uv_mu;
	uint32_t last_uidvalidity;    /* highest UIDVALIDITY given out (durable mark at open) */

	/* DAV owners (store_dav.c): per-owner write locks, kept until close */
	pthread_mutex_t dav_mu;
	store_dav_owner *dav[64];

	/* blobs in flight and being deleted (store_mailbox.c, store_sweep.c) */
	pthread_mutex_t blob_mu;
	store_pending_blob *pending[256];

	/* watchers (store_notify.c) */
	pthread_mutex_t w_mu;
	store_watch *watches;

	/* housekeeping (store_sweep.c) */
	pthread_mutex_t hk_mu;
	pthread_cond_t hk_cond;
	int hk_stop;
	pthread_t sweep_thr, disk_thr;
	int sweep_started, disk_started;
	atomic_int disk_state;
	atomic_uint_fast64_t free_disk, blobs_swept;
	pthread_mutex_t sweep_mu;     /* one sweep at a time */

	/* outgoing queue (store_queue.c) */
	pthread_mutex_t q_mu;         /* queue writes: read the old state, queue the batch */
	store_qflight *qflight;       /* entries with batches in flight (q_mu) */
	pthread_mutex_t qw_mu;
	store_qwatch *qwatches;

	/* replication (store_repl.c); repl_mu guards these */
	pthread_mutex_t repl_mu;
	store_repl_mode repl_mode;
	uint64_t repl_epoch, repl_seq;  /* durable "repl/state" */
	char *repl_refusal;
	void (*repl_watch_fn)(void *arg);
	void *repl_watch_arg;
	char *node_name;                /* set once at start (store_set_node_name) */

	/* migration states of mailboxes (store_mig_state.c): "mbstate/" rows, cached */
	pthread_mutex_t mbs_mu;
	struct store_mbs *mbs;
	atomic_uint nmbs;               /* entries in mbs: 0 makes the write check free */
};

/* ---- store_db.c: reads ---- */
/* Point lookup: 0 found (*v_r malloc'd, free()), STORE_ENOTFOUND, STORE_EIO. */
int store_db_get(store *st, enum store_cf cf, const void *k, size_t kn, char **v_r, size_t *vn_r);
/* 1 when the key exists, 0 when not, STORE_EIO. */
int store_db_exists(store *st, enum store_cf cf, const void *k, size_t kn);
/* Unpack a record stored at key; 0, STORE_ENOTFOUND, STORE_EIO (also on a bad record). */
int store_db_get_record(store *st, enum store_cf cf, const void *k, size_t kn,
			const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m_r);
/* Visit keys starting with prefix in order; stop when fn returns non-zero (that value is
 * returned). 0 at the end, STORE_EIO on error. */
int store_db_scan(store *st, enum store_cf cf, const void *prefix, size_t pn,
		  const void *from, size_t fn_len,
		  int (*fn)(const char *k, size_t kn, const char *v, size_t vn, void *arg), void *arg);
/* Put a packed record into a batch. */
void store_wb_put_record(rocksdb_writebatch_t *wb, store *st, enum store_cf cf, const void *k,
			 size_t kn, const ProtobufCMessage *m);

/* ---- store_commit.c ---- */
int store_commit_start(store *st, char **error_r);
void store_commit_stop(store *st);
store_commit *store_commit_new(store_cb cb);
void store_commit_add_event(store_commit *c, const uint8_t user[16], const uint8_t folder[16],
			    uint64_t modseq, Tern__Change__Kind kind, uint32_t uid);
/* Queue c (FIFO). The commit threads own it from here unless c->waiting. */
void store_commit_enqueue(store *st, store_commit *c);
/* Make the next n commit groups fail as if RocksDB had refused the write (tests only). */
void store_test_fail_writes(store *st, unsigned n);
/* Tests only: hold = 1 takes the next commit turn, so that no batch queued from now on
 * is written until the call with hold = 0 gives the turn up. */
void store_test_hold_commits(store *st, int hold);
/* Wait until a waiting commit has finished. */
void store_commit_wait(store *st, store_commit *c);
/* Hand the result to the caller: the blocking form fills *sync and frees c; otherwise
 * the callback runs (posted to cb.io, or here) and c is freed. Returns c->res.rc. */
int store_commit_complete(store *st, store_commit *c, store_sync_result *sync);
/* Fail c before it was queued, and complete it. */
int store_commit_fail(store *st, store_commit *c, store_sync_result *sync, int rc,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void store_commit_free(store_commit **c);
/* Run a finished batch's caller callback synchronously or for a blocking caller. */
int store_commit_run(store *st, store_commit *c, store_sync_result *sync);

/* ---- store_accounts.c ---- */
/* Give every user without a home this node's name, in batch c (a node becoming master). */
void store_users_claim_homes(store *st, store_commit *c);

/* ---- store_config.c ---- */
int store_config_start(store *st, char **error_r);
void store_config_stop(store *st);
/* Build the batch that creates the default IP groups of a new store. */
void store_config_defaults(store *st, rocksdb_writebatch_t *wb);

/* ---- store_mailbox.c ---- */
void store_mailbox_init(store *st);
void store_mailbox_free_all(store *st);
/* Add the mailbox record and an INBOX for a new user to c. */
void store_mailbox_create_batch(store *st, store_commit *c, const uint8_t user[16]);
/* Add to wb the deletion of the user's whole mailbox (folders, messages, changes,
 * blob references, with the orphaned blobs marked for the sweeper). With if_empty, a
 * mailbox holding messages is left alone: STORE_EEXISTS (checked once its batches in
 * flight are written, under its lock, so no delivery slips in between). */
int store_mailbox_remove_batch(store *st, rocksdb_writebatch_t *wb, const uint8_t user[16],
			       int if_empty);
/* The user's removal batch (built by store_mailbox_remove_batch, which marked the
 * mailbox removed) finished with rc: on success drop the mailbox from the cache, on
 * failure clear the mark so that it is usable again. */
void store_mailbox_removed(store *st, const uint8_t user[16], int rc);
/* Read the durable UIDVALIDITY mark at open. */
int store_uidvalidity_load(store *st, char **error_r);
/* A new UIDVALIDITY: max(now, last + 1); the batch that uses it sets c->uv_mark. */
uint32_t store_new_uidvalidity(store *st);
/* Put the UIDVALIDITY mark (the highest value given out so far) into wb: called while
 * queueing, so the last batch written always carries the highest mark. */
void store_uidvalidity_put_mark(store *st, rocksdb_writebatch_t *wb);
/* Commit thread, before a group is written: 1 when c was built on the in-memory state
 * of a mailbox whose earlier batch failed since. */
int store_mailbox_doomed(const store_commit *c);
/* c was not written: mark its mailboxes failed (reload, doom the batches built on it). */
void store_mailbox_fail(store *st, store_commit *c);
/* After c's write: its mailboxes have one batch less in flight; on failure their cached
 * state is reloaded from the database. */
void store_mailbox_release(store *st, store_commit *c, int rc);

/* ---- store_blob.c: bodies stored once per content ---- */
/* Reference blob sha from batch c: writes the chunks into c->wb unless the blob is
 * stored or being stored, and holds it against the sweeper until c is durable. */
void store_blob_hold(store *st, store_commit *c, const uint8_t sha[32], const void *body,
		     size_t len);
/* Drop the holds of c (commit thread, after the write). */
void store_blob_release(store *st, store_commit *c);
/* Mark a blob whose reference goes away for the sweeper (config "blobgc/<sha>"). */
void store_blob_mark_orphan(store *st, rocksdb_writebatch_t *wb, const uint8_t sha[32]);
void store_blob_free_all(store *st);

/* ---- store_queue.c: the outgoing queue ---- */
/* Add the new entry e (id, blob, size and times filled; its blob already held by c) to
 * c - entry, next-try index and blobref rows - and queue c: for the locked mailboxes
 * ms[0..n) like store_mbx_enqueue, or alone when n is 0. */
void store_queue_enqueue_new(store *st, store_commit *c, const Tern__QueueEntry *e,
			     store_mbx **ms, size_t n);
/* 1 when an entry with this id exists or is being written, 0 when not, STORE_EIO. */
int store_queue_exists(store *st, const uint8_t id[16]);
void store_queue_free_all(store *st);

/* ---- store_notify.c ---- */
void store_notify_publish(store *st, const store_commit *c);
void store_notify_free_all(store *st);

/* ---- store_mig_state.c: migration states of mailboxes (store_mbox_state_*) ---- */
/* Read every "mbstate/" row into the cache at open. */
int store_mbs_load(store *st, char **error_r);
void store_mbs_free_all(store *st);
/* STORE_OK when the user's mailbox and DAV rows take ordinary writes; STORE_EREFUSED,
 * with why ("the mailbox of X is moving to node Y") when why is not NULL, while a
 * migration holds them. Callers hold the user's mailbox or DAV owner lock, which the
 * state change takes too, so no write slips past a freeze. */
int store_mbox_writable(store *st, const uint8_t user[16], char *why, size_t n);
/* 1 when the user has a state row here (mailboxes follow homes leaves it alone). */
int store_mbs_held(store *st, const uint8_t user[16]);
/* Forget the cached state of user (its row was deleted, e.g. by store_mig_drop). */
void store_mbs_forget(store *st, const uint8_t user[16]);

/* ---- store_sweep.c ---- */
int store_sweep_start(store *st, char **error_r);
void store_sweep_stop(store *st);
/* Check free disk now and update the state (logging transitions). */
void store_disk_check(store *st);


/* ---- account jobs (store_config.c, store_accounts.c) ---- */
struct store_cfg_job {
	store_cfg_job *next;
	/* Validate against the database and fill c->wb; STORE_OK or an error code with the
	 * message in c->error. Runs on the config thread, one job at a time. */
	int (*apply)(store *st, store_cfg_job *j, store_commit *c);
	/* Optional: runs on the config thread after the batch is durable (rc = result). */
	void (*after)(store *st, store_cfg_job *j, int rc);
	int replicated;               /* applies the master's rows: neither logged nor refused */
	void **out_r;                 /* blocking jobs that hand a result back (snapshot) */
	ProtobufCMessage *rec;        /* private copy of the caller's record */
	char *s[4];                   /* string arguments (strdup'd; NULL allowed) */
	uint8_t id[16];
	store_commit *c;
	store_sync_result *sync;
	int blocking, done, rc;
};
store_cfg_job *store_cfg_job_new(int (*apply)(store *, store_cfg_job *, store_commit *),
				 const ProtobufCMessage *rec, const char *s0, const char *s1,
				 const char *s2, const char *s3);
/* Queue j for the config thread; in the blocking form wait and return its result. */
int store_cfg_submit(store *st, store_cfg_job *j, store_cb cb, store_sync_result *res_r);
/* Config-CF writes of an account job: into c->wb, recorded in c->cfg_ops. Every
 * config row a job writes goes through these, so that replication sees it. */
void store_cfg_put(store *st, store_commit *c, const tbuf *k, const ProtobufCMessage *m);
void store_cfg_put_raw(store *st, store_commit *c, const void *k, size_t kn, const void *v,
		       size_t vn);
void store_cfg_delete(store *st, store_commit *c, const void *k, size_t kn);
/* c removes the mailbox of user: store_mailbox_removed runs with the job's result. */
void store_cfg_mailbox_gone(store_commit *c, const uint8_t user[16]);
/* Set c's error message and return rc. */
int store_cfg_err(store_commit *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A lower-cased copy (free()). */
char *store_lower_dup(const char *s);
int store_domain_exists(store *st, const char *domain);
/* Owner of local@domain in the addr/ namespace: 0 found, STORE_ENOTFOUND, STORE_EIO. */
int store_addr_owner(store *st, const char *domain, const char *local, Tern__AddressOwner **o_r);
void store_cfg_put_addr(store *st, store_commit *c, const char *domain, const char *local,
			Tern__AddressOwner__Kind kind, const char *name);
/* Count keys under a text prefix of the config CF. */
unsigned store_config_count(store *st, const tbuf *prefix);
/* Collect every record under a text prefix of the config CF into a malloc'd array. */
int store_config_list(store *st, const tbuf *prefix, const ProtobufCMessageDescriptor *desc,
		      void ***list_r, size_t *n_r);
/* The same under prefix(domain), e.g. sk_user_prefix: every user of a domain. */
int store_config_list_domain(store *st, void (*prefix)(tbuf *, const char *), const char *domain,
			     const ProtobufCMessageDescriptor *desc, void ***list_r, size_t *n_r);
/* How many records of one kind a domain has: keys under prefix(domain). */
unsigned store_config_count_domain(store *st, void (*prefix)(tbuf *, const char *),
				   const char *domain);
/* Unpack the config record at key(domain, name) (sk_user, sk_group, sk_alias): 0,
 * STORE_ENOTFOUND, STORE_EIO. */
int store_config_get(store *st, void (*key)(tbuf *, const char *, const char *),
		     const char *domain, const char *name, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **m_r);
/* The record of the owner of address when the owner is of kind (the domain may be an
 * alias): read at key(domain, owner name). STORE_EINVAL for a bad address, else as
 * store_config_get (STORE_ENOTFOUND when the address belongs to another kind). */
int store_owner_find(store *st, const char *address, Tern__AddressOwner__Kind kind,
		     void (*key)(tbuf *, const char *, const char *),
		     const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m_r);
/* The extra addresses of a user or group (kind, name) in domain: valid local parts, none
 * listed twice, none equal to self (the user's own name; NULL for a group), each free. */
int store_check_addresses(store *st, store_commit *c, const char *domain, char **addrs,
			  size_t n, Tern__AddressOwner__Kind kind, const char *name,
			  const char *self);
/* Delete into c the addr/ rows of domain for the locals in old[] not in keep[]. */
void store_cfg_delete_addrs(store *st, store_commit *c, const char *domain,
			    char **old, size_t n_old, char **keep, size_t n_keep);
int store_check_addr_free(store *st, store_commit *c, const char *domain, const char *local,
			  Tern__AddressOwner__Kind kind, const char *name);
/* ---- store_repl.c ---- */
/* Read "repl/state" at open. */
int store_repl_load(store *st, char **error_r);
void store_repl_free(store *st);
/* Config thread, after a job's apply() succeeded: refuse its shared rows (slave) or add
 * their change record and the new head to c (master). STORE_OK or the refusal. */
int store_repl_job_check(store *st, store_cfg_job *j, store_commit *c);
/* Put "repl/state" = (epoch, seq) into c; once written, the state in memory follows and,
 * with log (a master's new record), the watcher runs. */
void store_repl_set_state(store *st, store_commit *c, uint64_t epoch, uint64_t seq, int log);

/* ---- store_nodes.c: mailboxes follow homes ---- */
typedef enum {
	STORE_HOME_ADMIN,     /* an admin change: a home move of a mailbox with data is refused */
	STORE_HOME_REPL,      /* a replicated record: such a mailbox is kept (warning) */
	STORE_HOME_SNAPSHOT,  /* a snapshot: as REPL, and a user it lacks keeps a mailbox with data */
} store_home_why;
/* 1 when home ("" or a node name) is this node. */
int store_home_is_here(store *st, const char *home);
/* Make the mailbox of user id follow its record u (NULL: the user was deleted) in c:
 * create it here, remove an empty one, or (old_home: the home before, ADMIN only) refuse
 * to move one with data. In replicated rows home "" names the master, not this node.
 * STORE_OK or an error with c's message set. */
int store_home_follow(store *st, store_commit *c, const uint8_t id[16], const Tern__User *u,
		      const char *old_home, store_home_why why);

/* ---- store_dav.c: calendars and contacts ---- */
/* The write state of one DAV owner (user or resource). A writer locks it, waits until
 * the owner's earlier batch is durable (so rows read are current), reads, builds one
 * batch and queues it before unlocking: checks such as If-Match are decided against
 * every earlier write. */
struct store_dav_owner {
	store_dav_owner *next;
	uint8_t owner[16];
	pthread_mutex_t mu;
	pthread_cond_t idle;          /* inflight fell to 0 or a removal finished */
	unsigned inflight;            /* batches queued and not yet written */
	int removing;                 /* a removal batch of the owner's rows is in flight */
	int gone;                     /* the owner was removed: no more writes */
};
/* Lock owner's state once idle: STORE_OK (locked) or STORE_ENOTFOUND (removed). */
int store_dav_lock(store *st, const uint8_t owner[16], store_dav_owner **o_r);
void store_dav_unlock(store_dav_owner *o);
/* Lock owner and read its collection id: STORE_OK with *o_r locked and *dc_r, or c
 * failed (and run) with the error. */
int store_dav_lock_collection(store *st, store_commit *c, store_sync_result *res_r,
			      const uint8_t owner[16], const uint8_t id[16], store_dav_owner **o_r,
			      Tern__DavCollection **dc_r);
/* Queue c for the locked owner o (in flight until written), unlock, and in the blocking
 * form wait until durable and fill *res_r. */
int store_dav_finish(store *st, store_commit *c, store_dav_owner *o, store_sync_result *res_r);
/* Put the changes row of one DAV object change into c (and its event for watchers). */
void store_dav_put_change(store *st, store_commit *c, const uint8_t owner[16],
			  const uint8_t coll[16], uint64_t modseq, Tern__Change__Kind kind,
			  const char *href);
/* Config thread: delete into c every DAV row of owner (collections, objects, changes),
 * once its batches in flight are written; further writes wait for the result. */
int store_dav_owner_remove_batch(store *st, store_commit *c, const uint8_t owner[16]);
/* The removal batch of owner finished with rc: on success the owner takes no more
 * writes (until revived), on failure it is usable again. */
void store_dav_owner_removed(store *st, const uint8_t owner[16], int rc);
/* Count c in flight for the locked owner o (its hook is taken): writers of o wait for it. */
void store_dav_track(store_commit *c, store_dav_owner *o);
/* An owner id (re)appears (user or resource added with a given id): writes allowed. */
void store_dav_owner_revive(store *st, const uint8_t owner[16]);
void store_dav_free_all(store *st);

/* Sweeper side (blob_mu held): 1 when sha is idle and now marked as being deleted. */
int store_blob_begin_delete(store *st, const uint8_t sha[32]);
/* Make c clear the "being deleted" mark of sha once written. */
void store_blob_set_delete_hook(store_commit *c, const uint8_t sha[32]);

/* Lock the mailbox (idle) and the DAV owner of user for a migration's change: *m_r and
 * *o_r NULL when the user has no mailbox or no DAV owner here. STORE_OK or STORE_EIO. */
int store_mig_lock_user(store *st, const uint8_t user[16], store_mbx **m_r, store_dav_owner **o_r);
/* Queue c on the locked mailbox m (or plainly when NULL), unlock m and o (either may be
 * NULL), and for a blocking caller wait for the result. */
int store_mig_queue_unlock(store *st, store_commit *c, store_mbx *m, store_dav_owner *o, int blocking,
			   store_sync_result *res_r);

#endif

/* ---- in-memory mailbox state (store_mailbox.c), used by store_msg.c ---- */
struct store_mbx {
	store_mbx *next;
	uint8_t user[16];
	pthread_mutex_t mu;
	pthread_cond_t idle;          /* inflight or pins fell to 0 */
	int loaded, stale;
	int removed;                  /* the user's removal is queued: no more changes */
	unsigned inflight;            /* batches queued and not yet written */
	atomic_uint pins;             /* threads between lookup and unlock (keeps m alive) */
	atomic_uint_fast64_t epoch;   /* failed writes so far */
	Tern__Mailbox *rec;
	Tern__Folder **folders;
	size_t nfolders;
};
/* Lock the mailbox of user, loading it when needed: STORE_OK (locked), STORE_ENOTFOUND
 * (no such mailbox, not locked), STORE_EIO. */
int store_mbx_lock(store *st, const uint8_t user[16], store_mbx **m_r);
void store_mbx_unlock(store_mbx *m);
/* Wait (locked) until no batch of this mailbox is in flight, so rows read from the
 * database are current. The lock is released meanwhile: the state is reloaded when a
 * write failed, and folder pointers taken before must be looked up again. STORE_OK,
 * STORE_ENOTFOUND (the mailbox was removed meanwhile) or STORE_EIO; locked in any case. */
int store_mbx_wait_idle(store *st, store_mbx *m);
/* store_mbx_lock and store_mbx_wait_idle for a change that reads rows, on behalf of c:
 * STORE_OK with *m_r locked, or c failed ("no such mailbox") and its result returned. */
int store_mbx_lock_idle(store *st, store_commit *c, const uint8_t user[16],
			store_sync_result *res_r, store_mbx **m_r);
Tern__Folder *store_mbx_folder(store_mbx *m, const uint8_t *folder /* NULL = INBOX */);
/* Queue c, counting it in flight for each of its mailboxes (all locked). */
void store_mbx_enqueue(store *st, store_commit *c, store_mbx **ms, size_t n);
void store_mbx_put_folder(store *st, rocksdb_writebatch_t *wb, store_mbx *m, const Tern__Folder *f);
void store_mbx_put_usage(store *st, rocksdb_writebatch_t *wb, store_mbx *m);
/* Delete the messages rows of one folder (blobrefs, orphan marks) into wb; the usage
 * they counted is returned. */
int store_mbx_drop_messages(store *st, rocksdb_writebatch_t *wb, const uint8_t user[16],
			    const uint8_t *folder, uint64_t *bytes_r, uint64_t *items_r);
/* Queue c for the locked mailboxes ms[0..n), unlock them, and in the blocking form
 * wait until durable and fill *res_r. Returns the result (STORE_OK when queued). */
int store_mbx_finish(store *st, store_commit *c, store_mbx **ms, size_t n, store_sync_result *res_r);
/* Row writers of store_msg.c shared with store_msg_ops.c. */
void store_msg_put_meta(store *st, rocksdb_writebatch_t *wb, const uint8_t user[16],
			const uint8_t folder[16], const Tern__MessageMeta *mm);
void store_msg_put_change(store *st, store_commit *c, const uint8_t user[16],
			  const uint8_t folder[16], uint64_t modseq, Tern__Change__Kind kind,
			  const Tern__MessageMeta *mm);
void store_msg_put_blobref(store *st, rocksdb_writebatch_t *wb, const uint8_t sha[32],
			   const uint8_t user[16], const uint8_t folder[16], uint32_t uid);
