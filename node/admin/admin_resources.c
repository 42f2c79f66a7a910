/* admin_resources.c - /api/v1/resources: rooms and equipment (guide ch. 22) - list, add
 * (with its calendar), show, change, remove. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"
#include "dav.h"

static json_t *resource_json(const Tern__Resource *res)
{
	char addr[520];
	snprintf(addr, sizeof(addr), "%s@%s", res->name, res->domain);
	tern_lower(addr);
	json_t *manager = res->manager && res->manager[0] ? json_string(res->manager) : json_null();
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:b}", "address", addr, "name", res->name,
			 "domain", res->domain,
			 "type", res->type == TERN__RESOURCE__TYPE__EQUIPMENT ? "equipment" : "room",
			 "description", res->description, "available", res->available,
			 "bookable_by", aj_from_strlist(res->bookable_by, res->n_bookable_by),
			 "manager", manager, "show_details", res->show_details);
}

/* NAME@DOMAIN into r->name / r->domain, with the domain rights check. */
static int resource_address(admin_req *r, const char *address)
{
	if (tern_split_address(address, r->name, sizeof(r->name), r->domain, sizeof(r->domain)) < 0 ||
	    !tern_valid_localpart(r->name)) {
		admin_error(r, 400, "invalid resource address: %s", address);
		return -1;
	}
	tern_lower(r->domain);
	return admin_may_domain(r, r->domain);
}

static void reply_resource(admin_req *r, int status)
{
	Tern__Resource *res = NULL;
	int rc = store_resource_get(r->st, r->domain, r->name, &res);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *j = resource_json(res);
	store_free_record(res);
	admin_reply_json(r, status, j);
}

void adm_resource_list(admin_req *r)
{
	char dom[256];
	if (admin_query_domain(r, dom, sizeof(dom)) < 0)
		return;
	Tern__Resource **list = NULL;
	size_t n = 0;
	int rc = store_resource_list(r->st, dom, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, resource_json(list[i]));
	store_free_list((void **)list, n);
	admin_reply_json(r, 200, a);
}

void adm_resource_get(admin_req *r)
{
	if (resource_address(r, r->arg) < 0)
		return;
	reply_resource(r, 200);
}

static const aj_field resource_fields[] = {
	{ "address", AJ_STR }, { "type", AJ_STR }, { "description", AJ_STR }, { "available", AJ_BOOL },
	{ "bookable_by", AJ_STRLIST }, { "manager", AJ_STR_OR_NULL }, { "show_details", AJ_BOOL },
	{ NULL, AJ_STR },
};

/* "anyone", "server", "domain", "group:NAME", "user:ADDRESS". */
static int rule_valid(const char *s)
{
	if (strcmp(s, "anyone") == 0 || strcmp(s, "server") == 0 || strcmp(s, "domain") == 0)
		return 1;
	if (strncmp(s, "group:", 6) == 0)
		return tern_valid_localpart(s + 6) || tern_valid_address(s + 6);
	if (strncmp(s, "user:", 5) == 0)
		return tern_valid_address(s + 5);
	return 0;
}

