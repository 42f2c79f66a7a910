/* store_config.c - the config thread that applies account changes one at a time, in
 * submission order, so every check sees every earlier change; shared helpers of the
 * account code (every config row a job writes is recorded for replication); node
 * settings. Domains are in store_domains.c, users in store_accounts.c, groups and
 * aliases in store_groups.c, IP groups in store_ipgroup.c. */
#include "store_private.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_TEXT_MAX 255

/* ---- the config thread ---- */

static ProtobufCMessage *copy_record(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(n ? n : 1);
	ProtobufCMessage *r;

	if (!p)
		abort();
	protobuf_c_message_pack(m, p);
	r = protobuf_c_message_unpack(m->descriptor, NULL, n, p);
	free(p);
	if (!r)
		abort();
	return r;
}

store_cfg_job *store_cfg_job_new(int (*apply)(store *, store_cfg_job *, store_commit *),
				 const ProtobufCMessage *rec, const char *s0, const char *s1,
				 const char *s2, const char *s3)
{
	store_cfg_job *j = calloc(1, sizeof(*j));
	const char *s[4] = { s0, s1, s2, s3 };

	if (!j)
		abort();
	j->apply = apply;
	j->rec = rec ? copy_record(rec) : NULL;
	for (int i = 0; i < 4; i++)
		j->s[i] = s[i] ? strdup(s[i]) : NULL;
	return j;
}

static void job_free(store_cfg_job **jp)
{
	store_cfg_job *j = *jp;

	*jp = NULL;
	if (j->rec)
		protobuf_c_message_free_unpacked(j->rec, NULL);
	for (int i = 0; i < 4; i++)
		free(j->s[i]);
	free(j);
}

int store_cfg_submit(store *st, store_cfg_job *j, store_cb cb, store_sync_result *res_r)
{
	int rc;

	j->c = store_commit_new(cb);
	j->c->waiting = 1;
	j->blocking = cb.fn == NULL;
	j->sync = res_r;
	pthread_mutex_lock(&st->cfg_mu);
	if (st->cfg_stop) {
		pthread_mutex_unlock(&st->cfg_mu);
		store_commit *c = j->c;

		j->c = NULL;
		job_free(&j);
		c->waiting = 0;
		return store_commit_fail(st, c, res_r, STORE_EIO, "the store is closing");
	}
	j->next = NULL;
	if (st->cfg_tail)
		st->cfg_tail->next = j;
	else
		st->cfg_head = j;
	st->cfg_tail = j;
	pthread_cond_broadcast(&st->cfg_cond);
	if (!j->blocking) {
		pthread_mutex_unlock(&st->cfg_mu);
		return STORE_OK;
	}
	while (!j->done)
		pthread_cond_wait(&st->cfg_cond, &st->cfg_mu);
	pthread_mutex_unlock(&st->cfg_mu);
	rc = j->rc;
	job_free(&j);
	return rc;
}

/* Validate, check against the replication mode (a slave refuses shared rows, a master
 * logs them in the same batch), commit, wait until durable, then complete the caller:
 * the next job runs only after this one is on disk. A job that writes nothing is not
 * committed. */
static void run_job(store *st, store_cfg_job *j)
{
	store_commit *c = j->c;
	int rc = j->apply(st, j, c);

	if (rc == STORE_OK)
		rc = store_repl_job_check(st, j, c);
	c->res.rc = rc;
	if (rc == STORE_OK && rocksdb_writebatch_count(c->wb) > 0) {
		store_commit_enqueue(st, c);
		store_commit_wait(st, c);
		rc = c->res.rc;
	}
	for (size_t i = 0; i < c->ngone; i++)
		store_mailbox_removed(st, c->gone[i], rc);
	for (size_t i = 0; i < c->ndav_gone; i++)
		store_dav_owner_removed(st, c->dav_gone[i], rc);
	if (j->after)
		j->after(st, j, rc);
	j->c = NULL;
	if (j->blocking) {
		store_commit_run(st, c, j->sync);
		pthread_mutex_lock(&st->cfg_mu);
		j->rc = rc;
		j->done = 1;
		pthread_cond_broadcast(&st->cfg_cond);
		pthread_mutex_unlock(&st->cfg_mu);
	} else {
		store_commit_run(st, c, NULL);
		job_free(&j);
	}
}

