/* store_groups.c - groups (config CF "group/", their addresses in "addr/") and aliases
 * ("alias/<d>/<pattern>", several targets each). Writers run on the config thread. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

#define LOCAL_MAX 64
#define TEXT_MAX 255
#define PUBLIC_TARGET "#public/"

int store_group_get(store *st, const char *domain, const char *name, Tern__Group **g_r)
{
	return store_config_get(st, sk_group, domain, name, &tern__group__descriptor,
				(ProtobufCMessage **)g_r);
}

int store_group_find(store *st, const char *address, Tern__Group **g_r)
{
	return store_owner_find(st, address, TERN__ADDRESS_OWNER__KIND__GROUP, sk_group,
				&tern__group__descriptor, (ProtobufCMessage **)g_r);
}

int store_group_list(store *st, const char *domain, Tern__Group ***list_r, size_t *n_r)
{
	return store_config_list_domain(st, sk_group_prefix, domain, &tern__group__descriptor,
					(void ***)list_r, n_r);
}

static int check_group(store *st, store_commit *c, const Tern__Group *g)
{
	int rc;

	if (!g->name || strlen(g->name) > LOCAL_MAX || !tern_valid_localpart(g->name))
		return store_cfg_err(c, STORE_EINVAL, "invalid group name '%s'", g->name ? g->name : "");
	if (!g->domain || store_domain_exists(st, g->domain) != 1)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist",
				     g->domain ? g->domain : "");
	if (g->description && strlen(g->description) > TEXT_MAX)
		return store_cfg_err(c, STORE_EINVAL, "description of group %s@%s is longer than %d "
				     "bytes", g->name, g->domain, TEXT_MAX);
	if ((rc = store_check_addresses(st, c, g->domain, g->addresses, g->n_addresses,
					TERN__ADDRESS_OWNER__KIND__GROUP, g->name, NULL)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < g->n_members; i++)
		if (!tern_valid_address(g->members[i]))
			return store_cfg_err(c, STORE_EINVAL, "invalid member address '%s'",
					     g->members[i]);
	return STORE_OK;
}

static void put_group(store *st, store_commit *c, const Tern__Group *g)
{
	tbuf k = TBUF_INIT;

	sk_group(&k, g->domain, g->name);
	store_cfg_put(st, c, &k, &g->base);
	for (size_t i = 0; i < g->n_addresses; i++)
		store_cfg_put_addr(st, c, g->domain, g->addresses[i], TERN__ADDRESS_OWNER__KIND__GROUP,
				   g->name);
	tbuf_free(&k);
}

static int apply_group_add(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Group *g = (Tern__Group *)j->rec, *old = NULL;
	int rc;

	if ((rc = check_group(st, c, g)) != STORE_OK)
		return rc;
	if (store_group_get(st, g->domain, g->name, &old) == STORE_OK) {
		tern__group__free_unpacked(old, NULL);
		return store_cfg_err(c, STORE_EEXISTS, "group %s@%s already exists", g->name, g->domain);
	}
	char *dom = store_lower_dup(g->domain);

	free(g->domain);
	g->domain = dom;
	put_group(st, c, g);
	return STORE_OK;
}

int store_group_add(store *st, const Tern__Group *g, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_group_add, &g->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}

static int apply_group_update(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Group *g = (Tern__Group *)j->rec, *old = NULL;
	int rc;

	if (!g->domain || !g->name || store_group_get(st, g->domain, g->name, &old) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "group %s@%s does not exist",
				     g->name ? g->name : "", g->domain ? g->domain : "");
	free(g->name);
	free(g->domain);
	g->name = strdup(old->name);
	g->domain = strdup(old->domain);
	if ((rc = check_group(st, c, g)) == STORE_OK) {
		store_cfg_delete_addrs(st, c, g->domain, old->addresses, old->n_addresses,
				      g->addresses, g->n_addresses);
		put_group(st, c, g);
	}
	tern__group__free_unpacked(old, NULL);
	return rc;
}

int store_group_update(store *st, const Tern__Group *g, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_group_update, &g->base, NULL, NULL, NULL,
						      NULL), cb, res_r);
}

static int apply_group_remove(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Group *g = NULL;
	tbuf k = TBUF_INIT;

	if (store_group_get(st, j->s[0], j->s[1], &g) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "group %s@%s does not exist", j->s[1], j->s[0]);
	sk_group(&k, g->domain, g->name);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	store_cfg_delete_addrs(st, c, g->domain, g->addresses, g->n_addresses, NULL, 0);
	tern__group__free_unpacked(g, NULL);
	return STORE_OK;
}

int store_group_remove(store *st, const char *domain, const char *name, store_cb cb,
		       store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_group_remove, NULL, domain ? domain : "",
						      name ? name : "", NULL, NULL), cb, res_r);
}

/* ---- aliases ---- */

int store_alias_list(store *st, const char *domain, Tern__Alias ***list_r, size_t *n_r)
{
	return store_config_list_domain(st, sk_alias_prefix, domain, &tern__alias__descriptor,
					(void ***)list_r, n_r);
}

