/* cluster_master.c - the master side of the control plane (cluster thread only): the
 * ROUTER socket with CURVE (its ZAP handler is cluster_zap.c) and the change stream to
 * every slave. A peer is known by its ZAP User-Id (its node name,
 * given by the ZAP handler from its key); the routing id only addresses the reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>
#include "cluster_private.h"

/* Resolve "tcp://LISTEN:PORT" from [cluster] listen and port + port base. */
static int bind_endpoint(cluster *cl, char *out, size_t n, int *ipv6_r)
{
	const char *l = cl->conf->cluster_listen != NULL && cl->conf->cluster_listen[0] ? cl->conf->cluster_listen : "*";
	unsigned port = (unsigned)cl->conf->cluster_port + cl->conf->port_base;
	int w;

	*ipv6_r = strchr(l, ':') != NULL;
	if (*ipv6_r && l[0] != '[')
		w = snprintf(out, n, "tcp://[%s]:%u", l, port);
	else
		w = snprintf(out, n, "tcp://%s:%u", l, port);
	return w > 0 && (size_t)w < n && port <= 65535 ? 0 : -1;
}

int cl_master_start(cluster *cl, char *err, size_t errn)
{
	char ep[320];
	int ipv6, one = 1, zero = 0;
	int64_t maxmsg = cl->conf->cluster_max_frame * 2;

	if (cl->router != NULL)
		return 0;
	if (bind_endpoint(cl, ep, sizeof(ep), &ipv6) < 0) {
		snprintf(err, errn, "bad [cluster] listen or port");
		return -1;
	}
	if (cl->zap == NULL) {
		cl->zap = zmq_socket(cl->zctx, ZMQ_REP);
		if (cl->zap == NULL || zmq_setsockopt(cl->zap, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
		    zmq_bind(cl->zap, CL_ZAP_ENDPOINT) < 0) {
			snprintf(err, errn, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
			cl_master_stop(cl);
			return -1;
		}
	}
	cl->router = zmq_socket(cl->zctx, ZMQ_ROUTER);
	if (cl->router == NULL ||
	    zmq_setsockopt(cl->router, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(cl->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(cl->router, ZMQ_CURVE_SECRETKEY, cl->sec, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(cl->router, ZMQ_ZAP_DOMAIN, "tern", 4) < 0 ||
	    zmq_setsockopt(cl->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(cl->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(cl->router, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0 ||
	    zmq_bind(cl->router, ep) < 0) {
		snprintf(err, errn, "cannot bind the cluster port %s: %s", ep, zmq_strerror(zmq_errno()));
		cl_master_stop(cl);
		return -1;
	}
	cl->next_heartbeat_ms = tern_mono_ms();
	cl->next_compact_ms = tern_mono_ms() + 60000;
	atomic_store(&cl->repl_dirty, 1);
	tlog(TLOG_OPERATIONS, "cluster: master %s listening on %s", cl->name, ep);
	return 0;
}

void cl_master_stop(cluster *cl)
{
	if (cl->router != NULL)
		zmq_close(cl->router);
	if (cl->zap != NULL)
		zmq_close(cl->zap);
	cl->router = cl->zap = NULL;
	pthread_mutex_lock(&cl->mu);
	free(cl->peers);
	cl->peers = NULL;
	cl->npeers = cl->cappeers = 0;
	pthread_mutex_unlock(&cl->mu);
}

cl_peer *cl_peer_find(cluster *cl, const char *name)
{
	for (size_t i = 0; i < cl->npeers; i++)
		if (strcasecmp(cl->peers[i].name, name) == 0)
			return &cl->peers[i];
	return NULL;
}

/* The peer of a node name, added when new (under cl->mu: status readers see the array). */
static cl_peer *peer_get(cluster *cl, const char *name)
{
	cl_peer *p = cl_peer_find(cl, name);

	if (p != NULL)
		return p;
	pthread_mutex_lock(&cl->mu);
	if (cl->npeers == cl->cappeers) {
		size_t cap = cl->cappeers ? cl->cappeers * 2 : 8;
		cl_peer *np = realloc(cl->peers, cap * sizeof(*np));
		if (np == NULL) {
			pthread_mutex_unlock(&cl->mu);
			return NULL;
		}
		cl->peers = np;
		cl->cappeers = cap;
	}
	p = &cl->peers[cl->npeers++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	pthread_mutex_unlock(&cl->mu);
	return p;
}

/* ---- sending ---- */

static int send_to(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e)
{
	return cl_send(cl, cl->router, p->rid, p->rid_len, e);
}

static void send_error(cluster *cl, const uint8_t *rid, size_t rid_len, uint64_t id,
		       Tern__Cluster__Error__Code code, const char *msg)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Error er = TERN__CLUSTER__ERROR__INIT;

	er.code = code;
	er.message = (char *)msg;
	e.id = id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_ERROR;
	e.error = &er;
	cl_send(cl, cl->router, rid, rid_len, &e);
}

/* Send the whole shared state in parts of at most half a frame each; the stream goes on
 * from the snapshot's seq once the slave acknowledges it. */
static int send_snapshot(cluster *cl, cl_peer *p)
{
	Tern__ChangeRecord *snap = NULL;
	size_t limit = (size_t)cl->conf->cluster_max_frame / 2, start = 0, size = 0;
	uint32_t part = 0;
	int rc = 0;

	if (store_repl_snapshot(cl->st, &snap) != STORE_OK) {
		tlog(TLOG_ERROR, "cluster: cannot take a snapshot for node %s", p->name);
		return -1;
	}
	for (size_t i = 0; i <= snap->n_ops && rc == 0; i++) {
		size_t sz = i < snap->n_ops ? tern__config_op__get_packed_size(snap->ops[i]) + 8 : 0;

		if (i < snap->n_ops && (size + sz <= limit || i == start)) {
			size += sz;
			continue;
		}
		Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
		Tern__Cluster__Snapshot s = TERN__CLUSTER__SNAPSHOT__INIT;

		s.epoch = snap->epoch;
		s.seq = snap->seq;
		s.part = part++;
		s.last = i == snap->n_ops;
		s.ops = snap->ops + start;
		s.n_ops = i - start;
		s.time = snap->time;
		e.id = cl_new_id(cl);
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_SNAPSHOT;
		e.snapshot = &s;
		rc = send_to(cl, p, &e);
		start = i;
		size = 0;
		if (s.last)
			break;
		i--;    /* the op that did not fit opens the next part */
	}
	if (rc == 0) {
		pthread_mutex_lock(&cl->mu);
		p->need_snapshot = 0;
		p->sent_seq = p->base_seq = snap->seq;
		p->unacked_since_ms = tern_mono_ms();
		pthread_mutex_unlock(&cl->mu);
		tlog(TLOG_OPERATIONS, "cluster: sent a snapshot (epoch %llu seq %llu, %zu rows) to node %s",
		     (unsigned long long)snap->epoch, (unsigned long long)snap->seq, snap->n_ops, p->name);
	}
	store_free_record(snap);
	return rc;
}

/* Send list[0..n) as Changes frames of at most half a frame each; 0 when all went. */
static int send_changes(cluster *cl, cl_peer *p, Tern__ChangeRecord **list, size_t n, uint64_t head)
{
	size_t limit = (size_t)cl->conf->cluster_max_frame / 2, start = 0, size = 0;

	for (size_t i = 0; i <= n; i++) {
		size_t sz = i < n ? tern__change_record__get_packed_size(list[i]) + 8 : 0;

		if (i < n && (size + sz <= limit || i == start)) {
			size += sz;
			continue;
		}
		Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
		Tern__Cluster__Changes c = TERN__CLUSTER__CHANGES__INIT;

		c.records = list + start;
		c.n_records = i - start;
		c.head_seq = head;
		e.id = cl_new_id(cl);
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_CHANGES;
		e.changes = &c;
		if (send_to(cl, p, &e) < 0)
			return -1;
		pthread_mutex_lock(&cl->mu);
		if (p->unacked_since_ms == 0)
			p->unacked_since_ms = tern_mono_ms();
		p->sent_seq = list[i - 1]->seq;
		pthread_mutex_unlock(&cl->mu);
		start = i;
		size = 0;
		if (i < n)
			i--;    /* the record that did not fit opens the next frame */
	}
	return 0;
}

/* Stream what each slave has not been sent yet, within its window. */
void cl_master_pump(cluster *cl)
{
	uint64_t epoch = 0, head = 0;

	if (store_repl_state(cl->st, &epoch, &head) != STORE_OK || epoch == 0)
		return;
	for (size_t i = 0; i < cl->npeers; i++) {
		cl_peer *p = &cl->peers[i];

		if (!p->hello)
			continue;
		if (p->need_snapshot) {
			send_snapshot(cl, p);
			continue;
		}
		while (p->sent_seq < head && p->sent_seq - p->base_seq < CL_WINDOW) {
			Tern__ChangeRecord **list = NULL;
			size_t n = 0;
			int rc = store_repl_read(cl->st, epoch, p->sent_seq, CL_BATCH, &list, &n);

			if (rc == STORE_ENOTFOUND) {
				send_snapshot(cl, p);
				break;
			}
			if (rc != STORE_OK || n == 0)
				break;
			rc = send_changes(cl, p, list, n, head);
			store_free_list((void **)list, n);
			if (rc < 0)
				break;
		}
	}
}

/* ---- receiving ---- */

static void handle_hello(cluster *cl, cl_peer *p, const Tern__Cluster__Envelope *e)
{
	const Tern__Cluster__Hello *h = e->hello;
	uint64_t epoch = 0, head = 0;

	if (h->version != CLUSTER_PROTO_VERSION) {
		send_error(cl, p->rid, p->rid_len, e->id, TERN__CLUSTER__ERROR__CODE__VERSION,
			   "protocol version not supported");
		return;
	}
	store_repl_state(cl->st, &epoch, &head);
	pthread_mutex_lock(&cl->mu);
	p->hello = 1;
	p->ack_epoch = h->epoch;
	p->ack_seq = h->seq;
	p->unacked_since_ms = 0;
	if (h->epoch == epoch && epoch != 0 && h->seq <= head) {
		p->sent_seq = p->base_seq = h->seq;
		p->need_snapshot = 0;
	} else {
		p->need_snapshot = 1;
	}
	pthread_mutex_unlock(&cl->mu);

	Tern__Cluster__Envelope r = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__HelloOk ok = TERN__CLUSTER__HELLO_OK__INIT;

	ok.version = CLUSTER_PROTO_VERSION;
	ok.master = cl->name;
	ok.epoch = epoch;
	ok.seq = head;
	r.id = e->id;
	r.body_case = TERN__CLUSTER__ENVELOPE__BODY_HELLO_OK;
	r.hello_ok = &ok;
	send_to(cl, p, &r);
	tlog(TLOG_OPERATIONS, "cluster: node %s connected (applied epoch %llu seq %llu; head %llu)", p->name,
	     (unsigned long long)h->epoch, (unsigned long long)h->seq, (unsigned long long)head);
	atomic_store(&cl->repl_dirty, 1);
}

static void handle_ack(cluster *cl, cl_peer *p, uint64_t epoch, uint64_t seq)
{
	uint64_t me = 0, head = 0;

	store_repl_state(cl->st, &me, &head);
	pthread_mutex_lock(&cl->mu);
	p->ack_epoch = epoch;
	p->ack_seq = seq;
	if (epoch == me && seq > p->base_seq)
		p->base_seq = seq;
	p->unacked_since_ms = p->sent_seq > p->base_seq ? tern_mono_ms() : 0;
	pthread_mutex_unlock(&cl->mu);
	atomic_store(&cl->repl_dirty, 1);
}

static void handle_leave(cluster *cl, cl_peer *p, const Tern__Cluster__Envelope *e)
{
	char msg[200];
	unsigned users = store_node_user_count(cl->st, p->name);
	store_sync_result res;

	if (users > 0) {
		snprintf(msg, sizeof(msg), "%u users are homed on node %s; move them first", users, p->name);
		send_error(cl, p->rid, p->rid_len, e->id, TERN__CLUSTER__ERROR__CODE__REFUSED, msg);
		return;
	}
	if (store_node_remove(cl->st, p->name, STORE_SYNC, &res) != STORE_OK) {
		send_error(cl, p->rid, p->rid_len, e->id, TERN__CLUSTER__ERROR__CODE__REFUSED, res.error);
		return;
	}
	Tern__Cluster__Envelope r = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__LeaveOk ok = TERN__CLUSTER__LEAVE_OK__INIT;

	r.id = e->id;
	r.body_case = TERN__CLUSTER__ENVELOPE__BODY_LEAVE_OK;
	r.leave_ok = &ok;
	send_to(cl, p, &r);
	tlog(TLOG_OPERATIONS, "cluster: node %s left the distributed domain", p->name);
	snprintf(msg, sizeof(msg), "%s", p->name);
	cl_master_drop(cl, msg, 0);
}

/* A reply to one of our pending requests (mailbox usage). */
static void handle_reply(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e)
{
	for (cl_request **rp = &cl->pending; *rp != NULL; rp = &(*rp)->next) {
		cl_request *r = *rp;

		if (r->wire_id != e->id || strcasecmp(r->node, p->name) != 0)
			continue;
		*rp = r->next;
		if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REPLY &&
		    memcmp(e->mailbox_usage_reply->user_id.data, r->user_id, 16) == 0) {
			r->has_data = e->mailbox_usage_reply->has_data;
			cl_request_done(cl, r, 0, NULL);
		} else {
			cl_request_done(cl, r, -1, e->body_case == TERN__CLUSTER__ENVELOPE__BODY_ERROR ?
					e->error->message : "unexpected reply");
		}
		return;
	}
	if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_ERROR && cl_warn_ok(cl))
		tlog(TLOG_WARNING, "cluster: node %s reports an error: %s", p->name, e->error->message);
}

static void dispatch(cluster *cl, cl_peer *p, const Tern__Cluster__Envelope *e)
{
	switch (e->body_case) {
	case TERN__CLUSTER__ENVELOPE__BODY_HELLO:
		handle_hello(cl, p, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_LEAVE:
		handle_leave(cl, p, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_ERROR:
	case TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REPLY:
		handle_reply(cl, p, e);
		return;
	default:
		break;
	}
	if (!p->hello) {
		send_error(cl, p->rid, p->rid_len, e->id, TERN__CLUSTER__ERROR__CODE__HELLO_REQUIRED,
			   "say Hello first");
		return;
	}
	switch (e->body_case) {
	case TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT:
		if (e->heartbeat->epoch != 0)
			handle_ack(cl, p, e->heartbeat->epoch, e->heartbeat->seq);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_ACK:
		handle_ack(cl, p, e->ack->epoch, e->ack->seq);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_SNAPSHOT_REQUEST:
		pthread_mutex_lock(&cl->mu);
		p->need_snapshot = 1;
		pthread_mutex_unlock(&cl->mu);
		atomic_store(&cl->repl_dirty, 1);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH:
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_QUERY:
	case TERN__CLUSTER__ENVELOPE__BODY_BOOK_REQUEST:
		cl_master_fb(cl, p, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE:
		cl_master_move(cl, p, e);
		return;
	default:
		send_error(cl, p->rid, p->rid_len, e->id, TERN__CLUSTER__ERROR__CODE__BAD_FRAME,
			   "unexpected message for a master");
		return;
	}
}

/* One frame from the ROUTER: [routing id][envelope], the peer named by ZAP. */
void cl_master_recv(cluster *cl)
{
	zmq_msg_t rid, body;
	char why[160], node[64];

	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&rid, cl->router, ZMQ_DONTWAIT) < 0)
		goto out;
	if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, cl->router, ZMQ_DONTWAIT) < 0)
		goto out;
	int multi = zmq_msg_more(&body);
	while (zmq_msg_more(&body)) {   /* drain extra parts */
		zmq_msg_t extra;

		zmq_msg_init(&extra);
		int r = zmq_msg_recv(&extra, cl->router, ZMQ_DONTWAIT);
		int more = r >= 0 && zmq_msg_more(&extra);
		zmq_msg_close(&extra);
		if (!more)
			break;
	}
	const char *uid = zmq_msg_gets(&body, "User-Id");
	if (uid == NULL || !cluster_valid_node_name(uid) || zmq_msg_size(&rid) > CL_RID_MAX)
		goto out;
	snprintf(node, sizeof(node), "%s", uid);
	Tern__Node *rec = NULL;
	if (store_node_get(cl->st, node, &rec) != STORE_OK) {
		send_error(cl, zmq_msg_data(&rid), zmq_msg_size(&rid), 0, TERN__CLUSTER__ERROR__CODE__REMOVED,
			   "this node is no longer part of the distributed domain");
		cl_master_drop(cl, node, 0);
		goto out;
	}
	store_free_record(rec);
	Tern__Cluster__Envelope *e = NULL;
	if (multi) {
		snprintf(why, sizeof(why), "multi-part frame");
	} else if (cluster_frame_decode(zmq_msg_data(&body), zmq_msg_size(&body),
					(size_t)cl->conf->cluster_max_frame, &e, why, sizeof(why)) == 0) {
		if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_HELLO && strcasecmp(e->hello->node, node) != 0) {
			snprintf(why, sizeof(why), "Hello names another node");
			cluster_frame_free(&e);
		}
	}
	if (e == NULL) {
		if (cl_warn_ok(cl))
			tlog(TLOG_WARNING, "cluster: invalid frame from node %s: %s", node, why);
		send_error(cl, zmq_msg_data(&rid), zmq_msg_size(&rid), 0, TERN__CLUSTER__ERROR__CODE__BAD_FRAME, why);
		goto out;
	}
	cl_peer *p = peer_get(cl, node);
	if (p != NULL) {
		pthread_mutex_lock(&cl->mu);
		memcpy(p->rid, zmq_msg_data(&rid), zmq_msg_size(&rid));
		p->rid_len = zmq_msg_size(&rid);
		p->last_seen = tern_now();
		p->last_seen_ms = tern_mono_ms();
		int was = p->available;
		p->available = 1;
		pthread_mutex_unlock(&cl->mu);
		if (!was)
			tlog(TLOG_OPERATIONS, "cluster: node %s is available", node);
		dispatch(cl, p, e);
	}
	cluster_frame_free(&e);
out:
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
}

/* ---- timers and requests ---- */

static void heartbeat_all(cluster *cl)
{
	cluster_node_status *st = NULL;
	size_t n = 0;
	uint64_t epoch = 0, head = 0;

	if (cl_status_build(cl, &st, &n) < 0)
		return;
	store_repl_state(cl->st, &epoch, &head);
	Tern__Cluster__NodeStatus *ns = calloc(n ? n : 1, sizeof(*ns));
	Tern__Cluster__NodeStatus **nsp = calloc(n ? n : 1, sizeof(*nsp));
	if (ns != NULL && nsp != NULL) {
		for (size_t i = 0; i < n; i++) {
			tern__cluster__node_status__init(&ns[i]);
			ns[i].name = st[i].name;
			ns[i].master = strcmp(st[i].role, "master") == 0;
			ns[i].available = strcmp(st[i].status, "unavailable") != 0;
			ns[i].last_seen = ns[i].master ? tern_now() : st[i].last_seen;
			ns[i].seq = st[i].seq;
			ns[i].lag = st[i].lag;
			ns[i].address = st[i].address;
			nsp[i] = &ns[i];
		}
		Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
		Tern__Cluster__Heartbeat hb = TERN__CLUSTER__HEARTBEAT__INIT;

		hb.time = tern_now();
		hb.epoch = epoch;
		hb.seq = head;
		hb.nodes = nsp;
		hb.n_nodes = n;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT;
		e.heartbeat = &hb;
		for (size_t i = 0; i < cl->npeers; i++)
			if (cl->peers[i].hello)
				send_to(cl, &cl->peers[i], &e);
	}
	free(ns);
	free(nsp);
	free(st);
}

void cl_master_tick(cluster *cl, int64_t now)
{
	int64_t silent = cl->conf->cluster_unavailable_after * 1000;
	int64_t timeout = cl->conf->cluster_request_timeout * 1000;

	if (now >= cl->next_heartbeat_ms) {
		heartbeat_all(cl);
		cl->next_heartbeat_ms = now + cl->conf->cluster_heartbeat_interval * 1000;
	}
	for (size_t i = 0; i < cl->npeers; i++) {
		cl_peer *p = &cl->peers[i];

		if (p->available && now - p->last_seen_ms > silent) {
			pthread_mutex_lock(&cl->mu);
			p->available = 0;
			p->hello = 0;
			pthread_mutex_unlock(&cl->mu);
			tlog(TLOG_WARNING, "cluster: node %s is unavailable (silent for %lld s)", p->name,
			     (long long)((now - p->last_seen_ms) / 1000));
		} else if (p->hello && p->unacked_since_ms != 0 && now - p->unacked_since_ms > timeout) {
			/* Frames were lost (a reconnect): the slave starts again from what it has. */
			pthread_mutex_lock(&cl->mu);
			p->hello = 0;
			p->unacked_since_ms = 0;
			pthread_mutex_unlock(&cl->mu);
			send_error(cl, p->rid, p->rid_len, 0, TERN__CLUSTER__ERROR__CODE__HELLO_REQUIRED,
				   "no acknowledgement: say Hello again");
		}
	}
	cl_master_pump(cl);
	if (now >= cl->next_compact_ms) {
		store_repl_compact(cl->st, (uint64_t)cl->conf->cluster_changelog_keep);
		cl->next_compact_ms = now + 60000;
	}
}

/* Forget a node that left or was removed; notify: tell it that it was removed. */
void cl_master_drop(cluster *cl, const char *name, int notify)
{
	cl_peer *p = cl_peer_find(cl, name);

	if (p == NULL)
		return;
	if (notify && p->rid_len > 0)
		send_error(cl, p->rid, p->rid_len, 0, TERN__CLUSTER__ERROR__CODE__REMOVED,
			   "this node was removed from the distributed domain");
	pthread_mutex_lock(&cl->mu);
	size_t i = (size_t)(p - cl->peers);
	memmove(&cl->peers[i], &cl->peers[i + 1], (cl->npeers - i - 1) * sizeof(*p));
	cl->npeers--;
	pthread_mutex_unlock(&cl->mu);
}

/* Ask a slave whether the user's mailbox there holds messages; 0 when sent (the reply
 * or the deadline completes r), -1 when r was completed at once. */
int cl_master_usage(cluster *cl, cl_request *r)
{
	cl_peer *p = cl_peer_find(cl, r->node);
	char msg[160];

	if (cl->router == NULL || p == NULL || !p->hello || !p->available) {
		snprintf(msg, sizeof(msg), "node %s is not connected to this master", r->node);
		cl_request_done(cl, r, -1, msg);
		return -1;
	}
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__MailboxUsageRequest q = TERN__CLUSTER__MAILBOX_USAGE_REQUEST__INIT;

	q.user_id.data = r->user_id;
	q.user_id.len = 16;
	e.id = r->wire_id = cl_new_id(cl);
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REQUEST;
	e.mailbox_usage_request = &q;
	if (send_to(cl, p, &e) < 0) {
		snprintf(msg, sizeof(msg), "cannot send to node %s", r->node);
		cl_request_done(cl, r, -1, msg);
		return -1;
	}
	r->deadline_ms = tern_mono_ms() + cl->conf->cluster_request_timeout * 1000;
	return 0;
}
