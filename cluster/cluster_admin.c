/* cluster_admin.c - the cluster object and the membership operations: open/close, admit
 * (master side of a join), join, leave and remove. These run on worker threads: they
 * write the store with the blocking calls and hand socket work to the cluster thread as
 * requests. One membership operation runs at a time (admin_mu). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "cluster_private.h"

static char *dupe(const char *s)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		abort();
	return d;
}

static int req(cluster *cl, cl_req_kind kind, const char *node, tbuf *err)
{
	cl_request r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	if (node != NULL)
		snprintf(r.node, sizeof(r.node), "%s", node);
	int rc = cl_request_run(cl, &r);
	if (rc < 0 && err != NULL)
		tbuf_append_str(err, r.error);
	return rc;
}

int cluster_open(const cluster_options *o, cluster **cl_r, char **error_r)
{
	cluster *cl = calloc(1, sizeof(*cl));
	Tern__ClusterSelf *self = NULL;
	tbuf err = TBUF_INIT;

	*cl_r = NULL;
	if (cl == NULL || !cluster_valid_node_name(o->node_name)) {
		free(cl);
		*error_r = strdup("cluster: invalid node name");
		return -1;
	}
	cl->st = o->st;
	cl->conf = o->conf;
	cl->data_dir = dupe(o->data_dir);
	cl->fingerprint = dupe(o->fingerprint);
	snprintf(cl->name, sizeof(cl->name), "%s", o->node_name);
	cl->efd = -1;
	pthread_mutex_init(&cl->mu, NULL);
	pthread_mutex_init(&cl->admin_mu, NULL);
	pthread_cond_init(&cl->cv, NULL);
	store_set_node_name(cl->st, cl->name);
	cl_fb_init(cl);
	cl_bulk_init(cl);
	if (cl_curve_load(cl, error_r) < 0 || cl_svc_start(cl, error_r) < 0 || cl_thread_start(cl, error_r) < 0) {
		cluster_close(&cl);
		return -1;
	}
	int rc = store_cluster_self_get(cl->st, &self);
	cluster_role role = rc == STORE_OK ? (cluster_role)self->role : CLUSTER_STANDALONE;
	if (role == CLUSTER_MASTER) {
		store_repl_set_mode(cl->st, STORE_REPL_MASTER, 0, NULL);
		rc = req(cl, CL_REQ_MASTER_START, NULL, &err);
	} else if (role == CLUSTER_SLAVE) {
		char refusal[512];

		cl_refusal_text(cl, self, refusal, sizeof(refusal));
		store_repl_set_mode(cl->st, STORE_REPL_SLAVE, 0, refusal);
		rc = req(cl, CL_REQ_SLAVE_START, NULL, &err);
	} else {
		store_repl_set_mode(cl->st, STORE_REPL_OFF, 0, NULL);
		rc = 0;
	}
	store_free_record(self);
	if (rc == 0 && role != CLUSTER_STANDALONE)
		rc = cl_bulk_start(cl, &err);
	if (rc < 0) {
		tbuf e = TBUF_INIT;

		tbuf_appendf(&e, "cluster: %s", tbuf_cstr(&err));
		*error_r = tbuf_steal(&e);
		tbuf_free(&err);
		cluster_close(&cl);
		return -1;
	}
	tbuf_free(&err);
	*cl_r = cl;
	return 0;
}

void cluster_close(cluster **clp)
{
	cluster *cl = *clp;

	if (cl == NULL)
		return;
	cl_bulk_stop(cl);
	cl_svc_stop(cl);
	cl_thread_stop(cl);
	if (cl->svc_inited)
		cl_svc_free(cl);
	cl_fb_free(cl);
	cl_bulk_free(cl);
	OPENSSL_cleanse(cl->sec, sizeof(cl->sec));
	free(cl->peers);
	free(cl->view);
	free(cl->data_dir);
	free(cl->fingerprint);
	tbuf_free(&cl->wbuf);
	pthread_mutex_destroy(&cl->mu);
	pthread_mutex_destroy(&cl->admin_mu);
	pthread_cond_destroy(&cl->cv);
	free(cl);
	*clp = NULL;
}

cluster_role cluster_get_role(cluster *cl)
{
	pthread_mutex_lock(&cl->mu);
	cluster_role r = cl->role;
	pthread_mutex_unlock(&cl->mu);
	return r;
}

const char *cluster_role_name(cluster_role r)
{
	return r == CLUSTER_MASTER ? "master" : r == CLUSTER_SLAVE ? "slave" : "standalone";
}

int cluster_identity(cluster *cl, Tern__Node **n_r)
{
	Tern__Node *n = malloc(sizeof(*n));

	if (n == NULL)
		return -1;
	tern__node__init(n);
	cl_identity_fill(cl, n);
	*n_r = n;
	return 0;
}

void cluster_admission_free(cluster_admission **ap)
{
	cluster_admission *a = *ap;

	if (a == NULL)
		return;
	store_free_record(a->master);
	free(a->endpoint);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	*ap = NULL;
}

static int valid_fingerprint(const char *s)
{
	if (s == NULL || strlen(s) != 64)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
			return 0;
	return 1;
}

/* The candidate's checks; 0 or -1 with the reason in err. */
static int admit_check(cluster *cl, const Tern__Node *c, tbuf *err)
{
	Tern__Node **nodes = NULL;
	size_t nn = 0;
	int rc = 0;

	if (c == NULL || !cluster_valid_node_name(c->name)) {
		tbuf_append_str(err, "invalid node name");
		return -1;
	}
	if (strcasecmp(c->name, cl->name) == 0) {
		tbuf_appendf(err, "node name '%s' is this master's own name", c->name);
		return -1;
	}
	if (c->curve_public.len != CL_KEY_LEN || memcmp(c->curve_public.data, cl->pub, CL_KEY_LEN) == 0) {
		tbuf_append_str(err, "the node's CURVE public key must be 32 bytes (and not this master's)");
		return -1;
	}
	if (!valid_fingerprint(c->fingerprint)) {
		tbuf_append_str(err, "the node's certificate fingerprint must be 64 hex digits (SHA-256)");
		return -1;
	}
	if (c->address == NULL || c->address[0] == '\0' || strlen(c->address) > CLUSTER_TEXT_MAX) {
		tbuf_append_str(err, "the node has no address");
		return -1;
	}
	if (store_node_list(cl->st, &nodes, &nn) != STORE_OK) {
		tbuf_append_str(err, "cannot read the node list");
		return -1;
	}
	for (size_t i = 0; i < nn && rc == 0; i++) {
		int same_name = strcasecmp(nodes[i]->name, c->name) == 0;
		int same_key = nodes[i]->curve_public.len == CL_KEY_LEN &&
			       memcmp(nodes[i]->curve_public.data, c->curve_public.data, CL_KEY_LEN) == 0;

		if (same_name && !same_key) {
			tbuf_appendf(err, "node name '%s' is taken by another node", c->name);
			rc = -1;
		} else if (!same_name && same_key) {
			tbuf_appendf(err, "this CURVE key is already registered as node '%s'", nodes[i]->name);
			rc = -1;
		}
	}
	store_free_list((void **)nodes, nn);
	return rc;
}

