/* dav.c - the DAV front: URL space, HTTP Basic authentication on the auth pool (with a
 * short-lived cache of recent logins, since yescrypt is slow on purpose and DAV clients
 * send credentials with every request), access to the target owner, provisioning of the
 * default collections and dispatch to the method handlers.
 *
 * Basic credentials travel in clear on the plain HTTP ports: they are accepted there when
 * [security] auth_policy is "none" (the default, as for IMAP LOGIN) or the client is on
 * the loopback interface; otherwise only over TLS (https, https_alt). */
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth_sasl.h"
#include "cluster.h"
#include "dav_proxy.h"

static const char dav_allow[] = "OPTIONS, GET, HEAD, PUT, DELETE, POST, PROPFIND, PROPPATCH, MKCALENDAR, "
				"MKCOL, REPORT";
static const char dav_caps[] = "1, 3, calendar-access, addressbook, calendar-schedule, extended-mkcol";

dav *dav_new(const dav_env *env)
{
	dav *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->env = *env;
	pthread_mutex_init(&d->lock, NULL);
	tern_random(d->secret, sizeof(d->secret));
	d->fb = dav_fb_start(&d->env);
	return d;
}

void dav_free(dav **d)
{
	if (*d == NULL)
		return;
	dav_fb_stop(&(*d)->fb);
	pthread_mutex_destroy(&(*d)->lock);
	explicit_bzero((*d)->cache, sizeof((*d)->cache));
	free(*d);
	*d = NULL;
}

/* ---- replies ---- */

void dav_set(dav_req *r, int status, const char *ctype, const char *text)
{
	r->status = status;
	r->ctype = ctype;
	tbuf_reset(&r->body);
	if (text != NULL)
		tbuf_append_str(&r->body, text);
}

/* Seconds a client waits before it retries a 503. */
#define DAV_RETRY_AFTER "5"

void dav_error(dav_req *r, int status, const char *fmt, ...)
{
	va_list ap;
	r->status = status;
	r->ctype = "text/plain; charset=utf-8";
	tbuf_reset(&r->body);
	va_start(ap, fmt);
	tbuf_vappendf(&r->body, fmt, ap);
	va_end(ap);
	tbuf_append_char(&r->body, '\n');
	if (status == 503)   /* busy, moving, home unreachable: a retry soon may succeed */
		dav_header(r, "Retry-After", DAV_RETRY_AFTER);
}

void dav_precondition(dav_req *r, int status, const char *ns, const char *name, const char *inner)
{
	r->status = status;
	r->ctype = "application/xml; charset=utf-8";
	tbuf_reset(&r->body);
	tbuf_append_str(&r->body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" "
		       "xmlns:c=\"" DAV_NS_CAL "\" xmlns:cr=\"" DAV_NS_CARD "\">");
	if (inner != NULL && *inner) {
		dav_xml_open(&r->body, ns, name);
		tbuf_append_str(&r->body, inner);
		dav_xml_close(&r->body, ns, name);
	} else {
		dav_xml_empty(&r->body, ns, name);
	}
	tbuf_append_str(&r->body, "</d:error>\n");
}

void dav_header(dav_req *r, const char *name, const char *value)
{
	http_add_header(r->req, name, value);
}

int dav_store_status(int rc)
{
	switch (rc) {
	case STORE_ENOTFOUND: return 404;
	case STORE_EEXISTS: return 409;
	case STORE_EINVAL: return 400;
	/* the only refusal of a DAV write: the mailbox is held by a migration (frozen at
	 * its cut-over) - 503 with Retry-After, the client retries at the new home */
	case STORE_EREFUSED: return 503;
	case STORE_EQUOTA: return 507;
	case STORE_ECONFLICT: return 412;
	case STORE_EDISK: return 503;
	default: return 500;
	}
}

void dav_owner_address(const dav_req *r, char *out, size_t n)
{
	snprintf(out, n, "%s@%s", r->path.user, r->path.domain);
}

/* ---- URL space ---- */

