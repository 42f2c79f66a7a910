/* lm_test.c - `ternctl directory test`: walk the steps a mapping needs (reach the server,
 * bind, read the base, find Tern's schema, list users and groups) and say in one line per
 * step what worked and, for a failure, what to fix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lm_int.h"

#define LM_TEST_SHOW_USERS 5

static const char *tls_name(lm_tls t)
{
	return t == LM_TLS_LDAPS ? "LDAPS" : t == LM_TLS_STARTTLS ? "StartTLS" : "plain LDAP";
}

/* Reachability (TCP and TLS) and the service bind on one server, as two lines. */
static int test_server(const lm_config *cfg, const char *label, const char *server, tbuf *report)
{
	LDAP *ld;
	char *err = NULL, *diag = NULL;

	if (lm_open(cfg, server, &ld, &err) < 0) {
		tbuf_appendf(report, "FAILED: %s: connect: %s\n", label, err);
		free(err);
		return -1;
	}
	int rc = ldap_connect(ld);
	if (rc != LDAP_SUCCESS) {
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		tbuf_appendf(report, "FAILED: %s: connect to %s (%s): %s%s%s\n", label, server,
			     tls_name(cfg->tls), ldap_err2string(rc), diag && *diag ? ": " : "",
			     diag ? diag : "");
		ldap_memfree(diag);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	tbuf_appendf(report, "OK: %s: connected to %s (%s%s)\n", label, server, tls_name(cfg->tls),
		     cfg->tls != LM_TLS_PLAIN ? ", certificate verified" : "");
	const char *dn = cfg->bind_dn ? cfg->bind_dn : "";
	if (*dn && (!cfg->bind_password || !*cfg->bind_password)) {
		tbuf_appendf(report, "FAILED: %s: bind as %s: the bind password is empty\n", label, dn);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	rc = lm_simple_bind(ld, cfg, dn, cfg->bind_password ? cfg->bind_password : "", &diag);
	ldap_unbind_ext_s(ld, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		tbuf_appendf(report, "FAILED: %s: bind as %s: %s%s%s%s\n", label, *dn ? dn : "anonymous",
			     ldap_err2string(rc), diag ? ": " : "", diag ? diag : "",
			     rc == LDAP_INVALID_CREDENTIALS ? " (check the bind DN and password)" : "");
		free(diag);
		return -1;
	}
	free(diag);
	tbuf_appendf(report, "OK: %s: bound as %s\n", label, *dn ? dn : "anonymous");
	return 0;
}

/* Tern's attributes in the server's subschema (rootDSE subschemaSubentry). Missing ones
 * are a warning: mapping works with defaults for the mailbox settings. */
static int test_schema(lm_conn *c, tbuf *report)
{
	static const char *const tern_attrs[] = {
		"ternMailboxEnabled", "ternPrimaryAddress", "ternAddress", "ternForward",
		"ternForwardKeepCopy", "ternQuotaStorage", "ternQuotaMessages", "ternAdminRights",
		"ternCreateMailbox",
	};
	static const char *const root_attrs[] = { "subschemaSubentry", NULL };
	static const char *const schema_attrs[] = { "attributeTypes", NULL };
	lm_entry root, schema;
	char *err = NULL;

	if (lm_read_entry(c, "", root_attrs, &root, &err) < 0) {
		tbuf_appendf(report, "FAILED: schema: cannot read the root DSE: %s\n", err);
		free(err);
		return -1;
	}
	const char *sub = lm_entry_first(&root, "subschemaSubentry");
	int rc = sub ? lm_read_entry(c, sub, schema_attrs, &schema, &err) : -1;
	lm_entry_clear(&root);
	if (rc < 0) {
		tbuf_appendf(report, "FAILED: schema: cannot read the subschema: %s\n",
			     err ? err : "the root DSE names none");
		free(err);
		return -1;
	}
	const lm_attr *types = lm_entry_get(&schema, "attributeTypes");
	tbuf missing = TBUF_INIT;
	for (size_t i = 0; i < sizeof(tern_attrs) / sizeof(tern_attrs[0]); i++) {
		char needle[64];
		int w = snprintf(needle, sizeof(needle), "'%s'", tern_attrs[i]);
		if (w < 0 || (size_t)w >= sizeof(needle))
			continue;
		int found = 0;
		for (size_t k = 0; types && k < types->nvals && !found; k++)
			found = strcasestr(types->vals[k], needle) != NULL;
		if (!found)
			tbuf_appendf(&missing, "%s%s", missing.len ? ", " : "", tern_attrs[i]);
	}
	lm_entry_clear(&schema);
	if (missing.len)
		tbuf_appendf(report, "WARNING: schema: Tern attributes not installed (%s): load "
			     "ops/schema/tern.schema (tern-ad.ldif for AD); mailbox settings use defaults\n",
			     tbuf_cstr(&missing));
	else
		tbuf_append_str(report, "OK: schema: Tern attributes installed\n");
	tbuf_free(&missing);
	return 0;
}

typedef struct show_ctx {
	tbuf *report;
	size_t count;
} show_ctx;

static int show_user(const lm_user *u, void *arg)
{
	show_ctx *s = arg;

	if (s->count++ < LM_TEST_SHOW_USERS) {
		tbuf_appendf(s->report, "  user %s <%s> \"%s\"%s", u->login, u->principal, u->full_name,
			     u->enabled ? "" : " (disabled)");
		for (size_t i = 0; i < u->naddresses; i++)
			tbuf_appendf(s->report, "%s%s", i ? "," : " addresses: ", u->addresses[i]);
		tbuf_append_char(s->report, '\n');
	}
	return 0;
}

static int count_group(const lm_group *g, void *arg)
{
	show_ctx *s = arg;
	s->count++;
	return 0;
}

int lm_test(const lm_config *cfg, tbuf *report)
{
	int ret = 0;
	char *err = NULL;

	if (test_server(cfg, "server", cfg->server, report) < 0)
		ret = -1;
	if (cfg->backup_server && cfg->backup_server[0] &&
	    test_server(cfg, "backup server", cfg->backup_server, report) < 0)
		ret = -1;

	lm_conn *c = lm_connect(cfg, &err);
	if (!c) {
		tbuf_appendf(report, "FAILED: no server to search: %s\n", err);
		free(err);
		return -1;
	}
	static const char *const base_attrs[] = { "objectClass", NULL };
	lm_entry base;
	if (lm_read_entry(c, cfg->base, base_attrs, &base, &err) < 0) {
		tbuf_appendf(report, "FAILED: search base %s: %s (check the base / suffix)\n", cfg->base, err);
		free(err);
		lm_close(&c);
		return -1;
	}
	lm_entry_clear(&base);
	tbuf_appendf(report, "OK: search base %s readable\n", cfg->base);
	if (test_schema(c, report) < 0)
		ret = -1;

	show_ctx users = { report, 0 }, groups = { report, 0 };
	tbuf_append_str(report, "users:\n");
	if (lm_users(c, 0, show_user, &users, NULL, &err) < 0) {
		tbuf_appendf(report, "FAILED: users: %s\n", err);
		free(err);
		ret = -1;
	} else {
		tbuf_appendf(report, "%s: %zu users found\n", users.count ? "OK" : "WARNING", users.count);
	}
	if (lm_groups(c, 0, count_group, &groups, NULL, &err) < 0) {
		tbuf_appendf(report, "FAILED: groups: %s\n", err);
		free(err);
		ret = -1;
	} else {
		tbuf_appendf(report, "OK: %zu groups found\n", groups.count);
	}
	lm_close(&c);
	return ret;
}
