/* cluster_slave.c - the slave side of the control plane (cluster thread only): a DEALER
 * with this node's CURVE keys connected to the master; Hello on every (re)connection,
 * change records and snapshots applied in order with the blocking store calls, each
 * frame acknowledged with the applied (epoch, seq); heartbeats both ways. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>
#include "cluster_private.h"

static void snap_reset(cluster *cl)
{
	for (size_t i = 0; i < cl->nsnap; i++)
		tern__config_op__free_unpacked(cl->snap_ops[i], NULL);
	free(cl->snap_ops);
	cl->snap_ops = NULL;
	cl->nsnap = cl->capsnap = 0;
	cl->snap_part = 0;
}

int cl_slave_start(cluster *cl, char *err, size_t errn)
{
	Tern__ClusterSelf *self = NULL;
	int one = 1, zero = 0, ivl = 100, ivl_max = 2000;
	int64_t maxmsg = cl->conf->cluster_max_frame * 2;

	if (store_cluster_self_get(cl->st, &self) != STORE_OK || self->role != TERN__CLUSTER_SELF__ROLE__SLAVE ||
	    self->master_public.len != CL_KEY_LEN || strncmp(self->master_endpoint, "tcp://", 6) != 0) {
		snprintf(err, errn, "this node has no usable master in cluster/self");
		store_free_record(self);
		return -1;
	}
	int ipv6 = strchr(self->master_endpoint, '[') != NULL;
	cl->dealer = zmq_socket(cl->zctx, ZMQ_DEALER);
	if (cl->dealer == NULL ||
	    zmq_setsockopt(cl->dealer, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_CURVE_SERVERKEY, self->master_public.data, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_CURVE_PUBLICKEY, cl->pub, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_CURVE_SECRETKEY, cl->sec, CL_KEY_LEN) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(cl->dealer, ZMQ_IPV6, &ipv6, sizeof(ipv6)) < 0 ||
	    zmq_connect(cl->dealer, self->master_endpoint) < 0) {
		snprintf(err, errn, "cannot connect to the master at %s: %s", self->master_endpoint,
			 zmq_strerror(zmq_errno()));
		store_free_record(self);
		cl_slave_stop(cl);
		return -1;
	}
	pthread_mutex_lock(&cl->mu);
	snprintf(cl->master_name, sizeof(cl->master_name), "%s", self->master_name);
	cl->master_available = 0;
	cl->master_seen = 0;
	cl->removed = 0;
	pthread_mutex_unlock(&cl->mu);
	cl->synced = 0;
	cl->hello_sent_ms = 0;
	cl->master_seen_ms = tern_mono_ms();
	cl->next_heartbeat_ms = tern_mono_ms();
	tlog(TLOG_OPERATIONS, "cluster: slave %s connecting to master %s at %s", cl->name, self->master_name,
	     self->master_endpoint);
	store_free_record(self);
	return 0;
}

void cl_slave_stop(cluster *cl)
{
	if (cl->dealer != NULL)
		zmq_close(cl->dealer);
	cl->dealer = NULL;
	cl->synced = 0;
	snap_reset(cl);
	pthread_mutex_lock(&cl->mu);
	free(cl->view);
	cl->view = NULL;
	cl->nview = 0;
	cl->master_available = 0;
	pthread_mutex_unlock(&cl->mu);
}

static int send_env(cluster *cl, Tern__Cluster__Envelope *e)
{
	return cl_send(cl, cl->dealer, NULL, 0, e);
}

static void send_error(cluster *cl, uint64_t id, const char *msg)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Error er = TERN__CLUSTER__ERROR__INIT;

	er.code = TERN__CLUSTER__ERROR__CODE__BAD_FRAME;
	er.message = (char *)msg;
	e.id = id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_ERROR;
	e.error = &er;
	send_env(cl, &e);
}

/* Hello with what this node applied; the master answers with the rest of the stream. */
static void send_hello(cluster *cl)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Hello h = TERN__CLUSTER__HELLO__INIT;
	uint64_t epoch = 0, seq = 0;

	store_repl_state(cl->st, &epoch, &seq);
	h.version = CLUSTER_PROTO_VERSION;
	h.node = cl->name;
	h.epoch = epoch;
	h.seq = epoch != 0 ? seq : 0;
	e.id = cl->hello_id = cl_new_id(cl);
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HELLO;
	e.hello = &h;
	cl->synced = 0;
	snap_reset(cl);
	if (send_env(cl, &e) == 0)
		cl->hello_sent_ms = tern_mono_ms();
}

