/* store_accounts.c - users (config CF "user/", "userid/", "addr/") and domain rename.
 * Every writer runs on the config thread (store_config.c), one at a time. */
#include "store_private.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_MAX 64
#define TEXT_MAX 255

int store_user_get(store *st, const char *domain, const char *name, Tern__User **u_r)
{
	return store_config_get(st, sk_user, domain, name, &tern__user__descriptor,
				(ProtobufCMessage **)u_r);
}

int store_user_get_by_id(store *st, const uint8_t id[16], Tern__User **u_r)
{
	tbuf k = TBUF_INIT;
	char *v = NULL, *slash;
	size_t vn = 0;
	int rc;

	sk_userid(&k, id);
	rc = store_db_get(st, CF_CONFIG, k.data, k.len, &v, &vn);
	tbuf_free(&k);
	if (rc != STORE_OK)
		return rc;
	char *path = strndup(v, vn);

	free(v);
	if (!path)
		return STORE_EIO;
	slash = strchr(path, '/');
	if (slash) {
		*slash = '\0';
		rc = store_user_get(st, path, slash + 1, u_r);
	} else {
		rc = STORE_EIO;
	}
	free(path);
	return rc;
}

int store_owner_find(store *st, const char *address, Tern__AddressOwner__Kind kind,
		     void (*key)(tbuf *, const char *, const char *),
		     const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m_r)
{
	char local[LOCAL_MAX + 1], dom[256], real[256];
	Tern__AddressOwner *o = NULL;
	int rc;

	if (tern_split_address(address, local, sizeof(local), dom, sizeof(dom)) != 0)
		return STORE_EINVAL;
	if ((rc = store_domain_resolve(st, dom, real, sizeof(real))) != STORE_OK)
		return rc;
	if ((rc = store_addr_owner(st, real, local, &o)) != STORE_OK)
		return rc;
	if (o->kind == kind)
		rc = store_config_get(st, key, real, o->name, desc, m_r);
	else
		rc = STORE_ENOTFOUND;
	tern__address_owner__free_unpacked(o, NULL);
	return rc;
}

int store_user_find(store *st, const char *address, Tern__User **u_r)
{
	return store_owner_find(st, address, TERN__ADDRESS_OWNER__KIND__USER, sk_user,
				&tern__user__descriptor, (ProtobufCMessage **)u_r);
}

int store_user_list(store *st, const char *domain, Tern__User ***list_r, size_t *n_r)
{
	return store_config_list_domain(st, sk_user_prefix, domain, &tern__user__descriptor,
					(void ***)list_r, n_r);
}

