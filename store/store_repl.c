/* store_repl.c - replication of the shared config rows (DESIGN.md §5): the modes, the
 * master's change log (each record written in the batch of the change it describes,
 * numbered on the config thread so that seqs follow commit order), reading and
 * compacting the log and snapshots of the shared rows. The slave side (applying records
 * and snapshots) is in store_repl_apply.c. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_REFUSAL "distributed-domain settings are changed on the master"

int store_repl_key_is_shared(const void *key, size_t n)
{
	return key && sk_config_shared(key, n);
}

/* Wall clock in unix milliseconds: the time of a record, a fresh epoch. */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int store_repl_load(store *st, char **error_r)
{
	Tern__ReplState *s = NULL;
	int rc = store_db_get_record(st, CF_CONFIG, SK_REPL_STATE, strlen(SK_REPL_STATE),
				     &tern__repl_state__descriptor, (ProtobufCMessage **)&s);

	if (rc == STORE_ENOTFOUND)
		return 0;
	if (rc != STORE_OK) {
		*error_r = strdup("cannot read the replication state of the store");
		return -1;
	}
	st->repl_epoch = s->epoch;
	st->repl_seq = s->seq;
	tern__repl_state__free_unpacked(s, NULL);
	return 0;
}

void store_repl_free(store *st)
{
	free(st->repl_refusal);
	st->repl_refusal = NULL;
	free(st->node_name);
	st->node_name = NULL;
}

/* Commit thread, once a batch carrying "repl/state" is written: the state in memory
 * follows the durable one; a master's watcher learns of the new record. */
static void repl_hook(store *st, store_commit *c, int rc)
{
	void (*fn)(void *) = NULL;
	void *arg = NULL;

	if (rc != STORE_OK)
		return;
	pthread_mutex_lock(&st->repl_mu);
	st->repl_epoch = c->repl_epoch;
	st->repl_seq = c->repl_seq;
	if (c->repl_log) {
		fn = st->repl_watch_fn;
		arg = st->repl_watch_arg;
	}
	pthread_mutex_unlock(&st->repl_mu);
	if (fn)
		fn(arg);
}

void store_repl_set_state(store *st, store_commit *c, uint64_t epoch, uint64_t seq, int log)
{
	Tern__ReplState s = TERN__REPL_STATE__INIT;

	s.epoch = epoch;
	s.seq = seq;
	store_wb_put_record(c->wb, st, CF_CONFIG, SK_REPL_STATE, strlen(SK_REPL_STATE), &s.base);
	c->repl_epoch = epoch;
	c->repl_seq = seq;
	c->repl_log = log;
	c->hook = repl_hook;
}

/* Add the change record of c's shared rows (n of them) as (epoch, seq). */
static void log_change(store *st, store_commit *c, size_t n, uint64_t epoch, uint64_t seq)
{
	Tern__ChangeRecord r = TERN__CHANGE_RECORD__INIT;
	uint8_t k[SK_CHANGELOG_LEN];
	size_t m = 0;

	r.ops = malloc(n * sizeof(*r.ops));
	if (!r.ops)
		abort();
	for (size_t i = 0; i < c->ncfg_ops; i++) {
		Tern__ConfigOp *op = c->cfg_ops[i];

		if (sk_config_shared(op->key.data, op->key.len))
			r.ops[m++] = op;
	}
	r.n_ops = m;
	r.epoch = epoch;
	r.seq = seq;
	r.time = now_ms();
	sk_changelog(k, epoch, seq);
	store_wb_put_record(c->wb, st, CF_CHANGELOG, k, sizeof(k), &r.base);
	free(r.ops);
	store_repl_set_state(st, c, epoch, seq, 1);
}

int store_repl_job_check(store *st, store_cfg_job *j, store_commit *c)
{
	size_t n = 0;
	int rc = STORE_OK;

	for (size_t i = 0; i < c->ncfg_ops; i++)
		n += sk_config_shared(c->cfg_ops[i]->key.data, c->cfg_ops[i]->key.len) != 0;
	if (n == 0 || j->replicated)
		return STORE_OK;
	pthread_mutex_lock(&st->repl_mu);
	if (st->repl_mode == STORE_REPL_SLAVE) {
		rc = store_cfg_err(c, STORE_EREFUSED, "%s",
				   st->repl_refusal ? st->repl_refusal : DEFAULT_REFUSAL);
	} else if (st->repl_mode == STORE_REPL_MASTER) {
		/* One job at a time, and the previous one's hook ran before it finished:
		 * repl_seq is the durable head. */
		uint64_t epoch = st->repl_epoch, seq = st->repl_seq + 1;

		pthread_mutex_unlock(&st->repl_mu);
		log_change(st, c, n, epoch, seq);
		return STORE_OK;
	}
	pthread_mutex_unlock(&st->repl_mu);
	return rc;
}