static void send_ack(cluster *cl, uint64_t id)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Ack a = TERN__CLUSTER__ACK__INIT;

	store_repl_state(cl->st, &a.epoch, &a.seq);
	e.id = id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_ACK;
	e.ack = &a;
	send_env(cl, &e);
}

static void apply_changes(cluster *cl, const Tern__Cluster__Envelope *e)
{
	const Tern__Cluster__Changes *c = e->changes;

	if (!cl->synced)
		return;    /* from before our last Hello: the master sends it again */
	for (size_t i = 0; i < c->n_records; i++) {
		store_sync_result res;
		int rc = store_repl_apply(cl->st, c->records[i], STORE_SYNC, &res);

		if (rc != STORE_OK) {
			tlog(TLOG_WARNING, "cluster: change epoch %llu seq %llu from master %s not applied (%s); "
			     "asking again", (unsigned long long)c->records[i]->epoch,
			     (unsigned long long)c->records[i]->seq, cl->master_name, res.error);
			send_hello(cl);
			return;
		}
	}
	send_ack(cl, e->id);
}

/* Collect snapshot parts (taking their rows from the frame); apply at the last one. */
static void apply_snapshot(cluster *cl, Tern__Cluster__Envelope *e)
{
	Tern__Cluster__Snapshot *s = e->snapshot;

	if (!cl->synced)
		return;
	if (s->part == 0) {
		snap_reset(cl);
		cl->snap_epoch = s->epoch;
		cl->snap_seq = s->seq;
		cl->snap_time = s->time;
	} else if (s->epoch != cl->snap_epoch || s->seq != cl->snap_seq || s->part != cl->snap_part + 1) {
		tlog(TLOG_WARNING, "cluster: snapshot part %u from master %s out of order; asking again",
		     s->part, cl->master_name);
		send_hello(cl);
		return;
	}
	cl->snap_part = s->part;
	if (cl->nsnap + s->n_ops > cl->capsnap) {
		size_t cap = (cl->nsnap + s->n_ops) * 2 + 16;
		Tern__ConfigOp **np = realloc(cl->snap_ops, cap * sizeof(*np));
		if (np == NULL) {
			snap_reset(cl);
			return;
		}
		cl->snap_ops = np;
		cl->capsnap = cap;
	}
	memcpy(cl->snap_ops + cl->nsnap, s->ops, s->n_ops * sizeof(*s->ops));
	cl->nsnap += s->n_ops;
	free(s->ops);           /* the rows are ours now */
	s->ops = NULL;
	s->n_ops = 0;
	if (!s->last)
		return;

	Tern__ChangeRecord snap = TERN__CHANGE_RECORD__INIT;
	store_sync_result res;

	snap.epoch = cl->snap_epoch;
	snap.seq = cl->snap_seq;
	snap.time = cl->snap_time;
	snap.snapshot = 1;
	snap.ops = cl->snap_ops;
	snap.n_ops = cl->nsnap;
	int rc = store_repl_apply_snapshot(cl->st, &snap, STORE_SYNC, &res);
	if (rc != STORE_OK) {
		tlog(TLOG_ERROR, "cluster: snapshot from master %s not applied: %s", cl->master_name, res.error);
	} else {
		tlog(TLOG_OPERATIONS, "cluster: applied a snapshot of %zu rows from master %s (epoch %llu seq %llu)",
		     cl->nsnap, cl->master_name, (unsigned long long)snap.epoch, (unsigned long long)snap.seq);
		send_ack(cl, e->id);
	}
	snap_reset(cl);
}