static void *config_main(void *arg)
{
	store *st = arg;

	pthread_mutex_lock(&st->cfg_mu);
	for (;;) {
		while (!st->cfg_head && !st->cfg_stop)
			pthread_cond_wait(&st->cfg_cond, &st->cfg_mu);
		if (!st->cfg_head)
			break;
		store_cfg_job *j = st->cfg_head;

		st->cfg_head = j->next;
		if (!st->cfg_head)
			st->cfg_tail = NULL;
		pthread_mutex_unlock(&st->cfg_mu);
		run_job(st, j);
		pthread_mutex_lock(&st->cfg_mu);
	}
	pthread_mutex_unlock(&st->cfg_mu);
	return NULL;
}

int store_config_start(store *st, char **error_r)
{
	if (pthread_create(&st->cfg_thr, NULL, config_main, st) != 0) {
		*error_r = strdup("cannot start the store config thread");
		return -1;
	}
	st->cfg_started = 1;
	return 0;
}

/* Finish the queued account changes, then stop. */
void store_config_stop(store *st)
{
	if (!st->cfg_started)
		return;
	pthread_mutex_lock(&st->cfg_mu);
	st->cfg_stop = 1;
	pthread_cond_broadcast(&st->cfg_cond);
	pthread_mutex_unlock(&st->cfg_mu);
	pthread_join(st->cfg_thr, NULL);
	st->cfg_started = 0;
}

/* ---- helpers ---- */

int store_cfg_err(store_commit *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return rc;
}

char *store_lower_dup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		abort();
	tern_lower(d);
	return d;
}

int store_domain_exists(store *st, const char *domain)
{
	tbuf k = TBUF_INIT;
	int rc;

	sk_domain(&k, domain);
	rc = store_db_exists(st, CF_CONFIG, k.data, k.len);
	tbuf_free(&k);
	return rc;
}

int store_addr_owner(store *st, const char *domain, const char *local, Tern__AddressOwner **o_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	sk_addr(&k, domain, local);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__address_owner__descriptor,
				 (ProtobufCMessage **)o_r);
	tbuf_free(&k);
	return rc;
}

void store_cfg_put_addr(store *st, store_commit *c, const char *domain, const char *local,
			Tern__AddressOwner__Kind kind, const char *name)
{
	Tern__AddressOwner o = TERN__ADDRESS_OWNER__INIT;
	tbuf k = TBUF_INIT;

	o.kind = kind;
	o.name = (char *)name;
	sk_addr(&k, domain, local);
	store_cfg_put(st, c, &k, &o.base);
	tbuf_free(&k);
}

/* One recorded config-CF op (key, value or deletion) appended to c->cfg_ops. */
static void record_op(store_commit *c, const void *k, size_t kn, const void *v, size_t vn,
		      int del)
{
	Tern__ConfigOp *op = malloc(sizeof(*op));

	if (!op)
		abort();
	tern__config_op__init(op);
	op->key.data = malloc(kn ? kn : 1);
	op->key.len = kn;
	if (!op->key.data)
		abort();
	memcpy(op->key.data, k, kn);
	if (!del && vn) {
		op->value.data = malloc(vn);
		if (!op->value.data)
			abort();
		memcpy(op->value.data, v, vn);
		op->value.len = vn;
	}
	op->delete_ = del != 0;
	if (c->ncfg_ops == c->cfg_ops_cap) {
		c->cfg_ops_cap = c->cfg_ops_cap ? 2 * c->cfg_ops_cap : 8;
		c->cfg_ops = realloc(c->cfg_ops, c->cfg_ops_cap * sizeof(*c->cfg_ops));
		if (!c->cfg_ops)
			abort();
	}
	c->cfg_ops[c->ncfg_ops++] = op;
}

void store_cfg_put_raw(store *st, store_commit *c, const void *k, size_t kn, const void *v,
		       size_t vn)
{
	rocksdb_writebatch_put_cf(c->wb, st->cf[CF_CONFIG], k, kn, v, vn);
	record_op(c, k, kn, v, vn, 0);
}

void store_cfg_put(store *st, store_commit *c, const tbuf *k, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(n ? n : 1);

	if (!p)
		abort();
	protobuf_c_message_pack(m, p);
	store_cfg_put_raw(st, c, k->data, k->len, p, n);
	free(p);
}

