/* store_repl_apply.c - the slave side of replication: a change record, or a snapshot
 * of the master's shared rows, applied in one batch with the new "repl/state", the
 * mailboxes following the homes the user rows give. Both run as jobs on the config
 * thread, so they serialize with the node's own (node-local) account changes. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

static int is_user_key(const ProtobufCBinaryData *k)
{
	size_t pn = strlen(SK_USER_PREFIX);

	return k->len > pn && memcmp(k->data, SK_USER_PREFIX, pn) == 0;
}

/* The applied state, or a refusal on a master (its rows are the source, not a copy). */
static int check_mode(store *st, store_commit *c, uint64_t *epoch_r, uint64_t *seq_r)
{
	store_repl_mode mode;

	pthread_mutex_lock(&st->repl_mu);
	mode = st->repl_mode;
	*epoch_r = st->repl_epoch;
	*seq_r = st->repl_seq;
	pthread_mutex_unlock(&st->repl_mu);
	if (mode == STORE_REPL_MASTER)
		return store_cfg_err(c, STORE_EREFUSED, "this node is the master: it does not apply "
				     "replicated changes");
	return STORE_OK;
}

/* Every row of r is a shared row; a snapshot holds puts only. */
static int check_ops(store_commit *c, const Tern__ChangeRecord *r)
{
	for (size_t i = 0; i < r->n_ops; i++) {
		const Tern__ConfigOp *op = r->ops[i];

		if (!sk_config_shared(op->key.data, op->key.len))
			return store_cfg_err(c, STORE_EINVAL, "change record %llu/%llu writes a row "
					     "that is not shared", (unsigned long long)r->epoch,
					     (unsigned long long)r->seq);
		if (r->snapshot && op->delete_)
			return store_cfg_err(c, STORE_EINVAL, "a snapshot holds rows, not deletions");
	}
	return STORE_OK;
}

static Tern__User *unpack_user(store_commit *c, const Tern__ConfigOp *op)
{
	Tern__User *u = tern__user__unpack(NULL, op->value.len, op->value.data);

	if (!u || u->id.len != 16) {
		if (u)
			tern__user__free_unpacked(u, NULL);
		store_cfg_err(c, STORE_EINVAL, "a replicated user record is malformed");
		return NULL;
	}
	return u;
}

static int has_id(Tern__User **list, size_t n, const uint8_t id[16])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(list[i]->id.data, id, 16) == 0)
			return 1;
	return 0;
}

static void push_user(Tern__User ***list, size_t *n, Tern__User *u)
{
	*list = realloc(*list, (*n + 1) * sizeof(**list));
	if (!*list)
		abort();
	(*list)[(*n)++] = u;
}

/* Mailboxes follow the user rows of a record: for each user key, its last op counts; a
 * user whose key was deleted and not put again under another key (a domain rename
 * moves keys, keeping the id) is gone. */
static int record_homes(store *st, store_commit *c, const Tern__ChangeRecord *r)
{
	Tern__User **put = NULL, **gone = NULL;
	size_t nput = 0, ngone = 0;
	int rc = STORE_OK;

	for (size_t i = 0; i < r->n_ops && rc == STORE_OK; i++) {
		const Tern__ConfigOp *op = r->ops[i];
		size_t m;

		if (!is_user_key(&op->key))
			continue;
		for (m = i + 1; m < r->n_ops; m++)
			if (r->ops[m]->key.len == op->key.len &&
			    memcmp(r->ops[m]->key.data, op->key.data, op->key.len) == 0)
				break;
		if (m < r->n_ops)
			continue;
		if (!op->delete_) {
			Tern__User *u = unpack_user(c, op);

			if (u)
				push_user(&put, &nput, u);
			else
				rc = STORE_EINVAL;
			continue;
		}
		Tern__User *old = NULL;

		if (store_db_get_record(st, CF_CONFIG, op->key.data, op->key.len,
					&tern__user__descriptor, (ProtobufCMessage **)&old) == STORE_OK) {
			if (old->id.len == 16)
				push_user(&gone, &ngone, old);
			else
				tern__user__free_unpacked(old, NULL);
		}
	}
	for (size_t i = 0; i < nput && rc == STORE_OK; i++)
		rc = store_home_follow(st, c, put[i]->id.data, put[i], NULL, STORE_HOME_REPL);
	for (size_t i = 0; i < ngone && rc == STORE_OK; i++)
		if (!has_id(put, nput, gone[i]->id.data))
			rc = store_home_follow(st, c, gone[i]->id.data, NULL, NULL, STORE_HOME_REPL);
	store_free_list((void **)put, nput);
	store_free_list((void **)gone, ngone);
	return rc;
}

