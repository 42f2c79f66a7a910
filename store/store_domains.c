/* store_domains.c - domains and domain aliases (config CF "domain/", "domalias/").
 * Every writer runs on the config thread (store_config.c), one at a time; the rename
 * of a domain is in store_accounts.c. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_TEXT_MAX 255
#define FOOTER_MAX 8192
#define RETENTION_MAX 365

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

static void put_domalias(store *st, store_commit *c, const char *alias, const char *d)
{
	Tern__DomainAlias da = TERN__DOMAIN_ALIAS__INIT;
	char *l = store_lower_dup(d);
	tbuf k = TBUF_INIT;

	da.domain = l;
	sk_domalias(&k, alias);
	store_cfg_put(st, c, &k, &da.base);
	tbuf_free(&k);
	free(l);
}

static void delete_domalias(store *st, store_commit *c, const char *alias)
{
	tbuf k = TBUF_INIT;

	sk_domalias(&k, alias);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
}

static void put_domain(store *st, store_commit *c, const Tern__Domain *d)
{
	tbuf k = TBUF_INIT;

	sk_domain(&k, d->name);
	store_cfg_put(st, c, &k, &d->base);
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
	put_domain(st, c, d);
	for (size_t i = 0; i < d->n_aliases; i++)
		put_domalias(st, c, d->aliases[i], d->name);
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
			delete_domalias(st, c, old->aliases[i]);
	}
	free(d->name);
	d->name = strdup(old->name);
	d->primary = old->primary;
	d->created = old->created;
	put_domain(st, c, d);
	for (size_t i = 0; i < d->n_aliases; i++)
		put_domalias(st, c, d->aliases[i], d->name);
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
	else if ((n = store_config_count_domain(st, sk_resource_prefix, d->name)) > 0)
		store_cfg_err(c, rc, "domain %s still has %u resource%s", d->name, n,
			      n > 1 ? "s" : "");
	else {
		rc = STORE_OK;
		sk_domain(&k, d->name);
		store_cfg_delete(st, c, k.data, k.len);
		for (size_t i = 0; i < d->n_aliases; i++)
			delete_domalias(st, c, d->aliases[i]);
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
			put_domain(st, c, list[i]);
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
