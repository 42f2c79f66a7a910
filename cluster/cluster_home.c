/* cluster_home.c - `ternctl user set USER --home NODE`: the master places a user whose
 * mailbox is still empty where it is now (asked over the control plane when that is
 * another node); a mailbox with data moves by migration instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster_private.h"

/* Replace a string field of an unpacked record (protobuf-c shares one static empty
 * string among unset fields: never free that one). */
static void set_str(char **field, const char *v)
{
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = strdup(v);
	if (*field == NULL)
		abort();
}

/* Is the user's mailbox at node `where` empty? 0 empty, -1 with err (data, or no answer). */
static int mailbox_empty_at(cluster *cl, const Tern__User *u, const char *where, const char *address, tbuf *err)
{
	if (where[0] == '\0' || strcasecmp(where, cl->name) == 0) {
		if (store_mailbox_has_data(cl->st, u->id.data) == 1) {
			tbuf_appendf(err, "the mailbox of %s holds messages; a mailbox with data moves by migration", address);
			return -1;
		}
		return 0;
	}
	cl_request r;

	memset(&r, 0, sizeof(r));
	r.kind = CL_REQ_MAILBOX_USAGE;
	snprintf(r.node, sizeof(r.node), "%s", where);
	memcpy(r.user_id, u->id.data, 16);
	if (cl_request_run(cl, &r) < 0) {
		tbuf_appendf(err, "cannot check the mailbox of %s on node %s: %s", address, where, r.error);
		return -1;
	}
	if (r.has_data) {
		tbuf_appendf(err, "the mailbox of %s on node %s holds messages; a mailbox with data moves by migration",
			     address, where);
		return -1;
	}
	return 0;
}

int cluster_user_set_home(cluster *cl, const char *address, const char *node, tbuf *err)
{
	Tern__User *u = NULL;
	Tern__ClusterSelf *self = NULL;
	store_sync_result res;
	int rc = -1;

	if (node == NULL)
		node = "";
	pthread_mutex_lock(&cl->admin_mu);
	cluster_role role = cluster_get_role(cl);
	if (role == CLUSTER_SLAVE) {
		char refusal[512] = "distributed-domain settings are changed on the master";

		if (store_cluster_self_get(cl->st, &self) == STORE_OK)
			cl_refusal_text(cl, self, refusal, sizeof(refusal));
		tbuf_append_str(err, refusal);
		goto out;
	}
	const char *target = node[0] == '\0' ? cl->name : node;
	if (strcasecmp(target, cl->name) != 0) {
		Tern__Node *n = NULL;

		if (role == CLUSTER_STANDALONE || store_node_get(cl->st, target, &n) != STORE_OK) {
			tbuf_appendf(err, "no node '%s' in this domain", target);
			goto out;
		}
		store_free_record(n);
	}
	int frc = store_user_find(cl->st, address, &u);
	if (frc != STORE_OK || u->id.len != 16) {
		tbuf_appendf(err, frc == STORE_ENOTFOUND ? "no user %s" : "cannot read user %s", address);
		goto out;
	}
	const char *now = u->home != NULL ? u->home : "";
	int same = (now[0] == '\0' && strcasecmp(target, cl->name) == 0) || strcasecmp(now, target) == 0;
	if (same && u->home_state == TERN__HOME_STATE__HOME_ACTIVE) {
		rc = 0;   /* already there */
		goto out;
	}
	if (u->home_state == TERN__HOME_STATE__HOME_MOVING) {
		tbuf_appendf(err, "%s is being migrated; its home changes when the migration ends", address);
		goto out;
	}
	if (!same && mailbox_empty_at(cl, u, now, address, err) < 0)
		goto out;
	/* Standalone: "" stays "this node"; in a domain the name is explicit, since "" means
	 * "this node" on every node. */
	set_str(&u->home, role == CLUSTER_STANDALONE ? "" : target);
	set_str(&u->home_target, "");
	u->home_state = TERN__HOME_STATE__HOME_ACTIVE;
	if (store_user_update(cl->st, u, STORE_SYNC, &res) != STORE_OK) {
		tbuf_appendf(err, "cannot set the home of %s: %s", address, res.error);
		goto out;
	}
	tlog(TLOG_OPERATIONS, "cluster: home of %s set to node %s", address, target);
	rc = 0;
out:
	store_free_record(u);
	store_free_record(self);
	pthread_mutex_unlock(&cl->admin_mu);
	return rc;
}