static int apply_record(store *st, store_cfg_job *j, store_commit *c)
{
	const Tern__ChangeRecord *r = (const Tern__ChangeRecord *)j->rec;
	uint64_t epoch, seq;
	int rc;

	if ((rc = check_mode(st, c, &epoch, &seq)) != STORE_OK)
		return rc;
	if (r->snapshot)
		return store_cfg_err(c, STORE_EINVAL, "a snapshot is not a change record");
	/* A replay of what is applied already: nothing to write. */
	if (r->epoch != 0 && r->epoch == epoch && r->seq <= seq)
		return STORE_OK;
	if (r->epoch == 0 || r->epoch != epoch || r->seq != seq + 1)
		return store_cfg_err(c, STORE_EINVAL, "change record %llu/%llu does not follow the "
				     "applied %llu/%llu", (unsigned long long)r->epoch,
				     (unsigned long long)r->seq, (unsigned long long)epoch,
				     (unsigned long long)seq);
	if ((rc = check_ops(c, r)) != STORE_OK || (rc = record_homes(st, c, r)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < r->n_ops; i++) {
		const Tern__ConfigOp *op = r->ops[i];

		if (op->delete_)
			store_cfg_delete(st, c, op->key.data, op->key.len);
		else
			store_cfg_put_raw(st, c, op->key.data, op->key.len, op->value.data,
					  op->value.len);
	}
	store_repl_set_state(st, c, r->epoch, r->seq, 0);
	return STORE_OK;
}

int store_repl_apply(store *st, const Tern__ChangeRecord *r, store_cb cb, store_sync_result *res_r)
{
	store_cfg_job *j = store_cfg_job_new(apply_record, &r->base, NULL, NULL, NULL, NULL);

	j->replicated = 1;
	return store_cfg_submit(st, j, cb, res_r);
}

/* ---- snapshots ---- */

typedef struct snap_apply {
	store *st;
	store_commit *c;
	Tern__ConfigOp **ops;        /* the snapshot's rows sorted by key */
	size_t n;
	unsigned char *same;         /* per row: already stored with this value */
	Tern__User **gone;           /* users whose rows the snapshot lacks */
	size_t ngone;
} snap_apply;

static int key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int d = memcmp(a, b, an < bn ? an : bn);

	return d ? d : an < bn ? -1 : an > bn;
}

static int op_cmp(const void *a, const void *b)
{
	const Tern__ConfigOp *x = *(Tern__ConfigOp *const *)a, *y = *(Tern__ConfigOp *const *)b;

	return key_cmp(x->key.data, x->key.len, y->key.data, y->key.len);
}

/* Index of key k in the sorted rows, or -1. */
static long find_row(const snap_apply *s, const char *k, size_t kn)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const Tern__ConfigOp *op = s->ops[mid];
		int d = key_cmp(op->key.data, op->key.len, k, kn);

		if (d == 0)
			return (long)mid;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* One shared row stored here: kept when the snapshot has it unchanged, deleted when the
 * snapshot lacks it. */
