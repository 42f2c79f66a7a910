/* cluster_keys.c - this node's keys and identity: the CURVE key pair ("cluster/curve",
 * made at first start), the domain's shared secret DATA/ssl/secret.key (the same file
 * node/directory seals bind passwords with: exactly 32 bytes, 0600, in a 0700 dir), and
 * the Node record that describes this node to the others. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <zmq.h>
#include "cluster_private.h"

#define SECRET_FILE "ssl/secret.key"

static int secret_path(const char *data_dir, char *dir, size_t dn, char *path, size_t pn)
{
	int w1 = snprintf(dir, dn, "%s/ssl", data_dir);
	int w2 = snprintf(path, pn, "%s/%s", data_dir, SECRET_FILE);

	return w1 > 0 && (size_t)w1 < dn && w2 > 0 && (size_t)w2 < pn ? 0 : -1;
}

/* Write key to a private temporary file and rename it over path (atomic replace). */
static int secret_write(const char *dir, const char *path, const uint8_t key[CL_KEY_LEN], int replace)
{
	char tmp[4200];
	int rc = -1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	int w = snprintf(tmp, sizeof(tmp), "%s.cluster.%ld", path, (long)getpid());
	if (w < 0 || (size_t)w >= sizeof(tmp))
		return -1;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, key, CL_KEY_LEN) == CL_KEY_LEN && fsync(fd) == 0)
		rc = 0;
	close(fd);
	if (rc == 0) {
		if (replace)
			rc = rename(tmp, path);
		else if (link(tmp, path) < 0 && errno != EEXIST)
			rc = -1;
	}
	unlink(tmp);
	return rc;
}

/* Read exactly CL_KEY_LEN bytes: 0 ok, 1 absent, -1 unreadable or wrong size. */
static int secret_read(const char *path, uint8_t key[CL_KEY_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint8_t extra;

	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	ssize_t n = read(fd, key, CL_KEY_LEN);
	ssize_t more = read(fd, &extra, 1);
	close(fd);
	return n == CL_KEY_LEN && more == 0 ? 0 : -1;
}

int cl_secret_load(const char *data_dir, uint8_t key[CL_KEY_LEN], tbuf *err)
{
	char dir[4200], path[4200];
	uint8_t fresh[CL_KEY_LEN];

	if (secret_path(data_dir, dir, sizeof(dir), path, sizeof(path)) < 0) {
		tbuf_append_str(err, "data directory path too long");
		return -1;
	}
	int rc = secret_read(path, key);
	if (rc == 1) {
		tern_random(fresh, sizeof(fresh));
		rc = secret_write(dir, path, fresh, 0) == 0 ? secret_read(path, key) : -1;
		OPENSSL_cleanse(fresh, sizeof(fresh));
	}
	if (rc != 0) {
		tbuf_appendf(err, "the shared secret DATA/%s cannot be read or made", SECRET_FILE);
		return -1;
	}
	return 0;
}

int cl_secret_store(const char *data_dir, const uint8_t key[CL_KEY_LEN], tbuf *err)
{
	char dir[4200], path[4200];

	if (secret_path(data_dir, dir, sizeof(dir), path, sizeof(path)) < 0 ||
	    secret_write(dir, path, key, 1) < 0) {
		tbuf_appendf(err, "cannot write the shared secret DATA/%s: %s", SECRET_FILE, strerror(errno));
		return -1;
	}
	return 0;
}

/* The CURVE key pair of this node, made and stored at first start. */
int cl_curve_load(cluster *cl, char **error_r)
{
	Tern__CurveKeys *k = NULL;
	int rc = store_curve_keys_get(cl->st, &k);

	if (rc == STORE_OK && k->public_key.len == CL_KEY_LEN && k->secret_key.len == CL_KEY_LEN) {
		memcpy(cl->pub, k->public_key.data, CL_KEY_LEN);
		memcpy(cl->sec, k->secret_key.data, CL_KEY_LEN);
		store_free_record(k);
		return 0;
	}
	store_free_record(k);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		*error_r = strdup("cluster: cannot read the CURVE key pair (cluster/curve)");
		return -1;
	}
	char zpub[41], zsec[41];
	Tern__CurveKeys nk = TERN__CURVE_KEYS__INIT;
	store_sync_result res;

	if (zmq_curve_keypair(zpub, zsec) != 0 || zmq_z85_decode(cl->pub, zpub) == NULL ||
	    zmq_z85_decode(cl->sec, zsec) == NULL) {
		*error_r = strdup("cluster: cannot make a CURVE key pair (libzmq without CURVE?)");
		return -1;
	}
	OPENSSL_cleanse(zsec, sizeof(zsec));
	nk.public_key.data = cl->pub;
	nk.public_key.len = CL_KEY_LEN;
	nk.secret_key.data = cl->sec;
	nk.secret_key.len = CL_KEY_LEN;
	if (store_curve_keys_put(cl->st, &nk, STORE_SYNC, &res) != STORE_OK) {
		tbuf e = TBUF_INIT;

		tbuf_appendf(&e, "cluster: cannot store the CURVE key pair: %s", res.error);
		*error_r = tbuf_steal(&e);
		return -1;
	}
	tlog(TLOG_OPERATIONS, "cluster: made the CURVE key pair of node %s", cl->name);
	return 0;
}

