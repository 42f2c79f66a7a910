/* store_queue.c - the outgoing queue (queue CF): one QueueEntry row per queued message
 * and a next-try index row per entry, written through the commit pipeline.
 *
 * A write to an entry must delete the index row of its previous next-try. Batches are
 * durable only later, so the "previous" state is kept in memory while batches of an
 * entry are in flight (store_qflight, under q_mu): every write reads the old state from
 * there (or from the database when nothing is in flight) and queues its batch before
 * q_mu is released, so batches of one entry commit in the order their state was read.
 * If a write fails, a later batch of the same entry may leave a stale index row behind;
 * store_queue_due() skips index rows that do not match their entry and deletes them. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

struct store_qflight {
	store_qflight *next;
	uint8_t id[16];
	uint8_t sha[32];              /* the entry's body */
	uint64_t next_try;            /* as written by the last batch queued */
	unsigned inflight;            /* batches queued and not yet written */
	int removed;                  /* the last batch queued removes the entry */
};

struct store_qwatch {
	store_qwatch *next;
	tern_io *io;
	void (*fn)(void *arg);
	void *arg;
};

/* What a queue batch's hook needs once it is written. */
typedef struct queue_hook_arg {
	uint8_t id[16];
	int inserted;
} queue_hook_arg;

/* The in-flight record of id (q_mu held), created when `create`. */
static store_qflight *qflight_find(store *st, const uint8_t id[16], int create)
{
	store_qflight *f;

	for (f = st->qflight; f; f = f->next)
		if (memcmp(f->id, id, 16) == 0)
			return f;
	if (!create)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	memcpy(f->id, id, 16);
	f->next = st->qflight;
	st->qflight = f;
	return f;
}

static void qflight_drop(store *st, store_qflight *f)
{
	for (store_qflight **pp = &st->qflight; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			free(f);
			return;
		}
	}
}

/* Post every queue watcher (commit thread, after a durable insertion). */
static void notify_watchers(store *st)
{
	pthread_mutex_lock(&st->qw_mu);
	for (store_qwatch *w = st->qwatches; w; w = w->next) {
		if (w->io)
			tern_io_post(w->io, w->fn, w->arg);
		else
			w->fn(w->arg);
	}
	pthread_mutex_unlock(&st->qw_mu);
}

/* Commit-thread hook of every queue batch: one batch of the entry less in flight. */
static void queue_hook(store *st, store_commit *c, int rc)
{
	queue_hook_arg *h = c->hook_arg;

	pthread_mutex_lock(&st->q_mu);
	store_qflight *f = qflight_find(st, h->id, 0);

	if (f && --f->inflight == 0)
		qflight_drop(st, f);
	pthread_mutex_unlock(&st->q_mu);
	if (rc != STORE_OK) {
		char id[37];

		tern_uuid_str(h->id, id);
		tlog(TLOG_ERROR, "store: queue write for %s failed: %s", id, c->error);
	} else if (h->inserted) {
		notify_watchers(st);
	}
	free(h);
	c->hook_arg = NULL;
}

/* Count c in flight for entry f and give it the queue hook (q_mu held). */
static void track(store_commit *c, store_qflight *f, int inserted)
{
	queue_hook_arg *h = calloc(1, sizeof(*h));

	if (!h)
		abort();
	memcpy(h->id, f->id, 16);
	h->inserted = inserted;
	c->hook = queue_hook;
	c->hook_arg = h;
	f->inflight++;
}

static void put_entry(store *st, rocksdb_writebatch_t *wb, const Tern__QueueEntry *e)
{
	uint8_t k[SK_QUEUE_LEN];

	sk_queue(k, e->id.data);
	store_wb_put_record(wb, st, CF_QUEUE, k, sizeof(k), &e->base);
}

static void put_index(store *st, rocksdb_writebatch_t *wb, uint64_t next_try, const uint8_t id[16])
{
	uint8_t k[SK_QUEUE_INDEX_LEN];

	sk_queue_index(k, next_try, id);
	rocksdb_writebatch_put_cf(wb, st->cf[CF_QUEUE], (const char *)k, sizeof(k), "", 0);
}

