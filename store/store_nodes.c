/* store_nodes.c - the nodes of a distributed domain (config CF "node/<name>", shared),
 * this node's cluster records ("cluster/self", "cluster/curve", node-local), and
 * "mailboxes follow homes": the mailbox rows of a user exist on its home node only. */
#include "store_private.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_NAME_MAX 253
#define NODE_TEXT_MAX 255
#define KEY_LEN 32

/* ---- mailboxes follow homes ---- */

static int stop_first(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	(void)k; (void)kn; (void)v; (void)vn; (void)arg;
	return 1;
}

int store_mailbox_has_data(store *st, const uint8_t user[16])
{
	int rc = store_db_scan(st, CF_MSG, user, 16, NULL, 0, stop_first, NULL);

	return rc == 1;
}

int store_home_is_here(store *st, const char *home)
{
	const char *self = st->node_name;

	return !home || !home[0] || (self && strcasecmp(home, self) == 0);
}

void store_home_node(store *st, const char *home, char *out, size_t n)
{
	Tern__ClusterSelf *cs = NULL;

	out[0] = '\0';
	if (home != NULL && home[0] != '\0') {
		snprintf(out, n, "%s", home);
		return;
	}
	switch (store_repl_get_mode(st)) {
	case STORE_REPL_MASTER:
		snprintf(out, n, "%s", st->node_name ? st->node_name : "");
		break;
	case STORE_REPL_SLAVE:
		if (store_cluster_self_get(st, &cs) == STORE_OK) {
			snprintf(out, n, "%s", cs->master_name ? cs->master_name : "");
			store_free_record(cs);
		}
		break;
	default:
		break;
	}
}

static int same_home(const char *a, const char *b)
{
	return strcasecmp(a ? a : "", b ? b : "") == 0;
}

int store_home_follow(store *st, store_commit *c, const uint8_t id[16], const Tern__User *u,
		      const char *old_home, store_home_why why)
{
	uint8_t k[SK_FOLDER_LEN];
	char who[300];
	int have, rc;

	/* A migration holds the mailbox: it alone creates or removes its rows. */
	if (store_mbs_held(st, id))
		return STORE_OK;
	if (u)
		snprintf(who, sizeof(who), "%s@%s", u->name ? u->name : "", u->domain ? u->domain : "");
	else
		tern_uuid_str(id, who);
	sk_mailbox(k, id);
	if ((have = store_db_exists(st, CF_FOLDER, k, sizeof(k))) < 0)
		return store_cfg_err(c, STORE_EIO, "cannot read the mailbox of %s", who);
	/* In the master's rows home "" is the master: never this node when replicated. */
	if (u && (why == STORE_HOME_ADMIN ? store_home_is_here(st, u->home)
					  : u->home && u->home[0] && store_home_is_here(st, u->home))) {
		if (!have)
			store_mailbox_create_batch(st, c, id);
		return STORE_OK;
	}
	if (!have)
		return STORE_OK;
	/* The master removed the user: its mailbox goes with it, as on a standalone node. */
	if (!u && why == STORE_HOME_REPL) {
		rc = store_mailbox_remove_batch(st, c->wb, id, 0);
		if (rc != STORE_OK)
			return store_cfg_err(c, rc, "cannot remove the mailbox of %s", who);
		store_cfg_mailbox_gone(c, id);
		if ((rc = store_dav_owner_remove_batch(st, c, id)) != STORE_OK)
			return store_cfg_err(c, rc, "cannot remove the calendars of %s", who);
		return STORE_OK;
	}
	rc = store_mailbox_remove_batch(st, c->wb, id, 1);
	if (rc == STORE_OK) {
		store_cfg_mailbox_gone(c, id);
		return STORE_OK;
	}
	if (rc != STORE_EEXISTS)
		return store_cfg_err(c, rc, "cannot remove the mailbox of %s", who);
	/* The mailbox holds messages. */
	if (why == STORE_HOME_ADMIN) {
		/* A mailbox kept earlier under the same home stays as it is. */
		if (old_home && same_home(old_home, u->home))
			return STORE_OK;
		return store_cfg_err(c, STORE_EREFUSED, "a mailbox with data moves by migration");
	}
	if (u)
		tlog(TLOG_WARNING, "store: %s is homed on node %s but its mailbox here holds "
		     "messages: its rows are kept", who, u->home);
	else
		tlog(TLOG_WARNING, "store: user %s is gone from the master's snapshot but its "
		     "mailbox here holds messages: its rows are kept", who);
	return STORE_OK;
}

/* ---- nodes ---- */

/* A host name or a short name: [A-Za-z0-9._-], starting and ending with a letter or
 * digit, no "..". */
static int valid_node_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NODE_NAME_MAX || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]) || strstr(s, ".."))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
			return 0;
	return 1;
}

int store_node_get(store *st, const char *name, Tern__Node **n_r)
{
	tbuf k = TBUF_INIT;
	int rc;

	if (!valid_node_name(name))
		return STORE_ENOTFOUND;
	sk_node(&k, name);
	rc = store_db_get_record(st, CF_CONFIG, k.data, k.len, &tern__node__descriptor,
				 (ProtobufCMessage **)n_r);
	tbuf_free(&k);
	return rc;
}

int store_node_list(store *st, Tern__Node ***list_r, size_t *n_r)
{
	tbuf p = TBUF_INIT;
	int rc;

	tbuf_append_str(&p, SK_NODE_PREFIX);
	rc = store_config_list(st, &p, &tern__node__descriptor, (void ***)list_r, n_r);
	tbuf_free(&p);
	return rc;
}

typedef struct home_count {
	const char *name;
	unsigned n;
	int bad;
} home_count;

