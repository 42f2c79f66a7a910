/* admin_directory.c - /api/v1/directory/DOMAIN: show (never the bind password), set,
 * turn off, and test a domain's directory mapping. The bind password is encrypted on the
 * auth pool (the node secret may have to be made on disk) and written as "********" in
 * config.log; the test runs lm_test on the auth pool. Whole-server rights only. */
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"
#include "directory.h"

static json_t *directory_json(const Tern__DirectoryConfig *c)
{
	return json_pack("{s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:I, s:I}",
			 "domain", c->domain, "enabled", 1, "type", dir_type_name(c->type),
			 "server", c->server, "backup_server", c->backup_server,
			 "tls", dir_tls_name(c->tls), "ca_file", c->ca_file, "bind_dn", c->bind_dn,
			 "bind_password_set", c->bind_password.len > 0, "base", c->search_base,
			 "directory_domain", c->directory_domain, "realm", c->realm,
			 "auth", dir_auth_name(c->auth), "last_poll_stamp", (json_int_t)c->last_poll_stamp,
			 "last_reconcile", (json_int_t)c->last_reconcile);
}

/* The domain of the path, lower case, existing. Replies and returns -1 on error. */
static int directory_domain(admin_req *r)
{
	char canon[256];

	if (store_domain_resolve(r->st, r->arg, canon, sizeof(canon)) != STORE_OK ||
	    strcasecmp(canon, r->arg) != 0) {
		admin_error(r, 404, "domain %s does not exist", r->arg);
		return -1;
	}
	snprintf(r->domain, sizeof(r->domain), "%s", canon);
	tern_lower(r->domain);
	return 0;
}

void adm_directory_get(admin_req *r)
{
	Tern__DirectoryConfig *c = NULL;

	if (directory_domain(r) < 0)
		return;
	int rc = store_directory_get(r->st, r->domain, &c);
	if (rc == STORE_ENOTFOUND) {
		admin_error(r, 404, "domain %s has no directory mapping", r->domain);
		return;
	}
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *j = directory_json(c);
	store_free_record(c);
	admin_reply_json(r, 200, j);
}

static void directory_written(admin_req *r)
{
	adm_directory_get(r);
}

static void free_directory(void *rec)
{
	store_free_record(rec);
}

/* Auth pool: seal the new bind password into the record (r->password, wiped after). */
static void seal_job(void *arg)
{
	admin_req *r = arg;
	Tern__DirectoryConfig *c = r->rec;
	const char *why = NULL;

	r->hash_rc = 0;
	if (r->password == NULL)
		return;
	free(c->bind_password.data);
	c->bind_password.data = NULL;
	c->bind_password.len = 0;
	if (dir_secret_encrypt(r->a->env.data_dir, c->domain, r->password, &c->bind_password, &why) < 0) {
		r->hash_rc = -1;
		tlog(TLOG_ERROR, "Directory mapping of %s: %s", c->domain, why);
	}
}

static void seal_done(admin_req *r)
{
	if (r->hash_rc < 0) {
		admin_error(r, 500, "the bind password cannot be encrypted (see error.log)");
		return;
	}
	store_directory_put(r->st, r->rec, admin_cb(r, directory_written), NULL);
}

/* Copy a string field of the body into *field (malloc'd); absent keeps the old value. */
static void take_str(admin_req *r, const char *name, char **field)
{
	const char *v = aj_str(r, name);

	if (v != NULL)
		aj_set_str(field, v);
}