/* Copy one segment; -2 when too long or containing controls. */
static int seg_copy(char *out, size_t n, const char *s, size_t len)
{
	if (len == 0 || len >= n)
		return -2;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
			return -2;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* Strip a suffix (".ics") when present; 1 when it was there. */
static int strip_suffix(char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	if (n > m && strcasecmp(s + n - m, suffix) == 0) {
		s[n - m] = '\0';
		return 1;
	}
	return 0;
}

int dav_path_parse(const char *raw, const char *path, dav_path *p)
{
	memset(p, 0, sizeof(*p));
	/* encoded slashes, backslashes and NULs in the raw target: never split differently */
	for (const char *q = raw; *q && *q != '?'; q++)
		if (q[0] == '%' && q[1] != '\0' && q[2] != '\0' &&
		    (strncasecmp(q, "%2f", 3) == 0 || strncasecmp(q, "%5c", 3) == 0 || strncmp(q, "%00", 3) == 0))
			return -2;
	if (path == NULL || path[0] != '/')
		return -2;
	const char *seg[8];
	size_t len[8];
	size_t n = 0;
	const char *s = path + 1;
	int trailing = 0;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 0)
			return -2;   /* "//" */
		if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
			return -2;
		if (n == 8)
			return -1;
		seg[n] = s;
		len[n++] = l;
		if (e == NULL)
			break;
		s = e + 1;
		trailing = *s == '\0';
	}
	(void)trailing;
#define SEG_IS(i, lit) (len[i] == sizeof(lit) - 1 && strncasecmp(seg[i], lit, len[i]) == 0)
	if (n == 0) {
		p->kind = DAV_P_ROOT;
		return 0;
	}
	if (SEG_IS(0, ".well-known")) {
		if (n == 2 && (SEG_IS(1, "caldav") || SEG_IS(1, "carddav"))) {
			p->kind = DAV_P_WELLKNOWN;
			return 0;
		}
		return -1;
	}
	if ((SEG_IS(0, "caldav") || SEG_IS(0, "carddav")) && n == 1) {
		p->kind = DAV_P_WELLKNOWN;
		return 0;
	}
	if (SEG_IS(0, "dav")) {
		if (n == 1) {
			p->kind = DAV_P_ROOT;
			return 0;
		}
		if (!SEG_IS(1, "principals"))
			return -1;
		if (n == 2) {
			p->kind = DAV_P_PRINCIPALS;
			return 0;
		}
		if (n != 4)
			return -1;
		p->kind = DAV_P_PRINCIPAL;
		if (seg_copy(p->domain, sizeof(p->domain), seg[2], len[2]) < 0 ||
		    seg_copy(p->user, sizeof(p->user), seg[3], len[3]) < 0)
			return -2;
	} else if (SEG_IS(0, "calendars") || SEG_IS(0, "addressbooks")) {
		p->card = SEG_IS(0, "addressbooks");
		if (n < 3 || n > 5)
			return -1;
		if (seg_copy(p->domain, sizeof(p->domain), seg[1], len[1]) < 0 ||
		    seg_copy(p->user, sizeof(p->user), seg[2], len[2]) < 0)
			return -2;
		p->kind = n == 3 ? DAV_P_HOME : n == 4 ? DAV_P_COLL : DAV_P_OBJ;
		if (n >= 4 && seg_copy(p->coll, sizeof(p->coll), seg[3], len[3]) < 0)
			return -2;
		if (n == 5 && seg_copy(p->obj, sizeof(p->obj), seg[4], len[4]) < 0)
			return -2;
		if (n == 5 && seg[4][len[4]] == '/')
			return -1;   /* no collections inside collections */
	} else if (SEG_IS(0, "ical")) {
		if (n >= 2 && SEG_IS(1, "public")) {
			if (n != 4 && n != 5)
				return -1;
			p->kind = DAV_P_ICAL_PUBLIC;
			if (seg_copy(p->domain, sizeof(p->domain), seg[2], len[2]) < 0)
				return -2;
			if (n == 5 && seg_copy(p->user, sizeof(p->user), seg[3], len[3]) < 0)
				return -2;
			if (seg_copy(p->coll, sizeof(p->coll), seg[n - 1], len[n - 1]) < 0)
				return -2;
		} else {
			if (n != 4)
				return -1;
			p->kind = DAV_P_ICAL;
			if (seg_copy(p->domain, sizeof(p->domain), seg[1], len[1]) < 0 ||
			    seg_copy(p->user, sizeof(p->user), seg[2], len[2]) < 0 ||
			    seg_copy(p->coll, sizeof(p->coll), seg[3], len[3]) < 0)
				return -2;
		}
		strip_suffix(p->coll, ".ics");
	} else if (SEG_IS(0, "freebusy")) {
		if (n != 2)
			return -1;
		char addr[400];
		if (seg_copy(addr, sizeof(addr), seg[1], len[1]) < 0)
			return -2;
		if (!strip_suffix(addr, ".ifb") && !strip_suffix(addr, ".vfb"))
			strip_suffix(addr, ".ics");
		tern_lower(addr);
		if (tern_split_address(addr, p->user, sizeof(p->user), p->domain, sizeof(p->domain)) < 0)
			return -2;
		p->kind = DAV_P_FREEBUSY;
	} else {
		return -1;
	}
