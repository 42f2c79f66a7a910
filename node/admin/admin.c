/* admin.c - the admin API front: route table, authentication (Unix socket = local
 * administrator; HTTPS = HTTP Basic checked on the auth pool), rights, replies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"
#include "auth_sasl.h"

typedef struct admin_route {
	const char *method;
	const char *pattern;       /* '*' matches one path segment */
	admin_fn fn;
	int flags;
} admin_route;

/* Fixed paths come before the patterns that would also match them. */
static const admin_route routes[] = {
	{ "GET", "/api/v1/status", adm_status, 0 },
	{ "GET", "/api/v1/node", adm_node, 0 },
	{ "GET", "/api/v1/stats", adm_stats, 0 },
	{ "GET", "/api/v1/cluster", adm_cluster, 0 },
	{ "GET", "/api/v1/cluster/identity", adm_cluster_identity, 0 },
	{ "POST", "/api/v1/cluster/nodes", adm_cluster_admit, ADM_WRITE | ADM_AUDIT },
	{ "DELETE", "/api/v1/cluster/nodes/*", adm_cluster_remove, ADM_WRITE | ADM_AUDIT },
	{ "POST", "/api/v1/cluster/join", adm_cluster_join, ADM_WRITE | ADM_AUDIT },
	{ "POST", "/api/v1/cluster/leave", adm_cluster_leave, ADM_WRITE | ADM_AUDIT },
	{ "GET", "/api/v1/migrations", adm_migration_list, 0 },
	{ "POST", "/api/v1/migrations", adm_migration_add, ADM_WRITE | ADM_AUDIT },
	{ "DELETE", "/api/v1/migrations/*", adm_migration_cancel, ADM_WRITE | ADM_AUDIT },
	{ "GET", "/api/v1/logs/*", adm_logs, 0 },
	{ "GET", "/api/v1/domains", adm_domain_list, 0 },
	{ "POST", "/api/v1/domains", adm_domain_add, ADM_WRITE },
	{ "GET", "/api/v1/domains/*", adm_domain_get, 0 },
	{ "PATCH", "/api/v1/domains/*", adm_domain_patch, ADM_WRITE },
	{ "DELETE", "/api/v1/domains/*", adm_domain_delete, ADM_WRITE },
	{ "POST", "/api/v1/domains/*/rename", adm_domain_rename, ADM_WRITE },
	{ "POST", "/api/v1/domains/*/primary", adm_domain_primary, ADM_WRITE },
	{ "POST", "/api/v1/users/import", adm_user_import, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/users/export", adm_user_export, ADM_DOMAIN_OK },
	{ "GET", "/api/v1/users", adm_user_list, ADM_DOMAIN_OK },
	{ "POST", "/api/v1/users", adm_user_add, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/users/*", adm_user_get, ADM_DOMAIN_OK },
	{ "PATCH", "/api/v1/users/*", adm_user_patch, ADM_WRITE | ADM_DOMAIN_OK },
	{ "DELETE", "/api/v1/users/*", adm_user_delete, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/users/*/stats", adm_user_stats, ADM_DOMAIN_OK },
	{ "GET", "/api/v1/users/*/messages", adm_user_messages, ADM_DOMAIN_OK },
	{ "GET", "/api/v1/users/*/messages/*", adm_user_message, ADM_DOMAIN_OK },
	{ "GET", "/api/v1/queue", adm_queue_list, 0 },
	{ "POST", "/api/v1/queue/run", adm_queue_run, ADM_WRITE },
	{ "POST", "/api/v1/queue/retry", adm_queue_retry_all, ADM_WRITE },
	{ "POST", "/api/v1/queue/*/retry", adm_queue_retry, ADM_WRITE },
	{ "DELETE", "/api/v1/queue", adm_queue_remove_all, ADM_WRITE },
	{ "DELETE", "/api/v1/queue/*", adm_queue_remove, ADM_WRITE },
	{ "POST", "/api/v1/users/*/unlock", adm_user_unlock, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/groups", adm_group_list, ADM_DOMAIN_OK },
	{ "POST", "/api/v1/groups", adm_group_add, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/groups/*", adm_group_get, ADM_DOMAIN_OK },
	{ "PATCH", "/api/v1/groups/*", adm_group_patch, ADM_WRITE | ADM_DOMAIN_OK },
	{ "DELETE", "/api/v1/groups/*", adm_group_delete, ADM_WRITE | ADM_DOMAIN_OK },
	{ "POST", "/api/v1/groups/*/members", adm_group_members, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/gal", adm_gal_list, ADM_DOMAIN_OK },
	{ "GET", "/api/v1/aliases/check", adm_alias_check, ADM_DOMAIN_OK },
	{ "GET", "/api/v1/aliases", adm_alias_list, ADM_DOMAIN_OK },
	{ "POST", "/api/v1/aliases", adm_alias_add, ADM_WRITE | ADM_DOMAIN_OK },
	{ "DELETE", "/api/v1/aliases/*", adm_alias_delete, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/ipgroups", adm_ipgroup_list, 0 },
	{ "POST", "/api/v1/ipgroups", adm_ipgroup_add, ADM_WRITE },
	{ "DELETE", "/api/v1/ipgroups/*", adm_ipgroup_delete, ADM_WRITE },
	{ "GET", "/api/v1/resources", adm_resource_list, ADM_DOMAIN_OK },
	{ "POST", "/api/v1/resources", adm_resource_add, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/resources/*", adm_resource_get, ADM_DOMAIN_OK },
	{ "PATCH", "/api/v1/resources/*", adm_resource_patch, ADM_WRITE | ADM_DOMAIN_OK },
	{ "DELETE", "/api/v1/resources/*", adm_resource_delete, ADM_WRITE | ADM_DOMAIN_OK },
	{ "GET", "/api/v1/directory/*", adm_directory_get, 0 },
	{ "PUT", "/api/v1/directory/*", adm_directory_put, ADM_WRITE },
	{ "DELETE", "/api/v1/directory/*", adm_directory_delete, ADM_WRITE },
	{ "POST", "/api/v1/directory/*/test", adm_directory_test, ADM_WRITE },
};

admin *admin_new(const admin_env *env)
{
	admin *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->env = *env;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void admin_free(admin **a)
{
	if (*a == NULL)
		return;
	pthread_mutex_destroy(&(*a)->lock);
	free(*a);
	*a = NULL;
}

static void admin_req_free(admin_req *r)
{
	json_decref(r->body);
	json_decref(r->extra);
	tbuf_free(&r->log);
	free(r->login_user);
	free(r->negotiate);
	tbuf_free(&r->neg_out);
	free(r->param);
	if (r->login_pass != NULL) {
		explicit_bzero(r->login_pass, strlen(r->login_pass));
		free(r->login_pass);
	}
	if (r->password != NULL) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->hash);
	auth_scram_clear(&r->scram);
	if (r->rec != NULL && r->rec_free != NULL)
		r->rec_free(r->rec);
	free(r);
}

void admin_reply_text(admin_req *r, int status, const char *ctype, const char *text, size_t len)
{
	http_reply(r->req, status, ctype, text, len);
	admin_req_free(r);
}

void admin_reply_json(admin_req *r, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (s == NULL) {
		static const char err[] = "{\"error\":\"cannot encode the answer\"}";
		admin_reply_text(r, 500, "application/json", err, sizeof(err) - 1);
		return;
	}
	size_t n = strlen(s);
	admin_reply_text(r, status, "application/json", s, n);
	free(s);
}

/* The answer of a removal: 200 with an empty object. */
void admin_reply_empty(admin_req *r)
{
	admin_reply_json(r, 200, json_object());
}

void admin_error(admin_req *r, int status, const char *fmt, ...)
{
	tbuf msg = TBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	tbuf_vappendf(&msg, fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{s:s}", "error", tbuf_cstr(&msg));
	tbuf_free(&msg);
	admin_reply_json(r, status, j);
}

int admin_store_status(int rc)
{
	switch (rc) {
	case STORE_ENOTFOUND: return 404;
	case STORE_EEXISTS: return 409;
	case STORE_EINVAL: return 400;
	case STORE_EREFUSED: return 409;
	case STORE_EQUOTA: return 409;
	case STORE_EDISK: return 503;
	default: return 500;
	}
}

void admin_store_error(admin_req *r, int rc, const char *msg)
{
	admin_error(r, admin_store_status(rc), "%s", msg && *msg ? msg : store_strerror(rc));
}

static void admin_store_done(const store_result *res, void *arg)
{
	admin_req *r = arg;
	if (res->rc != STORE_OK) {
		admin_store_error(r, res->rc, res->error);
		return;
	}
	if (r->log.len > 0)
		tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	r->on_ok(r);
}

store_cb admin_cb(admin_req *r, admin_fn ok)
{
	r->on_ok = ok;
	return (store_cb){ admin_store_done, r, r->io };
}

/* Values come from request paths and query strings (percent-decoded): a CR or LF in
 * them would forge config.log lines, so the line is kept to one line here. */
void admin_config_log(admin_req *r, const char *fmt, ...)
{
	va_list ap;
	tbuf_reset(&r->log);
	va_start(ap, fmt);
	tbuf_vappendf(&r->log, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < r->log.len; i++)
		if (r->log.data[i] == '\r' || r->log.data[i] == '\n')
			r->log.data[i] = ' ';
}

int admin_may_domain(admin_req *r, const char *domain)
{
	if (r->rights != TERN__RIGHTS__RIGHTS_DOMAIN)
		return 0;
	if (strcasecmp(domain, r->admin_domain) == 0)
		return 0;
	admin_error(r, 403, "no rights for domain %s", domain);
	return -1;
}

int admin_primary_domain(store *st, char *domain_r, size_t n)
{
	Tern__Domain **list = NULL;
	size_t cnt = 0;
	if (store_domain_list(st, &list, &cnt) != STORE_OK)
		return -1;
	int rc = -1;
	for (size_t i = 0; i < cnt; i++) {
		if (list[i]->primary) {
			int w = snprintf(domain_r, n, "%s", list[i]->name);
			rc = w >= 0 && (size_t)w < n ? 0 : -1;
			break;
		}
	}
	store_free_list((void **)list, cnt);
	return rc;
}

int admin_query_domain(admin_req *r, char *domain_r, size_t n)
{
	char *d = http_query_param(r->req, "domain");
	if (d == NULL || *d == '\0') {
		free(d);
		if (r->rights == TERN__RIGHTS__RIGHTS_DOMAIN) {
			snprintf(domain_r, n, "%s", r->admin_domain);
			return 0;
		}
		if (admin_primary_domain(r->st, domain_r, n) < 0) {
			admin_error(r, 404, "no primary domain");
			return -1;
		}
		return 0;
	}
	int w = snprintf(domain_r, n, "%s", d);
	free(d);
	if (w < 0 || (size_t)w >= n) {
		admin_error(r, 400, "domain name too long");
		return -1;
	}
	tern_lower(domain_r);
	return admin_may_domain(r, domain_r);
}

typedef struct pool_job {
	admin_req *r;
	void (*job)(void *);
	admin_fn done;
} pool_job;

static void pool_run(void *arg)
{
	pool_job *pj = arg;
	pj->job(pj->r);
}

static void pool_done(void *arg)
{
	pool_job *pj = arg;
	admin_req *r = pj->r;
	admin_fn done = pj->done;
	free(pj);
	done(r);
}

void admin_pool(admin_req *r, void (*job)(void *), admin_fn done)
{
	pool_job *pj = malloc(sizeof(*pj));
	if (pj == NULL)
		abort();
	*pj = (pool_job){ r, job, done };
	if (tern_pool_submit(r->a->env.auth_pool, pool_run, pool_done, pj, r->io) < 0) {
		free(pj);
		admin_error(r, 503, "server busy, try again later");
	}
}

/* Match path against pattern; a '*' segment is copied to arg. 1 on match. */
static int route_match(const char *pattern, const char *path, char *arg, size_t argn, char *arg2,
		       size_t arg2n)
{
	int stars = 0;
	while (*pattern && *path) {
		if (*pattern == '*') {
			char *out = stars == 0 ? arg : arg2;
			size_t outn = stars == 0 ? argn : arg2n;
			const char *end = strchr(path, '/');
			size_t n = end ? (size_t)(end - path) : strlen(path);
			if (n == 0 || n >= outn)
				return 0;
			memcpy(out, path, n);
			out[n] = '\0';
			path += n;
			pattern++;
			stars++;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	return *pattern == '\0' && (*path == '\0' || (path[0] == '/' && path[1] == '\0'));
}

/* Find the route and run it, after the rights check. */
static void admin_dispatch(admin_req *r)
{
	int path_seen = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(routes[i].pattern, r->req->path, r->arg, sizeof(r->arg), r->arg2,
				 sizeof(r->arg2)))
			continue;
		path_seen = 1;
		if (strcmp(routes[i].method, r->req->method) != 0)
			continue;
		r->route_flags = routes[i].flags;
		const char *refused = NULL;
		if (r->rights == TERN__RIGHTS__RIGHTS_NONE)
			refused = "no administration rights";
		else if (r->rights == TERN__RIGHTS__RIGHTS_DOMAIN && !(routes[i].flags & ADM_DOMAIN_OK))
			refused = "domain administrators may manage their domain's accounts only";
		else if (r->rights == TERN__RIGHTS__RIGHTS_READ_ONLY && (routes[i].flags & ADM_WRITE))
			refused = "read-only administration rights";
		if (refused != NULL) {
			if (routes[i].flags & ADM_AUDIT)
				tlog(TLOG_SECURITY, "Refused ADMIN %s %s by %s from %s: %s", routes[i].method,
				     routes[i].pattern, r->actor, r->ip, refused);
			admin_error(r, 403, "%s", refused);
			return;
		}
		routes[i].fn(r);
		return;
	}
	if (path_seen)
		admin_error(r, 405, "method %s not allowed on %s", r->req->method, r->req->path);
	else
		admin_error(r, 404, "no such resource: %s", r->req->path);
}

/* Log "session opened" once per admin and address per session timeout. */
static void admin_note_session(admin_req *r)
{
	admin *a = r->a;
	int64_t now = tern_now();
	int64_t timeout = a->env.conf ? a->env.conf->admin_session_timeout : 2400;
	int opened = 0;
	pthread_mutex_lock(&a->lock);
	admin_session *slot = &a->sessions[0];
	for (int i = 0; i < ADMIN_SESSIONS_MAX; i++) {
		admin_session *s = &a->sessions[i];
		if (strcmp(s->user, r->actor) == 0 && strcmp(s->ip, r->ip) == 0) {
			opened = now - s->last > timeout;
			s->last = now;
			slot = NULL;
			break;
		}
		if (s->last < slot->last)
			slot = s;
	}
	if (slot != NULL) {
		snprintf(slot->user, sizeof(slot->user), "%s", r->actor);
		snprintf(slot->ip, sizeof(slot->ip), "%s", r->ip);
		slot->last = now;
		opened = 1;
	}
	pthread_mutex_unlock(&a->lock);
	if (opened)
		tlog(TLOG_CONFIG, "%s - session opened for host %s", r->actor, r->ip);
}

/* Auth pool: accept the Kerberos ticket of a Negotiate login; r->login_user becomes the
 * account its principal maps to. 0 ok, -1 refused (r->neg_reason says why). */
static int spnego_login(admin_req *r)
{
	char principal[AUTH_PRINCIPAL_MAX], login[AUTH_PRINCIPAL_MAX];
	if (auth_spnego_accept(r->a->env.gssapi, r->negotiate, strlen(r->negotiate), &r->neg_out, principal,
			       sizeof(principal), login, sizeof(login), &r->neg_reason) < 0)
		return -1;
	free(r->login_user);
	r->login_user = strdup(login);
	if (r->login_user == NULL)
		abort();
	tern_lower(r->login_user);
	tlog(TLOG_DEBUG, "ADMIN Negotiate login of %s as %s from %s", principal, r->login_user, r->ip);
	return 0;
}

/* Auth pool: check the password (or the Kerberos ticket) and work out the rights (own
 * or through a group). */
static void login_job(void *arg)
{
	admin_req *r = arg;
	Tern__User *u = NULL;
	if (r->negotiate != NULL && spnego_login(r) < 0)
		return;
	if (store_user_find(r->st, r->login_user, &u) != STORE_OK)
		return;
	int proven = r->negotiate != NULL ||
		     (u->password_hash && u->password_hash[0] &&
		      auth_password_verify(r->login_pass, u->password_hash) == 1);
	if (u->enabled && proven) {
		r->login_ok = 1;
		Tern__Rights rights = u->rights;
		snprintf(r->actor, sizeof(r->actor), "%s@%s", u->name, u->domain);
		tern_lower(r->actor);
		snprintf(r->admin_domain, sizeof(r->admin_domain), "%s", u->domain);
		Tern__Group **groups = NULL;
		size_t n = 0;
		if (store_group_list(r->st, u->domain, &groups, &n) == STORE_OK) {
			for (size_t i = 0; i < n; i++)
				for (size_t m = 0; m < groups[i]->n_members; m++)
					if (strcasecmp(groups[i]->members[m], r->actor) == 0 &&
					    groups[i]->rights > rights)
						rights = groups[i]->rights;
			store_free_list((void **)groups, n);
		}
		r->rights = rights;
	}
	store_free_record(u);
}

/* 401 with the schemes a remote admin may use: Negotiate when a keytab serves HTTP. */
static void login_required(admin_req *r)
{
	if (r->a->env.gssapi != NULL)
		http_add_header(r->req, "WWW-Authenticate", "Negotiate");
	http_add_header(r->req, "WWW-Authenticate", "Basic realm=\"Tern administration\"");
	admin_error(r, 401, "authentication required");
}

static void login_fail(admin_req *r)
{
	tlog(TLOG_SECURITY, "Failed ADMIN login from %s, %s", r->ip,
	     r->neg_reason ? r->neg_reason : "bad credentials");
	login_required(r);
}

static void login_done(admin_req *r)
{
	/* a Kerberos ticket cannot be guessed: the lockout counts passwords only */
	if (!r->login_ok) {
		if (r->negotiate == NULL)
			auth_lockout_failed(r->a->env.lockout, r->login_user, r->ip);
		login_fail(r);
		return;
	}
	if (r->negotiate == NULL)
		auth_lockout_succeeded(r->a->env.lockout, r->login_user, r->ip);
	else if (r->neg_out.len > 0) {
		tbuf h = TBUF_INIT;
		tbuf_appendf(&h, "Negotiate %s", tbuf_cstr(&r->neg_out));
		http_add_header(r->req, "WWW-Authenticate", tbuf_cstr(&h));
		tbuf_free(&h);
	}
	admin_note_session(r);
	admin_dispatch(r);
}

/* Decode "Basic base64(user:pass)"; the bare user name means the primary domain. */
static int parse_basic(admin_req *r, const char *hdr)
{
	char *name = NULL;
	if (auth_basic_parse(hdr, &name, &r->login_pass) != 0)
		return -1;
	tbuf user = TBUF_INIT;
	tbuf_append_str(&user, name);
	free(name);
	if (strchr(tbuf_cstr(&user), '@') == NULL) {
		char dom[256];
		if (admin_primary_domain(r->st, dom, sizeof(dom)) == 0)
			tbuf_appendf(&user, "@%s", dom);
	}
	r->login_user = tbuf_steal(&user);
	tern_lower(r->login_user);
	return 0;
}

void admin_handle(http_request *req, void *ctx)
{
	admin *a = ctx;
	admin_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->a = a;
	r->st = a->env.st;
	r->req = req;
	r->io = tern_conn_io(req->conn);
	tbuf_init(&r->log);
	r->local = tern_conn_is_unix(req->conn);
	if (r->local) {
		snprintf(r->ip, sizeof(r->ip), "local");
		snprintf(r->actor, sizeof(r->actor), "local");
		r->rights = TERN__RIGHTS__RIGHTS_READ_WRITE;
		admin_dispatch(r);
		return;
	}
	snprintf(r->ip, sizeof(r->ip), "%s", tern_conn_peer_ip(req->conn));
	const tern_conf *conf = a->env.conf;
	if (conf != NULL && !conf->admin_remote) {
		admin_error(r, 403, "remote administration is disabled");
		return;
	}
	if (conf != NULL && conf->admin_remote_ipgroup && conf->admin_remote_ipgroup[0] &&
	    !store_ipgroup_match(r->st, conf->admin_remote_ipgroup, tern_conn_peer_addr(req->conn))) {
		admin_error(r, 403, "administration is not allowed from %s", r->ip);
		return;
	}
	const char *authz = http_header_get(req, "Authorization");
	if (a->env.gssapi != NULL && authz != NULL && strncasecmp(authz, "Negotiate ", 10) == 0) {
		const char *b64 = authz + 10;
		while (*b64 == ' ')
			b64++;
		if (*b64 == '\0' || strlen(b64) > (AUTH_GSSAPI_TOKEN_MAX + 2) / 3 * 4) {
			r->neg_reason = "malformed Negotiate token";
			login_fail(r);
			return;
		}
		r->negotiate = strdup(b64);
		if (r->negotiate == NULL)
			abort();
		admin_pool(r, login_job, login_done);
		return;
	}
	if (parse_basic(r, authz) < 0) {
		if (authz != NULL) {
			login_fail(r);
			return;
		}
		login_required(r);
		return;
	}
	if (auth_lockout_is_locked(a->env.lockout, r->login_user, r->ip)) {
		login_fail(r);
		return;
	}
	admin_pool(r, login_job, login_done);
}