/* Apply the body to res, writing the config.log pairs; replies and returns -1 on error. */
static int resource_apply(admin_req *r, Tern__Resource *res, tbuf *log)
{
	json_t *v;
	if ((v = json_object_get(r->body, "type")) != NULL) {
		const char *t = json_string_value(v);
		if (strcmp(t, "room") != 0 && strcmp(t, "equipment") != 0) {
			admin_error(r, 400, "type must be room or equipment");
			return -1;
		}
		res->type = t[0] == 'e' ? TERN__RESOURCE__TYPE__EQUIPMENT : TERN__RESOURCE__TYPE__ROOM;
		admin_log_kv(log, "Type", t);
	}
	if ((v = json_object_get(r->body, "description")) != NULL) {
		aj_set_str(&res->description, json_string_value(v));
		admin_log_kv(log, "Description", res->description);
	}
	if ((v = json_object_get(r->body, "available")) != NULL) {
		res->available = json_is_true(v);
		admin_log_kv(log, "Available", res->available ? "1" : "0");
	}
	if ((v = json_object_get(r->body, "show_details")) != NULL) {
		res->show_details = json_is_true(v);
		admin_log_kv(log, "ShowDetails", res->show_details ? "1" : "0");
	}
	if ((v = json_object_get(r->body, "manager")) != NULL) {
		const char *m = json_is_null(v) ? "" : json_string_value(v);
		if (m[0] && !tern_valid_address(m)) {
			admin_error(r, 400, "manager must be an address USER@DOMAIN");
			return -1;
		}
		aj_set_str(&res->manager, m);
		tern_lower(res->manager);
		admin_log_kv(log, "Manager", res->manager);
	}
	if ((v = json_object_get(r->body, "bookable_by")) != NULL) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (!rule_valid(json_string_value(e))) {
				admin_error(r, 400, "bookable_by: %s is not anyone, server, domain, group:NAME or "
					    "user:ADDRESS", json_string_value(e));
				return -1;
			}
		}
		aj_strlist(v, &res->bookable_by, &res->n_bookable_by);
		for (i = 0; i < res->n_bookable_by; i++) {
			tern_lower(res->bookable_by[i]);
			admin_log_kv(log, "BookableBy", res->bookable_by[i]);
		}
	}
	return 0;
}

/* The calendar of the new resource, made on the auth pool (store writes block). */
static void resource_provision(void *arg)
{
	admin_req *r = arg;
	Tern__Resource *res = r->rec;
	r->hash_rc = dav_provision(r->st, res->id.data, 1);
}

static void resource_provisioned(admin_req *r)
{
	if (r->hash_rc != STORE_OK) {
		admin_error(r, 500, "resource added, but its calendar could not be made: %s",
			    store_strerror(r->hash_rc));
		return;
	}
	reply_resource(r, 201);
}

static void resource_added(admin_req *r)
{
	admin_pool(r, resource_provision, resource_provisioned);
}

static void resource_updated(admin_req *r)
{
	reply_resource(r, 200);
}

void adm_resource_add(admin_req *r)
{
	if (admin_parse_body(r, resource_fields, 0) < 0)
		return;
	const char *address = aj_str(r, "address");
	if (address == NULL || !tern_valid_address(address)) {
		admin_error(r, 400, "a valid \"address\" NAME@DOMAIN is required");
		return;
	}
	if (resource_address(r, address) < 0)
		return;
	Tern__Resource *res = calloc(1, sizeof(*res));
	if (res == NULL)
		abort();
	tern__resource__init(res);
	r->rec = res;
	r->rec_free = store_free_record;
	if ((res->id.data = malloc(16)) == NULL)
		abort();
	tern_uuid_new(res->id.data);
	res->id.len = 16;
	aj_set_str(&res->name, r->name);
	aj_set_str(&res->domain, r->domain);
	res->available = 1;
	res->created = (uint64_t)tern_now();
	if ((res->bookable_by = malloc(sizeof(char *))) == NULL || (res->bookable_by[0] = strdup("anyone")) == NULL)
		abort();
	res->n_bookable_by = 1;
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", res->name);
	admin_log_kv(&log, "Domain", res->domain);
	if (resource_apply(r, res, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "insert Resource set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	store_resource_add(r->st, res, admin_cb(r, resource_added), NULL);
}

void adm_resource_patch(admin_req *r)
{
	if (admin_parse_body(r, resource_fields + 1, 0) < 0)
		return;
	if (resource_address(r, r->arg) < 0)
		return;
	Tern__Resource *res = NULL;
	int rc = store_resource_get(r->st, r->domain, r->name, &res);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	r->rec = res;
	r->rec_free = store_free_record;
	tbuf log = TBUF_INIT;
	if (resource_apply(r, res, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "update Resource set %s where Name='%s', Domain='%s'", tbuf_cstr(&log), r->name,
			 r->domain);
	tbuf_free(&log);
	store_resource_update(r->st, res, admin_cb(r, resource_updated), NULL);
}

void adm_resource_delete(admin_req *r)
{
	if (resource_address(r, r->arg) < 0)
		return;
	admin_config_log(r, "delete Resource where Name='%s', Domain='%s'", r->name, r->domain);
	store_resource_remove(r->st, r->domain, r->name, admin_cb(r, admin_reply_empty), NULL);
}