/* Standalone -> master: bind the cluster port, start a new epoch, write this node's
 * record (master) and "cluster/self". */
static int become_master(cluster *cl, tbuf *err)
{
	Tern__ClusterSelf self = TERN__CLUSTER_SELF__INIT;
	uint8_t cred[CL_KEY_LEN], hash[SHA256_DIGEST_LENGTH];
	store_sync_result res;

	if (req(cl, CL_REQ_MASTER_START, NULL, err) < 0)
		return -1;
	if (cl_bulk_start(cl, err) < 0) {
		req(cl, CL_REQ_STOP, NULL, NULL);
		return -1;
	}
	uint64_t epoch = (uint64_t)tern_now() * 1000 + (uint64_t)(tern_mono_ms() % 1000);
	store_repl_set_mode(cl->st, STORE_REPL_MASTER, epoch, NULL);
	tern_random(cred, sizeof(cred));
	SHA256(cred, sizeof(cred), hash);
	Tern__Node *me = NULL;
	cluster_identity(cl, &me);
	if (me == NULL)
		abort();
	me->master = 1;
	me->credential_hash.data = malloc(sizeof(hash));
	if (me->credential_hash.data == NULL)
		abort();
	memcpy(me->credential_hash.data, hash, sizeof(hash));
	me->credential_hash.len = sizeof(hash);
	me->joined = (uint64_t)tern_now();
	int rc = store_node_put(cl->st, me, STORE_SYNC, &res);
	store_free_record(me);
	if (rc == STORE_OK) {
		self.role = TERN__CLUSTER_SELF__ROLE__MASTER;
		self.master_name = cl->name;
		self.master_public.data = cl->pub;
		self.master_public.len = CL_KEY_LEN;
		self.master_fingerprint = cl->fingerprint;
		self.credential.data = cred;
		self.credential.len = sizeof(cred);
		self.joined = (uint64_t)tern_now();
		rc = store_cluster_self_put(cl->st, &self, STORE_SYNC, &res);
	}
	OPENSSL_cleanse(cred, sizeof(cred));
	if (rc != STORE_OK) {
		tbuf_appendf(err, "cannot become master: %s", res.error);
		store_repl_set_mode(cl->st, STORE_REPL_OFF, 0, NULL);
		req(cl, CL_REQ_STOP, NULL, NULL);
		cl_bulk_stop(cl);
		return -1;
	}
	tlog(TLOG_OPERATIONS, "cluster: node %s is now the master of a distributed domain (epoch %llu)", cl->name,
	     (unsigned long long)epoch);
	return 0;
}

