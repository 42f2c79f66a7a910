/* admin_groups.c - /api/v1/groups: list, add, show, change, remove, members. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"

static json_t *group_json(const Tern__Group *g)
{
	char addr[520];
	snprintf(addr, sizeof(addr), "%s@%s", g->name, g->domain);
	tern_lower(addr);
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:b, s:b}", "address", addr, "name", g->name,
			 "domain", g->domain, "description", g->description,
			 "addresses", aj_from_strlist(g->addresses, g->n_addresses),
			 "members", aj_from_strlist(g->members, g->n_members),
			 "rights", admin_rights_name(g->rights), "publish_in_gal", g->publish_in_gal,
			 "local_only", g->local_only);
}

/* NAME@DOMAIN into r->name / r->domain, with the domain rights check. */
static int group_address(admin_req *r, const char *address)
{
	if (tern_split_address(address, r->name, sizeof(r->name), r->domain, sizeof(r->domain)) < 0) {
		admin_error(r, 400, "invalid group address: %s", address);
		return -1;
	}
	return admin_may_domain(r, r->domain);
}

static void reply_group(admin_req *r, int status)
{
	Tern__Group *g = NULL;
	int rc = store_group_get(r->st, r->domain, r->name, &g);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *j = group_json(g);
	store_free_record(g);
	admin_reply_json(r, status, j);
}

void adm_group_list(admin_req *r)
{
	char dom[256];
	if (admin_query_domain(r, dom, sizeof(dom)) < 0)
		return;
	Tern__Group **list = NULL;
	size_t n = 0;
	int rc = store_group_list(r->st, dom, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, group_json(list[i]));
	store_free_list((void **)list, n);
	admin_reply_json(r, 200, a);
}

void adm_group_get(admin_req *r)
{
	if (group_address(r, r->arg) < 0)
		return;
	reply_group(r, 200);
}

static const aj_field group_fields[] = {
	{ "address", AJ_STR }, { "description", AJ_STR }, { "addresses", AJ_STRLIST },
	{ "members", AJ_STRLIST }, { "rights", AJ_STR }, { "publish_in_gal", AJ_BOOL },
	{ "local_only", AJ_BOOL }, { NULL, AJ_STR },
};

static int group_apply(admin_req *r, Tern__Group *g, tbuf *log)
{
	json_t *v;
	if ((v = json_object_get(r->body, "description")) != NULL) {
		aj_set_str(&g->description, json_string_value(v));
		admin_log_kv(log, "Description", g->description);
	}
	if ((v = json_object_get(r->body, "addresses")) != NULL) {
		aj_strlist(v, &g->addresses, &g->n_addresses);
		for (size_t i = 0; i < g->n_addresses; i++)
			admin_log_kv(log, "Address", g->addresses[i]);
	}
	if ((v = json_object_get(r->body, "members")) != NULL) {
		aj_strlist(v, &g->members, &g->n_members);
		for (size_t i = 0; i < g->n_members; i++)
			admin_log_kv(log, "Member", g->members[i]);
	}
	if ((v = json_object_get(r->body, "rights")) != NULL) {
		if (admin_rights_parse(json_string_value(v), &g->rights) < 0) {
			admin_error(r, 400, "rights must be none, domain, read-only or read-write");
			return -1;
		}
		if (r->rights == TERN__RIGHTS__RIGHTS_DOMAIN && g->rights > TERN__RIGHTS__RIGHTS_DOMAIN) {
			admin_error(r, 403, "a domain administrator cannot grant server rights");
			return -1;
		}
		tbuf_appendf(log, "%sRights='%d'", log->len ? ", " : "", (int)g->rights);
	}
	if ((v = json_object_get(r->body, "publish_in_gal")) != NULL)
		g->publish_in_gal = json_is_true(v);
	if ((v = json_object_get(r->body, "local_only")) != NULL)
		g->local_only = json_is_true(v);
	return 0;
}

static void group_added(admin_req *r)
{
	reply_group(r, 201);
}

static void group_updated(admin_req *r)
{
	reply_group(r, 200);
}