/* ---- modes ---- */

/* s[0] mode, s[1] new epoch (decimal), s[2] refusal. The state is written here; the
 * mode changes in after_set_mode, between this job and the next. */
static int apply_set_mode(store *st, store_cfg_job *j, store_commit *c)
{
	store_repl_mode mode = (store_repl_mode)strtoul(j->s[0], NULL, 10);
	uint64_t new_epoch = strtoull(j->s[1], NULL, 10), epoch, seq;

	if (mode != STORE_REPL_MASTER)
		return STORE_OK;
	pthread_mutex_lock(&st->repl_mu);
	epoch = st->repl_epoch;
	seq = st->repl_seq;
	pthread_mutex_unlock(&st->repl_mu);
	if (new_epoch != 0 || epoch == 0) {
		/* A master's epoch is never 0: a first one is made from the clock. */
		epoch = new_epoch ? new_epoch : now_ms();
		seq = 0;
		store_repl_set_state(st, c, epoch, seq, 0);
	}
	store_users_claim_homes(st, c);
	return STORE_OK;
}

static void after_set_mode(store *st, store_cfg_job *j, int rc)
{
	if (rc != STORE_OK)
		return;
	pthread_mutex_lock(&st->repl_mu);
	st->repl_mode = (store_repl_mode)strtoul(j->s[0], NULL, 10);
	free(st->repl_refusal);
	st->repl_refusal = j->s[2] && j->s[2][0] ? strdup(j->s[2]) : NULL;
	pthread_mutex_unlock(&st->repl_mu);
}

int store_repl_set_mode(store *st, store_repl_mode mode, uint64_t new_epoch, const char *refusal)
{
	char m[8], e[24];
	store_cfg_job *j;

	if (mode != STORE_REPL_OFF && mode != STORE_REPL_MASTER && mode != STORE_REPL_SLAVE)
		return STORE_EINVAL;
	snprintf(m, sizeof(m), "%d", (int)mode);
	snprintf(e, sizeof(e), "%llu", (unsigned long long)new_epoch);
	j = store_cfg_job_new(apply_set_mode, NULL, m, e, refusal, NULL);
	j->after = after_set_mode;
	return store_cfg_submit(st, j, STORE_SYNC, NULL);
}

store_repl_mode store_repl_get_mode(store *st)
{
	store_repl_mode m;

	pthread_mutex_lock(&st->repl_mu);
	m = st->repl_mode;
	pthread_mutex_unlock(&st->repl_mu);
	return m;
}

void store_set_node_name(store *st, const char *name)
{
	pthread_mutex_lock(&st->repl_mu);
	free(st->node_name);
	st->node_name = name && name[0] ? strdup(name) : NULL;
	pthread_mutex_unlock(&st->repl_mu);
}

const char *store_node_name(const store *st)
{
	return st->node_name;
}

int store_repl_state(store *st, uint64_t *epoch_r, uint64_t *seq_r)
{
	pthread_mutex_lock(&st->repl_mu);
	if (epoch_r)
		*epoch_r = st->repl_epoch;
	if (seq_r)
		*seq_r = st->repl_seq;
	pthread_mutex_unlock(&st->repl_mu);
	return STORE_OK;
}

void store_repl_watch(store *st, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&st->repl_mu);
	st->repl_watch_fn = fn;
	st->repl_watch_arg = fn ? arg : NULL;
	pthread_mutex_unlock(&st->repl_mu);
}

/* ---- the log ---- */

typedef struct read_ctx {
	uint64_t next, last;         /* the seq expected next; the head */
	size_t max;
	Tern__ChangeRecord **list;
	size_t n;
	int bad;
} read_ctx;

static int read_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	read_ctx *r = arg;
	uint64_t epoch, seq;
	Tern__ChangeRecord *rec;

	if (sk_changelog_parse(k, kn, &epoch, &seq) != 0 || seq != r->next || seq > r->last)
		return 1;
	rec = tern__change_record__unpack(NULL, vn, (const uint8_t *)v);
	if (!rec) {
		r->bad = 1;
		return 1;
	}
	r->list[r->n++] = rec;
	r->next++;
	return r->n == r->max;
}

