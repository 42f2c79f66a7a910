/* admin_cluster.c - /api/v1/cluster: the status of the distributed domain, this node's
 * identity, both sides of a join (the master admits, the new slave joins), leave and
 * remove. The cluster calls that block (store writes, requests to other nodes) run on
 * the auth pool. Node credentials and the shared secret travel only in the answers of
 * admit and the body of join, never in a log line. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

#define CURVE_KEY_LEN 32
#define CURVE_KEY_B64_LEN 44      /* base64 of 32 bytes, one '=' of padding */
#define NODE_NAME_MAX 63

/* The state of one asynchronous cluster request, kept in r->rec. */
typedef struct cl_job {
	Tern__Node *cand;             /* admit: the node asking to join */
	cluster_admission *adm;       /* admit: the master's answer; join: the answer given */
	int own_adm;                  /* adm was built here (join), not by cluster_admit */
	char node[NODE_NAME_MAX + 1]; /* remove: the node's name */
	tbuf err;
	int rc;
} cl_job;

/* Free an admission built by admission_from_json (its secrets wiped first). */
static void admission_wipe(cluster_admission **a)
{
	if (*a == NULL)
		return;
	store_free_record((*a)->master);
	free((*a)->endpoint);
	OPENSSL_cleanse(*a, sizeof(**a));
	free(*a);
	*a = NULL;
}

/* rec_free of a cl_job. */
static void cl_job_free(void *p)
{
	cl_job *j = p;
	store_free_record(j->cand);
	if (j->own_adm)
		admission_wipe(&j->adm);
	else
		cluster_admission_free(&j->adm);
	tbuf_free(&j->err);
	free(j);
}

/* A new job attached to r (freed with the request). */
static cl_job *cl_job_new(admin_req *r)
{
	cl_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		abort();
	tbuf_init(&j->err);
	r->rec = j;
	r->rec_free = cl_job_free;
	return j;
}

/* 0 when the node runs a control plane; else replies 503 and returns -1. */
static int need_cluster(admin_req *r)
{
	if (r->a->env.cl != NULL)
		return 0;
	admin_error(r, 503, "the distributed-domain control plane is not running on this node");
	return -1;
}

/* The reply of a failed cluster call: its message, 409 (refused); logged in
 * warning.log unless the caller logged it elsewhere (what = NULL). */
static void reply_refused(admin_req *r, cl_job *j, const char *what)
{
	const char *msg = j->err.len > 0 ? tbuf_cstr(&j->err) : "refused";
	if (what != NULL)
		tlog(TLOG_WARNING, "%s - %s refused: %s", r->actor, what, msg);
	admin_error(r, 409, "%s", msg);
}

/* ---- Node JSON ---- */

static const aj_field node_fields[] = {
	{ "name", AJ_STR }, { "curve_public", AJ_STR }, { "address", AJ_STR }, { "master", AJ_BOOL },
	{ "fingerprint", AJ_STR }, { "admin_port", AJ_UINT }, { "cluster_port", AJ_UINT },
	{ "submission_port", AJ_UINT }, { "imap_port", AJ_UINT }, { "pop3_port", AJ_UINT },
	{ "http_port", AJ_UINT }, { "joined", AJ_UINT }, { NULL, AJ_STR },
};

/* A Node record as JSON: what a node tells the master about itself, and what the master
 * answers about itself. Never the credential hash. */
static json_t *node_json(const Tern__Node *n)
{
	char key[CURVE_KEY_B64_LEN + 4] = "";
	if (n->curve_public.len == CURVE_KEY_LEN)
		EVP_EncodeBlock((unsigned char *)key, n->curve_public.data, CURVE_KEY_LEN);
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "name", n->name, "curve_public", key, "address", n->address,
			 "master", n->master, "fingerprint", n->fingerprint,
			 "admin_port", (json_int_t)n->admin_port, "cluster_port", (json_int_t)n->cluster_port,
			 "submission_port", (json_int_t)n->submission_port,
			 "imap_port", (json_int_t)n->imap_port, "pop3_port", (json_int_t)n->pop3_port,
			 "http_port", (json_int_t)n->http_port, "joined", (json_int_t)n->joined);
}

/* Decode the base64 of a 32-byte CURVE key. 0 ok, -1 anything else. */
static int curve_key_decode(const char *s, uint8_t out[CURVE_KEY_LEN])
{
	unsigned char buf[CURVE_KEY_B64_LEN];
	if (strlen(s) != CURVE_KEY_B64_LEN || s[CURVE_KEY_B64_LEN - 1] != '=' ||
	    s[CURVE_KEY_B64_LEN - 2] == '=')
		return -1;
	if (EVP_DecodeBlock(buf, (const unsigned char *)s, CURVE_KEY_B64_LEN) != CURVE_KEY_LEN + 1)
		return -1;
	memcpy(out, buf, CURVE_KEY_LEN);
	return 0;
}