static void delete_index(store *st, rocksdb_writebatch_t *wb, uint64_t next_try, const uint8_t id[16])
{
	uint8_t k[SK_QUEUE_INDEX_LEN];

	sk_queue_index(k, next_try, id);
	rocksdb_writebatch_delete_cf(wb, st->cf[CF_QUEUE], (const char *)k, sizeof(k));
}

void store_queue_enqueue_new(store *st, store_commit *c, const Tern__QueueEntry *e,
			     store_mbx **ms, size_t n)
{
	uint8_t rk[SK_BLOBREF_LEN];
	Tern__BlobRef r = TERN__BLOB_REF__INIT;

	put_entry(st, c->wb, e);
	put_index(st, c->wb, e->next_try, e->id.data);
	r.time = (uint64_t)tern_now();
	sk_queue_blobref(rk, e->blob.data, e->id.data);
	store_wb_put_record(c->wb, st, CF_BLOBREF, rk, sizeof(rk), &r.base);
	pthread_mutex_lock(&st->q_mu);
	store_qflight *f = qflight_find(st, e->id.data, 1);

	memcpy(f->sha, e->blob.data, 32);
	f->next_try = e->next_try;
	f->removed = 0;
	track(c, f, 1);
	if (n > 0)
		store_mbx_enqueue(st, c, ms, n);
	else
		store_commit_enqueue(st, c);
	pthread_mutex_unlock(&st->q_mu);
}

static int get_entry(store *st, const uint8_t id[16], Tern__QueueEntry **e_r)
{
	uint8_t k[SK_QUEUE_LEN];

	sk_queue(k, id);
	return store_db_get_record(st, CF_QUEUE, k, sizeof(k), &tern__queue_entry__descriptor,
				   (ProtobufCMessage **)e_r);
}

int store_queue_get(store *st, const uint8_t id[16], Tern__QueueEntry **e_r)
{
	*e_r = NULL;
	return get_entry(st, id, e_r);
}

int store_queue_exists(store *st, const uint8_t id[16])
{
	uint8_t k[SK_QUEUE_LEN];
	int found;

	pthread_mutex_lock(&st->q_mu);
	store_qflight *f = qflight_find(st, id, 0);

	pthread_mutex_unlock(&st->q_mu);
	if (f)
		return 1;
	sk_queue(k, id);
	found = store_db_exists(st, CF_QUEUE, k, sizeof(k));
	return found;
}

/* The current state of entry id (q_mu held): its body hash and next try, from the
 * batches in flight or else from the database. */
static int current_state(store *st, const uint8_t id[16], uint8_t sha[32], uint64_t *next_try)
{
	store_qflight *f = qflight_find(st, id, 0);
	Tern__QueueEntry *e = NULL;
	int rc;

	if (f) {
		if (f->removed)
			return STORE_ENOTFOUND;
		memcpy(sha, f->sha, 32);
		*next_try = f->next_try;
		return STORE_OK;
	}
	if ((rc = get_entry(st, id, &e)) != STORE_OK)
		return rc;
	if (e->blob.len != 32) {
		tern__queue_entry__free_unpacked(e, NULL);
		return STORE_EIO;
	}
	memcpy(sha, e->blob.data, 32);
	*next_try = e->next_try;
	tern__queue_entry__free_unpacked(e, NULL);
	return STORE_OK;
}

/* Queue c for entry id (q_mu held, released here) and finish like the other writers. */
static int queue_finish(store *st, store_commit *c, store_qflight *f, store_sync_result *res_r)
{
	int blocking = c->cb.fn == NULL;

	track(c, f, 0);
	store_commit_enqueue(st, c);
	pthread_mutex_unlock(&st->q_mu);
	if (!blocking)
		return STORE_OK;
	store_commit_wait(st, c);
	return store_commit_run(st, c, res_r);
}