/* The master's view of every node, for cluster_status on this slave. */
static void take_view(cluster *cl, const Tern__Cluster__Heartbeat *h)
{
	cluster_node_status *v = calloc(h->n_nodes ? h->n_nodes : 1, sizeof(*v));

	if (v == NULL)
		return;
	for (size_t i = 0; i < h->n_nodes; i++) {
		const Tern__Cluster__NodeStatus *n = h->nodes[i];

		snprintf(v[i].name, sizeof(v[i].name), "%s", n->name);
		snprintf(v[i].role, sizeof(v[i].role), "%s", n->master ? "master" : "slave");
		snprintf(v[i].status, sizeof(v[i].status), "%s", n->available ? "available" : "unavailable");
		snprintf(v[i].address, sizeof(v[i].address), "%s", n->address);
		v[i].last_seen = n->last_seen;
		v[i].seq = n->seq;
		v[i].lag = n->lag;
	}
	pthread_mutex_lock(&cl->mu);
	free(cl->view);
	cl->view = v;
	cl->nview = h->n_nodes;
	pthread_mutex_unlock(&cl->mu);
}

static void answer_usage(cluster *cl, const Tern__Cluster__Envelope *e)
{
	Tern__Cluster__Envelope r = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__MailboxUsageReply u = TERN__CLUSTER__MAILBOX_USAGE_REPLY__INIT;

	u.user_id = e->mailbox_usage_request->user_id;
	u.has_data = store_mailbox_has_data(cl->st, e->mailbox_usage_request->user_id.data) == 1;
	r.id = e->id;
	r.body_case = TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REPLY;
	r.mailbox_usage_reply = &u;
	send_env(cl, &r);
}

/* The pending Leave, when e answers it (or any answer at all for REMOVED). */
static cl_request *take_leave(cluster *cl, uint64_t id, int any)
{
	for (cl_request **rp = &cl->pending; *rp != NULL; rp = &(*rp)->next)
		if ((*rp)->kind == CL_REQ_LEAVE && (any || (*rp)->wire_id == id)) {
			cl_request *r = *rp;

			*rp = r->next;
			return r;
		}
	return NULL;
}

static void left(cluster *cl, cl_request *r)
{
	cl_slave_stop(cl);
	pthread_mutex_lock(&cl->mu);
	cl->role = CLUSTER_STANDALONE;
	pthread_mutex_unlock(&cl->mu);
	cl_request_done(cl, r, 0, NULL);
}

static void handle_error(cluster *cl, const Tern__Cluster__Envelope *e)
{
	const Tern__Cluster__Error *er = e->error;

	if (e->id != 0 && (cl_slave_answer(cl, e) || cl_fb_acked(cl, e->id, er->message)))
		return;
	cl_request *r = take_leave(cl, e->id, er->code == TERN__CLUSTER__ERROR__CODE__REMOVED);

	if (r != NULL) {
		if (er->code == TERN__CLUSTER__ERROR__CODE__REMOVED)
			left(cl, r);
		else
			cl_request_done(cl, r, -1, er->message);
		return;
	}
	switch (er->code) {
	case TERN__CLUSTER__ERROR__CODE__HELLO_REQUIRED:
		send_hello(cl);
		return;
	case TERN__CLUSTER__ERROR__CODE__REMOVED:
		tlog(TLOG_WARNING, "cluster: master %s says this node was removed from the distributed domain "
		     "(run 'ternctl cluster leave' here)", cl->master_name);
		cl_slave_stop(cl);
		pthread_mutex_lock(&cl->mu);
		cl->removed = 1;
		pthread_mutex_unlock(&cl->mu);
		return;
	default:
		if (cl_warn_ok(cl))
			tlog(TLOG_WARNING, "cluster: master %s reports an error: %s", cl->master_name, er->message);
	}
}

