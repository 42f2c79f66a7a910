/* store_directory.c - the directory mapping of each domain (config CF "directory/<domain>",
 * DirectoryConfig records). Writers run on the config thread like every account change,
 * so a mapping never outlives its domain's existence check. The bind password is stored
 * as given: node/directory hands it over encrypted. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIRECTORY_PREFIX "directory/"
#define DIRECTORY_TEXT_MAX 1024

static void dir_key(tbuf *k, const char *domain)
{
	char *d = store_lower_dup(domain);

	tbuf_reset(k);
	tbuf_append_str(k, DIRECTORY_PREFIX);
	tbuf_append_str(k, d);
	free(d);
}

int store_directory_get(store *st, const char *domain, Tern__DirectoryConfig **c_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	*c_r = NULL;
	if (domain == NULL || !tern_valid_domain(domain))
		return STORE_ENOTFOUND;
	dir_key(&k, domain);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__directory_config__descriptor,
				 (ProtobufCMessage **)c_r);
	tbuf_free(&k);
	return rc;
}

int store_directory_list(store *st, Tern__DirectoryConfig ***list_r, size_t *n_r)
{
	tbuf p = TBUF_INIT;
	int rc;

	tbuf_append_str(&p, DIRECTORY_PREFIX);
	rc = store_config_list(st, &p, &tern__directory_config__descriptor, (void ***)list_r, n_r);
	tbuf_free(&p);
	return rc;
}

/* Text fields are bounded; enums in range; a server is required. */
static int check_directory(store *st, store_commit *c, const Tern__DirectoryConfig *d)
{
	const char *texts[] = { d->server, d->backup_server, d->ca_file, d->bind_dn, d->search_base,
				d->directory_domain, d->realm };

	if (!d->domain || !tern_valid_domain(d->domain) || store_domain_exists(st, d->domain) != 1)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist",
				     d->domain ? d->domain : "");
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i] && strlen(texts[i]) > DIRECTORY_TEXT_MAX)
			return store_cfg_err(c, STORE_EINVAL, "directory setting longer than %d bytes",
					     DIRECTORY_TEXT_MAX);
	if (!d->server || !d->server[0])
		return store_cfg_err(c, STORE_EINVAL, "directory server of %s is missing", d->domain);
	if ((unsigned)d->type > TERN__DIRECTORY_CONFIG__TYPE__OD ||
	    (unsigned)d->tls > TERN__DIRECTORY_CONFIG__TLS__STARTTLS ||
	    (unsigned)d->auth > TERN__DIRECTORY_CONFIG__AUTH__BIND)
		return store_cfg_err(c, STORE_EINVAL, "bad directory type, TLS or auth value");
	if (d->bind_password.len > DIRECTORY_TEXT_MAX)
		return store_cfg_err(c, STORE_EINVAL, "bind password too long");
	return STORE_OK;
}

static int apply_directory_put(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__DirectoryConfig *d = (Tern__DirectoryConfig *)j->rec;
	tbuf k = TBUF_INIT;
	int rc;

	if ((rc = check_directory(st, c, d)) != STORE_OK)
		return rc;
	char *dom = store_lower_dup(d->domain);

	free(d->domain);
	d->domain = dom;
	dir_key(&k, d->domain);
	store_cfg_put(st, c, &k, &d->base);
	tbuf_free(&k);
	return STORE_OK;
}

int store_directory_put(store *st, const Tern__DirectoryConfig *c, store_cb cb,
			store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_directory_put, &c->base, NULL, NULL, NULL,
						      NULL), cb, res_r);
}

/* s[0] domain, s[1] poll stamp, s[2] reconcile time (decimal). Unchanged stamps write
 * nothing: the row is shared, and a sync loop that stamps every poll would otherwise add
 * a change record per poll to the master's change log. */
static int apply_directory_stamp(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__DirectoryConfig *d = NULL;
	tbuf k = TBUF_INIT;
	uint64_t poll = strtoull(j->s[1], NULL, 10), reconcile = strtoull(j->s[2], NULL, 10);

	if (store_directory_get(st, j->s[0], &d) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s has no directory mapping", j->s[0]);
	if (d->last_poll_stamp == poll && d->last_reconcile == reconcile) {
		store_free_record(d);
		return STORE_OK;
	}
	d->last_poll_stamp = poll;
	d->last_reconcile = reconcile;
	dir_key(&k, d->domain);
	store_cfg_put(st, c, &k, &d->base);
	tbuf_free(&k);
	store_free_record(d);
	return STORE_OK;
}

int store_directory_stamp(store *st, const char *domain, uint64_t last_poll_stamp,
			  uint64_t last_reconcile, store_cb cb, store_sync_result *res_r)
{
	char p[24], r[24];

	snprintf(p, sizeof(p), "%llu", (unsigned long long)last_poll_stamp);
	snprintf(r, sizeof(r), "%llu", (unsigned long long)last_reconcile);
	return store_cfg_submit(st, store_cfg_job_new(apply_directory_stamp, NULL, domain ? domain : "",
						      p, r, NULL), cb, res_r);
}

static int apply_directory_remove(store *st, store_cfg_job *j, store_commit *c)
{
	tbuf k = TBUF_INIT;
	Tern__DirectoryConfig *d = NULL;

	if (store_directory_get(st, j->s[0], &d) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s has no directory mapping", j->s[0]);
	dir_key(&k, d->domain);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	store_free_record(d);
	return STORE_OK;
}

int store_directory_remove(store *st, const char *domain, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_directory_remove, NULL, domain ? domain : "",
						      NULL, NULL, NULL), cb, res_r);
}