void adm_group_add(admin_req *r)
{
	if (admin_parse_body(r, group_fields, 0) < 0)
		return;
	const char *address = aj_str(r, "address");
	if (address == NULL || !tern_valid_address(address)) {
		admin_error(r, 400, "a valid \"address\" NAME@DOMAIN is required");
		return;
	}
	if (group_address(r, address) < 0)
		return;
	Tern__Group *g = calloc(1, sizeof(*g));
	if (g == NULL)
		abort();
	tern__group__init(g);
	r->rec = g;
	r->rec_free = store_free_record;
	char *name = strndup(address, (size_t)(strchr(address, '@') - address));
	if (name == NULL)
		abort();
	aj_set_str(&g->name, name);
	free(name);
	aj_set_str(&g->domain, r->domain);
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", g->name);
	admin_log_kv(&log, "Domain", g->domain);
	if (group_apply(r, g, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "insert Group set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	store_group_add(r->st, g, admin_cb(r, group_added), NULL);
}

/* Load the group named by the path into r->rec; replies on error. */
static Tern__Group *group_load(admin_req *r)
{
	if (group_address(r, r->arg) < 0)
		return NULL;
	Tern__Group *g = NULL;
	int rc = store_group_get(r->st, r->domain, r->name, &g);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return NULL;
	}
	r->rec = g;
	r->rec_free = store_free_record;
	return g;
}

void adm_group_patch(admin_req *r)
{
	if (admin_parse_body(r, group_fields + 1, 0) < 0)
		return;
	Tern__Group *g = group_load(r);
	if (g == NULL)
		return;
	tbuf log = TBUF_INIT;
	if (group_apply(r, g, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "update Group set %s where Name='%s', Domain='%s'", tbuf_cstr(&log), r->name,
			 r->domain);
	tbuf_free(&log);
	store_group_update(r->st, g, admin_cb(r, group_updated), NULL);
}

void adm_group_delete(admin_req *r)
{
	if (group_address(r, r->arg) < 0)
		return;
	admin_config_log(r, "delete Group where Name='%s', Domain='%s'", r->name, r->domain);
	store_group_remove(r->st, r->domain, r->name, admin_cb(r, admin_reply_empty), NULL);
}

/* Index of member addr in g, or -1. */
static ssize_t member_index(const Tern__Group *g, const char *addr)
{
	for (size_t i = 0; i < g->n_members; i++)
		if (strcasecmp(g->members[i], addr) == 0)
			return (ssize_t)i;
	return -1;
}

void adm_group_members(admin_req *r)
{
	static const aj_field fields[] = { { "add", AJ_STRLIST }, { "remove", AJ_STRLIST }, { NULL, AJ_STR } };
	if (admin_parse_body(r, fields, 0) < 0)
		return;
	Tern__Group *g = group_load(r);
	if (g == NULL)
		return;
	tbuf log = TBUF_INIT;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r->body, "add"), i, v) {
		const char *addr = json_string_value(v);
		if (!tern_valid_address(addr)) {
			tbuf_free(&log);
			admin_error(r, 400, "invalid member address: %s", addr);
			return;
		}
		if (member_index(g, addr) >= 0)
			continue;
		g->members = realloc(g->members, (g->n_members + 1) * sizeof(char *));
		if (g->members == NULL || (g->members[g->n_members] = strdup(addr)) == NULL)
			abort();
		tern_lower(g->members[g->n_members++]);
		admin_log_kv(&log, "AddMember", addr);
	}
	json_array_foreach(json_object_get(r->body, "remove"), i, v) {
		ssize_t k = member_index(g, json_string_value(v));
		if (k < 0)
			continue;
		admin_log_kv(&log, "RemoveMember", g->members[k]);
		free(g->members[k]);
		memmove(&g->members[k], &g->members[k + 1], (g->n_members - (size_t)k - 1) * sizeof(char *));
		g->n_members--;
	}
	admin_config_log(r, "update Group set %s where Name='%s', Domain='%s'", tbuf_cstr(&log), r->name,
			 r->domain);
	tbuf_free(&log);
	store_group_update(r->st, g, admin_cb(r, group_updated), NULL);
}