int store_repl_read(store *st, uint64_t epoch, uint64_t after, size_t max,
		    Tern__ChangeRecord ***list_r, size_t *n_r)
{
	uint8_t prefix[8], from[SK_CHANGELOG_LEN];
	read_ctx r = { 0 };
	uint64_t head_epoch, head_seq;
	int rc;

	*list_r = NULL;
	*n_r = 0;
	store_repl_state(st, &head_epoch, &head_seq);
	if (epoch == 0 || epoch != head_epoch || after > head_seq)
		return STORE_ENOTFOUND;
	if (after == head_seq)
		return STORE_OK;
	/* max 0: everything up to the head. */
	if (max == 0 || max > head_seq - after)
		max = (size_t)(head_seq - after);
	r.next = after + 1;
	r.last = head_seq;
	r.max = max;
	r.list = calloc(max, sizeof(*r.list));
	if (!r.list)
		abort();
	tern_be64_put(prefix, epoch);
	sk_changelog(from, epoch, after + 1);
	rc = store_db_scan(st, CF_CHANGELOG, prefix, sizeof(prefix), from, sizeof(from), read_one, &r);
	if (rc < 0 || r.bad || r.n == 0) {
		store_free_list((void **)r.list, r.n);
		/* No record right after `after`: compacted away. */
		return rc < 0 || r.bad ? STORE_EIO : STORE_ENOTFOUND;
	}
	*list_r = r.list;
	*n_r = r.n;
	return STORE_OK;
}

int store_repl_compact(store *st, uint64_t keep)
{
	uint8_t lo[SK_CHANGELOG_LEN], hi[SK_CHANGELOG_LEN];
	store_sync_result res;
	uint64_t epoch, seq;
	store_commit *c;

	store_repl_state(st, &epoch, &seq);
	if (epoch == 0)
		return STORE_OK;
	/* Every older epoch, and the head epoch's records up to seq - keep. */
	memset(lo, 0, sizeof(lo));
	sk_changelog(hi, epoch, seq >= keep ? seq - keep + 1 : 0);
	c = store_commit_new(STORE_SYNC);
	rocksdb_writebatch_delete_range_cf(c->wb, st->cf[CF_CHANGELOG], (const char *)lo, sizeof(lo),
					   (const char *)hi, sizeof(hi));
	store_commit_enqueue(st, c);
	store_commit_wait(st, c);
	return store_commit_run(st, c, &res);
}

/* ---- snapshots ---- */

typedef struct snap_ctx {
	Tern__ChangeRecord *r;
	size_t cap;
} snap_ctx;

static int snap_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	snap_ctx *s = arg;
	Tern__ConfigOp *op = malloc(sizeof(*op));

	if (!op)
		abort();
	tern__config_op__init(op);
	op->key.data = malloc(kn);
	op->value.data = malloc(vn ? vn : 1);
	if (!op->key.data || !op->value.data)
		abort();
	memcpy(op->key.data, k, kn);
	op->key.len = kn;
	memcpy(op->value.data, v, vn);
	op->value.len = vn;
	if (s->r->n_ops == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->r->ops = realloc(s->r->ops, s->cap * sizeof(*s->r->ops));
		if (!s->r->ops)
			abort();
	}
	s->r->ops[s->r->n_ops++] = op;
	return 0;
}

/* On the config thread, between two changes: the shared rows and the head they match.
 * Writes nothing. */
static int apply_snapshot_take(store *st, store_cfg_job *j, store_commit *c)
{
	snap_ctx s = { NULL, 0 };

	s.r = malloc(sizeof(*s.r));
	if (!s.r)
		abort();
	tern__change_record__init(s.r);
	s.r->snapshot = 1;
	s.r->time = now_ms();
	store_repl_state(st, &s.r->epoch, &s.r->seq);
	for (const char *const *p = SK_SHARED_PREFIXES; *p; p++) {
		if (store_db_scan(st, CF_CONFIG, *p, strlen(*p), NULL, 0, snap_one, &s) != 0) {
			tern__change_record__free_unpacked(s.r, NULL);
			return store_cfg_err(c, STORE_EIO, "cannot read the shared rows");
		}
	}
	*j->out_r = s.r;
	return STORE_OK;
}

int store_repl_snapshot(store *st, Tern__ChangeRecord **snap_r)
{
	store_cfg_job *j = store_cfg_job_new(apply_snapshot_take, NULL, NULL, NULL, NULL, NULL);

	*snap_r = NULL;
	j->out_r = (void **)snap_r;
	return store_cfg_submit(st, j, STORE_SYNC, NULL);
}
