/* cluster_bulk.c - the bulk channel of migrations (cluster.h, DESIGN.md §5-6): bulk data
 * never waits behind control traffic, so it has its own port, thread and ZeroMQ context.
 *
 * Server: every node of a distributed domain runs a bulk thread with a ROUTER bound on
 * [cluster] listen at bulk_port + port base (CURVE server with this node's key, frames of
 * at most [cluster] max_frame bytes) and a ZAP handler in the same context that admits
 * registered node keys only (cluster_zap.c, the control port's rule); the peer is named
 * by its ZAP User-Id, never by anything in the frame. Requests go to the installed
 * handler one at a time on that thread.
 *
 * Client: a DEALER in a context of its own (a cluster_bulk is used by one thread), CURVE
 * client with this node's key pair and the peer's public key from its Node record.
 *
 * A frame is [8-byte big-endian tag][payload]; a reply carries its request's tag. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>
#include "cluster_private.h"

#define BULK_TAG_LEN 8
#define BULK_TICK_MS 100              /* how soon the thread sees a stop */
#define BULK_SEND_TIMEOUT_MS 5000     /* a reply to a peer whose queue stays full is dropped */

struct cluster_bulk {
	void *ctx, *sock;
	char peer[64];
	size_t max_frame;
};

/* "tcp://HOST:PORT", brackets around an IPv6 literal; -1 when it does not fit. */
static int make_endpoint(const char *host, unsigned port, char *out, size_t n, int *ipv6_r)
{
	int w;

	*ipv6_r = strchr(host, ':') != NULL;
	if (*ipv6_r && host[0] != '[')
		w = snprintf(out, n, "tcp://[%s]:%u", host, port);
	else
		w = snprintf(out, n, "tcp://%s:%u", host, port);
	return w > 0 && (size_t)w < n && port > 0 && port <= 65535 ? 0 : -1;
}

/* The locks of the bulk channel (at cluster_open, before anything can fail). */
void cl_bulk_init(cluster *cl)
{
	pthread_mutex_init(&cl->bulk_mu, NULL);
	pthread_mutex_init(&cl->bulk_call_mu, NULL);
}

/* After cl_bulk_stop: the locks. */
void cl_bulk_free(cluster *cl)
{
	pthread_mutex_destroy(&cl->bulk_mu);
	pthread_mutex_destroy(&cl->bulk_call_mu);
}

/* Swapped under bulk_call_mu, which a running call holds: NULL returns only after it. */
void cluster_bulk_set_handler(cluster *cl, cluster_bulk_fn fn, void *arg)
{
	pthread_mutex_lock(&cl->bulk_call_mu);     /* waits for a running call */
	cl->bulk_fn = fn;
	cl->bulk_arg = fn != NULL ? arg : NULL;
	pthread_mutex_unlock(&cl->bulk_call_mu);
}

/* ---- the server (bulk thread) ---- */

/* The bulk thread's own warning.log budget (the cluster thread has another). */
static int bulk_warn_ok(cluster *cl)
{
	return cl_budget_ok(&cl->bulk_warn_window_ms, &cl->bulk_warn_count);
}

/* The handler's answer to one request of peer, sent back to routing id rid. */
static void answer(cluster *cl, const zmq_msg_t *rid, const char *peer, const uint8_t *data, size_t n)
{
	tbuf rep = TBUF_INIT;
	zmq_msg_t out;

	pthread_mutex_lock(&cl->bulk_call_mu);
	if (cl->bulk_fn != NULL)
		cl->bulk_fn(cl->bulk_arg, peer, data + BULK_TAG_LEN, n - BULK_TAG_LEN, &rep);
	pthread_mutex_unlock(&cl->bulk_call_mu);
	if (rep.len + BULK_TAG_LEN > (size_t)cl->conf->cluster_max_frame) {
		tlog(TLOG_ERROR, "cluster: a bulk reply of %zu bytes to node %s exceeds [cluster] max_frame; "
		     "sent empty", rep.len, peer);
		tbuf_reset(&rep);
	}
	if (zmq_msg_init_size(&out, rep.len + BULK_TAG_LEN) != 0)
		abort();
	memcpy(zmq_msg_data(&out), data, BULK_TAG_LEN);
	if (rep.len > 0)
		memcpy((uint8_t *)zmq_msg_data(&out) + BULK_TAG_LEN, rep.data, rep.len);
	tbuf_free(&rep);
	if (zmq_send(cl->bulk_router, zmq_msg_data((zmq_msg_t *)rid), zmq_msg_size((zmq_msg_t *)rid),
		     ZMQ_SNDMORE) < 0 || zmq_msg_send(&out, cl->bulk_router, 0) < 0) {
		if (bulk_warn_ok(cl))
			tlog(TLOG_WARNING, "cluster: a bulk reply to node %s could not be sent: %s", peer,
			     zmq_strerror(zmq_errno()));
	}
	zmq_msg_close(&out);
}

