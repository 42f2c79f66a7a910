/* admin_users.c - /api/v1/users: list, add, show, change, remove, stats, unlock.
 * Passwords are hashed on the auth pool before the store write; they never reach a log. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"

/* The node a home of "" names (null in the JSON when standalone). */
static void home_default(store *st, char *out, size_t n)
{
	store_home_node(st, "", out, n);
}

/* USER of API.md with "" homes shown as dflt (null when dflt is ""). */
static json_t *user_json(store *st, const Tern__User *u, const char *dflt)
{
	char addr[330], id[37] = "";
	snprintf(addr, sizeof(addr), "%s@%s", u->name, u->domain);
	tern_lower(addr);
	if (u->id.len == 16)
		tern_uuid_str(u->id.data, id);
	uint64_t bytes = 0, items = 0;
	Tern__Mailbox *m = NULL;
	if (u->id.len == 16 && store_mailbox_get(st, u->id.data, &m) == STORE_OK) {
		bytes = m->bytes;
		items = m->items;
		store_free_record(m);
	}
	const char *home = u->home[0] ? u->home : dflt;
	json_t *size_limit = u->size_limit_mode == 0 ? json_null()
			   : json_integer(u->size_limit_mode == 2 ? 0 : (json_int_t)u->size_limit);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:o, s:o, s:b, s:s, s:o, s:o,"
			 " s:b, s:{s:I, s:I}, s:{s:I, s:I}}",
			 "address", addr, "name", u->name, "domain", u->domain, "id", id,
			 "type", u->ldap ? "ldap" : "local", "enabled", u->enabled,
			 "full_name", u->full_name, "description", u->description,
			 "addresses", aj_from_strlist(u->addresses, u->n_addresses),
			 "forward", aj_from_strlist(u->forward, u->n_forward),
			 "keep_copy", u->forward_keep_copy, "rights", admin_rights_name(u->rights),
			 "home", home[0] ? json_string(home) : json_null(), "size_limit", size_limit,
			 "publish_in_gal", u->publish_in_gal, "usage", "bytes", (json_int_t)bytes, "items", (json_int_t)items,
			 "quota", "bytes", (json_int_t)u->quota_bytes, "items", (json_int_t)u->quota_items);
	if (o == NULL)
		abort();
	/* the home-node map entry: MOVING(home -> home_target) during a migration */
	const char *state = u->home_state == TERN__HOME_STATE__HOME_MOVING ? "moving"
			  : u->home_state == TERN__HOME_STATE__HOME_RESERVED ? "reserved" : "active";
	json_object_set_new(o, "home_state", json_string(state));
	json_object_set_new(o, "home_target", u->home_target != NULL && u->home_target[0]
					       ? json_string(u->home_target) : json_null());
	return o;
}

/* USER of API.md; never a password or hash. "home": the node's name (a home of "" is
 * named once the node is in a distributed domain), null on a standalone node. */
json_t *admin_user_json(store *st, const Tern__User *u)
{
	char dflt[128];
	home_default(st, dflt, sizeof(dflt));
	return user_json(st, u, dflt);
}

/* Split ADDRESS into r->name / r->domain (a bare name: the primary domain), check the
 * admin's domain. Replies and returns -1 on error. */
int admin_user_address(admin_req *r, const char *address)
{
	if (strchr(address, '@') == NULL) {
		size_t n = strlen(address);

		if (n >= sizeof(r->name)) {
			admin_error(r, 400, "user name is longer than %zu bytes", sizeof(r->name) - 1);
			return -1;
		}
		memcpy(r->name, address, n + 1);
		tern_lower(r->name);
		if (admin_primary_domain(r->st, r->domain, sizeof(r->domain)) < 0) {
			admin_error(r, 404, "no primary domain");
			return -1;
		}
	} else if (tern_split_address(address, r->name, sizeof(r->name), r->domain, sizeof(r->domain)) < 0) {
		admin_error(r, 400, "invalid address: %s", address);
		return -1;
	}
	return admin_may_domain(r, r->domain);
}

