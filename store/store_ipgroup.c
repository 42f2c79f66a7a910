/* store_ipgroup.c - IP address groups (guide ch. 19): named lists of hosts, ranges,
 * networks and nested groups, with the default "Local clients" of a new store. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

#define IPGROUP_NAME_MAX 255
#define IPGROUP_DEPTH_MAX 8
#define IPGROUP_PREFIX "group:"

static const char *const local_clients[] = {
	"10.0.0.0/8", "127.0.0.1", "172.16.0.0/12", "192.168.0.0/16",
};

static Tern__IpItem__Kind item_kind(const char *text)
{
	if (strchr(text, '/'))
		return TERN__IP_ITEM__KIND__NET;
	if (strchr(text, '-'))
		return TERN__IP_ITEM__KIND__RANGE;
	return TERN__IP_ITEM__KIND__HOST;
}

void store_config_defaults(store *st, rocksdb_writebatch_t *wb)
{
	Tern__IpGroup g = TERN__IP_GROUP__INIT;
	Tern__IpItem items[4], *ptrs[4];
	tbuf k = TBUF_INIT;

	for (size_t i = 0; i < 4; i++) {
		tern__ip_item__init(&items[i]);
		items[i].kind = item_kind(local_clients[i]);
		items[i].value = (char *)local_clients[i];
		items[i].enabled = 1;
		ptrs[i] = &items[i];
	}
	g.name = (char *)"Local clients";
	g.n_items = 4;
	g.items = ptrs;
	sk_ipgroup(&k, g.name);
	store_wb_put_record(wb, st, CF_CONFIG, k.data, k.len, &g.base);
	tbuf_free(&k);
}

int store_ipgroup_get(store *st, const char *name, Tern__IpGroup **g_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	sk_ipgroup(&k, name);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__ip_group__descriptor,
				 (ProtobufCMessage **)g_r);
	tbuf_free(&k);
	return rc;
}

int store_ipgroup_list(store *st, Tern__IpGroup ***list_r, size_t *n_r)
{
	tbuf p = TBUF_INIT;
	int rc;

	tbuf_append_str(&p, SK_IPGROUP_PREFIX);
	rc = store_config_list(st, &p, &tern__ip_group__descriptor, (void ***)list_r, n_r);
	tbuf_free(&p);
	return rc;
}

static int valid_group_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > IPGROUP_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '/' || *s == 0x7f)
			return 0;
	return 1;
}

static int apply_ipgroup_add(store *st, store_cfg_job *j, store_commit *c)
{
	const char *name = j->s[0], *item = j->s[1], *desc = j->s[2];
	Tern__IpGroup *g = NULL, fresh = TERN__IP_GROUP__INIT;
	Tern__IpItem ni = TERN__IP_ITEM__INIT;
	tern_ipitem parsed;
	tbuf k = TBUF_INIT;
	int rc;

	if (!valid_group_name(name))
		return store_cfg_err(c, STORE_EINVAL, "invalid IP group name '%s'", name);
	if (desc && strlen(desc) > IPGROUP_NAME_MAX)
		return store_cfg_err(c, STORE_EINVAL, "description of IP group %s is too long", name);
	if (strncasecmp(item, IPGROUP_PREFIX, strlen(IPGROUP_PREFIX)) == 0) {
		const char *inner = item + strlen(IPGROUP_PREFIX);
		Tern__IpGroup *ig = NULL;

		if (strcasecmp(inner, name) == 0)
			return store_cfg_err(c, STORE_EINVAL, "IP group %s cannot contain itself", name);
		if (store_ipgroup_get(st, inner, &ig) != STORE_OK)
			return store_cfg_err(c, STORE_ENOTFOUND, "IP group %s does not exist", inner);
		tern__ip_group__free_unpacked(ig, NULL);
		ni.kind = TERN__IP_ITEM__KIND__GROUP;
		ni.value = (char *)inner;
	} else {
		if (tern_ipitem_parse(item, &parsed) != 0)
			return store_cfg_err(c, STORE_EINVAL, "invalid IP address item '%s'", item);
		ni.kind = item_kind(item);
		ni.value = (char *)item;
	}
	ni.description = (char *)(desc ? desc : "");
	ni.enabled = 1;
	rc = store_ipgroup_get(st, name, &g);
	if (rc == STORE_ENOTFOUND) {
		fresh.name = (char *)name;
		g = &fresh;
	} else if (rc != STORE_OK) {
		return store_cfg_err(c, rc, "cannot read IP group %s", name);
	}
	for (size_t i = 0; i < g->n_items; i++) {
		if (g->items[i]->kind == ni.kind && strcasecmp(g->items[i]->value, ni.value) == 0) {
			if (g != &fresh)
				tern__ip_group__free_unpacked(g, NULL);
			return store_cfg_err(c, STORE_EEXISTS, "IP group %s already has %s", name, item);
		}
	}
	Tern__IpItem **items = malloc((g->n_items + 1) * sizeof(*items));

	if (!items)
		abort();
	for (size_t i = 0; i < g->n_items; i++)
		items[i] = g->items[i];
	items[g->n_items] = &ni;
	Tern__IpItem **saved = g->items;
	size_t saved_n = g->n_items;

	g->items = items;
	g->n_items++;
	sk_ipgroup(&k, name);
	store_cfg_put(st, c, &k, &g->base);
	tbuf_free(&k);
	g->items = saved;
	g->n_items = saved_n;
	free(items);
	if (g != &fresh)
		tern__ip_group__free_unpacked(g, NULL);
	return STORE_OK;
}

int store_ipgroup_add(store *st, const char *name, const char *item, const char *description,
		      store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_ipgroup_add, NULL, name ? name : "",
						      item ? item : "", description, NULL), cb, res_r);
}

static int apply_ipgroup_remove(store *st, store_cfg_job *j, store_commit *c)
{
	const char *name = j->s[0], *item = j->s[1];
	Tern__IpGroup *g = NULL;
	tbuf k = TBUF_INIT;
	size_t i;

	if (store_ipgroup_get(st, name, &g) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "IP group %s does not exist", name);
	sk_ipgroup(&k, name);
	if (!item) {
		store_cfg_delete(st, c, k.data, k.len);
		goto done;
	}
	const char *want = item;
	if (strncasecmp(item, IPGROUP_PREFIX, strlen(IPGROUP_PREFIX)) == 0)
		want = item + strlen(IPGROUP_PREFIX);
	for (i = 0; i < g->n_items; i++)
		if (strcasecmp(g->items[i]->value, want) == 0)
			break;
	if (i == g->n_items) {
		tbuf_free(&k);
		tern__ip_group__free_unpacked(g, NULL);
		return store_cfg_err(c, STORE_ENOTFOUND, "IP group %s has no item %s", name, item);
	}
	tern__ip_item__free_unpacked(g->items[i], NULL);
	memmove(&g->items[i], &g->items[i + 1], (g->n_items - i - 1) * sizeof(*g->items));
	g->n_items--;
	store_cfg_put(st, c, &k, &g->base);
done:
	tbuf_free(&k);
	tern__ip_group__free_unpacked(g, NULL);
	return STORE_OK;
}

int store_ipgroup_remove(store *st, const char *name, const char *item, store_cb cb,
			 store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_ipgroup_remove, NULL, name ? name : "",
						      item, NULL, NULL), cb, res_r);
}

/* Depth-limited walk: nested groups are followed up to IPGROUP_DEPTH_MAX, which also
 * cuts loops. */
static int match_depth(store *st, const char *name, const struct sockaddr *addr, int depth)
{
	Tern__IpGroup *g = NULL;
	int hit = 0;

	if (depth > IPGROUP_DEPTH_MAX || store_ipgroup_get(st, name, &g) != STORE_OK)
		return 0;
	for (size_t i = 0; i < g->n_items && !hit; i++) {
		const Tern__IpItem *it = g->items[i];
		tern_ipitem parsed;

		if (!it->enabled)
			continue;
		if (it->kind == TERN__IP_ITEM__KIND__GROUP)
			hit = match_depth(st, it->value, addr, depth + 1);
		else if (tern_ipitem_parse(it->value, &parsed) == 0)
			hit = tern_ipitem_match(&parsed, addr);
	}
	tern__ip_group__free_unpacked(g, NULL);
	return hit;
}

int store_ipgroup_match(store *st, const char *name, const struct sockaddr *addr)
{
	return match_depth(st, name, addr, 0);
}
