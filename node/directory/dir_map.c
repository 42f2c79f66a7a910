/* dir_map.c - the user and group writers of the sync: directory entries become mapped
 * accounts (Tern__User.ldap = 1) and mapped groups (Tern__Group.ldap = 1). A record is
 * written only when it differs from the stored one, so a reconcile of an unchanged
 * directory writes nothing.
 * Local accounts and groups of a mapped domain are never touched. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dir_map.h"

/* dir_private.h: a slave of a distributed domain writes no mapped accounts. */
int dir_replica(store *st)
{
	return store_repl_get_mode(st) == STORE_REPL_SLAVE;
}

/* 1 when a and b pack to the same bytes. */
static int same_record(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);

	if (na != nb)
		return 0;
	uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
	if (pa == NULL || pb == NULL)
		abort();
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	int same = memcmp(pa, pb, na) == 0;
	free(pa);
	free(pb);
	return same;
}

/* Keep the valid local parts of in[] that differ from self (NULL: none) and from each
 * other. A user's name is already its address; a group's is not (guide ch. 9), so a
 * group passes NULL and keeps an address equal to its name. */
static size_t filter_locals(char **in, size_t n, const char *self, char **out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int dup = (self != NULL && strcasecmp(in[i], self) == 0) || !tern_valid_localpart(in[i]);
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcasecmp(out[j], in[i]) == 0;
		if (!dup)
			out[k++] = in[i];
	}
	return k;
}

static size_t filter_addresses(char **in, size_t n, char **out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (tern_valid_address(in[i]))
			out[k++] = in[i];
	return k;
}

int dir_user_store(store *st, const char *domain, const lm_user *lu)
{
	Tern__User *old = NULL, u;
	store_sync_result res;
	int rc;

	if (lu->login == NULL || !tern_valid_localpart(lu->login) || strlen(lu->login) > 64)
		return 1;
	rc = store_user_get(st, domain, lu->login, &old);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND)
		return -1;
	if (old != NULL && !old->ldap) {
		store_free_record(old);
		return 1;
	}
	int enabled = lu->enabled && lu->has_mailbox;
	if (old == NULL && !enabled)
		return 1;
	if (old != NULL)
		u = *old;
	else
		tern__user__init(&u);
	char **addrs = calloc(lu->naddresses + 1, sizeof(char *));
	char **fwd = calloc(lu->nforward + 1, sizeof(char *));
	if (addrs == NULL || fwd == NULL)
		abort();
	u.name = old ? old->name : lu->login;
	u.domain = old ? old->domain : (char *)domain;
	u.full_name = lu->full_name && strlen(lu->full_name) <= 255 ? lu->full_name : "";
	u.enabled = enabled;
	u.n_addresses = filter_locals(lu->addresses, lu->naddresses, u.name, addrs);
	u.addresses = addrs;
	u.n_forward = filter_addresses(lu->forward, lu->nforward, fwd);
	u.forward = fwd;
	u.forward_keep_copy = lu->forward_keep_copy != 0;
	u.quota_bytes = lu->quota_bytes;
	u.quota_items = lu->quota_items;
	u.rights = lu->rights >= 0 && lu->rights <= TERN__RIGHTS__RIGHTS_READ_WRITE
		   ? (Tern__Rights)lu->rights : TERN__RIGHTS__RIGHTS_NONE;
	u.publish_in_gal = lu->publish_gal != 0;
	u.ldap = 1;
	rc = STORE_OK;
	if (old == NULL || !same_record(&old->base, &u.base)) {
		rc = old ? store_user_update(st, &u, STORE_SYNC, &res)
			 : store_user_add(st, &u, STORE_SYNC, &res);
		if (rc != STORE_OK)
			tlog(TLOG_WARNING, "Directory user %s@%s not written: %s", lu->login, domain,
			     res.error);
		else
			tlog(TLOG_DEBUG, "Directory user %s@%s %s%s", lu->login, domain,
			     old ? "updated" : "added", enabled ? "" : " (disabled)");
	}
	free(addrs);
	free(fwd);
	store_free_record(old);
	return rc == STORE_OK ? 0 : -1;
}