static int alias_get(store *st, const char *domain, const char *pattern, Tern__Alias **a_r)
{
	return store_config_get(st, sk_alias, domain, pattern, &tern__alias__descriptor,
				(ProtobufCMessage **)a_r);
}

static int valid_target(const char *t)
{
	if (strncmp(t, PUBLIC_TARGET, strlen(PUBLIC_TARGET)) == 0)
		return strlen(t) > strlen(PUBLIC_TARGET) && strlen(t) <= TEXT_MAX;
	return tern_valid_address(t);
}

static void put_alias(store *st, store_commit *c, const Tern__Alias *a)
{
	tbuf k = TBUF_INIT;

	sk_alias(&k, a->domain, a->pattern);
	store_cfg_put(st, c, &k, &a->base);
	tbuf_free(&k);
}

static int apply_alias_add(store *st, store_cfg_job *j, store_commit *c)
{
	const char *domain = j->s[0], *pattern = j->s[1], *target = j->s[2], *desc = j->s[3];
	Tern__Alias *a = NULL, fresh = TERN__ALIAS__INIT;
	char *dom;

	if (store_domain_exists(st, domain) != 1)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist", domain);
	if (strlen(pattern) > LOCAL_MAX || !tern_valid_alias_pattern(pattern))
		return store_cfg_err(c, STORE_EINVAL, "invalid alias '%s'", pattern);
	if (!valid_target(target))
		return store_cfg_err(c, STORE_EINVAL, "invalid alias target '%s'", target);
	/* A resource's address answers for the resource alone. */
	Tern__AddressOwner *o = NULL;

	if (store_addr_owner(st, domain, pattern, &o) == STORE_OK) {
		int res = o->kind == TERN__ADDRESS_OWNER__KIND__RESOURCE;

		tern__address_owner__free_unpacked(o, NULL);
		if (res)
			return store_cfg_err(c, STORE_EEXISTS, "address %s@%s is already used by "
					     "resource %s", pattern, domain, pattern);
	}
	if (desc && strlen(desc) > TEXT_MAX)
		return store_cfg_err(c, STORE_EINVAL, "description of alias %s@%s is too long",
				     pattern, domain);
	if (alias_get(st, domain, pattern, &a) != STORE_OK) {
		a = NULL;
		fresh.pattern = (char *)pattern;
		dom = store_lower_dup(domain);
		fresh.domain = dom;
	} else {
		dom = NULL;
	}
	Tern__Alias *w = a ? a : &fresh;

	for (size_t i = 0; i < w->n_targets; i++) {
		if (strcasecmp(w->targets[i], target) == 0) {
			if (a)
				tern__alias__free_unpacked(a, NULL);
			free(dom);
			return store_cfg_err(c, STORE_EEXISTS, "alias %s@%s already has target %s",
					     pattern, domain, target);
		}
	}
	char **targets = malloc((w->n_targets + 1) * sizeof(*targets));

	if (!targets)
		abort();
	if (w->n_targets)
		memcpy(targets, w->targets, w->n_targets * sizeof(*targets));
	targets[w->n_targets] = (char *)target;
	char **saved = w->targets;
	char *saved_desc = w->description;

	w->targets = targets;
	w->n_targets++;
	if (desc)
		w->description = (char *)desc;
	put_alias(st, c, w);
	w->targets = saved;
	w->n_targets--;
	w->description = saved_desc;
	free(targets);
	if (a)
		tern__alias__free_unpacked(a, NULL);
	free(dom);
	return STORE_OK;
}

int store_alias_add(store *st, const char *domain, const char *pattern, const char *target,
		    const char *description, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_alias_add, NULL, domain ? domain : "",
						      pattern ? pattern : "", target ? target : "",
						      description), cb, res_r);
}

static int apply_alias_remove(store *st, store_cfg_job *j, store_commit *c)
{
	const char *domain = j->s[0], *pattern = j->s[1], *target = j->s[2];
	Tern__Alias *a = NULL;
	tbuf k = TBUF_INIT;
	size_t i;

	if (alias_get(st, domain, pattern, &a) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "alias %s@%s does not exist", pattern, domain);
	sk_alias(&k, domain, pattern);
	for (i = 0; target && i < a->n_targets; i++)
		if (strcasecmp(a->targets[i], target) == 0)
			break;
	if (target && i == a->n_targets) {
		tern__alias__free_unpacked(a, NULL);
		tbuf_free(&k);
		return store_cfg_err(c, STORE_ENOTFOUND, "alias %s@%s has no target %s", pattern,
				     domain, target);
	}
	if (!target || a->n_targets == 1) {
		store_cfg_delete(st, c, k.data, k.len);
	} else {
		free(a->targets[i]);
		memmove(&a->targets[i], &a->targets[i + 1], (a->n_targets - i - 1) * sizeof(char *));
		a->n_targets--;
		store_cfg_put(st, c, &k, &a->base);
	}
	tbuf_free(&k);
	tern__alias__free_unpacked(a, NULL);
	return STORE_OK;
}

int store_alias_remove(store *st, const char *domain, const char *pattern, const char *target,
		       store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_alias_remove, NULL, domain ? domain : "",
						      pattern ? pattern : "", target, NULL), cb, res_r);
}