/* Is local@domain free for (kind, name)? An address already held by the same owner is. */
int store_check_addr_free(store *st, store_commit *c, const char *domain, const char *local,
			  Tern__AddressOwner__Kind kind, const char *name)
{
	Tern__AddressOwner *o = NULL;
	int rc = store_addr_owner(st, domain, local, &o);

	if (rc == STORE_ENOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return store_cfg_err(c, rc, "cannot read address %s@%s", local, domain);
	if (o->kind == kind && strcasecmp(o->name, name) == 0)
		rc = STORE_OK;
	else if (o->kind == TERN__ADDRESS_OWNER__KIND__USER && strcasecmp(o->name, local) == 0)
		rc = store_cfg_err(c, STORE_EEXISTS, "user %s@%s already exists", local, domain);
	else
		rc = store_cfg_err(c, STORE_EEXISTS, "address %s@%s is already used by %s %s", local,
				   domain, o->kind == TERN__ADDRESS_OWNER__KIND__USER ? "user"
				   : o->kind == TERN__ADDRESS_OWNER__KIND__RESOURCE ? "resource" : "group",
				   o->name);
	tern__address_owner__free_unpacked(o, NULL);
	return rc;
}

int store_check_addresses(store *st, store_commit *c, const char *domain, char **addrs,
			  size_t n, Tern__AddressOwner__Kind kind, const char *name,
			  const char *self)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		const char *a = addrs[i];

		if (strlen(a) > LOCAL_MAX || !tern_valid_localpart(a))
			return store_cfg_err(c, STORE_EINVAL, "invalid address '%s@%s'", a, domain);
		if (self && strcasecmp(a, self) == 0)
			return store_cfg_err(c, STORE_EINVAL, "address %s@%s is the user's name", a,
					     domain);
		for (size_t m = 0; m < i; m++)
			if (strcasecmp(a, addrs[m]) == 0)
				return store_cfg_err(c, STORE_EINVAL, "address %s@%s is listed twice",
						     a, domain);
		if ((rc = store_check_addr_free(st, c, domain, a, kind, name)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

void store_cfg_delete_addrs(store *st, store_commit *c, const char *domain,
			    char **old, size_t n_old, char **keep, size_t n_keep)
{
	tbuf k = TBUF_INIT;

	for (size_t i = 0; i < n_old; i++) {
		size_t m;

		for (m = 0; m < n_keep; m++)
			if (strcasecmp(old[i], keep[m]) == 0)
				break;
		if (m < n_keep)
			continue;
		sk_addr(&k, domain, old[i]);
		store_cfg_delete(st, c, k.data, k.len);
	}
	tbuf_free(&k);
}

/* Syntax and lengths of a user record, and its extra addresses free in the domain. */
static int check_user(store *st, store_commit *c, const Tern__User *u)
{
	int rc;

	if (!u->name || strlen(u->name) > LOCAL_MAX || !tern_valid_localpart(u->name))
		return store_cfg_err(c, STORE_EINVAL, "invalid user name '%s'", u->name ? u->name : "");
	if (!u->domain || store_domain_exists(st, u->domain) != 1)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist",
				     u->domain ? u->domain : "");
	if ((u->full_name && strlen(u->full_name) > TEXT_MAX) ||
	    (u->description && strlen(u->description) > TEXT_MAX))
		return store_cfg_err(c, STORE_EINVAL, "full name or description of %s@%s is longer "
				     "than %d bytes", u->name, u->domain, TEXT_MAX);
	if ((rc = store_check_addresses(st, c, u->domain, u->addresses, u->n_addresses,
					TERN__ADDRESS_OWNER__KIND__USER, u->name, u->name)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < u->n_forward; i++)
		if (!tern_valid_address(u->forward[i]))
			return store_cfg_err(c, STORE_EINVAL, "invalid forwarding address '%s'",
					     u->forward[i]);
	return STORE_OK;
}

/* In a distributed domain every user has an explicit home: the master writes its own
 * name where the record has none (DESIGN.md §5), so "" never means "the node that reads
 * it" on another node. */
static void set_home(Tern__User *u, const char *name)
{
	char *h = strdup(name);

	if (!h)
		abort();
	if (u->home != protobuf_c_empty_string)
		free(u->home);
	u->home = h;
}

static void claim_home(store *st, Tern__User *u)
{
	if ((u->home == NULL || u->home[0] == '\0') && store_repl_get_mode(st) == STORE_REPL_MASTER &&
	    store_node_name(st) != NULL)
		set_home(u, store_node_name(st));
}

static void put_user(store *st, store_commit *c, const Tern__User *u)
{
	tbuf k = TBUF_INIT, v = TBUF_INIT;

	sk_user(&k, u->domain, u->name);
	store_cfg_put(st, c, &k, &u->base);
	sk_userid(&k, u->id.data);
	tbuf_append_str(&v, u->domain);
	tbuf_append_char(&v, '/');
	tbuf_append_str(&v, u->name);
	tern_lower(v.data);
	store_cfg_put_raw(st, c, k.data, k.len, v.data, v.len);
	tbuf_free(&k);
	tbuf_free(&v);
}

static int apply_user_add(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__User *u = (Tern__User *)j->rec;
	Tern__Domain *d = NULL;
	int rc;

	if ((rc = check_user(st, c, u)) != STORE_OK)
		return rc;
	if ((rc = store_check_addr_free(st, c, u->domain, u->name, TERN__ADDRESS_OWNER__KIND__USER,
					"")) != STORE_OK)
		return rc;
	if (store_domain_get(st, u->domain, &d) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist", u->domain);
	unsigned limit = d->user_limit, have = store_domain_user_count(st, d->name);

	tern__domain__free_unpacked(d, NULL);
	if (limit && have >= limit)
		return store_cfg_err(c, STORE_EREFUSED, "domain %s has reached its limit of %u users",
				     u->domain, limit);
	if (u->id.len == 0) {
		free(u->id.data);
		u->id.data = malloc(16);
		if (!u->id.data)
			abort();
		u->id.len = 16;
		tern_uuid_new(u->id.data);
	} else if (u->id.len != 16) {
		return store_cfg_err(c, STORE_EINVAL, "user id of %s@%s is not 16 bytes", u->name,
				     u->domain);
	} else {
		tbuf k = TBUF_INIT;

		sk_userid(&k, u->id.data);
		rc = store_db_exists(st, CF_CONFIG, k.data, k.len);
		tbuf_free(&k);
		if (rc != 0)
			return store_cfg_err(c, STORE_EEXISTS, "user id of %s@%s is already in use",
					     u->name, u->domain);
		store_dav_owner_revive(st, u->id.data);
	}
	char *dom = store_lower_dup(u->domain);

	free(u->domain);
	u->domain = dom;
	if (!u->created)
		u->created = (uint64_t)tern_now();
	claim_home(st, u);
	put_user(st, c, u);
	store_cfg_put_addr(st, c, u->domain, u->name, TERN__ADDRESS_OWNER__KIND__USER, u->name);
	for (size_t i = 0; i < u->n_addresses; i++)
		store_cfg_put_addr(st, c, u->domain, u->addresses[i],
				   TERN__ADDRESS_OWNER__KIND__USER, u->name);
	memcpy(c->res.id, u->id.data, 16);
	/* A user homed on another node has no mailbox here. */
	return store_home_follow(st, c, u->id.data, u, NULL, STORE_HOME_ADMIN);
}

int store_user_add(store *st, const Tern__User *u, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_user_add, &u->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}

static int apply_user_update(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__User *u = (Tern__User *)j->rec, *old = NULL;
	int rc;

	if (!u->domain || !u->name || store_user_get(st, u->domain, u->name, &old) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "user %s@%s does not exist",
				     u->name ? u->name : "", u->domain ? u->domain : "");
	/* Identity is kept: the id, the spelling of the name and domain, the creation time. */
	free(u->name);
	u->name = strdup(old->name);
	free(u->domain);
	u->domain = strdup(old->domain);
	free(u->id.data);
	u->id.data = malloc(16);
	if (!u->name || !u->domain || !u->id.data)
		abort();
	memcpy(u->id.data, old->id.data, 16);
	u->id.len = 16;
	u->created = old->created;
	if ((rc = check_user(st, c, u)) != STORE_OK)
		goto out;
	claim_home(st, u);
	store_cfg_delete_addrs(st, c, u->domain, old->addresses, old->n_addresses,
			      u->addresses, u->n_addresses);
	put_user(st, c, u);
	for (size_t i = 0; i < u->n_addresses; i++)
		store_cfg_put_addr(st, c, u->domain, u->addresses[i],
				   TERN__ADDRESS_OWNER__KIND__USER, u->name);
	memcpy(c->res.id, u->id.data, 16);
	rc = store_home_follow(st, c, u->id.data, u, old->home, STORE_HOME_ADMIN);
out:
	tern__user__free_unpacked(old, NULL);
	return rc;
}

int store_user_update(store *st, const Tern__User *u, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_user_update, &u->base, NULL, NULL, NULL,
						      NULL), cb, res_r);
}

/* The home-map entry of a migration: written as given, without "mailboxes follow homes"
 * (the migration creates and drops the mailbox rows itself). */
static int apply_home_state(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__User *u = NULL;
	int rc = store_user_get_by_id(st, j->id, &u);

	if (rc == STORE_ENOTFOUND)
		return store_cfg_err(c, rc, "no such user");
	if (rc != STORE_OK)
		return store_cfg_err(c, rc, "cannot read the user");
	set_home(u, j->s[0]);
	free(u->home_target != protobuf_c_empty_string ? u->home_target : NULL);
	u->home_target = strdup(j->s[1]);
	if (!u->home_target)
		abort();
	u->home_state = (Tern__HomeState)atoi(j->s[2]);
	put_user(st, c, u);
	memcpy(c->res.id, u->id.data, 16);
	tern__user__free_unpacked(u, NULL);
	return STORE_OK;
}

int store_user_set_home_state(store *st, const uint8_t user[16], const char *home,
			      Tern__HomeState state, const char *target, store_cb cb,
			      store_sync_result *res_r)
{
	char sn[16];
	store_cfg_job *j;

	snprintf(sn, sizeof(sn), "%d", (int)state);
	j = store_cfg_job_new(apply_home_state, NULL, home ? home : "", target ? target : "", sn,
			      NULL);
	memcpy(j->id, user, 16);
	return store_cfg_submit(st, j, cb, res_r);
}

static int apply_user_remove(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__User *u = NULL;
	tbuf k = TBUF_INIT;
	int rc;

	if (store_user_get(st, j->s[0], j->s[1], &u) != STORE_OK || u->id.len != 16)
		return store_cfg_err(c, STORE_ENOTFOUND, "user %s@%s does not exist", j->s[1], j->s[0]);
	sk_user(&k, u->domain, u->name);
	store_cfg_delete(st, c, k.data, k.len);
	sk_userid(&k, u->id.data);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	store_cfg_delete_addrs(st, c, u->domain, &u->name, 1, NULL, 0);
	store_cfg_delete_addrs(st, c, u->domain, u->addresses, u->n_addresses, NULL, 0);
	memcpy(c->res.id, u->id.data, 16);
	rc = store_mailbox_remove_batch(st, c->wb, u->id.data, 0);
	store_cfg_mailbox_gone(c, u->id.data);
	/* Calendars and address books go with the account. */
	if (rc == STORE_OK)
		rc = store_dav_owner_remove_batch(st, c, u->id.data);
	if (rc != STORE_OK)
		store_cfg_err(c, rc, "cannot remove the mailbox of %s@%s", u->name, u->domain);
	tern__user__free_unpacked(u, NULL);
	return rc;
}

int store_user_remove(store *st, const char *domain, const char *name, store_cb cb,
		      store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_user_remove, NULL, domain ? domain : "",
						      name ? name : "", NULL, NULL), cb, res_r);
}