/* "tcp://HOST:PORT" of this master, brackets around an IPv6 literal. */
static char *endpoint_of(const Tern__Node *n)
{
	tbuf b = TBUF_INIT;

	if (strchr(n->address, ':') != NULL)
		tbuf_appendf(&b, "tcp://[%s]:%u", n->address, n->cluster_port);
	else
		tbuf_appendf(&b, "tcp://%s:%u", n->address, n->cluster_port);
	return tbuf_steal(&b);
}

int cluster_admit(cluster *cl, const Tern__Node *candidate, cluster_admission **a_r, tbuf *err)
{
	uint8_t cred[CL_KEY_LEN], hash[SHA256_DIGEST_LENGTH];
	store_sync_result res;
	cluster_admission *a = NULL;
	int rc = -1;

	*a_r = NULL;
	pthread_mutex_lock(&cl->admin_mu);
	cluster_role role = cluster_get_role(cl);
	if (role == CLUSTER_SLAVE) {
		tbuf_append_str(err, "this node is a slave; nodes are admitted by the master of the domain");
		goto out;
	}
	if (admit_check(cl, candidate, err) < 0)
		goto out;
	a = calloc(1, sizeof(*a));
	if (a == NULL || cl_secret_load(cl->data_dir, a->secret, err) < 0)
		goto out;
	if (role == CLUSTER_STANDALONE && become_master(cl, err) < 0)
		goto out;
	tern_random(cred, sizeof(cred));
	SHA256(cred, sizeof(cred), hash);
	Tern__Node n = *candidate;
	n.master = 0;
	n.credential_hash.data = hash;
	n.credential_hash.len = sizeof(hash);
	n.joined = (uint64_t)tern_now();
	if (store_node_put(cl->st, &n, STORE_SYNC, &res) != STORE_OK) {
		tbuf_appendf(err, "cannot register node '%s': %s", candidate->name, res.error);
		goto out;
	}
	if (store_node_get(cl->st, cl->name, &a->master) != STORE_OK) {
		tbuf_append_str(err, "this master's own node record is missing");
		goto out;
	}
	a->endpoint = endpoint_of(a->master);
	memcpy(a->credential, cred, sizeof(cred));
	tlog(TLOG_OPERATIONS, "cluster: admitted node %s (%s) to the distributed domain", candidate->name,
	     candidate->address);
	*a_r = a;
	a = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(cred, sizeof(cred));
	cluster_admission_free(&a);
	pthread_mutex_unlock(&cl->admin_mu);
	return rc;
}

/* 1 when some mailbox of this node holds messages (a node with mail cannot join). */
static int any_mail_here(store *st, char *who, size_t wn)
{
	Tern__Domain **doms = NULL;
	size_t nd = 0;
	int found = 0;

	if (store_domain_list(st, &doms, &nd) != STORE_OK)
		return -1;
	for (size_t i = 0; i < nd && !found; i++) {
		Tern__User **users = NULL;
		size_t nu = 0;

		if (store_user_list(st, doms[i]->name, &users, &nu) != STORE_OK)
			continue;
		for (size_t j = 0; j < nu && !found; j++)
			if (users[j]->id.len == 16 && store_mailbox_has_data(st, users[j]->id.data) == 1) {
				snprintf(who, wn, "%s@%s", users[j]->name, doms[i]->name);
				found = 1;
			}
		store_free_list((void **)users, nu);
	}
	store_free_list((void **)doms, nd);
	return found;
}