/* A service's actual port: its first listen address, else its default + port base. */
static uint32_t svc_port(const tern_conf *c, tern_service_id id)
{
	const tern_service_conf *s = &c->services[id];

	if (s->nlisten > 0)
		return s->listen[0].port;
	return (uint32_t)s->default_port + c->port_base;
}

static char *dup_or_empty(const char *s)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		abort();
	return d;
}

/* Fill n (initialised, empty) with this node's identity; every field malloc'd so that
 * store_free_record frees it. */
void cl_identity_fill(cluster *cl, Tern__Node *n)
{
	const tern_conf *c = cl->conf;
	const char *addr = c->cluster_address != NULL && c->cluster_address[0] ? c->cluster_address :
			   c->server_hostname != NULL && c->server_hostname[0] ? c->server_hostname : "127.0.0.1";

	n->name = dup_or_empty(cl->name);
	n->address = dup_or_empty(addr);
	n->fingerprint = dup_or_empty(cl->fingerprint);
	n->curve_public.data = malloc(CL_KEY_LEN);
	if (n->curve_public.data == NULL)
		abort();
	memcpy(n->curve_public.data, cl->pub, CL_KEY_LEN);
	n->curve_public.len = CL_KEY_LEN;
	n->admin_port = svc_port(c, TERN_SVC_admin);
	n->cluster_port = (uint32_t)c->cluster_port + c->port_base;
	n->bulk_port = (uint32_t)(c->cluster_bulk_port + c->port_base);
	n->submission_port = svc_port(c, TERN_SVC_submission);
	n->imap_port = svc_port(c, TERN_SVC_imap);
	n->pop3_port = svc_port(c, TERN_SVC_pop3);
	n->http_port = svc_port(c, TERN_SVC_https);
}

/* The slave's refusal of distributed-domain writes: where to make them instead. */
int cl_refusal_text(cluster *cl, const Tern__ClusterSelf *self, char *out, size_t n)
{
	Tern__Node *m = NULL;
	char where[320] = "";
	int w;

	if (store_node_get(cl->st, self->master_name, &m) == STORE_OK) {
		snprintf(where, sizeof(where), "%s:%u", m->address, m->admin_port);
		store_free_record(m);
	} else {
		const char *h = strncmp(self->master_endpoint, "tcp://", 6) == 0 ? self->master_endpoint + 6 :
				self->master_endpoint;
		snprintf(where, sizeof(where), "%s", h);
	}
	w = snprintf(out, n, "distributed-domain settings are changed on the master %s (%s)", self->master_name,
		     where);
	return w > 0 && (size_t)w < n ? 0 : -1;
}