/* One request from the ROUTER: [routing id][tag + payload]. */
static void serve_one(cluster *cl)
{
	zmq_msg_t rid, body;
	char peer[64];

	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&rid, cl->bulk_router, ZMQ_DONTWAIT) < 0)
		goto out;
	if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, cl->bulk_router, ZMQ_DONTWAIT) < 0)
		goto out;
	int multi = zmq_msg_more(&body);
	while (multi) {      /* drain the extra parts: a bulk frame is one part */
		zmq_msg_t extra;

		zmq_msg_init(&extra);
		int r = zmq_msg_recv(&extra, cl->bulk_router, ZMQ_DONTWAIT);
		int more = r >= 0 && zmq_msg_more(&extra);
		zmq_msg_close(&extra);
		if (!more)
			break;
	}
	const char *uid = zmq_msg_gets(&body, "User-Id");
	if (uid == NULL || !cluster_valid_node_name(uid))
		goto out;
	snprintf(peer, sizeof(peer), "%s", uid);
	if (multi || zmq_msg_size(&body) < BULK_TAG_LEN) {
		if (bulk_warn_ok(cl))
			tlog(TLOG_WARNING, "cluster: invalid bulk frame from node %s: %s", peer,
			     multi ? "multi-part frame" : "shorter than its tag");
		goto out;
	}
	if (!cl_node_registered(cl, peer)) {      /* removed after its handshake: served no more */
		if (bulk_warn_ok(cl))
			tlog(TLOG_WARNING, "cluster: bulk request from node %s, which is no longer part of the "
			     "distributed domain; dropped", peer);
		goto out;
	}
	answer(cl, &rid, peer, zmq_msg_data(&body), zmq_msg_size(&body));
out:
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
}

/* The bulk thread: ZAP requests and bulk requests until cl_bulk_stop; it owns both
 * sockets while it runs and closes them when it ends. */
static void *bulk_main(void *arg)
{
	cluster *cl = arg;

	while (!atomic_load(&cl->bulk_quit)) {
		zmq_pollitem_t items[2] = {
			{ cl->bulk_zap, 0, ZMQ_POLLIN, 0 },
			{ cl->bulk_router, 0, ZMQ_POLLIN, 0 },
		};
		int rc = zmq_poll(items, 2, BULK_TICK_MS);

		if (rc < 0) {
			if (zmq_errno() != EINTR)
				tlog(TLOG_ERROR, "cluster: bulk zmq_poll: %s", zmq_strerror(zmq_errno()));
			continue;
		}
		if (items[0].revents & ZMQ_POLLIN)
			cl_zap_serve(cl, cl->bulk_zap, "bulk ", &cl->bulk_warn_window_ms, &cl->bulk_warn_count);
		if (items[1].revents & ZMQ_POLLIN)
			serve_one(cl);
	}
	zmq_close(cl->bulk_router);
	zmq_close(cl->bulk_zap);
	cl->bulk_router = cl->bulk_zap = NULL;
	return NULL;
}

/* Close what a failed start opened (bulk_mu held). */
static void start_failed(cluster *cl)
{
	if (cl->bulk_router != NULL)
		zmq_close(cl->bulk_router);
	if (cl->bulk_zap != NULL)
		zmq_close(cl->bulk_zap);
	if (cl->bulk_ctx != NULL)
		zmq_ctx_term(cl->bulk_ctx);
	cl->bulk_router = cl->bulk_zap = cl->bulk_ctx = NULL;
}

/* Bind in the caller's thread, so that a port in use is reported to it; then hand the
 * sockets to the bulk thread (thread creation is the memory barrier zmq asks for). */