int store_queue_update(store *st, const Tern__QueueEntry *e, store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	Tern__QueueEntry copy;
	uint8_t sha[32];
	uint64_t old;
	int rc;

	if (!e || e->id.len != 16)
		return store_commit_fail(st, c, res_r, STORE_EINVAL, "bad queue id");
	memcpy(c->res.id, e->id.data, 16);
	pthread_mutex_lock(&st->q_mu);
	if ((rc = current_state(st, e->id.data, sha, &old)) != STORE_OK) {
		pthread_mutex_unlock(&st->q_mu);
		return store_commit_fail(st, c, res_r, rc, "%s",
					 rc == STORE_ENOTFOUND ? "no such queue entry" : store_strerror(rc));
	}
	/* The body stays the one the blobref row holds, whatever the caller passed. */
	copy = *e;
	copy.blob.data = sha;
	copy.blob.len = 32;
	put_entry(st, c->wb, &copy);
	if (old != e->next_try)
		delete_index(st, c->wb, old, e->id.data);
	put_index(st, c->wb, e->next_try, e->id.data);
	store_qflight *f = qflight_find(st, e->id.data, 1);

	memcpy(f->sha, sha, 32);
	f->next_try = e->next_try;
	return queue_finish(st, c, f, res_r);
}

int store_queue_remove(store *st, const uint8_t id[16], store_cb cb, store_sync_result *res_r)
{
	store_commit *c = store_commit_new(cb);
	uint8_t k[SK_QUEUE_LEN], rk[SK_BLOBREF_LEN], sha[32];
	uint64_t old;
	int rc;

	memcpy(c->res.id, id, 16);
	pthread_mutex_lock(&st->q_mu);
	if ((rc = current_state(st, id, sha, &old)) != STORE_OK) {
		pthread_mutex_unlock(&st->q_mu);
		return store_commit_fail(st, c, res_r, rc, "%s",
					 rc == STORE_ENOTFOUND ? "no such queue entry" : store_strerror(rc));
	}
	sk_queue(k, id);
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_QUEUE], (const char *)k, sizeof(k));
	delete_index(st, c->wb, old, id);
	sk_queue_blobref(rk, sha, id);
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_BLOBREF], (const char *)rk, sizeof(rk));
	store_blob_mark_orphan(st, c->wb, sha);
	store_qflight *f = qflight_find(st, id, 1);

	memcpy(f->sha, sha, 32);
	f->removed = 1;
	return queue_finish(st, c, f, res_r);
}

/* ---- reads ---- */

typedef struct entry_list {
	Tern__QueueEntry **v;
	size_t n, cap, max;
	int64_t now;
	store *st;
	uint8_t (*stale)[SK_QUEUE_INDEX_LEN];   /* index rows without a matching entry */
	size_t nstale, stale_cap;
} entry_list;

static void list_push(entry_list *l, Tern__QueueEntry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	l->v[l->n++] = e;
}

static int collect_entry(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	entry_list *l = arg;
	uint8_t id[16];
	Tern__QueueEntry *e;

	if (sk_queue_parse(k, kn, id) != 0)
		return 0;
	e = tern__queue_entry__unpack(NULL, vn, (const uint8_t *)v);
	if (!e) {
		tlog(TLOG_ERROR, "store: unreadable queue entry skipped");
		return 0;
	}
	list_push(l, e);
	return 0;
}

static int by_created(const void *a, const void *b)
{
	const Tern__QueueEntry *x = *(Tern__QueueEntry *const *)a;
	const Tern__QueueEntry *y = *(Tern__QueueEntry *const *)b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return memcmp(x->id.data, y->id.data, x->id.len < y->id.len ? x->id.len : y->id.len);
}

int store_queue_list(store *st, Tern__QueueEntry ***list_r, size_t *n_r)
{
	entry_list l = { 0 };
	const uint8_t prefix = SK_QUEUE_ENTRY;
	int rc = store_db_scan(st, CF_QUEUE, &prefix, 1, NULL, 0, collect_entry, &l);

	if (rc != 0) {
		store_free_list((void **)l.v, l.n);
		*list_r = NULL;
		*n_r = 0;
		return STORE_EIO;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_created);
	*list_r = l.v;
	*n_r = l.n;
	return STORE_OK;
}