#undef SEG_IS
	tern_lower(p->domain);
	tern_lower(p->user);
	return 0;
}

/* ---- provisioning ---- */

int dav_provision(store *st, const uint8_t owner[16], int is_resource)
{
	static const struct {
		const char *name, *display;
		Tern__DavCollection__Kind kind;
		const char *component;
		int user_only;
	} defaults[] = {
		{ "calendar", "Calendar", TERN__DAV_COLLECTION__KIND__CALENDAR, "VEVENT", 0 },
		{ "tasks", "Tasks", TERN__DAV_COLLECTION__KIND__CALENDAR, "VTODO", 1 },
		{ "inbox", "Inbox", TERN__DAV_COLLECTION__KIND__SCHEDULE_INBOX, NULL, 0 },
		{ "outbox", "Outbox", TERN__DAV_COLLECTION__KIND__SCHEDULE_OUTBOX, NULL, 0 },
		{ "contacts", "Contacts", TERN__DAV_COLLECTION__KIND__ADDRESSBOOK, NULL, 1 },
	};
	Tern__DavCollection **list = NULL;
	size_t n = 0;
	int rc = store_dav_collection_list(st, owner, &list, &n);
	if (rc != STORE_OK)
		return rc;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (is_resource && defaults[i].user_only)
			continue;
		int have = 0;
		for (size_t j = 0; j < n && !have; j++)
			have = strcmp(list[j]->name, defaults[i].name) == 0;
		if (have)
			continue;
		Tern__DavCollection c = TERN__DAV_COLLECTION__INIT;
		char *comp[1] = { (char *)defaults[i].component };
		c.name = (char *)defaults[i].name;
		c.display_name = (char *)defaults[i].display;
		c.kind = defaults[i].kind;
		if (defaults[i].component != NULL) {
			c.components = comp;
			c.n_components = 1;
		}
		store_sync_result res;
		rc = store_dav_collection_create(st, owner, &c, STORE_SYNC, &res);
		if (rc != STORE_OK && rc != STORE_EEXISTS)
			break;
		rc = STORE_OK;
	}
	store_free_list((void **)list, n);
	return rc;
}

/* Provision an owner once per process run (a later deletion of a default collection by
 * the user is respected until the next restart). */
static void provision_once(dav *d, const uint8_t owner[16], int is_resource)
{
	pthread_mutex_lock(&d->lock);
	unsigned n = d->nprovisioned < DAV_PROVISIONED_MAX ? d->nprovisioned : DAV_PROVISIONED_MAX;
	for (unsigned i = 0; i < n; i++)
		if (memcmp(d->provisioned[i], owner, 16) == 0) {
			pthread_mutex_unlock(&d->lock);
			return;
		}
	pthread_mutex_unlock(&d->lock);
	if (dav_provision(d->env.st, owner, is_resource) != STORE_OK)
		return;   /* tried again with the next request */
	pthread_mutex_lock(&d->lock);
	memcpy(d->provisioned[d->nprovisioned % DAV_PROVISIONED_MAX], owner, 16);
	d->nprovisioned++;
	pthread_mutex_unlock(&d->lock);
}

/* ---- authentication ---- */

static void cache_key(dav *d, const char *user, const char *pass, uint8_t key[32])
{
	tbuf m = TBUF_INIT;
	tbuf_append(&m, d->secret, sizeof(d->secret));
	tbuf_append(&m, user, strlen(user) + 1);
	tbuf_append_str(&m, pass);
	SHA256((const unsigned char *)m.data, m.len, key);
	explicit_bzero(m.data, m.len);
	tbuf_free(&m);
}