/* Node names go into paths and log lines: a host-name-like word. */
static int node_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > NODE_NAME_MAX)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_'))
			return 0;
	return 1;
}

/* A port field (absent = 0): at most 65535. */
static int node_port(const json_t *o, const char *name, uint32_t *port_r, tbuf *why)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL)
		return 0;
	if (json_integer_value(v) > 65535) {
		tbuf_appendf(why, "field \"%s\" must be a port (0..65535)", name);
		return -1;
	}
	*port_r = (uint32_t)json_integer_value(v);
	return 0;
}

/* A Node record from its JSON (strict: only node_fields; name, curve_public, address
 * and fingerprint required). 0 with *n_r (store_free_record), or -1 with why. */
static int node_from_json(const json_t *o, Tern__Node **n_r, tbuf *why)
{
	*n_r = NULL;
	if (admin_json_check(o, node_fields, why) < 0)
		return -1;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *key = json_string_value(json_object_get(o, "curve_public"));
	const char *address = json_string_value(json_object_get(o, "address"));
	const char *fp = json_string_value(json_object_get(o, "fingerprint"));
	if (name == NULL || key == NULL || address == NULL || fp == NULL) {
		tbuf_append_str(why, "a node needs \"name\", \"curve_public\", \"address\" and \"fingerprint\"");
		return -1;
	}
	if (!node_name_ok(name)) {
		tbuf_appendf(why, "a node name has 1 to %d letters, digits, '.', '-' or '_'", NODE_NAME_MAX);
		return -1;
	}
	for (const char *p = address; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			tbuf_append_str(why, "\"address\" must be a host name or IP address");
			return -1;
		}
	}
	Tern__Node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		abort();
	tern__node__init(n);
	n->curve_public.data = malloc(CURVE_KEY_LEN);
	if (n->curve_public.data == NULL)
		abort();
	n->curve_public.len = CURVE_KEY_LEN;
	if (curve_key_decode(key, n->curve_public.data) < 0) {
		tbuf_append_str(why, "\"curve_public\" must be the base64 of a 32-byte key");
		store_free_record(n);
		return -1;
	}
	aj_set_str(&n->name, name);
	aj_set_str(&n->address, address);
	aj_set_str(&n->fingerprint, fp);
	n->master = json_is_true(json_object_get(o, "master"));
	n->joined = (uint64_t)json_integer_value(json_object_get(o, "joined"));
	if (node_port(o, "admin_port", &n->admin_port, why) < 0 ||
	    node_port(o, "cluster_port", &n->cluster_port, why) < 0 ||
	    node_port(o, "submission_port", &n->submission_port, why) < 0 ||
	    node_port(o, "imap_port", &n->imap_port, why) < 0 ||
	    node_port(o, "pop3_port", &n->pop3_port, why) < 0 ||
	    node_port(o, "http_port", &n->http_port, why) < 0) {
		store_free_record(n);
		return -1;
	}
	*n_r = n;
	return 0;
}

/* ---- status and identity ---- */

/* GET /api/v1/cluster: every node of the domain, this one included. */
void adm_cluster(admin_req *r)
{
	cluster *cl = r->a->env.cl;
	if (cl == NULL) {
		json_t *j = json_pack("{s:s, s:[{s:s, s:s, s:s, s:s, s:i, s:i, s:n}]}", "role", "standalone",
				      "nodes", "name", r->a->env.node_name, "role", "standalone",
				      "status", "this server", "address", "", "seq", 0, "lag", 0, "last_seen");
		admin_reply_json(r, 200, j);
		return;
	}
	cluster_node_status *list = NULL;
	size_t n = 0;
	if (cluster_status(cl, &list, &n) < 0) {
		admin_error(r, 500, "cannot read the cluster status");
		return;
	}
	json_t *nodes = json_array();
	for (size_t i = 0; i < n; i++) {
		const cluster_node_status *s = &list[i];
		json_array_append_new(nodes, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}",
						       "name", s->name, "role", s->role, "status", s->status,
						       "address", s->address, "seq", (json_int_t)s->seq,
						       "lag", (json_int_t)s->lag, "last_seen",
						       s->last_seen > 0 ? json_integer(s->last_seen) : json_null()));
	}
	free(list);
	admin_reply_json(r, 200, json_pack("{s:s, s:o}", "role", cluster_role_name(cluster_get_role(cl)),
					   "nodes", nodes));
}