static int count_home(const char *k, size_t kn, const char *v, size_t vn, void *arg)
{
	home_count *h = arg;
	Tern__User *u = tern__user__unpack(NULL, vn, (const uint8_t *)v);

	(void)k; (void)kn;
	if (!u) {
		h->bad = 1;
		return 1;
	}
	/* A user moving to the node counts too: its mailbox is on its way there. */
	if (same_home(u->home, h->name) ||
	    (u->home_state == TERN__HOME_STATE__HOME_MOVING && same_home(u->home_target, h->name)))
		h->n++;
	tern__user__free_unpacked(u, NULL);
	return 0;
}

unsigned store_node_user_count(store *st, const char *name)
{
	home_count h = { name, 0, 0 };

	if (!name || !name[0])
		return 0;
	store_db_scan(st, CF_CONFIG, SK_USER_PREFIX, strlen(SK_USER_PREFIX), NULL, 0, count_home, &h);
	return h.n;
}

static int apply_node_put(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Node *n = (Tern__Node *)j->rec;
	tbuf k = TBUF_INIT;

	if (!valid_node_name(n->name))
		return store_cfg_err(c, STORE_EINVAL, "invalid node name '%s'", n->name ? n->name : "");
	if ((n->curve_public.len != 0 && n->curve_public.len != KEY_LEN) ||
	    (n->credential_hash.len != 0 && n->credential_hash.len != KEY_LEN))
		return store_cfg_err(c, STORE_EINVAL, "the key or credential hash of node %s is not "
				     "%d bytes", n->name, KEY_LEN);
	if ((n->address && strlen(n->address) > NODE_TEXT_MAX) ||
	    (n->fingerprint && strlen(n->fingerprint) > NODE_TEXT_MAX))
		return store_cfg_err(c, STORE_EINVAL, "address or fingerprint of node %s is longer "
				     "than %d bytes", n->name, NODE_TEXT_MAX);
	if (n->admin_port > 65535 || n->cluster_port > 65535 || n->submission_port > 65535 ||
	    n->imap_port > 65535 || n->pop3_port > 65535 || n->http_port > 65535 || n->bulk_port > 65535)
		return store_cfg_err(c, STORE_EINVAL, "a port of node %s is out of range", n->name);
	sk_node(&k, n->name);
	store_cfg_put(st, c, &k, &n->base);
	tbuf_free(&k);
	return STORE_OK;
}

int store_node_put(store *st, const Tern__Node *n, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_node_put, &n->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}

static int apply_node_remove(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__Node *n = NULL;
	tbuf k = TBUF_INIT;
	unsigned users;

	if (store_node_get(st, j->s[0], &n) != STORE_OK)
		return store_cfg_err(c, STORE_ENOTFOUND, "node %s does not exist", j->s[0]);
	store_free_record(n);
	if ((users = store_node_user_count(st, j->s[0])) > 0)
		return store_cfg_err(c, STORE_EREFUSED, "node %s is the home of %u user%s", j->s[0],
				     users, users > 1 ? "s" : "");
	sk_node(&k, j->s[0]);
	store_cfg_delete(st, c, k.data, k.len);
	tbuf_free(&k);
	return STORE_OK;
}

int store_node_remove(store *st, const char *name, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_node_remove, NULL, name ? name : "", NULL,
						      NULL, NULL), cb, res_r);
}

/* ---- this node's cluster records ---- */

int store_cluster_self_get(store *st, Tern__ClusterSelf **s_r)
{
	return store_db_get_record(st, CF_CONFIG, SK_CLUSTER_SELF, strlen(SK_CLUSTER_SELF),
				   &tern__cluster_self__descriptor, (ProtobufCMessage **)s_r);
}

static int apply_self_put(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__ClusterSelf *s = (Tern__ClusterSelf *)j->rec;
	tbuf k = TBUF_INIT;

	if ((unsigned)s->role > TERN__CLUSTER_SELF__ROLE__SLAVE)
		return store_cfg_err(c, STORE_EINVAL, "bad cluster role %d", (int)s->role);
	if (s->credential.len != 0 && s->credential.len != KEY_LEN)
		return store_cfg_err(c, STORE_EINVAL, "the node credential is not %d bytes", KEY_LEN);
	tbuf_append_str(&k, SK_CLUSTER_SELF);
	if (s->role == TERN__CLUSTER_SELF__ROLE__STANDALONE)
		store_cfg_delete(st, c, k.data, k.len);
	else
		store_cfg_put(st, c, &k, &s->base);
	tbuf_free(&k);
	return STORE_OK;
}

int store_cluster_self_put(store *st, const Tern__ClusterSelf *s, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_self_put, &s->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}

int store_curve_keys_get(store *st, Tern__CurveKeys **k_r)
{
	return store_db_get_record(st, CF_CONFIG, SK_CLUSTER_CURVE, strlen(SK_CLUSTER_CURVE),
				   &tern__curve_keys__descriptor, (ProtobufCMessage **)k_r);
}

static int apply_curve_put(store *st, store_cfg_job *j, store_commit *c)
{
	Tern__CurveKeys *ck = (Tern__CurveKeys *)j->rec;
	tbuf k = TBUF_INIT;

	if (ck->public_key.len != KEY_LEN || ck->secret_key.len != KEY_LEN)
		return store_cfg_err(c, STORE_EINVAL, "CURVE keys are %d bytes", KEY_LEN);
	tbuf_append_str(&k, SK_CLUSTER_CURVE);
	store_cfg_put(st, c, &k, &ck->base);
	tbuf_free(&k);
	return STORE_OK;
}

int store_curve_keys_put(store *st, const Tern__CurveKeys *k, store_cb cb, store_sync_result *res_r)
{
	return store_cfg_submit(st, store_cfg_job_new(apply_curve_put, &k->base, NULL, NULL, NULL, NULL),
				cb, res_r);
}
