/* admin_domains.c - /api/v1/domains: list, add, show, change, remove, rename, primary. */
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

static json_t *domain_json(store *st, const Tern__Domain *d)
{
	return json_pack("{s:s, s:b, s:s, s:o, s:I, s:I, s:s, s:b, s:I, s:I}",
			 "name", d->name, "primary", d->primary, "description", d->description,
			 "aliases", aj_from_strlist(d->aliases, d->n_aliases),
			 "user_limit", (json_int_t)d->user_limit,
			 "outgoing_size_limit", (json_int_t)d->outgoing_size_limit,
			 "footer", d->footer, "footer_skip_internal", d->footer_skip_internal,
			 "deleted_retention_days", (json_int_t)d->deleted_retention_days,
			 "users", (json_int_t)store_domain_user_count(st, d->name));
}

/* Reply with the stored domain `name` (status 200 or 201). */
static void reply_domain(admin_req *r, const char *name, int status)
{
	Tern__Domain *d = NULL;
	int rc = store_domain_get(r->st, name, &d);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *j = domain_json(r->st, d);
	store_free_record(d);
	admin_reply_json(r, status, j);
}

void adm_domain_list(admin_req *r)
{
	Tern__Domain **list = NULL;
	size_t n = 0;
	int rc = store_domain_list(r->st, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *a = json_array();
	for (int pass = 0; pass < 2; pass++)   /* primary first */
		for (size_t i = 0; i < n; i++)
			if ((pass == 0) == (list[i]->primary != 0))
				json_array_append_new(a, domain_json(r->st, list[i]));
	store_free_list((void **)list, n);
	admin_reply_json(r, 200, a);
}

void adm_domain_get(admin_req *r)
{
	reply_domain(r, r->arg, 200);
}

static const aj_field domain_settable[] = {
	{ "description", AJ_STR }, { "aliases", AJ_STRLIST }, { "user_limit", AJ_UINT },
	{ "outgoing_size_limit", AJ_UINT }, { "footer", AJ_STR }, { "footer_skip_internal", AJ_BOOL },
	{ "deleted_retention_days", AJ_UINT }, { NULL, AJ_STR },
};

/* Apply the settable fields of r->body to d, and describe them for config.log. */
static int domain_apply(admin_req *r, Tern__Domain *d, tbuf *log)
{
	json_t *v;
	if ((v = json_object_get(r->body, "description")) != NULL) {
		aj_set_str(&d->description, json_string_value(v));
		admin_log_kv(log, "Description", d->description);
	}
	if ((v = json_object_get(r->body, "aliases")) != NULL) {
		aj_strlist(v, &d->aliases, &d->n_aliases);
		for (size_t i = 0; i < d->n_aliases; i++)
			admin_log_kv(log, "Alias", d->aliases[i]);
	}
	if ((v = json_object_get(r->body, "user_limit")) != NULL) {
		if (json_integer_value(v) > UINT32_MAX) {
			admin_error(r, 400, "user_limit is out of range");
			return -1;
		}
		d->user_limit = (uint32_t)json_integer_value(v);
		tbuf_appendf(log, "%sUserLimit='%u'", log->len ? ", " : "", d->user_limit);
	}
	if ((v = json_object_get(r->body, "outgoing_size_limit")) != NULL) {
		d->outgoing_size_limit = (uint64_t)json_integer_value(v);
		tbuf_appendf(log, "%sOutgoingLimit='%llu'", log->len ? ", " : "",
			     (unsigned long long)d->outgoing_size_limit);
	}
	if ((v = json_object_get(r->body, "footer")) != NULL) {
		aj_set_str(&d->footer, json_string_value(v));
		admin_log_kv(log, "Footer", d->footer);
	}
	if ((v = json_object_get(r->body, "footer_skip_internal")) != NULL) {
		d->footer_skip_internal = json_is_true(v);
		tbuf_appendf(log, "%sFooterSkipInternal='%d'", log->len ? ", " : "", d->footer_skip_internal);
	}
	if ((v = json_object_get(r->body, "deleted_retention_days")) != NULL) {
		if (json_integer_value(v) > 365) {
			admin_error(r, 400, "deleted_retention_days must be 0..365");
			return -1;
		}
		d->deleted_retention_days = (uint32_t)json_integer_value(v);
		tbuf_appendf(log, "%sDeletedRetention='%u'", log->len ? ", " : "", d->deleted_retention_days);
	}
	return 0;
}

static void domain_written(admin_req *r)
{
	reply_domain(r, r->name, r->count);
}

static void domain_added_primary(admin_req *r)
{
	if (json_is_true(json_object_get(r->body, "primary"))) {
		admin_config_log(r, "update Domain set Primary='1' where Name='%s'", r->name);
		r->count = 201;
		store_domain_set_primary(r->st, r->name, admin_cb(r, domain_written), NULL);
		return;
	}
	reply_domain(r, r->name, 201);
}

void adm_domain_add(admin_req *r)
{
	static const aj_field fields[] = {
		{ "name", AJ_STR }, { "primary", AJ_BOOL }, { "description", AJ_STR },
		{ "aliases", AJ_STRLIST }, { "user_limit", AJ_UINT }, { "outgoing_size_limit", AJ_UINT },
		{ "footer", AJ_STR }, { "footer_skip_internal", AJ_BOOL },
		{ "deleted_retention_days", AJ_UINT }, { NULL, AJ_STR },
	};
	if (admin_parse_body(r, fields, 0) < 0)
		return;
	const char *name = aj_str(r, "name");
	if (name == NULL) {
		admin_error(r, 400, "field \"name\" is required");
		return;
	}
	if (!tern_valid_domain(name)) {
		admin_error(r, 400, "invalid domain name: %s", name);
		return;
	}
	snprintf(r->name, sizeof(r->name), "%s", name);
	tern_lower(r->name);
	Tern__Domain *d = calloc(1, sizeof(*d));
	if (d == NULL)
		abort();
	tern__domain__init(d);
	r->rec = d;
	r->rec_free = store_free_record;
	aj_set_str(&d->name, r->name);
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", r->name);
	if (domain_apply(r, d, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "insert Domain set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	store_domain_add(r->st, d, admin_cb(r, domain_added_primary), NULL);
}

void adm_domain_patch(admin_req *r)
{
	if (admin_parse_body(r, domain_settable, 0) < 0)
		return;
	Tern__Domain *d = NULL;
	int rc = store_domain_get(r->st, r->arg, &d);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	r->rec = d;
	r->rec_free = store_free_record;
	snprintf(r->name, sizeof(r->name), "%s", d->name);
	tbuf log = TBUF_INIT;
	if (domain_apply(r, d, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "update Domain set %s where Name='%s'", log.len ? tbuf_cstr(&log) : "",
			 d->name);
	tbuf_free(&log);
	r->count = 200;
	store_domain_update(r->st, d, admin_cb(r, domain_written), NULL);
}

void adm_domain_delete(admin_req *r)
{
	admin_config_log(r, "delete Domain where Name='%s'", r->arg);
	store_domain_remove(r->st, r->arg, admin_cb(r, admin_reply_empty), NULL);
}

void adm_domain_rename(admin_req *r)
{
	static const aj_field fields[] = { { "name", AJ_STR }, { NULL, AJ_STR } };
	if (admin_parse_body(r, fields, 0) < 0)
		return;
	const char *nn = aj_str(r, "name");
	if (nn == NULL || !tern_valid_domain(nn)) {
		admin_error(r, 400, "a valid new domain \"name\" is required");
		return;
	}
	snprintf(r->name, sizeof(r->name), "%s", nn);
	tern_lower(r->name);
	admin_config_log(r, "update Domain set Name='%s' where Name='%s'", r->name, r->arg);
	r->count = 200;
	store_domain_rename(r->st, r->arg, r->name, admin_cb(r, domain_written), NULL);
}

void adm_domain_primary(admin_req *r)
{
	int w = snprintf(r->name, sizeof(r->name), "%s", r->arg);
	if (w < 0 || (size_t)w >= sizeof(r->name)) {
		admin_error(r, 400, "domain name too long");
		return;
	}
	tern_lower(r->name);
	admin_config_log(r, "update Domain set Primary='1' where Name='%s'", r->name);
	r->count = 200;
	store_domain_set_primary(r->st, r->name, admin_cb(r, domain_written), NULL);
}