/* GET /api/v1/cluster/identity: the Node JSON this node gives a master when it joins. */
void adm_cluster_identity(admin_req *r)
{
	if (need_cluster(r) < 0)
		return;
	Tern__Node *n = NULL;
	if (cluster_identity(r->a->env.cl, &n) < 0) {
		admin_error(r, 500, "cannot read this node's cluster identity");
		return;
	}
	json_t *j = node_json(n);
	store_free_record(n);
	admin_reply_json(r, 200, j);
}

/* ---- master side of a join ---- */

/* Auth pool: the master side of the join. */
static void admit_job(void *arg)
{
	admin_req *r = arg;
	cl_job *j = r->rec;
	j->rc = cluster_admit(r->a->env.cl, j->cand, &j->adm, &j->err);
}

/* I/O thread: the answer (credential and secret in hex), or the refusal (security.log). */
static void admit_done(admin_req *r)
{
	cl_job *j = r->rec;
	if (j->rc < 0 || j->adm == NULL) {
		tlog(TLOG_SECURITY, "Refused cluster join of node %s from %s by %s: %s", j->cand->name, r->ip,
		     r->actor, j->err.len ? tbuf_cstr(&j->err) : "refused");
		reply_refused(r, j, NULL);
		return;
	}
	char cred[2 * sizeof(j->adm->credential) + 1], secret[2 * sizeof(j->adm->secret) + 1];
	tern_hex(j->adm->credential, sizeof(j->adm->credential), cred);
	tern_hex(j->adm->secret, sizeof(j->adm->secret), secret);
	json_t *ans = json_pack("{s:o, s:s, s:s, s:s}", "master", node_json(j->adm->master),
				"endpoint", j->adm->endpoint ? j->adm->endpoint : "", "credential", cred,
				"secret", secret);
	OPENSSL_cleanse(cred, sizeof(cred));
	OPENSSL_cleanse(secret, sizeof(secret));
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Name", j->cand->name);
	admin_log_kv(&log, "Address", j->cand->address);
	admin_log_kv(&log, "Fingerprint", j->cand->fingerprint);
	admin_config_log(r, "insert Node set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	tlog(TLOG_OPERATIONS, "Node %s (%s) joined the distributed domain, admitted by %s from %s",
	     j->cand->name, j->cand->address, r->actor, r->ip);
	admin_reply_json(r, 201, ans);
}

/* POST /api/v1/cluster/nodes: admit the node whose identity is the body (the route
 * needs whole-server read/write rights; refusals are logged in security.log). */
void adm_cluster_admit(admin_req *r)
{
	if (need_cluster(r) < 0)
		return;
	tbuf why = TBUF_INIT;
	json_t *body = NULL;
	const tbuf *b = &r->req->body;
	if (admin_json_decode(b->data, b->len, node_fields, 0, &body, &why) < 0) {
		admin_error(r, 400, "%s", tbuf_cstr(&why));
		tbuf_free(&why);
		return;
	}
	cl_job *j = cl_job_new(r);
	int rc = node_from_json(body, &j->cand, &why);
	json_decref(body);
	if (rc < 0) {
		admin_error(r, 400, "%s", tbuf_cstr(&why));
		tbuf_free(&why);
		return;
	}
	tbuf_free(&why);
	admin_pool(r, admit_job, admit_done);
}

/* ---- slave side: join and leave ---- */

static const aj_field join_fields[] = {
	{ "master", AJ_OBJECT }, { "endpoint", AJ_STR }, { "credential", AJ_STR }, { "secret", AJ_STR },
	{ NULL, AJ_STR },
};

/* The master's answer (the body of POST /api/v1/cluster/join) as an admission.
 * 0 with *a_r, or -1 with why. */
static int admission_from_json(const json_t *o, cluster_admission **a_r, tbuf *why)
{
	const char *endpoint = json_string_value(json_object_get(o, "endpoint"));
	const char *cred = json_string_value(json_object_get(o, "credential"));
	const char *secret = json_string_value(json_object_get(o, "secret"));
	const json_t *master = json_object_get(o, "master");
	if (master == NULL || endpoint == NULL || cred == NULL || secret == NULL) {
		tbuf_append_str(why, "the join needs the master's answer: \"master\", \"endpoint\", "
			       "\"credential\" and \"secret\"");
		return -1;
	}
	cluster_admission *a = calloc(1, sizeof(*a));
	if (a == NULL)
		abort();
	if (strlen(cred) != 2 * sizeof(a->credential) || strlen(secret) != 2 * sizeof(a->secret) ||
	    tern_unhex(cred, a->credential, sizeof(a->credential)) < 0 ||
	    tern_unhex(secret, a->secret, sizeof(a->secret)) < 0) {
		tbuf_append_str(why, "\"credential\" and \"secret\" must be 32 bytes in hex");
		admission_wipe(&a);
		return -1;
	}
	if (strncmp(endpoint, "tcp://", 6) != 0 || strlen(endpoint) > 300) {
		tbuf_append_str(why, "\"endpoint\" must be tcp://HOST:PORT");
		admission_wipe(&a);
		return -1;
	}
	a->endpoint = strdup(endpoint);
	if (a->endpoint == NULL)
		abort();
	if (node_from_json(master, &a->master, why) < 0) {
		admission_wipe(&a);
		return -1;
	}
	*a_r = a;
	return 0;
}