int admin_user_load(admin_req *r, Tern__User **u_r)
{
	int rc = store_user_get(r->st, r->domain, r->name, u_r);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return -1;
	}
	return 0;
}

static void reply_user(admin_req *r, int status)
{
	Tern__User *u = NULL;
	if (admin_user_load(r, &u) < 0)
		return;
	json_t *j = admin_user_json(r->st, u);
	store_free_record(u);
	admin_reply_json(r, status, j);
}

static int user_cmp(const void *a, const void *b)
{
	const Tern__User *x = *(Tern__User *const *)a, *y = *(Tern__User *const *)b;
	return strcasecmp(x->name, y->name);
}

/* The node a user lives on: its home, or dflt (home_default) when the home is "",
 * this node when standalone. */
static const char *user_home_node(admin_req *r, const Tern__User *u, const char *dflt)
{
	if (u->home[0])
		return u->home;
	if (dflt[0])
		return dflt;
	const char *self = store_node_name(r->st);
	return self != NULL && *self ? self : r->a->env.node_name;
}

void adm_user_list(admin_req *r)
{
	char dom[256];
	if (admin_query_domain(r, dom, sizeof(dom)) < 0)
		return;
	char *node = http_query_param(r->req, "node");   /* only the users homed there */
	if (node != NULL && *node == '\0') {
		free(node);
		admin_error(r, 400, "node must name a node");
		return;
	}
	Tern__User **list = NULL;
	size_t n = 0;
	int rc = store_user_list(r->st, dom, &list, &n);
	if (rc != STORE_OK) {
		free(node);
		admin_store_error(r, rc, NULL);
		return;
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), user_cmp);
	char dflt[128];
	home_default(r->st, dflt, sizeof(dflt));
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		if (node == NULL || strcasecmp(user_home_node(r, list[i], dflt), node) == 0)
			json_array_append_new(a, user_json(r->st, list[i], dflt));
	store_free_list((void **)list, n);
	free(node);
	admin_reply_json(r, 200, a);
}

void adm_user_get(admin_req *r)
{
	if (admin_user_address(r, r->arg) < 0)
		return;
	reply_user(r, 200);
}

const aj_field admin_user_fields[] = {
	{ "address", AJ_STR }, { "password", AJ_STR }, { "full_name", AJ_STR },
	{ "description", AJ_STR }, { "enabled", AJ_BOOL }, { "addresses", AJ_STRLIST },
	{ "forward", AJ_STRLIST }, { "keep_copy", AJ_BOOL }, { "quota_bytes", AJ_UINT },
	{ "quota_items", AJ_UINT }, { "rights", AJ_STR }, { "size_limit", AJ_UINT_OR_NULL },
	{ "home", AJ_STR_OR_NULL }, { "publish_in_gal", AJ_BOOL }, { NULL, AJ_STR },
};

