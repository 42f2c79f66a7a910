/* cluster_status.c - every node of the domain as this node sees it. A master knows each
 * slave from its own peer state (last frame, acknowledged seq); a slave shows what the
 * master's latest heartbeat said, with itself and the master's liveness as it sees
 * them; a standalone node shows itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster_private.h"

static void fill(cluster_node_status *s, const char *name, const char *role, const char *status,
		 const char *address)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->role, sizeof(s->role), "%s", role);
	snprintf(s->status, sizeof(s->status), "%s", status);
	snprintf(s->address, sizeof(s->address), "%s", address != NULL ? address : "");
}

static const char *self_address(cluster *cl)
{
	const tern_conf *c = cl->conf;

	return c->cluster_address != NULL && c->cluster_address[0] ? c->cluster_address :
	       c->server_hostname != NULL && c->server_hostname[0] ? c->server_hostname : "127.0.0.1";
}

/* Master: this node, then every registered node with its peer state. */
static int master_status(cluster *cl, cluster_node_status **list_r, size_t *n_r)
{
	Tern__Node **nodes = NULL;
	size_t nn = 0, k = 0;
	uint64_t epoch = 0, head = 0;
	int64_t now = tern_mono_ms(), silent = cl->conf->cluster_unavailable_after * 1000;

	if (store_node_list(cl->st, &nodes, &nn) != STORE_OK)
		return -1;
	store_repl_state(cl->st, &epoch, &head);
	cluster_node_status *v = calloc(nn + 1, sizeof(*v));
	if (v == NULL) {
		store_free_list((void **)nodes, nn);
		return -1;
	}
	fill(&v[k], cl->name, "master", "this server", self_address(cl));
	v[k].last_seen = tern_now();
	v[k++].seq = head;
	pthread_mutex_lock(&cl->mu);
	for (size_t i = 0; i < nn; i++) {
		if (strcasecmp(nodes[i]->name, cl->name) == 0)
			continue;
		const cl_peer *p = cl_peer_find(cl, nodes[i]->name);
		int up = p != NULL && p->available && now - p->last_seen_ms <= silent;

		fill(&v[k], nodes[i]->name, "slave", up ? "available" : "unavailable", nodes[i]->address);
		if (p != NULL) {
			v[k].last_seen = p->last_seen;
			v[k].seq = p->ack_epoch == epoch ? p->ack_seq : 0;
		}
		v[k].lag = head > v[k].seq ? head - v[k].seq : 0;
		k++;
	}
	pthread_mutex_unlock(&cl->mu);
	store_free_list((void **)nodes, nn);
	*list_r = v;
	*n_r = k;
	return 0;
}

/* Slave: the master's last view (or the replicated node list before the first
 * heartbeat), this node marked "this server" with its own applied seq. */
static int slave_status(cluster *cl, cluster_node_status **list_r, size_t *n_r)
{
	uint64_t epoch = 0, seq = 0;
	Tern__Node **nodes = NULL;
	size_t nn = 0, k = 0, cap;
	cluster_node_status *v;

	store_repl_state(cl->st, &epoch, &seq);
	pthread_mutex_lock(&cl->mu);
	if (cl->nview > 0) {
		cap = cl->nview + 1;
		v = calloc(cap, sizeof(*v));
		if (v != NULL) {
			memcpy(v, cl->view, cl->nview * sizeof(*v));
			k = cl->nview;
		}
	} else {
		pthread_mutex_unlock(&cl->mu);
		if (store_node_list(cl->st, &nodes, &nn) != STORE_OK)
			nn = 0;
		cap = nn + 2;
		v = calloc(cap, sizeof(*v));
		for (size_t i = 0; v != NULL && i < nn; i++)
			fill(&v[k++], nodes[i]->name, nodes[i]->master ? "master" : "slave", "unavailable",
			     nodes[i]->address);
		store_free_list((void **)nodes, nn);
		pthread_mutex_lock(&cl->mu);
	}
	if (v == NULL) {
		pthread_mutex_unlock(&cl->mu);
		return -1;
	}
	int have_self = 0, have_master = 0;
	for (size_t i = 0; i < k; i++) {
		if (strcasecmp(v[i].name, cl->name) == 0) {
			have_self = 1;
			snprintf(v[i].status, sizeof(v[i].status), "this server");
			snprintf(v[i].role, sizeof(v[i].role), "slave");
			v[i].seq = seq;
			v[i].last_seen = tern_now();
		} else if (strcasecmp(v[i].name, cl->master_name) == 0) {
			have_master = 1;
			snprintf(v[i].role, sizeof(v[i].role), "master");
			snprintf(v[i].status, sizeof(v[i].status), "%s", cl->master_available ? "available" : "unavailable");
			v[i].last_seen = cl->master_seen;
		}
	}
	if (!have_master && k < cap && cl->master_name[0]) {
		fill(&v[k], cl->master_name, "master", cl->master_available ? "available" : "unavailable", "");
		v[k++].last_seen = cl->master_seen;
	}
	pthread_mutex_unlock(&cl->mu);
	if (!have_self) {
		cluster_node_status *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			free(v);
			return -1;
		}
		v = nv;
		fill(&v[k], cl->name, "slave", "this server", self_address(cl));
		v[k].seq = seq;
		v[k++].last_seen = tern_now();
	}
	*list_r = v;
	*n_r = k;
	return 0;
}

int cl_status_build(cluster *cl, cluster_node_status **list_r, size_t *n_r)
{
	switch (cluster_get_role(cl)) {
	case CLUSTER_MASTER:
		return master_status(cl, list_r, n_r);
	case CLUSTER_SLAVE:
		return slave_status(cl, list_r, n_r);
	default: {
		cluster_node_status *v = calloc(1, sizeof(*v));

		if (v == NULL)
			return -1;
		fill(v, cl->name, "standalone", "this server", self_address(cl));
		v->last_seen = tern_now();
		*list_r = v;
		*n_r = 1;
		return 0;
	}
	}
}

int cluster_status(cluster *cl, cluster_node_status **list_r, size_t *n_r)
{
	*list_r = NULL;
	*n_r = 0;
	return cl_status_build(cl, list_r, n_r);
}
