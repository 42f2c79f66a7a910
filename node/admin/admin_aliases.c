/* admin_aliases.c - /api/v1/aliases: list, add a target, remove, check an address. */
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"
#include "deliver.h"

static json_t *alias_json(const Tern__Alias *al)
{
	return json_pack("{s:s, s:s, s:o, s:s}", "alias", al->pattern, "domain", al->domain,
			 "targets", aj_from_strlist(al->targets, al->n_targets),
			 "description", al->description);
}

void adm_alias_list(admin_req *r)
{
	char dom[256];
	if (admin_query_domain(r, dom, sizeof(dom)) < 0)
		return;
	Tern__Alias **list = NULL;
	size_t n = 0;
	int rc = store_alias_list(r->st, dom, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, alias_json(list[i]));
	store_free_list((void **)list, n);
	admin_reply_json(r, 200, a);
}

/* PATTERN@DOMAIN into r->name / r->domain. Patterns may hold '*' and '?'. */
static int alias_address(admin_req *r, const char *address)
{
	const char *at = strrchr(address, '@');
	if (at == NULL || (size_t)(at - address) >= sizeof(r->name) || strlen(at + 1) >= sizeof(r->domain)) {
		admin_error(r, 400, "an alias is PATTERN@DOMAIN: %s", address);
		return -1;
	}
	memcpy(r->name, address, (size_t)(at - address));
	r->name[at - address] = '\0';
	snprintf(r->domain, sizeof(r->domain), "%s", at + 1);
	tern_lower(r->name);
	tern_lower(r->domain);
	if (!tern_valid_alias_pattern(r->name) || !tern_valid_domain(r->domain)) {
		admin_error(r, 400, "invalid alias: %s", address);
		return -1;
	}
	return admin_may_domain(r, r->domain);
}

static void alias_added(admin_req *r)
{
	Tern__Alias **list = NULL;
	size_t n = 0;
	json_t *j = NULL;
	if (store_alias_list(r->st, r->domain, &list, &n) == STORE_OK) {
		for (size_t i = 0; i < n && j == NULL; i++)
			if (strcasecmp(list[i]->pattern, r->name) == 0)
				j = alias_json(list[i]);
		store_free_list((void **)list, n);
	}
	if (j == NULL) {
		admin_error(r, 500, "alias %s@%s vanished", r->name, r->domain);
		return;
	}
	admin_reply_json(r, 201, j);
}

void adm_alias_add(admin_req *r)
{
	static const aj_field fields[] = {
		{ "alias", AJ_STR }, { "target", AJ_STR }, { "description", AJ_STR }, { NULL, AJ_STR },
	};
	if (admin_parse_body(r, fields, 0) < 0)
		return;
	const char *alias = aj_str(r, "alias"), *target = aj_str(r, "target");
	const char *descr = aj_str(r, "description");
	if (alias == NULL || target == NULL) {
		admin_error(r, 400, "fields \"alias\" and \"target\" are required");
		return;
	}
	if (alias_address(r, alias) < 0)
		return;
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Alias", r->name);
	admin_log_kv(&log, "Domain", r->domain);
	admin_log_kv(&log, "DeliverTo", target);
	if (descr != NULL)
		admin_log_kv(&log, "Description", descr);
	admin_config_log(r, "insert Alias set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	store_alias_add(r->st, r->domain, r->name, target, descr ? descr : "", admin_cb(r, alias_added), NULL);
}

void adm_alias_delete(admin_req *r)
{
	if (alias_address(r, r->arg) < 0)
		return;
	char *target = http_query_param(r->req, "target");
	if (target != NULL)
		admin_config_log(r, "delete Alias where Alias='%s', Domain='%s', DeliverTo='%s'", r->name,
				 r->domain, target);
	else
		admin_config_log(r, "delete Alias where Alias='%s', Domain='%s'", r->name, r->domain);
	r->param = target;
	store_alias_remove(r->st, r->domain, r->name, target, admin_cb(r, admin_reply_empty), NULL);
}

static const char *kind_name(deliver_kind k)
{
	switch (k) {
	case DELIVER_LOCAL_USER: return "local";
	case DELIVER_REMOTE: return "remote";
	case DELIVER_PUBLIC: return "public";
	case DELIVER_RESOURCE: return "resource";
	default: return "unknown";
	}
}

void adm_alias_check(admin_req *r)
{
	char *address = http_query_param(r->req, "address");
	if (address == NULL || *address == '\0') {
		free(address);
		admin_error(r, 400, "query parameter \"address\" is required");
		return;
	}
	deliver_expansion e;
	memset(&e, 0, sizeof(e));
	tbuf_init(&e.trace);
	int rc = deliver_expand(r->st, address, &e);
	if (rc < 0) {
		free(address);
		deliver_expansion_free(&e);
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *rcpts = json_array(), *trace = json_array();
	for (size_t i = 0; i < e.n; i++)
		json_array_append_new(rcpts, json_pack("{s:s, s:s}", "address", e.rcpts[i].address, "kind",
						       kind_name(e.rcpts[i].kind)));
	const char *p = tbuf_cstr(&e.trace);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0)
			json_array_append_new(trace, json_stringn(p, n));
		p += n + (nl ? 1 : 0);
	}
	json_t *j = json_pack("{s:s, s:o, s:o}", "address", address, "recipients", rcpts, "trace", trace);
	free(address);
	deliver_expansion_free(&e);
	admin_reply_json(r, 200, j);
}
