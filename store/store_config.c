/* store_config.c - the config thread that applies account changes one at a time, in
 * submission order, so every check sees every earlier change; shared helpers of the
 * account code; domains and node settings. Users, groups and aliases are in
 * store_accounts.c, IP groups in store_ipgroup.c. */
#include "store_private.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_TEXT_MAX 255
#define FOOTER_MAX 8192
#define RETENTION_MAX 365

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

/* Validate, commit, wait until durable, then complete the caller: the next job runs
 * only after this one is on disk. */
static void run_job(store *st, store_cfg_job *j)
{
	store_commit *c = j->c;
	int rc = j->apply(st, j, c);

	c->res.rc = rc;
	if (rc == STORE_OK) {
		store_commit_enqueue(st, c);
		store_commit_wait(st, c);
		rc = c->res.rc;
	}
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

void store_wb_put_addr(store *st, rocksdb_writebatch_t *wb, const char *domain, const char *local,
		       Tern__AddressOwner__Kind kind, const char *name)
{
	Tern__AddressOwner o = TERN__ADDRESS_OWNER__INIT;
	tbuf k = TBUF_INIT;

	o.kind = kind;
	o.name = (char *)name;
	sk_addr(&k, domain, local);
	store_wb_put_record(wb, st, CF_CONFIG, k.data, k.len, &o.base);
	tbuf_free(&k);
}

void store_wb_delete_text(store *st, rocksdb_writebatch_t *wb, enum store_cf cf, const tbuf *k)
{
	rocksdb_writebatch_delete_cf(wb, st->cf[cf], k->data, k->len);
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

/* ---- domains ---- */

int store_domain_get(store *st, const char *name, Tern__Domain **d_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	sk_domain(&k, name);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__domain__descriptor,
				 (ProtobufCMessage **)d_r);
	tbuf_free(&k);
	return rc;
}

int store_domain_resolve(store *st, const char *name, char *domain_r, size_t n)
{
	Tern__DomainAlias *a = NULL;
	tbuf k = TBUF_INIT;
	int rc = store_domain_exists(st, name);

	if (rc == 1) {
		char *l = store_lower_dup(name);

		rc = (size_t)snprintf(domain_r, n, "%s", l) < n ? STORE_OK : STORE_EINVAL;
		free(l);
		return rc;
	}
	if (rc < 0)
		return rc;
	sk_domalias(&k, name);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__domain_alias__descriptor,
				 (ProtobufCMessage **)&a);
	tbuf_free(&k);
	if (rc != STORE_OK)
		return rc;
	rc = (size_t)snprintf(domain_r, n, "%s", a->domain) < n ? STORE_OK : STORE_EINVAL;
	tern__domain_alias__free_unpacked(a, NULL);
	return rc;
}

int store_domain_list(store *st, Tern__Domain ***list_r, size_t *n_r)
{
	tbuf p = TBUF_INIT;
	int rc;

	tbuf_append_str(&p, SK_DOMAIN_PREFIX);
	rc = store_config_list(st, &p, &tern__domain__descriptor, (void ***)list_r, n_r);
	tbuf_free(&p);
	return rc;
}

unsigned store_domain_user_count(store *st, const char *domain)
{
	return store_config_count_domain(st, sk_user_prefix, domain);
}

/* Settings of a domain record that every writer checks. */
static int check_domain_fields(store_commit *c, const Tern__Domain *d)
{
	if (d->description && strlen(d->description) > NAME_TEXT_MAX)
		return store_cfg_err(c, STORE_EINVAL, "description of domain %s is longer than %d bytes",
				     d->name, NAME_TEXT_MAX);
	if (d->footer && strlen(d->footer) > FOOTER_MAX)
		return store_cfg_err(c, STORE_EINVAL, "footer of domain %s is longer than %d bytes",
				     d->name, FOOTER_MAX);
	if (d->deleted_retention_days > RETENTION_MAX)
		return store_cfg_err(c, STORE_EINVAL, "deleted items retention of domain %s is over "
				     "%d days", d->name, RETENTION_MAX);
	return STORE_OK;
}