/* Apply the body's fields (not address/password) to u and describe them in log. */
static int user_apply(admin_req *r, Tern__User *u, tbuf *log)
{
	json_t *v;
	if ((v = json_object_get(r->body, "full_name")) != NULL) {
		aj_set_str(&u->full_name, json_string_value(v));
		admin_log_kv(log, "FullName", u->full_name);
	}
	if ((v = json_object_get(r->body, "description")) != NULL) {
		aj_set_str(&u->description, json_string_value(v));
		admin_log_kv(log, "Description", u->description);
	}
	if ((v = json_object_get(r->body, "enabled")) != NULL)
		u->enabled = json_is_true(v);
	tbuf_appendf(log, ", Account_enabled='%d'", u->enabled ? 1 : 0);
	if ((v = json_object_get(r->body, "addresses")) != NULL) {
		aj_strlist(v, &u->addresses, &u->n_addresses);
		for (size_t i = 0; i < u->n_addresses; i++)
			admin_log_kv(log, "Address", u->addresses[i]);
	}
	if ((v = json_object_get(r->body, "forward")) != NULL) {
		aj_strlist(v, &u->forward, &u->n_forward);
		for (size_t i = 0; i < u->n_forward; i++) {
			if (!tern_valid_address(u->forward[i])) {
				admin_error(r, 400, "invalid forward address: %s", u->forward[i]);
				return -1;
			}
			admin_log_kv(log, "Forward", u->forward[i]);
		}
	}
	if ((v = json_object_get(r->body, "keep_copy")) != NULL)
		u->forward_keep_copy = json_is_true(v);
	if ((v = json_object_get(r->body, "publish_in_gal")) != NULL) {
		u->publish_in_gal = json_is_true(v);
		tbuf_appendf(log, ", PublishInGAL='%d'", u->publish_in_gal ? 1 : 0);
	}
	if ((v = json_object_get(r->body, "rights")) != NULL) {
		Tern__Rights rights;
		if (admin_rights_parse(json_string_value(v), &rights) < 0) {
			admin_error(r, 400, "rights must be none, domain, read-only or read-write");
			return -1;
		}
		if (r->rights == TERN__RIGHTS__RIGHTS_DOMAIN && rights > TERN__RIGHTS__RIGHTS_DOMAIN) {
			admin_error(r, 403, "a domain administrator cannot grant server rights");
			return -1;
		}
		u->rights = rights;
	}
	if ((v = json_object_get(r->body, "quota_bytes")) != NULL)
		u->quota_bytes = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(r->body, "quota_items")) != NULL)
		u->quota_items = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(r->body, "size_limit")) != NULL) {
		u->size_limit_mode = json_is_null(v) ? 0 : json_integer_value(v) == 0 ? 2 : 1;
		u->size_limit = json_is_null(v) ? 0 : (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(r->body, "home")) != NULL)
		aj_set_str(&u->home, json_is_null(v) ? "" : json_string_value(v));
	tbuf_appendf(log, "%s, Rights='%d', ForwardMode='%d', Qstorage='%llu', Qmessage='%llu'",
		     r->password ? ", Password=********" : "", (int)u->rights,
		     u->n_forward == 0 ? 0 : u->forward_keep_copy ? 2 : 1,
		     (unsigned long long)u->quota_bytes, (unsigned long long)u->quota_items);
	return 0;
}

/* Take and check the password field into r->password. */
static int user_password(admin_req *r)
{
	const char *pw = aj_str(r, "password");
	if (pw == NULL)
		return 0;
	const char *why = NULL;
	if (strlen(pw) > AUTH_PASSWORD_MAX || !auth_password_acceptable(pw, &why)) {
		admin_error(r, 400, "unacceptable password: %s", why ? why : "too long");
		return -1;
	}
	r->password = strdup(pw);
	if (r->password == NULL)
		abort();
	json_object_del(r->body, "password");   /* no copy of it lives longer than needed */
	return 0;
}

static void hash_job(void *arg)
{
	admin_req *r = arg;
	tern__scram_keys__init(&r->scram);
	r->hash_rc = auth_password_hash(r->password, &r->hash, &r->scram);
}

/* Move the hash made on the pool into the user record. */
static int user_take_hash(admin_req *r, Tern__User *u)
{
	if (r->hash_rc != 0 || r->hash == NULL) {
		admin_error(r, 500, "cannot hash the password");
		return -1;
	}
	aj_set_str(&u->password_hash, r->hash);
	if (u->scram != NULL)
		store_free_record(u->scram);
	u->scram = malloc(sizeof(*u->scram));
	if (u->scram == NULL)
		abort();
	*u->scram = r->scram;
	tern__scram_keys__init(&r->scram);
	return 0;
}

static void user_added(admin_req *r)
{
	reply_user(r, 201);
}