void store_cfg_delete(store *st, store_commit *c, const void *k, size_t kn)
{
	rocksdb_writebatch_delete_cf(c->wb, st->cf[CF_CONFIG], k, kn);
	record_op(c, k, kn, NULL, 0, 1);
}

void store_cfg_mailbox_gone(store_commit *c, const uint8_t user[16])
{
	c->gone = realloc(c->gone, (c->ngone + 1) * sizeof(*c->gone));
	if (!c->gone)
		abort();
	memcpy(c->gone[c->ngone++], user, 16);
}

static int count_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	(*(unsigned *)arg)++;
	return 0;
}

unsigned store_config_count(store *st, const tbuf *prefix)
{
	unsigned n = 0;

	store_db_scan(st, CF_CONFIG, prefix->data, prefix->len, NULL, 0, count_one, &n);
	return n;
}

typedef struct list_ctx {
	const ProtobufCMessageDescriptor *desc;
	void **list;
	size_t n, cap;
	int bad;
} list_ctx;

static int list_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	list_ctx *l = arg;
	ProtobufCMessage *m = protobuf_c_message_unpack(l->desc, NULL, vn, (const uint8_t *)v);

	if (!m) {
		l->bad = 1;
		return 1;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->list = realloc(l->list, l->cap * sizeof(*l->list));
		if (!l->list)
			abort();
	}
	l->list[l->n++] = m;
	return 0;
}

int store_config_list(store *st, const tbuf *prefix, const ProtobufCMessageDescriptor *desc,
		      void ***list_r, size_t *n_r)
{
	list_ctx l = { desc, NULL, 0, 0, 0 };
	int rc = store_db_scan(st, CF_CONFIG, prefix->data, prefix->len, NULL, 0, list_one, &l);

	if (rc < 0 || l.bad) {
		store_free_list(l.list, l.n);
		return STORE_EIO;
	}
	*list_r = l.list;
	*n_r = l.n;
	return STORE_OK;
}

int store_config_list_domain(store *st, void (*prefix)(tbuf *, const char *), const char *domain,
			     const ProtobufCMessageDescriptor *desc, void ***list_r, size_t *n_r)
{
	tbuf p = TBUF_INIT;
	int rc;

	prefix(&p, domain);
	rc = store_config_list(st, &p, desc, list_r, n_r);
	tbuf_free(&p);
	return rc;
}

unsigned store_config_count_domain(store *st, void (*prefix)(tbuf *, const char *),
				   const char *domain)
{
	tbuf p = TBUF_INIT;
	unsigned n;

	prefix(&p, domain);
	n = store_config_count(st, &p);
	tbuf_free(&p);
	return n;
}

int store_config_get(store *st, void (*key)(tbuf *, const char *, const char *),
		     const char *domain, const char *name, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **m_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	key(&k, domain, name);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, desc, m_r);
	tbuf_free(&k);
	return rc;
}

/* ---- settings ---- */

int store_setting_get(store *st, const char *key, char **value_r)
{
	tbuf k = TBUF_INIT;
	char *v = NULL;
	size_t vn = 0;
	int rc;

	sk_setting(&k, key);
	rc = store_db_get(st, CF_CONFIG, k.data, k.len, &v, &vn);
	tbuf_free(&k);
	if (rc != STORE_OK)
		return rc;
	*value_r = strndup(v, vn);
	free(v);
	return *value_r ? STORE_OK : STORE_EIO;
}

static int apply_setting_put(store *st, store_cfg_job *j, store_commit *c)
{
	tbuf k = TBUF_INIT;

	if (!j->s[0][0] || strlen(j->s[0]) > NAME_TEXT_MAX)
		return store_cfg_err(c, STORE_EINVAL, "invalid setting name '%s'", j->s[0]);
	/* The store's own UIDVALIDITY mark (store_mailbox.c) must only grow. */
	if (strcasecmp(j->s[0], "uidvalidity") == 0)
		return store_cfg_err(c, STORE_EREFUSED, "setting %s is kept by the store", j->s[0]);
	sk_setting(&k, j->s[0]);
	store_cfg_put_raw(st, c, k.data, k.len, j->s[1], strlen(j->s[1]));
	tbuf_free(&k);
	return STORE_OK;
}

int store_setting_put(store *st, const char *key, const char *value, store_cb cb,
		      store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_setting_put, NULL, key ? key : "",
						      value ? value : "", NULL, NULL), cb, res_r);
}