static int collect_due(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	entry_list *l = arg;
	Tern__QueueEntry *e = NULL;
	uint64_t next_try;
	uint8_t id[16];

	(void)v;
	(void)vn;
	if (sk_queue_index_parse(k, kn, &next_try, id) != 0)
		return 0;
	if (l->now < 0 || next_try > (uint64_t)l->now)
		return 1;
	int rc = get_entry(l->st, id, &e);

	if (rc == STORE_EIO)
		return STORE_EIO;
	if (rc != STORE_OK || e->next_try != next_try) {
		/* Left behind by a failed write, or the entry just changed: checked again. */
		if (e)
			tern__queue_entry__free_unpacked(e, NULL);
		if (l->nstale == l->stale_cap) {
			l->stale_cap = l->stale_cap ? 2 * l->stale_cap : 4;
			l->stale = realloc(l->stale, l->stale_cap * sizeof(*l->stale));
			if (!l->stale)
				abort();
		}
		memcpy(l->stale[l->nstale++], k, SK_QUEUE_INDEX_LEN);
		return 0;
	}
	list_push(l, e);
	return l->max && l->n >= l->max ? 1 : 0;
}

static void ignore_result(const store_result *res, void *arg)
{
	(void)res;
	(void)arg;
}

/* Delete index rows that match no entry. Under q_mu, with no batch of the entry in
 * flight, the database is current: a row still without its entry is stale. The batch is
 * queued without waiting (due may be called from an I/O thread). */
static void purge_stale(store *st, entry_list *l)
{
	store_commit *c = store_commit_new((store_cb){ ignore_result, NULL, NULL });

	pthread_mutex_lock(&st->q_mu);
	for (size_t i = 0; i < l->nstale; i++) {
		Tern__QueueEntry *e = NULL;
		uint64_t next_try;
		uint8_t id[16];

		if (sk_queue_index_parse(l->stale[i], SK_QUEUE_INDEX_LEN, &next_try, id) != 0 ||
		    qflight_find(st, id, 0))
			continue;
		int rc = get_entry(st, id, &e);

		if (rc == STORE_ENOTFOUND || (rc == STORE_OK && e->next_try != next_try))
			delete_index(st, c->wb, next_try, id);
		if (e)
			tern__queue_entry__free_unpacked(e, NULL);
	}
	if (rocksdb_writebatch_count(c->wb) > 0) {
		store_commit_enqueue(st, c);
		c = NULL;
	}
	pthread_mutex_unlock(&st->q_mu);
	store_commit_free(&c);
}

int store_queue_due(store *st, int64_t now, size_t max, Tern__QueueEntry ***list_r, size_t *n_r)
{
	entry_list l = { 0 };
	const uint8_t prefix = SK_QUEUE_INDEX;

	l.now = now;
	l.max = max;
	l.st = st;
	int rc = store_db_scan(st, CF_QUEUE, &prefix, 1, NULL, 0, collect_due, &l);

	if (l.nstale)
		purge_stale(st, &l);
	free(l.stale);
	if (rc < 0) {
		store_free_list((void **)l.v, l.n);
		*list_r = NULL;
		*n_r = 0;
		return STORE_EIO;
	}
	*list_r = l.v;
	*n_r = l.n;
	return STORE_OK;
}

/* ---- watchers ---- */

void store_queue_watch(store *st, tern_io *io, void (*fn)(void *arg), void *arg)
{
	store_qwatch *w = calloc(1, sizeof(*w));

	if (!w)
		abort();
	w->io = io;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&st->qw_mu);
	w->next = st->qwatches;
	st->qwatches = w;
	pthread_mutex_unlock(&st->qw_mu);
}

void store_queue_free_all(store *st)
{
	while (st->qwatches) {
		store_qwatch *w = st->qwatches;

		st->qwatches = w->next;
		free(w);
	}
	while (st->qflight) {
		store_qflight *f = st->qflight;

		st->qflight = f->next;
		free(f);
	}
}