int dir_user_disable_unseen(store *st, const char *domain, int (*seen)(const char *login, void *arg),
			    void *arg)
{
	Tern__User **list = NULL;
	size_t n = 0;
	int bad = 0;

	if (store_user_list(st, domain, &list, &n) != STORE_OK)
		return -1;
	for (size_t i = 0; i < n; i++) {
		Tern__User u = *list[i];
		store_sync_result res;

		if (!u.ldap || !u.enabled || seen(u.name, arg))
			continue;
		u.enabled = 0;
		if (store_user_update(st, &u, STORE_SYNC, &res) != STORE_OK) {
			tlog(TLOG_WARNING, "Directory user %s@%s not disabled: %s", u.name, domain, res.error);
			bad = 1;
		} else {
			tlog(TLOG_DEBUG, "Directory user %s@%s disabled: no longer in the directory",
			     u.name, domain);
		}
	}
	store_free_list((void **)list, n);
	return bad ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 when the sync owns the group: the mapped flag, or - for groups mapped before the
 * flag existed (f2bd54b), which the sync recognised by their description alone - the
 * description it gave them and no flag. Such a group gets the flag on its next write. */
static int group_is_mapped(const Tern__Group *g)
{
	return g->ldap || (g->description != NULL && strcmp(g->description, DIR_GROUP_MARK) == 0);
}

int dir_group_store(store *st, const char *domain, const lm_group *g, char **members, size_t nmembers)
{
	Tern__Group *old = NULL, grp;
	store_sync_result res;
	int rc;

	if (g->name == NULL || !tern_valid_localpart(g->name) || strlen(g->name) > 64)
		return 1;
	rc = store_group_get(st, domain, g->name, &old);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND)
		return -1;
	if (old != NULL && !group_is_mapped(old)) {
		store_free_record(old);
		return 1;
	}
	if (old != NULL && !old->ldap)
		tlog(TLOG_DEBUG, "Directory group %s@%s mapped before the mapped flag: flag set", g->name,
		     domain);
	if (old != NULL)
		grp = *old;
	else
		tern__group__init(&grp);
	char **addrs = calloc(g->naddresses + 1, sizeof(char *));
	if (addrs == NULL)
		abort();
	if (nmembers > 0)
		qsort(members, nmembers, sizeof(char *), cmp_str);
	grp.name = old ? old->name : g->name;
	grp.domain = old ? old->domain : (char *)domain;
	if (old == NULL)
		grp.description = DIR_GROUP_MARK;
	grp.ldap = 1;
	grp.n_addresses = filter_locals(g->addresses, g->naddresses, NULL, addrs);
	grp.addresses = addrs;
	grp.members = members;
	grp.n_members = nmembers;
	grp.rights = g->rights >= 0 && g->rights <= TERN__RIGHTS__RIGHTS_READ_WRITE
		     ? (Tern__Rights)g->rights : TERN__RIGHTS__RIGHTS_NONE;
	rc = STORE_OK;
	if (old == NULL || !same_record(&old->base, &grp.base)) {
		rc = old ? store_group_update(st, &grp, STORE_SYNC, &res)
			 : store_group_add(st, &grp, STORE_SYNC, &res);
		if (rc != STORE_OK)
			tlog(TLOG_WARNING, "Directory group %s@%s not written: %s", g->name, domain, res.error);
	}
	free(addrs);
	store_free_record(old);
	return rc == STORE_OK ? 0 : -1;
}

int dir_group_remove_unseen(store *st, const char *domain, int (*seen)(const char *name, void *arg),
			    void *arg)
{
	Tern__Group **list = NULL;
	size_t n = 0;

	if (store_group_list(st, domain, &list, &n) != STORE_OK)
		return -1;
	for (size_t i = 0; i < n; i++) {
		store_sync_result res;

		if (!group_is_mapped(list[i]) || seen(list[i]->name, arg))
			continue;
		if (store_group_remove(st, domain, list[i]->name, STORE_SYNC, &res) != STORE_OK)
			tlog(TLOG_WARNING, "Directory group %s@%s not removed: %s", list[i]->name, domain,
			     res.error);
	}
	store_free_list((void **)list, n);
	return 0;
}
