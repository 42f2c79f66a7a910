/* store_resource.c - rooms and equipment (config CF "resource/<d>/<name>", shared). A
 * resource's name is its address in the domain, taken in "addr/" like a user's (kind
 * RESOURCE), so one address has one owner. Its calendar lives in the dav CF under its
 * id; removing the resource removes those rows in the same batch. Writers run on the
 * config thread. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

#define LOCAL_MAX 64
#define TEXT_MAX 255
#define BOOKABLE_MAX 256

int store_resource_get(store *st, const char *domain, const char *name, Tern__Resource **r_r)
{
	return store_config_get(st, sk_resource, domain, name, &tern__resource__descriptor,
				(ProtobufCMessage **)r_r);
}

int store_resource_find(store *st, const char *address, Tern__Resource **r_r)
{
	return store_owner_find(st, address, TERN__ADDRESS_OWNER__KIND__RESOURCE, sk_resource,
				&tern__resource__descriptor, (ProtobufCMessage **)r_r);
}

int store_resource_list(store *st, const char *domain, Tern__Resource ***list_r, size_t *n_r)
{
	return store_config_list_domain(st, sk_resource_prefix, domain, &tern__resource__descriptor,
					(void ***)list_r, n_r);
}

/* One "bookable by" item: "anyone", "server", "domain", "group:NAME", "user:ADDRESS". */
static int valid_bookable(const char *s)
{
	if (strcmp(s, "anyone") == 0 || strcmp(s, "server") == 0 || strcmp(s, "domain") == 0)
		return 1;
	if (strncmp(s, "group:", 6) == 0)
		return strlen(s + 6) <= LOCAL_MAX && tern_valid_localpart(s + 6);
	if (strncmp(s, "user:", 5) == 0)
		return tern_valid_address(s + 5);
	return 0;
}

/* Syntax of a resource record and its domain. */
static int check_resource(store *st, store_commit *c, const Tern__Resource *r)
{
	if (!r->name || strlen(r->name) > LOCAL_MAX || !tern_valid_localpart(r->name))
		return store_cfg_err(c, STORE_EINVAL, "invalid resource name '%s'",
				     r->name ? r->name : "");
	if (!r->domain || store_domain_exists(st, r->domain) != 1)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist",
				     r->domain ? r->domain : "");
	if (r->type != TERN__RESOURCE__TYPE__ROOM && r->type != TERN__RESOURCE__TYPE__EQUIPMENT)
		return store_cfg_err(c, STORE_EINVAL, "resource type must be room or equipment");
	if (r->description && strlen(r->description) > TEXT_MAX)
		return store_cfg_err(c, STORE_EINVAL, "description of resource %s@%s is longer than "
				     "%d bytes", r->name, r->domain, TEXT_MAX);
	if (r->n_bookable_by > BOOKABLE_MAX)
		return store_cfg_err(c, STORE_EINVAL, "too many bookable-by entries");
	for (size_t i = 0; i < r->n_bookable_by; i++)
		if (!valid_bookable(r->bookable_by[i]))
			return store_cfg_err(c, STORE_EINVAL, "invalid bookable-by entry '%s' (anyone, "
					     "server, domain, group:NAME or user:ADDRESS)",
					     r->bookable_by[i]);
	if (r->manager && r->manager[0] && !tern_valid_address(r->manager))
		return store_cfg_err(c, STORE_EINVAL, "invalid manager address '%s'", r->manager);
	return STORE_OK;
}