static void dispatch(cluster *cl, Tern__Cluster__Envelope *e)
{
	cl_request *r;

	switch (e->body_case) {
	case TERN__CLUSTER__ENVELOPE__BODY_HELLO_OK:
		if (e->id == cl->hello_id && !cl->synced) {
			cl->synced = 1;
			cl->next_heartbeat_ms = tern_mono_ms();
			tlog(TLOG_OPERATIONS, "cluster: connected to master %s (head epoch %llu seq %llu)",
			     e->hello_ok->master, (unsigned long long)e->hello_ok->epoch,
			     (unsigned long long)e->hello_ok->seq);
			cl_fb_send_pending(cl, tern_mono_ms(), 1);
		}
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH_OK:
		cl_fb_acked(cl, e->id, NULL);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_REPLY:
	case TERN__CLUSTER__ENVELOPE__BODY_BOOK_REPLY:
	case TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE_OK:
		cl_slave_answer(cl, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_ERROR:
		handle_error(cl, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT:
		take_view(cl, e->heartbeat);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_CHANGES:
		apply_changes(cl, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_SNAPSHOT:
		apply_snapshot(cl, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REQUEST:
		answer_usage(cl, e);
		return;
	case TERN__CLUSTER__ENVELOPE__BODY_LEAVE_OK:
		if ((r = take_leave(cl, e->id, 0)) != NULL)
			left(cl, r);
		return;
	default:
		send_error(cl, e->id, "unexpected message for a slave");
	}
}

void cl_slave_recv(cluster *cl)
{
	zmq_msg_t m;
	char why[160];
	Tern__Cluster__Envelope *e = NULL;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, cl->dealer, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return;
	}
	int multi = zmq_msg_more(&m);
	while (zmq_msg_more(&m)) {
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, cl->dealer, ZMQ_DONTWAIT) < 0)
			break;
	}
	if (multi)
		snprintf(why, sizeof(why), "multi-part frame");
	if (multi || cluster_frame_decode(zmq_msg_data(&m), zmq_msg_size(&m), (size_t)cl->conf->cluster_max_frame,
					  &e, why, sizeof(why)) < 0) {
		zmq_msg_close(&m);
		if (cl_warn_ok(cl))
			tlog(TLOG_WARNING, "cluster: invalid frame from master %s: %s", cl->master_name, why);
		send_error(cl, 0, why);
		return;
	}
	zmq_msg_close(&m);
	cl->master_seen_ms = tern_mono_ms();
	pthread_mutex_lock(&cl->mu);
	cl->master_seen = tern_now();
	int was = cl->master_available;
	cl->master_available = 1;
	pthread_mutex_unlock(&cl->mu);
	if (!was)
		tlog(TLOG_OPERATIONS, "cluster: master %s is available", cl->master_name);
	dispatch(cl, e);
	cluster_frame_free(&e);
}

void cl_slave_tick(cluster *cl, int64_t now)
{
	int64_t silent = cl->conf->cluster_unavailable_after * 1000;

	if (cl->master_available && now - cl->master_seen_ms > silent) {
		pthread_mutex_lock(&cl->mu);
		cl->master_available = 0;
		pthread_mutex_unlock(&cl->mu);
		cl->synced = 0;
		cl->hello_sent_ms = 0;
		tlog(TLOG_WARNING, "cluster: master %s is unavailable (silent for %lld s)", cl->master_name,
		     (long long)((now - cl->master_seen_ms) / 1000));
	}
	if (!cl->synced) {
		if (cl->hello_sent_ms == 0 || now - cl->hello_sent_ms > cl->conf->cluster_request_timeout * 1000)
			send_hello(cl);
		return;
	}
	cl_fb_send_pending(cl, now, 0);
	if (now >= cl->next_heartbeat_ms) {
		Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
		Tern__Cluster__Heartbeat hb = TERN__CLUSTER__HEARTBEAT__INIT;

		hb.time = tern_now();
		store_repl_state(cl->st, &hb.epoch, &hb.seq);
		if (hb.epoch == 0)
			hb.seq = 0;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT;
		e.heartbeat = &hb;
		send_env(cl, &e);
		cl->next_heartbeat_ms = now + cl->conf->cluster_heartbeat_interval * 1000;
	}
}

/* Tell the master this node leaves; 0 when sent (LeaveOk, an Error or the deadline
 * completes r), -1 when r was completed at once (no master to tell). */
int cl_slave_leave(cluster *cl, cl_request *r)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Leave l = TERN__CLUSTER__LEAVE__INIT;

	if (cl->dealer == NULL) {
		left(cl, r);
		return -1;
	}
	l.node = cl->name;
	e.id = r->wire_id = cl_new_id(cl);
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_LEAVE;
	e.leave = &l;
	if (send_env(cl, &e) < 0) {
		left(cl, r);
		return -1;
	}
	snprintf(r->node, sizeof(r->node), "%s", cl->master_name);
	r->deadline_ms = tern_mono_ms() + cl->conf->cluster_request_timeout * 1000;
	return 0;
}