void adm_directory_put(admin_req *r)
{
	static const aj_field fields[] = {
		{ "type", AJ_STR }, { "server", AJ_STR }, { "backup_server", AJ_STR }, { "tls", AJ_STR },
		{ "ca_file", AJ_STR }, { "bind_dn", AJ_STR }, { "bind_password", AJ_STR }, { "base", AJ_STR },
		{ "directory_domain", AJ_STR }, { "realm", AJ_STR }, { "auth", AJ_STR }, { NULL, AJ_STR },
	};
	Tern__DirectoryConfig *c = NULL;

	if (directory_domain(r) < 0 || admin_parse_body(r, fields, 0) < 0)
		return;
	int rc = store_directory_get(r->st, r->domain, &c);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		admin_store_error(r, rc, NULL);
		return;
	}
	int is_new = c == NULL;
	if (is_new) {
		if ((c = malloc(sizeof(*c))) == NULL)
			abort();
		tern__directory_config__init(c);
		aj_set_str(&c->domain, r->domain);
	}
	r->rec = c;
	r->rec_free = free_directory;
	/* every text field owned by the record, never NULL */
	char **texts[] = { &c->server, &c->backup_server, &c->ca_file, &c->bind_dn, &c->search_base,
			   &c->directory_domain, &c->realm };
	if (is_new)
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
			aj_set_str(texts[i], "");
	const char *type = aj_str(r, "type"), *tls = aj_str(r, "tls"), *auth = aj_str(r, "auth");
	if ((type && dir_type_parse(type, &c->type) < 0) || (tls && dir_tls_parse(tls, &c->tls) < 0) ||
	    (auth && dir_auth_parse(auth, &c->auth) < 0)) {
		admin_error(r, 400, "type must be ad|od|ldap, tls plain|ldaps|starttls, auth kerberos|bind");
		return;
	}
	take_str(r, "server", &c->server);
	take_str(r, "backup_server", &c->backup_server);
	take_str(r, "ca_file", &c->ca_file);
	take_str(r, "bind_dn", &c->bind_dn);
	take_str(r, "base", &c->search_base);
	take_str(r, "directory_domain", &c->directory_domain);
	take_str(r, "realm", &c->realm);
	for (char *p = c->realm; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	const char *password = aj_str(r, "bind_password");
	if (!c->server[0] || !c->bind_dn[0] || !c->search_base[0] || (is_new && password == NULL)) {
		admin_error(r, 400, "fields \"server\", \"bind_dn\", \"bind_password\" and \"base\" are required");
		return;
	}
	if (password != NULL && (r->password = strdup(password)) == NULL)
		abort();
	c->enabled = 1;
	c->last_poll_stamp = 0;              /* a changed mapping: full sync from scratch */
	c->last_reconcile = 0;
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Domain", r->domain);
	admin_log_kv(&log, "Type", dir_type_name(c->type));
	admin_log_kv(&log, "Server", c->server);
	admin_log_kv(&log, "BackupServer", c->backup_server);
	admin_log_kv(&log, "Security", dir_tls_name(c->tls));
	admin_log_kv(&log, "BindDN", c->bind_dn);
	admin_log_kv(&log, "BindPassword", "********");
	admin_log_kv(&log, "Base", c->search_base);
	admin_log_kv(&log, "Realm", c->realm);
	admin_log_kv(&log, "Auth", dir_auth_name(c->auth));
	admin_config_log(r, "%s Directory set %s", is_new ? "insert" : "update", tbuf_cstr(&log));
	tbuf_free(&log);
	admin_pool(r, seal_job, seal_done);
}

void adm_directory_delete(admin_req *r)
{
	if (directory_domain(r) < 0)
		return;
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Domain", r->domain);
	admin_config_log(r, "delete Directory where %s", tbuf_cstr(&log));
	tbuf_free(&log);
	store_directory_remove(r->st, r->domain, admin_cb(r, admin_reply_empty), NULL);
}

static void test_job(void *arg)
{
	admin_req *r = arg;
	tbuf report = TBUF_INIT;
	int mapped = 0;
	int rc = dir_config_test(r->st, r->a->env.conf, r->a->env.data_dir, r->domain, &report, &mapped);

	r->count = mapped;
	r->extra = json_pack("{s:s, s:b, s:s}", "domain", r->domain, "ok", rc == 0, "report",
			     tbuf_cstr(&report));
	tbuf_free(&report);
}

static void test_done(admin_req *r)
{
	if (!r->count) {
		admin_error(r, 404, "domain %s has no directory mapping", r->domain);
		return;
	}
	json_t *j = r->extra;
	r->extra = NULL;
	admin_reply_json(r, 200, j);
}

void adm_directory_test(admin_req *r)
{
	if (directory_domain(r) < 0)
		return;
	admin_pool(r, test_job, test_done);
}