/* After hash_job: take the hash into the user record, then write it with write()
 * (store_user_add or store_user_update) and reply with done(). */
static void user_write_hashed(admin_req *r, int (*write)(store *, const Tern__User *, store_cb,
							  store_sync_result *), admin_fn done)
{
	Tern__User *u = r->rec;
	if (user_take_hash(r, u) < 0)
		return;
	write(r->st, u, admin_cb(r, done), NULL);
}

static void user_add_hashed(admin_req *r)
{
	user_write_hashed(r, store_user_add, user_added);
}

void adm_user_add(admin_req *r)
{
	if (admin_parse_body(r, admin_user_fields, 0) < 0)
		return;
	const char *address = aj_str(r, "address");
	if (address == NULL || aj_str(r, "password") == NULL) {
		admin_error(r, 400, "fields \"address\" and \"password\" are required");
		return;
	}
	if (!tern_valid_address(address)) {
		admin_error(r, 400, "invalid address: %s", address);
		return;
	}
	if (admin_user_address(r, address) < 0 || user_password(r) < 0)
		return;
	Tern__User *u = calloc(1, sizeof(*u));
	if (u == NULL)
		abort();
	tern__user__init(u);
	r->rec = u;
	r->rec_free = store_free_record;
	const char *at = strchr(address, '@');
	char *name = strndup(address, (size_t)(at - address));   /* keep the spelling given */
	if (name == NULL)
		abort();
	aj_set_str(&u->name, name);
	free(name);
	aj_set_str(&u->domain, r->domain);
	u->enabled = 1;
	u->publish_in_gal = 1;   /* the guide: users with a full name are published */
	u->created = (uint64_t)tern_now();
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", u->name);
	admin_log_kv(&log, "Domain", u->domain);
	if (user_apply(r, u, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	admin_config_log(r, "insert User set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	admin_pool(r, hash_job, user_add_hashed);
}

static void user_updated(admin_req *r)
{
	reply_user(r, 200);
}

static void user_patch_hashed(admin_req *r)
{
	user_write_hashed(r, store_user_update, user_updated);
}

/* The rest of a PATCH, once any home change is done: load the user, apply the other
 * fields, write (after hashing a new password). */
static void user_patch_rest(admin_req *r)
{
	Tern__User *u = NULL;
	if (r->param != NULL && json_object_size(r->body) == 0 && r->password == NULL) {
		reply_user(r, 200);   /* the home was the only change */
		return;
	}
	if (admin_user_load(r, &u) < 0)
		return;
	r->rec = u;
	r->rec_free = store_free_record;
	tbuf log = TBUF_INIT;
	if (user_apply(r, u, &log) < 0) {
		tbuf_free(&log);
		return;
	}
	/* user_apply starts its text with ", ": drop that for the update form */
	const char *set = tbuf_cstr(&log);
	if (strncmp(set, ", ", 2) == 0)
		set += 2;
	admin_config_log(r, "update User set %s where Name='%s', Domain='%s'", set, r->name, r->domain);
	tbuf_free(&log);
	if (r->password != NULL)
		admin_pool(r, hash_job, user_patch_hashed);
	else
		store_user_update(r->st, u, admin_cb(r, user_updated), NULL);
}

/* Auth pool: place the user on node r->param (cluster_user_set_home blocks: it may ask
 * the current home node whether the mailbox is empty). */
static void home_job(void *arg)
{
	admin_req *r = arg;
	char addr[520];
	snprintf(addr, sizeof(addr), "%s@%s", r->name, r->domain);
	tbuf_reset(&r->log);
	r->hash_rc = cluster_user_set_home(r->a->env.cl, addr, r->param, &r->log);
}

/* I/O thread: the home changed (config.log), then the other fields; or 409 with why. */
static void home_done(admin_req *r)
{
	if (r->hash_rc < 0) {
		admin_error(r, 409, "%s", r->log.len ? tbuf_cstr(&r->log) : "the home node cannot change");
		return;
	}
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Home", r->param);
	admin_config_log(r, "update User set %s where Name='%s', Domain='%s'", tbuf_cstr(&log), r->name,
			 r->domain);
	tbuf_free(&log);
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	tbuf_reset(&r->log);
	user_patch_rest(r);
}

/* PATCH /api/v1/users/ADDRESS. A new "home" goes through the control plane
 * (cluster_user_set_home: only an empty mailbox moves, only the master decides) before
 * the other fields are written. */
void adm_user_patch(admin_req *r)
{
	if (admin_parse_body(r, admin_user_fields + 1, 0) < 0)
		return;
	if (admin_user_address(r, r->arg) < 0 || user_password(r) < 0)
		return;
	json_t *home = json_object_get(r->body, "home");
	if (home == NULL || r->a->env.cl == NULL) {
		user_patch_rest(r);
		return;
	}
	Tern__User *u = NULL;
	if (admin_user_load(r, &u) < 0)
		return;
	const char *want = json_is_null(home) ? "" : json_string_value(home);
	if (*want == '\0') {   /* "" or null: this node */
		const char *self = store_node_name(r->st);
		want = self != NULL && *self ? self : r->a->env.node_name;
	}
	char dflt[128];
	home_default(r->st, dflt, sizeof(dflt));
	int same = strcasecmp(want, user_home_node(r, u, dflt)) == 0;
	r->param = strdup(want);
	store_free_record(u);
	if (r->param == NULL)
		abort();
	json_object_del(r->body, "home");
	if (same)
		user_patch_rest(r);
	else
		admin_pool(r, home_job, home_done);
}

void adm_user_delete(admin_req *r)
{
	if (admin_user_address(r, r->arg) < 0)
		return;
	admin_config_log(r, "delete User where Name='%s', Domain='%s'", r->name, r->domain);
	store_user_remove(r->st, r->domain, r->name, admin_cb(r, admin_reply_empty), NULL);
}

void adm_user_stats(admin_req *r)
{
	if (admin_user_address(r, r->arg) < 0)
		return;
	Tern__User *u = NULL;
	if (admin_user_load(r, &u) < 0)
		return;
	json_t *full = admin_user_json(r->st, u);
	Tern__Folder **folders = NULL;
	size_t nf = 0;
	if (u->id.len == 16 && store_folder_list(r->st, u->id.data, &folders, &nf) == STORE_OK)
		store_free_list((void **)folders, nf);
	char addr[520];
	snprintf(addr, sizeof(addr), "%s@%s", r->name, r->domain);
	store_free_record(u);
	json_t *j = json_pack("{s:s, s:O, s:O, s:I, s:b}", "address", addr,
			      "usage", json_object_get(full, "usage"), "quota", json_object_get(full, "quota"),
			      "folders", (json_int_t)nf,
			      "locked", auth_lockout_is_locked_any(r->a->env.lockout, addr));
	json_decref(full);
	admin_reply_json(r, 200, j);
}

void adm_user_unlock(admin_req *r)
{
	unsigned n;
	if (strcmp(r->arg, "*") == 0) {
		if (r->rights == TERN__RIGHTS__RIGHTS_DOMAIN) {
			admin_error(r, 403, "only server administrators may unlock every account");
			return;
		}
		n = auth_lockout_unlock(r->a->env.lockout, NULL);
		admin_config_log(r, "update User set Locked='0'");
	} else {
		if (admin_user_address(r, r->arg) < 0)
			return;
		char addr[520];
		snprintf(addr, sizeof(addr), "%s@%s", r->name, r->domain);
		n = auth_lockout_unlock(r->a->env.lockout, addr);
		admin_config_log(r, "update User set Locked='0' where Name='%s', Domain='%s'", r->name,
				 r->domain);
	}
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	admin_reply_json(r, 200, json_pack("{s:I}", "unlocked", (json_int_t)n));
}
