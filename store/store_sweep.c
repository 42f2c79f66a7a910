/* store_sweep.c - housekeeping threads: the blob sweeper (deletes blobs that lost their
 * last reference more than blob_grace seconds ago) and the disk watchdog (free space of
 * the database's file system against the soft and hard limits, guide ch. 12.8). */
#include "store_private.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

typedef struct orphan {
	uint8_t sha[32];
	uint64_t since;
} orphan;

typedef struct orphan_list {
	orphan *v;
	size_t n, cap;
} orphan_list;

static int collect_orphan(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	orphan_list *l = arg;
	Tern__BlobOrphan *o;
	orphan item;

	if (sk_blobgc_parse(k, kn, item.sha) != 0)
		return 0;
	o = tern__blob_orphan__unpack(NULL, vn, (const uint8_t *)v);
	item.since = o ? o->since : 0;
	if (o)
		tern__blob_orphan__free_unpacked(o, NULL);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	l->v[l->n++] = item;
	return 0;
}

static int stop_at_first(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	return 1;
}

/* Delete one orphan blob: 1 deleted, 0 kept (still referenced, held or in grace). */
static int sweep_one(store *st, const orphan *o, rocksdb_writebatch_t *unmark, int64_t now)
{
	uint8_t lo[SK_BLOB_LEN], hi[SK_SHA_LEN];
	tbuf gk = TBUF_INIT;
	store_commit *c;
	int referenced;

	sk_blobgc(&gk, o->sha);
	pthread_mutex_lock(&st->blob_mu);
	referenced = store_db_scan(st, CF_BLOBREF, o->sha, 32, NULL, 0, stop_at_first, NULL);
	if (referenced != 0) {
		pthread_mutex_unlock(&st->blob_mu);
		if (referenced > 0)
			rocksdb_writebatch_delete_cf(unmark, st->cf[CF_CONFIG], gk.data, gk.len);
		tbuf_free(&gk);
		return 0;
	}
	if ((int64_t)o->since + st->opt.blob_grace > now || !store_blob_begin_delete(st, o->sha)) {
		pthread_mutex_unlock(&st->blob_mu);
		tbuf_free(&gk);
		return 0;
	}
	c = store_commit_new(STORE_SYNC);
	sk_blob(lo, o->sha, 0);
	if (sk_prefix_end(o->sha, 32, hi) == 0)
		rocksdb_writebatch_delete_range_cf(c->wb, st->cf[CF_BLOB], (const char *)lo, sizeof(lo),
						   (const char *)hi, sizeof(hi));
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_CONFIG], gk.data, gk.len);
	store_blob_set_delete_hook(c, o->sha);
	/* Queued under blob_mu: a writer that wants this blob now queues after us. */
	store_commit_enqueue(st, c);
	pthread_mutex_unlock(&st->blob_mu);
	tbuf_free(&gk);
	store_commit_wait(st, c);
	int rc = c->res.rc;

	store_commit_free(&c);
	return rc == STORE_OK;
}

int store_sweep(store *st)
{
	orphan_list l = { NULL, 0, 0 };
	int64_t now = tern_now();
	int deleted = 0;

	pthread_mutex_lock(&st->sweep_mu);
	store_db_scan(st, CF_CONFIG, SK_BLOBGC_PREFIX, strlen(SK_BLOBGC_PREFIX), NULL, 0,
		      collect_orphan, &l);
	rocksdb_writebatch_t *unmark = rocksdb_writebatch_create();

	for (size_t i = 0; i < l.n; i++)
		deleted += sweep_one(st, &l.v[i], unmark, now);
	if (rocksdb_writebatch_count(unmark) > 0) {
		store_commit *c = store_commit_new(STORE_SYNC);

		rocksdb_writebatch_destroy(c->wb);
		c->wb = unmark;
		unmark = NULL;
		store_commit_enqueue(st, c);
		store_commit_wait(st, c);
		store_commit_free(&c);
	}
	if (unmark)
		rocksdb_writebatch_destroy(unmark);
	free(l.v);
	pthread_mutex_unlock(&st->sweep_mu);
	if (deleted)
		atomic_fetch_add(&st->blobs_swept, (uint64_t)deleted);
	return deleted;
}