static int cache_lookup(dav *d, const uint8_t key[32], char *account, size_t n)
{
	int64_t now = tern_now();
	int hit = 0;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < DAV_AUTH_CACHE && !hit; i++) {
		dav_cache_entry *e = &d->cache[i];
		if (e->expires > now && memcmp(e->key, key, 32) == 0) {
			snprintf(account, n, "%s", e->account);
			hit = 1;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return hit;
}

static void cache_store(dav *d, const uint8_t key[32], const char *account)
{
	pthread_mutex_lock(&d->lock);
	dav_cache_entry *e = &d->cache[d->cache_next++ % DAV_AUTH_CACHE];
	memcpy(e->key, key, 32);
	snprintf(e->account, sizeof(e->account), "%s", account);
	e->expires = tern_now() + DAV_AUTH_CACHE_SECONDS;
	pthread_mutex_unlock(&d->lock);
}

/* Decode "Basic base64(user:pass)" into r->login_user / r->login_pass. */
static int parse_basic(dav_req *r, const char *hdr)
{
	return auth_basic_parse(hdr, &r->login_user, &r->login_pass);
}

static int authenticate_account(dav_req *r);

/* Worker: check the credentials (a Kerberos ticket by SPNEGO, or Basic: the cache, then
 * auth_check_password with the lockout) and load the user. 0 ok; -1 with r->fail_reason. */
static int authenticate(dav_req *r)
{
	uint8_t key[32];
	if (r->negotiate != NULL) {
		char principal[AUTH_PRINCIPAL_MAX], login[AUTH_PRINCIPAL_MAX];
		tbuf out = TBUF_INIT;
		if (auth_spnego_accept(r->env->gssapi, r->negotiate, strlen(r->negotiate), &out, principal,
				       sizeof(principal), login, sizeof(login), &r->fail_reason) < 0) {
			tbuf_free(&out);
			return -1;
		}
		if (out.len > 0) {
			tbuf h = TBUF_INIT;
			tbuf_appendf(&h, "Negotiate %s", tbuf_cstr(&out));
			dav_header(r, "WWW-Authenticate", tbuf_cstr(&h));
			tbuf_free(&h);
		}
		tbuf_free(&out);
		snprintf(r->account, sizeof(r->account), "%s", login);
		tern_lower(r->account);
		tlog(TLOG_DEBUG, "DAV Negotiate login of %s as %s from %s", principal, r->account, r->ip);
		return authenticate_account(r);
	}
	int node = dav_proxy_node_login(r);   /* a node on a user's behalf: r->account */
	if (node < 0)
		return -1;
	cache_key(r->d, r->login_user, r->login_pass, key);
	if (node == 0 && !cache_lookup(r->d, key, r->account, sizeof(r->account))) {
		auth_sasl_env env = { r->env->st, r->env->lockout, NULL };
		const char *reason = NULL;
		if (auth_check_password(&env, r->login_user, r->login_pass, r->ip, r->account, sizeof(r->account),
					&reason) != 0) {
			r->fail_reason = reason ? reason : "bad credentials";
			return -1;
		}
		cache_store(r->d, key, r->account);
	}
	return authenticate_account(r);
}

/* Worker: load the account r->account names (it must exist and be enabled) into r.
 * 0 ok; -1 with r->fail_reason. */
static int authenticate_account(dav_req *r)
{
	Tern__User *u = NULL;
	if (store_user_find(r->env->st, r->account, &u) != STORE_OK || u->id.len != 16 || !u->enabled) {
		store_free_record(u);
		r->fail_reason = "account not available";
		return -1;
	}
	memcpy(r->uid, u->id.data, 16);
	snprintf(r->user, sizeof(r->user), "%s", u->name);
	snprintf(r->domain, sizeof(r->domain), "%s", u->domain);
	tern_lower(r->user);
	tern_lower(r->domain);
	snprintf(r->account, sizeof(r->account), "%s@%s", r->user, r->domain);
	r->full_name = strdup(u->full_name ? u->full_name : "");
	store_free_record(u);
	if (r->full_name == NULL)
		abort();
	return 0;
}

/* Worker: who owns the target (DOMAIN/USER of the path) and what may r's user do
 * there. 0 ok; -1 with the answer set (403/404). */
static int resolve_owner(dav_req *r)
{
	if (r->path.user[0] == '\0')
		return 0;
	char dom[256];
	if (store_domain_resolve(r->env->st, r->path.domain, dom, sizeof(dom)) == STORE_OK) {
		tern_lower(dom);
		snprintf(r->path.domain, sizeof(r->path.domain), "%s", dom);
	}
	if (strcmp(r->path.domain, r->domain) == 0 && strcmp(r->path.user, r->user) == 0) {
		memcpy(r->owner, r->uid, 16);
		r->has_owner = 1;
		r->access = DAV_ACCESS_WRITE;
		return 0;
	}
	Tern__User *u = NULL;
	if (store_user_get(r->env->st, r->path.domain, r->path.user, &u) == STORE_OK) {
		store_free_record(u);
		dav_error(r, 403, "users reach their own calendars and address books only");
		return -1;
	}
	if (store_resource_get(r->env->st, r->path.domain, r->path.user, &r->resource) == STORE_OK &&
	    r->resource->id.len == 16) {
		memcpy(r->owner, r->resource->id.data, 16);
		r->has_owner = 1;
		r->owner_is_resource = 1;
		/* the reservation manager reads the calendar and moves or deletes bookings */
		if (r->resource->manager && strcasecmp(r->resource->manager, r->account) == 0) {
			r->access = DAV_ACCESS_WRITE;
			provision_once(r->d, r->owner, 1);
			return 0;
		}
		dav_error(r, 403, "only the reservation manager reaches a resource's calendar");
		return -1;
	}
	dav_error(r, 404, "no such user or resource: %s@%s", r->path.user, r->path.domain);
	return -1;
}

static void dispatch(dav_req *r)
{
	const char *m = r->req->method;
	dav_path_kind k = r->path.kind;
	if (k == DAV_P_FREEBUSY) {
		if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
			dav_do_freebusy(r);
		else
			dav_error(r, 405, "free/busy is read with GET");
		return;
	}
	if (resolve_owner(r) < 0)
		return;
	if (k == DAV_P_ICAL) {
		if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
			dav_do_ical(r, 0);
		else
			dav_error(r, 405, "a published calendar is read with GET");
		return;
	}
	if (strcmp(m, "PROPFIND") == 0)
		dav_do_propfind(r);
	else if (strcmp(m, "PROPPATCH") == 0)
		dav_do_proppatch(r);
	else if (strcmp(m, "MKCALENDAR") == 0)
		dav_do_mkcol(r, 1);
	else if (strcmp(m, "MKCOL") == 0)
		dav_do_mkcol(r, 0);
	else if (strcmp(m, "REPORT") == 0)
		dav_do_report(r);
	else if (strcmp(m, "GET") == 0)
		dav_do_get(r, 0);
	else if (strcmp(m, "HEAD") == 0)
		dav_do_get(r, 1);
	else if (strcmp(m, "PUT") == 0)
		dav_do_put(r);
	else if (strcmp(m, "DELETE") == 0)
		dav_do_delete(r);
	else if (strcmp(m, "POST") == 0)
		dav_do_post(r);
	else {
		dav_header(r, "Allow", dav_allow);
		dav_error(r, 405, "method %s is not supported", m);
	}
}

/* Worker: the whole request after the I/O thread's checks. */
static void dav_job(void *arg)
{
	dav_req *r = arg;
	if (r->path.kind == DAV_P_ICAL_PUBLIC) {
		dav_do_ical(r, 1);
		return;
	}
	if (authenticate(r) < 0) {
		tlog(TLOG_SECURITY, "Failed DAV login from %s, %s", r->ip, r->fail_reason);
		if (r->env->gssapi != NULL)
			dav_header(r, "WWW-Authenticate", "Negotiate");
		dav_header(r, "WWW-Authenticate", "Basic realm=\"Tern\", charset=\"UTF-8\"");
		dav_error(r, 401, "authentication failed");
		return;
	}
	char home[128];
	if (r->env->st != NULL && cluster_user_home(r->env->st, r->account, home, sizeof(home)) == 1) {
		dav_proxy_prepare(r, home);   /* r->proxy, or the answer (502/503) */
		return;
	}
	/* a mailbox held by a migration here (frozen, or still arriving) is not served */
	store_mbox_state ms = STORE_MBOX_ACTIVE;
	if (r->env->st != NULL && (store_mbox_state_get(r->env->st, r->uid, &ms, NULL) != STORE_OK ||
				   ms != STORE_MBOX_ACTIVE)) {
		dav_error(r, 503, "the calendars and contacts of %s are being moved to another server; "
			  "try again shortly", r->account);
		return;
	}
	provision_once(r->d, r->uid, 0);
	if (r->path.kind == DAV_P_PRINCIPALS) {
		snprintf(r->path.domain, sizeof(r->path.domain), "%s", r->domain);
		snprintf(r->path.user, sizeof(r->path.user), "%s", r->user);
	}
	dispatch(r);
}

static void dav_req_free(dav_req *r)
{
	if (r->login_pass != NULL) {
		explicit_bzero(r->login_pass, strlen(r->login_pass));
		free(r->login_pass);
	}
	free(r->login_user);
	free(r->negotiate);
	free(r->full_name);
	dav_proxy_free(&r->proxy);
	store_free_record(r->resource);
	tbuf_free(&r->body);
	free(r);
}

static void dav_finish(dav_req *r)
{
	if (r->status == 0)
		dav_error(r, 500, "no answer");
	if (strcmp(r->req->method, "HEAD") == 0)
		tbuf_reset(&r->body);
	http_reply(r->req, r->status, r->ctype, r->body.data ? r->body.data : "", r->body.len);
	dav_req_free(r);
}

static void dav_job_done(void *arg)
{
	dav_req *r = arg;
	if (r->proxy != NULL)
		dav_proxy_run(r, dav_finish);   /* dav_finish follows with the home node's answer */
	else
		dav_finish(r);
}

void dav_handle(http_request *req, void *ctx)
{
	dav *d = ctx;
	dav_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->d = d;
	r->env = &d->env;
	r->req = req;
	r->io = tern_conn_io(req->conn);
	tbuf_init(&r->body);
	snprintf(r->ip, sizeof(r->ip), "%s", tern_conn_peer_ip(req->conn));
	r->tls = tern_conn_is_tls(req->conn);
	http_add_header(req, "DAV", dav_caps);
	int prc = dav_path_parse(req->target, req->path, &r->path);
	if (prc == -2) {
		dav_error(r, 400, "malformed request path");
		dav_finish(r);
		return;
	}
	if (prc < 0) {
		dav_error(r, 404, "no such resource");
		dav_finish(r);
		return;
	}
	if (strcmp(req->method, "OPTIONS") == 0) {
		http_add_header(req, "Allow", dav_allow);
		dav_set(r, 200, NULL, NULL);
		dav_finish(r);
		return;
	}
	if (r->path.kind == DAV_P_WELLKNOWN) {
		http_add_header(req, "Location", "/dav/principals/");
		dav_set(r, 301, "text/plain; charset=utf-8", "see /dav/principals/\n");
		dav_finish(r);
		return;
	}
	if (r->path.kind != DAV_P_ICAL_PUBLIC) {
		const tern_conf *conf = d->env.conf;
		const char *policy = conf ? conf->security_auth_policy : NULL;
		int clear_ok = tern_conn_is_tls(req->conn) || policy == NULL || strcasecmp(policy, "none") == 0 ||
			       strcmp(r->ip, "127.0.0.1") == 0 || strcmp(r->ip, "::1") == 0;
		if (!clear_ok) {
			dav_error(r, 403, "Basic authentication needs TLS here: use HTTPS");
			dav_finish(r);
			return;
		}
		const char *authz = http_header_get(req, "Authorization");
		if (d->env.gssapi != NULL && authz != NULL && strncasecmp(authz, "Negotiate ", 10) == 0) {
			const char *tok = authz + 10;
			while (*tok == ' ')
				tok++;
			/* base64 of at most AUTH_GSSAPI_TOKEN_MAX bytes */
			if (*tok != '\0' && strlen(tok) <= (AUTH_GSSAPI_TOKEN_MAX / 3 + 1) * 4) {
				r->negotiate = strdup(tok);
				if (r->negotiate == NULL)
					abort();
			}
		}
		if (r->negotiate == NULL && parse_basic(r, authz) < 0) {
			if (authz != NULL)
				tlog(TLOG_SECURITY, "Failed DAV login from %s, malformed credentials", r->ip);
			if (d->env.gssapi != NULL)
				http_add_header(req, "WWW-Authenticate", "Negotiate");
			http_add_header(req, "WWW-Authenticate", "Basic realm=\"Tern\", charset=\"UTF-8\"");
			dav_error(r, 401, "authentication required");
			dav_finish(r);
			return;
		}
	}
	if (tern_pool_submit(d->env.auth_pool, dav_job, dav_job_done, r, r->io) < 0) {
		dav_error(r, 503, "server busy, try again later");
		dav_finish(r);
	}
}