int cluster_join(cluster *cl, const cluster_admission *a, tbuf *err)
{
	Tern__ClusterSelf self = TERN__CLUSTER_SELF__INIT;
	store_sync_result res;
	char who[320], refusal[512];
	int rc = -1;

	pthread_mutex_lock(&cl->admin_mu);
	if (cluster_get_role(cl) != CLUSTER_STANDALONE) {
		tbuf_appendf(err, "this node is already the %s of a distributed domain",
			     cluster_role_name(cluster_get_role(cl)));
		goto out;
	}
	if (a == NULL || a->master == NULL || !cluster_valid_node_name(a->master->name) ||
	    a->master->curve_public.len != CL_KEY_LEN || a->endpoint == NULL ||
	    strncmp(a->endpoint, "tcp://", 6) != 0 || a->master->address == NULL) {
		tbuf_append_str(err, "the master's answer is incomplete");
		goto out;
	}
	if (strcasecmp(a->master->name, cl->name) == 0) {
		tbuf_append_str(err, "the master has this node's name");
		goto out;
	}
	int mail = any_mail_here(cl->st, who, sizeof(who));
	if (mail != 0) {
		if (mail > 0)
			tbuf_appendf(err, "the mailbox of %s on this node holds messages; only a node without mail joins", who);
		else
			tbuf_append_str(err, "cannot read the accounts of this node");
		goto out;
	}
	if (cl_secret_store(cl->data_dir, a->secret, err) < 0 || cl_bulk_start(cl, err) < 0)
		goto out;
	self.role = TERN__CLUSTER_SELF__ROLE__SLAVE;
	self.master_name = a->master->name;
	self.master_endpoint = a->endpoint;
	self.master_public = a->master->curve_public;
	self.master_fingerprint = a->master->fingerprint;
	self.credential.data = (uint8_t *)a->credential;
	self.credential.len = sizeof(a->credential);
	self.joined = (uint64_t)tern_now();
	if (store_cluster_self_put(cl->st, &self, STORE_SYNC, &res) != STORE_OK) {
		tbuf_appendf(err, "cannot store cluster/self: %s", res.error);
		cl_bulk_stop(cl);
		goto out;
	}
	snprintf(refusal, sizeof(refusal), "distributed-domain settings are changed on the master %s (%s:%u)",
		 a->master->name, a->master->address, a->master->admin_port);
	store_repl_set_mode(cl->st, STORE_REPL_SLAVE, 0, refusal);
	if (req(cl, CL_REQ_SLAVE_START, NULL, err) < 0) {
		Tern__ClusterSelf off = TERN__CLUSTER_SELF__INIT;

		store_repl_set_mode(cl->st, STORE_REPL_OFF, 0, NULL);
		store_cluster_self_put(cl->st, &off, STORE_SYNC, NULL);
		cl_bulk_stop(cl);
		goto out;
	}
	tlog(TLOG_OPERATIONS, "cluster: node %s joined the distributed domain of master %s (%s)", cl->name,
	     a->master->name, a->endpoint);
	rc = 0;
out:
	pthread_mutex_unlock(&cl->admin_mu);
	return rc;
}

int cluster_leave(cluster *cl, tbuf *err)
{
	Tern__ClusterSelf off = TERN__CLUSTER_SELF__INIT;
	store_sync_result res;
	int rc = -1;

	pthread_mutex_lock(&cl->admin_mu);
	cluster_role role = cluster_get_role(cl);
	if (role != CLUSTER_SLAVE) {
		tbuf_append_str(err, role == CLUSTER_MASTER ?
				"the master does not leave its domain (remove the other nodes instead)" :
				"this node is not part of a distributed domain");
		goto out;
	}
	if (req(cl, CL_REQ_LEAVE, NULL, err) < 0)
		goto out;
	cl_bulk_stop(cl);
	store_repl_set_mode(cl->st, STORE_REPL_OFF, 0, NULL);
	if (store_cluster_self_put(cl->st, &off, STORE_SYNC, &res) != STORE_OK) {
		tbuf_appendf(err, "cannot clear cluster/self: %s", res.error);
		goto out;
	}
	tlog(TLOG_OPERATIONS, "cluster: node %s left the distributed domain", cl->name);
	rc = 0;
out:
	pthread_mutex_unlock(&cl->admin_mu);
	return rc;
}

int cluster_remove(cluster *cl, const char *node_name, tbuf *err)
{
	Tern__Node *n = NULL;
	store_sync_result res;
	int rc = -1;

	pthread_mutex_lock(&cl->admin_mu);
	if (cluster_get_role(cl) != CLUSTER_MASTER) {
		tbuf_append_str(err, "nodes are removed on the master of the domain");
		goto out;
	}
	if (node_name == NULL || strcasecmp(node_name, cl->name) == 0) {
		tbuf_append_str(err, "the master cannot remove itself");
		goto out;
	}
	if (store_node_get(cl->st, node_name, &n) != STORE_OK) {
		tbuf_appendf(err, "no node '%s' in this domain", node_name);
		goto out;
	}
	store_free_record(n);
	unsigned users = store_node_user_count(cl->st, node_name);
	if (users > 0) {
		tbuf_appendf(err, "%u users are homed on node '%s'; move them first", users, node_name);
		goto out;
	}
	if (store_node_remove(cl->st, node_name, STORE_SYNC, &res) != STORE_OK) {
		tbuf_appendf(err, "cannot remove node '%s': %s", node_name, res.error);
		goto out;
	}
	req(cl, CL_REQ_DROP_NODE, node_name, NULL);
	tlog(TLOG_OPERATIONS, "cluster: removed node %s from the distributed domain", node_name);
	rc = 0;
out:
	pthread_mutex_unlock(&cl->admin_mu);
	return rc;
}
