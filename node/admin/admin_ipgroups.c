/* admin_ipgroups.c - /api/v1/ipgroups: list, add an item, remove an item or a group. */
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

static json_t *ipgroup_json(const Tern__IpGroup *g)
{
	json_t *items = json_array();
	for (size_t i = 0; i < g->n_items; i++)
		json_array_append_new(items, json_pack("{s:s, s:s, s:b}", "value", g->items[i]->value,
						       "description", g->items[i]->description,
						       "enabled", g->items[i]->enabled));
	return json_pack("{s:s, s:o}", "name", g->name, "items", items);
}

void adm_ipgroup_list(admin_req *r)
{
	Tern__IpGroup **list = NULL;
	size_t n = 0;
	int rc = store_ipgroup_list(r->st, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, ipgroup_json(list[i]));
	store_free_list((void **)list, n);
	admin_reply_json(r, 200, a);
}

static void ipgroup_added(admin_req *r)
{
	Tern__IpGroup *g = NULL;
	int rc = store_ipgroup_get(r->st, r->name, &g);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *j = ipgroup_json(g);
	store_free_record(g);
	admin_reply_json(r, 201, j);
}

void adm_ipgroup_add(admin_req *r)
{
	static const aj_field fields[] = {
		{ "name", AJ_STR }, { "item", AJ_STR }, { "description", AJ_STR }, { NULL, AJ_STR },
	};
	if (admin_parse_body(r, fields, 0) < 0)
		return;
	const char *name = aj_str(r, "name"), *item = aj_str(r, "item");
	const char *descr = aj_str(r, "description");
	if (name == NULL || item == NULL || *name == '\0') {
		admin_error(r, 400, "fields \"name\" and \"item\" are required");
		return;
	}
	int w = snprintf(r->name, sizeof(r->name), "%s", name);
	if (w < 0 || (size_t)w >= sizeof(r->name)) {
		admin_error(r, 400, "IP group name too long");
		return;
	}
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", name);
	admin_log_kv(&log, "Item", item);
	if (descr != NULL)
		admin_log_kv(&log, "Description", descr);
	admin_config_log(r, "insert IpGroup set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	store_ipgroup_add(r->st, name, item, descr ? descr : "", admin_cb(r, ipgroup_added), NULL);
}

void adm_ipgroup_delete(admin_req *r)
{
	char *item = http_query_param(r->req, "item");
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", r->arg);
	if (item != NULL)
		admin_log_kv(&log, "Item", item);
	admin_config_log(r, "delete IpGroup where %s", tbuf_cstr(&log));
	tbuf_free(&log);
	r->param = item;
	store_ipgroup_remove(r->st, r->arg, item, admin_cb(r, admin_reply_empty), NULL);
}