/* ---- domain rename ---- */

typedef struct rename_ctx {
	store *st;
	store_commit *c;
	const char *to;
	size_t from_prefix_len;
	void (*prefix)(tbuf *, const char *);
	int bad;
} rename_ctx;

/* Move one record to the new domain's key, fixing the domain field it holds. */
static int rename_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	rename_ctx *r = arg;
	tbuf nk = TBUF_INIT;
	const ProtobufCMessageDescriptor *desc = NULL;

	r->prefix(&nk, r->to);
	tbuf_append(&nk, k + r->from_prefix_len, kn - r->from_prefix_len);
	if (r->prefix == sk_user_prefix)
		desc = &tern__user__descriptor;
	else if (r->prefix == sk_group_prefix)
		desc = &tern__group__descriptor;
	else if (r->prefix == sk_alias_prefix)
		desc = &tern__alias__descriptor;
	else if (r->prefix == sk_resource_prefix)
		desc = &tern__resource__descriptor;
	if (!desc) {
		store_cfg_put_raw(r->st, r->c, nk.data, nk.len, v, vn);
	} else {
		ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, vn, (const uint8_t *)v);

		if (!m) {
			r->bad = 1;
			tbuf_free(&nk);
			return 1;
		}
		char **dom = desc == &tern__user__descriptor ? &((Tern__User *)m)->domain
			   : desc == &tern__group__descriptor ? &((Tern__Group *)m)->domain
			   : desc == &tern__resource__descriptor ? &((Tern__Resource *)m)->domain
			   : &((Tern__Alias *)m)->domain;
		free(*dom);
		*dom = strdup(r->to);
		if (desc == &tern__user__descriptor)
			put_user(r->st, r->c, (Tern__User *)m);
		else
			store_cfg_put(r->st, r->c, &nk, m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	store_cfg_delete(r->st, r->c, k, kn);
	tbuf_free(&nk);
	return 0;
}