/* A new domain alias `a` for domain `d`: valid, not a domain, not another's alias. */
static int check_new_domalias(store *st, store_commit *c, const char *d, const char *a)
{
	Tern__DomainAlias *old = NULL;
	tbuf k = TBUF_INIT;
	int rc;

	if (!tern_valid_domain(a))
		return store_cfg_err(c, STORE_EINVAL, "invalid domain alias '%s'", a);
	if (strcasecmp(a, d) == 0 || store_domain_exists(st, a) == 1)
		return store_cfg_err(c, STORE_EEXISTS, "domain alias %s is already a domain", a);
	sk_domalias(&k, a);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__domain_alias__descriptor,
				 (ProtobufCMessage **)&old);
	tbuf_free(&k);
	if (rc == STORE_OK) {
		int mine = strcasecmp(old->domain, d) == 0;

		tern__domain_alias__free_unpacked(old, NULL);
		if (!mine)
			return store_cfg_err(c, STORE_EEXISTS, "domain alias %s already exists", a);
	}
	return STORE_OK;
}

static void put_domalias(store *st, rocksdb_writebatch_t *wb, const char *alias, const char *d)
{
	Tern__DomainAlias da = TERN__DOMAIN_ALIAS__INIT;
	char *l = store_lower_dup(d);
	tbuf k = TBUF_INIT;

	da.domain = l;
	sk_domalias(&k, alias);
	store_wb_put_record(wb, st, CF_CONFIG, k.data, k.len, &da.base);
	tbuf_free(&k);
	free(l);
}

static void delete_domalias(store *st, rocksdb_writebatch_t *wb, const char *alias)
{
	tbuf k = TBUF_INIT;

	sk_domalias(&k, alias);
	store_wb_delete_text(st, wb, CF_CONFIG, &k);
	tbuf_free(&k);
}

static void put_domain(store *st, rocksdb_writebatch_t *wb, const Tern__Domain *d)
{
	tbuf k = TBUF_INIT;

	sk_domain(&k, d->name);
	store_wb_put_record(wb, st, CF_CONFIG, k.data, k.len, &d->base);
	tbuf_free(&k);
}

static int has_primary(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	(void)arg;
	return 1;
}

static int apply_domain_add(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Domain *d = (Tern__Domain *)j->rec;
	tbuf p = TBUF_INIT;
	int rc;

	if (!d->name || strlen(d->name) > 253 || !tern_valid_domain(d->name))
		return store_cfg_err(c, STORE_EINVAL, "invalid domain name '%s'", d->name ? d->name : "");
	if ((rc = check_domain_fields(c, d)) != STORE_OK)
		return rc;
	if (store_domain_exists(st, d->name) == 1)
		return store_cfg_err(c, STORE_EEXISTS, "domain %s already exists", d->name);
	sk_domalias(&p, d->name);
	if (store_db_exists(st, CF_CONFIG, p.data, p.len) == 1) {
		tbuf_free(&p);
		return store_cfg_err(c, STORE_EEXISTS, "%s is already a domain alias", d->name);
	}
	for (size_t i = 0; i < d->n_aliases; i++) {
		for (size_t m = 0; m < i; m++)
			if (strcasecmp(d->aliases[i], d->aliases[m]) == 0) {
				tbuf_free(&p);
				return store_cfg_err(c, STORE_EINVAL, "domain alias %s is listed twice",
						     d->aliases[i]);
			}
		if ((rc = check_new_domalias(st, c, d->name, d->aliases[i])) != STORE_OK) {
			tbuf_free(&p);
			return rc;
		}
	}
	tbuf_reset(&p);
	tbuf_append_str(&p, SK_DOMAIN_PREFIX);
	d->primary = store_db_scan(st, CF_CONFIG, p.data, p.len, NULL, 0, has_primary, NULL) == 0;
	tbuf_free(&p);
	if (!d->created)
		d->created = (uint64_t)tern_now();
	put_domain(st, c->wb, d);
	for (size_t i = 0; i < d->n_aliases; i++)
		put_domalias(st, c->wb, d->aliases[i], d->name);
	return STORE_OK;
}

int store_domain_add(store *st, const Tern__Domain *d, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_domain_add, &d->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}