/* Auth pool: join the master (store writes, then the connection). */
static void join_job(void *arg)
{
	admin_req *r = arg;
	cl_job *j = r->rec;
	j->rc = cluster_join(r->a->env.cl, j->adm, &j->err);
}

/* I/O thread: config.log and operations.log, then the answer. */
static void join_done(admin_req *r)
{
	cl_job *j = r->rec;
	if (j->rc < 0) {
		reply_refused(r, j, "cluster join");
		return;
	}
	tbuf log = TBUF_INIT;
	admin_log_kv(&log, "Role", "slave");
	admin_log_kv(&log, "Master", j->adm->master->name);
	admin_log_kv(&log, "Endpoint", j->adm->endpoint);
	admin_config_log(r, "update Cluster set %s", tbuf_cstr(&log));
	tbuf_free(&log);
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	tlog(TLOG_OPERATIONS, "Joined the distributed domain of master %s (%s)", j->adm->master->name,
	     j->adm->endpoint);
	admin_reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "role", "slave", "master",
					   j->adm->master->name, "endpoint", j->adm->endpoint));
}

/* POST /api/v1/cluster/join: join the master whose answer to admit is the body. */
void adm_cluster_join(admin_req *r)
{
	if (need_cluster(r) < 0 || admin_parse_body(r, join_fields, 0) < 0)
		return;
	cl_job *j = cl_job_new(r);
	tbuf why = TBUF_INIT;
	if (admission_from_json(r->body, &j->adm, &why) < 0) {
		admin_error(r, 400, "%s", tbuf_cstr(&why));
		tbuf_free(&why);
		return;
	}
	tbuf_free(&why);
	j->own_adm = 1;
	/* the body holds the credential and the secret: no copy outlives the need */
	json_object_clear(r->body);
	admin_pool(r, join_job, join_done);
}

/* Auth pool: tell the master (bounded by request_timeout), then standalone. */
static void leave_job(void *arg)
{
	admin_req *r = arg;
	cl_job *j = r->rec;
	j->rc = cluster_leave(r->a->env.cl, &j->err);
}

/* I/O thread: log and answer the leave. */
static void leave_done(admin_req *r)
{
	cl_job *j = r->rec;
	if (j->rc < 0) {
		reply_refused(r, j, "cluster leave");
		return;
	}
	admin_config_log(r, "update Cluster set Role='standalone'");
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	tlog(TLOG_OPERATIONS, "Left the distributed domain: this node is standalone");
	admin_reply_json(r, 200, json_pack("{s:s}", "role", "standalone"));
}

/* POST /api/v1/cluster/leave (on a slave): back to standalone. */
void adm_cluster_leave(admin_req *r)
{
	if (need_cluster(r) < 0)
		return;
	cl_job_new(r);
	admin_pool(r, leave_job, leave_done);
}

/* ---- remove ---- */

/* Auth pool: revoke the node (refused while users are homed there). */
static void remove_job(void *arg)
{
	admin_req *r = arg;
	cl_job *j = r->rec;
	j->rc = cluster_remove(r->a->env.cl, j->node, &j->err);
}

/* I/O thread: log and answer the removal. */
static void remove_done(admin_req *r)
{
	cl_job *j = r->rec;
	if (j->rc < 0) {
		reply_refused(r, j, "cluster remove");
		return;
	}
	admin_config_log(r, "delete Node where Name='%s'", j->node);
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	tlog(TLOG_OPERATIONS, "Node %s removed from the distributed domain by %s", j->node, r->actor);
	admin_reply_empty(r);
}

/* DELETE /api/v1/cluster/nodes/NAME (on the master): revoke a node. */
void adm_cluster_remove(admin_req *r)
{
	if (need_cluster(r) < 0)
		return;
	if (!node_name_ok(r->arg)) {
		admin_error(r, 400, "no such node: a node name has 1 to %d letters, digits, '.', '-' or '_'",
			    NODE_NAME_MAX);
		return;
	}
	cl_job *j = cl_job_new(r);
	memcpy(j->node, r->arg, strlen(r->arg) + 1);   /* node_name_ok: at most NODE_NAME_MAX */
	admin_pool(r, remove_job, remove_done);
}