static int check_rename_target(store *st, store_commit *c, const Tern__Domain *d, const char *to)
{
	tbuf k = TBUF_INIT;
	int alias = 0, rc;

	if (strlen(to) > 253 || !tern_valid_domain(to))
		return store_cfg_err(c, STORE_EINVAL, "invalid domain name '%s'", to);
	if (store_domain_exists(st, to) == 1)
		return store_cfg_err(c, STORE_EEXISTS, "domain %s already exists", to);
	for (size_t i = 0; i < d->n_aliases; i++)
		alias |= strcasecmp(d->aliases[i], to) == 0;
	sk_domalias(&k, to);
	rc = store_db_exists(st, CF_CONFIG, k.data, k.len);
	tbuf_free(&k);
	if (rc == 1 && !alias)
		return store_cfg_err(c, STORE_EEXISTS, "%s is already a domain alias", to);
	return STORE_OK;
}

static int apply_domain_rename(store *st, store_cfg_job *j, store_commit *c)
{
	void (*prefixes[])(tbuf *, const char *) = {
		sk_user_prefix, sk_addr_prefix, sk_group_prefix, sk_alias_prefix, sk_resource_prefix,
	};
	Tern__Domain *d = NULL;
	char *to = store_lower_dup(j->s[1]);
	tbuf p = TBUF_INIT;
	int rc;

	if (store_domain_get(st, j->s[0], &d) != STORE_OK) {
		free(to);
		return store_cfg_err(c, STORE_ENOTFOUND, "domain %s does not exist", j->s[0]);
	}
	if ((rc = check_rename_target(st, c, d, to)) != STORE_OK)
		goto out;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		rename_ctx r = { st, c, to, 0, prefixes[i], 0 };

		prefixes[i](&p, d->name);
		r.from_prefix_len = p.len;
		if (store_db_scan(st, CF_CONFIG, p.data, p.len, NULL, 0, rename_one, &r) < 0 || r.bad) {
			rc = store_cfg_err(c, STORE_EIO, "cannot read the accounts of %s", d->name);
			goto out;
		}
	}
	sk_domain(&p, d->name);
	store_cfg_delete(st, c, p.data, p.len);
	/* The old name becomes an alias; an alias that is now the name stops being one. */
	size_t n = 0;
	char *old = d->name;
	char **aliases = malloc((d->n_aliases + 1) * sizeof(*aliases));

	if (!aliases)
		abort();
	for (size_t i = 0; i < d->n_aliases; i++) {
		if (strcasecmp(d->aliases[i], to) == 0)
			free(d->aliases[i]);
		else
			aliases[n++] = d->aliases[i];
	}
	aliases[n++] = old;
	free(d->aliases);
	d->aliases = aliases;
	d->n_aliases = n;
	d->name = strdup(to);
	sk_domain(&p, d->name);
	store_cfg_put(st, c, &p, &d->base);
	sk_domalias(&p, to);
	store_cfg_delete(st, c, p.data, p.len);
	for (size_t i = 0; i < d->n_aliases; i++) {
		Tern__DomainAlias da = TERN__DOMAIN_ALIAS__INIT;

		da.domain = to;
		sk_domalias(&p, d->aliases[i]);
		store_cfg_put(st, c, &p, &da.base);
	}
	rc = STORE_OK;