static int apply_resource_add(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Resource *r = (Tern__Resource *)j->rec, *old = NULL;
	tbuf k = TBUF_INIT;
	int rc;

	if ((rc = check_resource(st, c, r)) != STORE_OK)
		return rc;
	if (store_resource_get(st, r->domain, r->name, &old) == STORE_OK) {
		tern__resource__free_unpacked(old, NULL);
		return store_cfg_err(c, STORE_EEXISTS, "resource %s@%s already exists", r->name,
				     r->domain);
	}
	/* The address must be free, and no alias may answer for it either. */
	if ((rc = store_check_addr_free(st, c, r->domain, r->name,
					TERN__ADDRESS_OWNER__KIND__RESOURCE, "")) != STORE_OK)
		return rc;
	sk_alias(&k, r->domain, r->name);
	rc = store_db_exists(st, CF_CONFIG, k.data, k.len);
	tbuf_free(&k);
	if (rc != 0)
		return store_cfg_err(c, rc < 0 ? STORE_EIO : STORE_EEXISTS, "address %s@%s is already "
				     "used by alias %s", r->name, r->domain, r->name);
	if (r->id.len == 0) {
		free(r->id.data);
		r->id.data = malloc(16);
		if (!r->id.data)
			abort();
		r->id.len = 16;
		tern_uuid_new(r->id.data);
	} else if (r->id.len != 16) {
		return store_cfg_err(c, STORE_EINVAL, "resource id of %s@%s is not 16 bytes", r->name,
				     r->domain);
	}
	char *dom = store_lower_dup(r->domain);

	free(r->domain);
	r->domain = dom;
	if (!r->created)
		r->created = (uint64_t)tern_now();
	sk_resource(&k, r->domain, r->name);
	store_cfg_put(st, c, &k, &r->base);
	tbuf_free(&k);
	store_cfg_put_addr(st, c, r->domain, r->name, TERN__ADDRESS_OWNER__KIND__RESOURCE, r->name);
	memcpy(c->res.id, r->id.data, 16);
	store_dav_owner_revive(st, r->id.data);
	return STORE_OK;
}

int store_resource_add(store *st, const Tern__Resource *r, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_resource_add, &r->base, NULL, NULL, NULL,
						      NULL), cb, res_r);
}

static int apply_resource_update(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Resource *r = (Tern__Resource *)j->rec, *old = NULL;
	tbuf k = TBUF_INIT;
	int rc;

	if (!r->domain || !r->name || store_resource_get(st, r->domain, r->name, &old) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "resource %s@%s does not exist",
				     r->name ? r->name : "", r->domain ? r->domain : "");
	/* Identity is kept: the id, the spelling of the name and domain, the creation time. */
	free(r->name);
	free(r->domain);
	free(r->id.data);
	r->name = strdup(old->name);
	r->domain = strdup(old->domain);
	r->id.data = malloc(old->id.len ? old->id.len : 1);
	if (!r->name || !r->domain || !r->id.data)
		abort();
	memcpy(r->id.data, old->id.data, old->id.len);
	r->id.len = old->id.len;
	r->created = old->created;
	if ((rc = check_resource(st, c, r)) == STORE_OK) {
		sk_resource(&k, r->domain, r->name);
		store_cfg_put(st, c, &k, &r->base);
		tbuf_free(&k);
		if (r->id.len == 16)
			memcpy(c->res.id, r->id.data, 16);
	}
	tern__resource__free_unpacked(old, NULL);
	return rc;
}

int store_resource_update(store *st, const Tern__Resource *r, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_resource_update, &r->base, NULL, NULL,
						      NULL, NULL), cb, res_r);
}

static int apply_resource_remove(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Resource *r = NULL;
	tbuf k = TBUF_INIT;
	int rc = STORE_OK;

	if (store_resource_get(st, j->s[0], j->s[1], &r) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "resource %s@%s does not exist", j->s[1],
				     j->s[0]);
	sk_resource(&k, r->domain, r->name);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	store_cfg_delete_addrs(st, c, r->domain, &r->name, 1, NULL, 0);
	if (r->id.len == 16) {
		memcpy(c->res.id, r->id.data, 16);
		if ((rc = store_dav_owner_remove_batch(st, c, r->id.data)) != STORE_OK)
			store_cfg_err(c, rc, "cannot remove the calendar of %s@%s", r->name, r->domain);
	}
	tern__resource__free_unpacked(r, NULL);
	return rc;
}

int store_resource_remove(store *st, const char *domain, const char *name, store_cb cb,
			  store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_resource_remove, NULL,
						      domain ? domain : "", name ? name : "", NULL,
						      NULL), cb, res_r);
}