/* ---- disk watchdog ---- */

void store_disk_check(store *st)
{
	struct statvfs sv;

	if (statvfs(st->path, &sv) != 0) {
		tlog(TLOG_ERROR, "store: cannot check free disk space of %s: %s", st->path,
		     strerror(errno));
		return;
	}
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	int state = STORE_DISK_OK;

	if (st->opt.disk_hard_limit && avail < st->opt.disk_hard_limit)
		state = STORE_DISK_HARD;
	else if (st->opt.disk_soft_limit && avail < st->opt.disk_soft_limit)
		state = STORE_DISK_SOFT;
	atomic_store(&st->free_disk, avail);
	int old = atomic_exchange(&st->disk_state, state);

	if (old == state)
		return;
	unsigned long long mb = (unsigned long long)(avail >> 20);

	if (state == STORE_DISK_HARD) {
		tlog(TLOG_ERROR, "free disk space on %s is %llu MB, below the hard limit of %llu MB: "
		     "new mail is refused", st->path, mb,
		     (unsigned long long)(st->opt.disk_hard_limit >> 20));
	} else if (state == STORE_DISK_SOFT) {
		tlog(TLOG_WARNING, "free disk space on %s is %llu MB, below the soft limit of %llu MB",
		     st->path, mb, (unsigned long long)(st->opt.disk_soft_limit >> 20));
		tlog(TLOG_ERROR, "free disk space on %s is %llu MB, below the soft limit of %llu MB",
		     st->path, mb, (unsigned long long)(st->opt.disk_soft_limit >> 20));
	} else {
		tlog(TLOG_WARNING, "free disk space on %s is back to %llu MB", st->path, mb);
	}
}

store_disk_state store_disk(store *st)
{
	return (store_disk_state)atomic_load(&st->disk_state);
}

/* Sleep up to `seconds` on hk_cond; 1 when asked to stop. */
static int hk_sleep(store *st, int64_t seconds)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&st->hk_mu);
	while (!st->hk_stop) {
		if (pthread_cond_timedwait(&st->hk_cond, &st->hk_mu, &ts) == ETIMEDOUT)
			break;
	}
	stop = st->hk_stop;
	pthread_mutex_unlock(&st->hk_mu);
	return stop;
}

static void *sweep_main(void *arg)
{
	store *st = arg;

	while (!hk_sleep(st, st->opt.sweep_interval))
		store_sweep(st);
	return NULL;
}

static void *disk_main(void *arg)
{
	store *st = arg;

	while (!hk_sleep(st, st->opt.disk_check_interval))
		store_disk_check(st);
	return NULL;
}

int store_sweep_start(store *st, char **error_r)
{
	store_disk_check(st);
	if (st->opt.sweep_interval > 0) {
		if (pthread_create(&st->sweep_thr, NULL, sweep_main, st) != 0)
			goto fail;
		st->sweep_started = 1;
	}
	if (st->opt.disk_check_interval > 0) {
		if (pthread_create(&st->disk_thr, NULL, disk_main, st) != 0)
			goto fail;
		st->disk_started = 1;
	}
	return 0;
fail:
	*error_r = strdup("cannot start the store housekeeping threads");
	store_sweep_stop(st);
	return -1;
}

void store_sweep_stop(store *st)
{
	pthread_mutex_lock(&st->hk_mu);
	st->hk_stop = 1;
	pthread_cond_broadcast(&st->hk_cond);
	pthread_mutex_unlock(&st->hk_mu);
	if (st->sweep_started)
		pthread_join(st->sweep_thr, NULL);
	if (st->disk_started)
		pthread_join(st->disk_thr, NULL);
	st->sweep_started = st->disk_started = 0;
}