static int sync_row(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	snap_apply *s = arg;
	long i = find_row(s, k, kn);
	ProtobufCBinaryData key = { kn, (uint8_t *)k };

	if (i >= 0) {
		const Tern__ConfigOp *op = s->ops[i];

		s->same[i] = op->value.len == vn && (vn == 0 || memcmp(op->value.data, v, vn) == 0);
		return 0;
	}
	store_cfg_delete(s->st, s->c, k, kn);
	if (is_user_key(&key)) {
		Tern__User *u = tern__user__unpack(NULL, vn, (const uint8_t *)v);

		if (u && u->id.len == 16)
			push_user(&s->gone, &s->ngone, u);
		else if (u)
			tern__user__free_unpacked(u, NULL);
	}
	return 0;
}

/* Mailboxes follow the snapshot's users; users it lacks keep a mailbox with data. */
static int snapshot_homes(store *st, store_commit *c, snap_apply *s)
{
	Tern__User **users = NULL;
	size_t n = 0;
	int rc = STORE_OK;

	for (size_t i = 0; i < s->n && rc == STORE_OK; i++) {
		if (!is_user_key(&s->ops[i]->key))
			continue;
		Tern__User *u = unpack_user(c, s->ops[i]);

		if (!u) {
			rc = STORE_EINVAL;
			break;
		}
		push_user(&users, &n, u);
		rc = store_home_follow(st, c, u->id.data, u, NULL, STORE_HOME_SNAPSHOT);
	}
	for (size_t i = 0; i < s->ngone && rc == STORE_OK; i++)
		if (!has_id(users, n, s->gone[i]->id.data))
			rc = store_home_follow(st, c, s->gone[i]->id.data, NULL, NULL,
					       STORE_HOME_SNAPSHOT);
	store_free_list((void **)users, n);
	return rc;
}

static int apply_snapshot(store *st, store_cfg_job *j, store_commit *c)
{
	const Tern__ChangeRecord *r = (const Tern__ChangeRecord *)j->rec;
	snap_apply s = { st, c, NULL, r->n_ops, NULL, NULL, 0 };
	uint64_t epoch, seq;
	int rc;

	if ((rc = check_mode(st, c, &epoch, &seq)) != STORE_OK)
		return rc;
	if (!r->snapshot || r->epoch == 0)
		return store_cfg_err(c, STORE_EINVAL, "not a snapshot of a master");
	if ((rc = check_ops(c, r)) != STORE_OK)
		return rc;
	s.ops = malloc((s.n ? s.n : 1) * sizeof(*s.ops));
	s.same = calloc(s.n ? s.n : 1, 1);
	if (!s.ops || !s.same)
		abort();
	if (s.n)
		memcpy(s.ops, r->ops, s.n * sizeof(*s.ops));
	qsort(s.ops, s.n, sizeof(*s.ops), op_cmp);
	for (size_t i = 1; i < s.n && rc == STORE_OK; i++)
		if (op_cmp(&s.ops[i - 1], &s.ops[i]) == 0)
			rc = store_cfg_err(c, STORE_EINVAL, "a snapshot lists a row twice");
	for (const char *const *p = SK_SHARED_PREFIXES; *p && rc == STORE_OK; p++)
		if (store_db_scan(st, CF_CONFIG, *p, strlen(*p), NULL, 0, sync_row, &s) != 0)
			rc = store_cfg_err(c, STORE_EIO, "cannot read the shared rows");
	if (rc == STORE_OK)
		rc = snapshot_homes(st, c, &s);
	if (rc == STORE_OK) {
		for (size_t i = 0; i < s.n; i++)
			if (!s.same[i])
				store_cfg_put_raw(st, c, s.ops[i]->key.data, s.ops[i]->key.len,
						  s.ops[i]->value.data, s.ops[i]->value.len);
		store_repl_set_state(st, c, r->epoch, r->seq, 0);
	}
	free(s.ops);
	free(s.same);
	store_free_list((void **)s.gone, s.ngone);
	return rc;
}

int store_repl_apply_snapshot(store *st, const Tern__ChangeRecord *snap, store_cb cb,
			      store_sync_result *res_r)
{
	store_cfg_job *j = store_cfg_job_new(apply_snapshot, &snap->base, NULL, NULL, NULL, NULL);

	j->replicated = 1;
	return store_cfg_submit(st, j, cb, res_r);
}