int cl_bulk_start(cluster *cl, tbuf *err)
{
	const char *l = cl->conf->cluster_listen != NULL && cl->conf->cluster_listen[0] ? cl->conf->cluster_listen : "*";
	unsigned port = (unsigned)(cl->conf->cluster_bulk_port + cl->conf->port_base);
	int64_t maxmsg = cl->conf->cluster_max_frame;
	int one = 1, zero = 0, sndtimeo = BULK_SEND_TIMEOUT_MS, ipv6;
	char ep[320];

	pthread_mutex_lock(&cl->bulk_mu);
	if (cl->bulk_running) {
		pthread_mutex_unlock(&cl->bulk_mu);
		return 0;
	}
	if (make_endpoint(l, port, ep, sizeof(ep), &ipv6) < 0) {
		tbuf_append_str(err, "bad [cluster] listen or bulk_port");
		pthread_mutex_unlock(&cl->bulk_mu);
		return -1;
	}
	cl->bulk_ctx = zmq_ctx_new();
	if (cl->bulk_ctx == NULL) {
		tbuf_append_str(err, "cannot make the bulk channel's ZeroMQ context");
		pthread_mutex_unlock(&cl->bulk_mu);
		return -1;
	}
	cl->bulk_zap = zmq_socket(cl->bulk_ctx, ZMQ_REP);
	if (cl->bulk_zap == NULL || zmq_setsockopt(cl->bulk_zap, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_bind(cl->bulk_zap, CL_ZAP_ENDPOINT) < 0) {
		tbuf_appendf(err, "cannot start the bulk channel's ZAP handler: %s", zmq_strerror(zmq_errno()));
		start_failed(cl);
		pthread_mutex_unlock(&cl->bulk_mu);
		return -1;
	}
	cl->bulk_router = zmq_socket(cl->bulk_ctx, ZMQ_ROUTER);
	if (cl->bulk_router == NULL ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_CURVE_SECRETKEY, cl->sec, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_ZAP_DOMAIN, "tern-bulk", 9) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo)) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(cl->bulk_router, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0 ||
	    zmq_bind(cl->bulk_router, ep) < 0) {
		tbuf_appendf(err, "cannot bind the bulk port %s: %s", ep, zmq_strerror(zmq_errno()));
		start_failed(cl);
		pthread_mutex_unlock(&cl->bulk_mu);
		return -1;
	}
	atomic_store(&cl->bulk_quit, 0);
	if (pthread_create(&cl->bulk_thread, NULL, bulk_main, cl) != 0) {
		tbuf_append_str(err, "cannot start the bulk thread");
		start_failed(cl);
		pthread_mutex_unlock(&cl->bulk_mu);
		return -1;
	}
	cl->bulk_running = 1;
	pthread_mutex_unlock(&cl->bulk_mu);
	tlog(TLOG_OPERATIONS, "cluster: bulk channel of node %s listening on %s", cl->name, ep);
	return 0;
}

/* The thread sees bulk_quit within BULK_TICK_MS (after a running handler call). */
void cl_bulk_stop(cluster *cl)
{
	pthread_mutex_lock(&cl->bulk_mu);
	if (cl->bulk_running) {
		atomic_store(&cl->bulk_quit, 1);
		pthread_join(cl->bulk_thread, NULL);    /* closes its sockets */
		zmq_ctx_term(cl->bulk_ctx);
		cl->bulk_ctx = NULL;
		cl->bulk_running = 0;
		tlog(TLOG_OPERATIONS, "cluster: bulk channel of node %s closed", cl->name);
	}
	pthread_mutex_unlock(&cl->bulk_mu);
}

/* ---- the client ---- */

/* Linger 0: unsent requests are dropped at once. */
void cluster_bulk_close(cluster_bulk **bp)
{
	cluster_bulk *b = *bp;

	if (b == NULL)
		return;
	if (b->sock != NULL)
		zmq_close(b->sock);
	if (b->ctx != NULL)
		zmq_ctx_term(b->ctx);
	free(b);
	*bp = NULL;
}

/* A DEALER in a context of its own (the caller's thread uses it alone). Without
 * ZMQ_IMMEDIATE requests queue until the CURVE handshake completes; a refused handshake
 * therefore shows as a reply that never comes (cluster_bulk_recv times out). */