out:
	tbuf_free(&p);
	free(to);
	tern__domain__free_unpacked(d, NULL);
	return rc;
}

int store_domain_rename(store *st, const char *name, const char *new_name, store_cb cb,
			store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_domain_rename, NULL, name ? name : "",
						      new_name ? new_name : "", NULL, NULL), cb, res_r);
}

/* Becoming master: every user without a home gets this node's name, in batch c. */
typedef struct claim_scan {
	store *st;
	store_commit *c;
	const char *self;
} claim_scan;

static int claim_one(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	claim_scan *cs = arg;
	Tern__User *u = tern__user__unpack(NULL, vn, (const uint8_t *)v);

	(void)k;
	(void)kn;
	if (u == NULL)
		return 0;
	if (u->home == NULL || u->home[0] == '\0') {
		set_home(u, cs->self);
		put_user(cs->st, cs->c, u);
	}
	tern__user__free_unpacked(u, NULL);
	return 0;
}

void store_users_claim_homes(store *st, store_commit *c)
{
	claim_scan cs = { st, c, store_node_name(st) };

	if (cs.self == NULL)
		return;
	store_db_scan(st, CF_CONFIG, SK_USER_PREFIX, strlen(SK_USER_PREFIX), NULL, 0, claim_one, &cs);
}