static int apply_domain_update(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Domain *d = (Tern__Domain *)j->rec, *old = NULL;
	int rc;

	if (!d->name || store_domain_get(st, d->name, &old) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist", d->name ? d->name : "");
	if ((rc = check_domain_fields(c, d)) != STORE_OK)
		goto out;
	for (size_t i = 0; i < d->n_aliases; i++)
		if ((rc = check_new_domalias(st, c, old->name, d->aliases[i])) != STORE_OK)
			goto out;
	for (size_t i = 0; i < old->n_aliases; i++) {
		size_t m;

		for (m = 0; m < d->n_aliases; m++)
			if (strcasecmp(old->aliases[i], d->aliases[m]) == 0)
				break;
		if (m == d->n_aliases)
			delete_domalias(st, c->wb, old->aliases[i]);
	}
	free(d->name);
	d->name = strdup(old->name);
	d->primary = old->primary;
	d->created = old->created;
	put_domain(st, c->wb, d);
	for (size_t i = 0; i < d->n_aliases; i++)
		put_domalias(st, c->wb, d->aliases[i], d->name);
	rc = STORE_OK;
out:
	tern__domain__free_unpacked(old, NULL);
	return rc;
}

int store_domain_update(store *st, const Tern__Domain *d, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_domain_update, &d->base, NULL, NULL, NULL,
						      NULL), cb, res_r);
}

static int apply_domain_remove(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Domain *d = NULL;
	unsigned n;
	tbuf k = TBUF_INIT;

	if (store_domain_get(st, j->s[0], &d) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist", j->s[0]);
	int rc = STORE_EREFUSED;

	if (d->primary)
		store_cfg_err(c, rc, "%s is the primary domain", d->name);
	else if ((n = store_config_count_domain(st, sk_user_prefix, d->name)) > 0)
		store_cfg_err(c, rc, "domain %s still has %u user%s", d->name, n, n > 1 ? "s" : "");
	else if ((n = store_config_count_domain(st, sk_group_prefix, d->name)) > 0)
		store_cfg_err(c, rc, "domain %s still has %u group%s", d->name, n, n > 1 ? "s" : "");
	else if ((n = store_config_count_domain(st, sk_alias_prefix, d->name)) > 0)
		store_cfg_err(c, rc, "domain %s still has %u alias%s", d->name, n, n > 1 ? "es" : "");
	else {
		rc = STORE_OK;
		sk_domain(&k, d->name);
		store_wb_delete_text(st, c->wb, CF_CONFIG, &k);
		for (size_t i = 0; i < d->n_aliases; i++)
			delete_domalias(st, c->wb, d->aliases[i]);
	}
	tbuf_free(&k);
	tern__domain__free_unpacked(d, NULL);
	return rc;
}

int store_domain_remove(store *st, const char *name, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_domain_remove, NULL, name, NULL, NULL, NULL),
				cb, res_r);
}

static int apply_set_primary(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Domain **list = NULL;
	size_t n = 0;
	int found = 0;

	if (store_domain_list(st, &list, &n) != STORE_OK)
		return store_cfg_err(c, STORE_EIO, "cannot read the domains");
	for (size_t i = 0; i < n; i++) {
		int want = strcasecmp(list[i]->name, j->s[0]) == 0;

		found |= want;
		if ((list[i]->primary != 0) != want) {
			list[i]->primary = want;
			put_domain(st, c->wb, list[i]);
		}
	}
	store_free_list((void **)list, n);
	if (!found)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist", j->s[0]);
	return STORE_OK;
}

int store_domain_set_primary(store *st, const char *name, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_set_primary, NULL, name, NULL, NULL, NULL),
				cb, res_r);
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
	rocksdb_writebatch_put_cf(c->wb, st->cf[CF_CONFIG], k.data, k.len, j->s[1], strlen(j->s[1]));
	tbuf_free(&k);
	return STORE_OK;
}

int store_setting_put(store *st, const char *key, const char *value, store_cb cb,
		      store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_setting_put, NULL, key ? key : "",
						      value ? value : "", NULL, NULL), cb, res_r);
}