int cluster_bulk_open(cluster *cl, const char *node, cluster_bulk **b_r, tbuf *err)
{
	Tern__Node *n = NULL;
	int zero = 0, ivl = 100, ivl_max = 2000, ipv6 = 0;
	int64_t maxmsg = cl->conf->cluster_max_frame;
	char ep[320];

	*b_r = NULL;
	if (!cluster_valid_node_name(node)) {
		tbuf_append_str(err, "invalid node name");
		return -1;
	}
	if (cluster_get_role(cl) == CLUSTER_STANDALONE) {
		tbuf_append_str(err, "this node is not part of a distributed domain");
		return -1;
	}
	if (strcasecmp(node, cl->name) == 0) {
		tbuf_appendf(err, "node %s is this node", node);
		return -1;
	}
	int rc = store_node_get(cl->st, node, &n);
	if (rc != STORE_OK) {
		tbuf_appendf(err, rc == STORE_ENOTFOUND ? "no node '%s' in this domain" : "cannot read node '%s'", node);
		return -1;
	}
	unsigned port = n->bulk_port != 0 ? n->bulk_port : n->cluster_port + 1;
	if (n->curve_public.len != CL_KEY_LEN || n->address == NULL || n->address[0] == '\0' ||
	    make_endpoint(n->address, port, ep, sizeof(ep), &ipv6) < 0) {
		tbuf_appendf(err, "the record of node '%s' has no usable key, address or bulk port", node);
		store_free_record(n);
		return -1;
	}
	cluster_bulk *b = calloc(1, sizeof(*b));
	if (b == NULL)
		abort();
	snprintf(b->peer, sizeof(b->peer), "%s", node);
	b->max_frame = (size_t)cl->conf->cluster_max_frame;
	b->ctx = zmq_ctx_new();
	b->sock = b->ctx != NULL ? zmq_socket(b->ctx, ZMQ_DEALER) : NULL;
	if (b->sock == NULL ||
	    zmq_setsockopt(b->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_CURVE_SERVERKEY, n->curve_public.data, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_CURVE_PUBLICKEY, cl->pub, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_CURVE_SECRETKEY, cl->sec, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(b->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0 ||
	    zmq_connect(b->sock, ep) < 0) {
		tbuf_appendf(err, "cannot connect to the bulk port of node %s at %s: %s", node, ep,
			     zmq_strerror(zmq_errno()));
		store_free_record(n);
		cluster_bulk_close(&b);
		return -1;
	}
	store_free_record(n);
	*b_r = b;
	return 0;
}

/* One part: tag + request, never blocking (the queue holds far more than a window). */
int cluster_bulk_send(cluster_bulk *b, uint64_t tag, const void *req, size_t n, tbuf *err)
{
	zmq_msg_t m;

	if (n + BULK_TAG_LEN > b->max_frame) {
		tbuf_appendf(err, "a bulk request of %zu bytes exceeds [cluster] max_frame", n);
		return -1;
	}
	if (zmq_msg_init_size(&m, n + BULK_TAG_LEN) != 0)
		abort();
	tern_be64_put(zmq_msg_data(&m), tag);
	if (n > 0)
		memcpy((uint8_t *)zmq_msg_data(&m) + BULK_TAG_LEN, req, n);
	if (zmq_msg_send(&m, b->sock, ZMQ_DONTWAIT) < 0) {
		tbuf_appendf(err, "cannot send to the bulk port of node %s: %s", b->peer,
			     zmq_errno() == EAGAIN ? "too many requests in flight" : zmq_strerror(zmq_errno()));
		zmq_msg_close(&m);
		return -1;
	}
	return 0;
}

/* zmq_poll up to timeout_ms (again after EINTR with what is left), then one reply. */
int cluster_bulk_recv(cluster_bulk *b, uint64_t *tag_r, tbuf *reply, int timeout_ms, tbuf *err)
{
	int64_t until = tern_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	zmq_msg_t m;

	for (;;) {
		zmq_pollitem_t it = { b->sock, 0, ZMQ_POLLIN, 0 };
		int64_t left = until - tern_mono_ms();
		int rc = zmq_poll(&it, 1, left > 0 ? (long)left : 0);

		if (rc == 0)
			return 0;
		if (rc < 0 && zmq_errno() == EINTR)
			continue;
		if (rc < 0) {
			tbuf_appendf(err, "bulk poll: %s", zmq_strerror(zmq_errno()));
			return -1;
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, b->sock, ZMQ_DONTWAIT) >= 0)
			break;
		zmq_msg_close(&m);
		if (zmq_errno() != EAGAIN) {
			tbuf_appendf(err, "bulk receive: %s", zmq_strerror(zmq_errno()));
			return -1;
		}
	}
	int multi = zmq_msg_more(&m);
	size_t size = zmq_msg_size(&m);
	while (zmq_msg_more(&m)) {
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, b->sock, ZMQ_DONTWAIT) < 0)
			break;
	}
	if (multi || size < BULK_TAG_LEN) {
		zmq_msg_close(&m);
		tbuf_appendf(err, "invalid bulk reply from node %s (%s)", b->peer,
			     multi ? "multi-part" : "shorter than its tag");
		return -1;
	}
	*tag_r = tern_be64_get(zmq_msg_data(&m));
	tbuf_reset(reply);
	tbuf_append(reply, (const char *)zmq_msg_data(&m) + BULK_TAG_LEN, size - BULK_TAG_LEN);
	zmq_msg_close(&m);
	return 1;
}
