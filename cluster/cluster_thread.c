/* cluster_thread.c - the cluster thread: the only thread that touches a zmq socket. It
 * polls the master's ROUTER and ZAP sockets or the slave's DEALER, plus an eventfd that
 * other threads write after queueing a request (cl_request_run) and that the store's
 * replication watcher writes after every durable change record. Timers (heartbeats,
 * availability, resends, compaction) run on a short tick. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>
#include "cluster_private.h"

#define CL_WARN_PER_MINUTE 30

/* Allow a warning.log line about a peer's bad behaviour: at most CL_WARN_PER_MINUTE a
 * minute, so that a misbehaving peer cannot fill the disk. */
int cl_budget_ok(int64_t *window_ms, int *count)
{
	int64_t now = tern_mono_ms();

	if (now - *window_ms > 60000) {
		*window_ms = now;
		*count = 0;
	}
	return (*count)++ < CL_WARN_PER_MINUTE;
}

int cl_warn_ok(cluster *cl)
{
	return cl_budget_ok(&cl->warn_window_ms, &cl->warn_count);
}

uint64_t cl_new_id(cluster *cl)
{
	return ++cl->next_id;
}

/* Send one envelope, prefixed by a routing id on the ROUTER. Never blocks: 0 sent, -1
 * when the peer is gone or its queue is full (the caller retries later). */
int cl_send(cluster *cl, void *sock, const uint8_t *rid, size_t rid_len, const Tern__Cluster__Envelope *e)
{
	cluster_frame_encode(e, &cl->wbuf);
	if (rid != NULL && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -1;
	if (zmq_send(sock, cl->wbuf.data, cl->wbuf.len, ZMQ_DONTWAIT) < 0)
		return -1;
	return 0;
}

void cl_request_done(cluster *cl, cl_request *r, int rc, const char *error)
{
	pthread_mutex_lock(&cl->mu);
	r->rc = rc;
	if (error != NULL)
		snprintf(r->error, sizeof(r->error), "%s", error);
	r->done = 1;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
}

int cl_request_run(cluster *cl, cl_request *r)
{
	r->done = 0;
	r->rc = -1;
	r->next = NULL;
	pthread_mutex_lock(&cl->mu);
	if (atomic_load(&cl->quit)) {
		pthread_mutex_unlock(&cl->mu);
		snprintf(r->error, sizeof(r->error), "the cluster thread is stopping");
		return -1;
	}
	cl_request **tail = &cl->queue;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = r;
	pthread_mutex_unlock(&cl->mu);
	cl_wake(cl);
	pthread_mutex_lock(&cl->mu);
	while (!r->done)
		pthread_cond_wait(&cl->cv, &cl->mu);
	pthread_mutex_unlock(&cl->mu);
	return r->rc;
}

static void set_role(cluster *cl, cluster_role role)
{
	pthread_mutex_lock(&cl->mu);
	cl->role = role;
	pthread_mutex_unlock(&cl->mu);
}

/* Run one request taken from the queue. Requests that wait for a peer's answer move to
 * the pending list and are completed by the receive path or by their deadline. */
static void run_request(cluster *cl, cl_request *r)
{
	char err[256] = "";

	switch (r->kind) {
	case CL_REQ_MASTER_START:
		cl_slave_stop(cl);
		if (cl_master_start(cl, err, sizeof(err)) < 0) {
			cl_request_done(cl, r, -1, err);
			return;
		}
		set_role(cl, CLUSTER_MASTER);
		cl_request_done(cl, r, 0, NULL);
		return;
	case CL_REQ_SLAVE_START:
		cl_master_stop(cl);
		cl_slave_stop(cl);
		if (cl_slave_start(cl, err, sizeof(err)) < 0) {
			cl_request_done(cl, r, -1, err);
			return;
		}
		set_role(cl, CLUSTER_SLAVE);
		cl_request_done(cl, r, 0, NULL);
		return;
	case CL_REQ_STOP:
		cl_master_stop(cl);
		cl_slave_stop(cl);
		set_role(cl, CLUSTER_STANDALONE);
		cl_request_done(cl, r, 0, NULL);
		return;
	case CL_REQ_LEAVE:
		if (cl_slave_leave(cl, r) == 0) {
			r->next = cl->pending;
			cl->pending = r;
		}
		return;
	case CL_REQ_DROP_NODE:
		cl_master_drop(cl, r->node, 1);
		cl_request_done(cl, r, 0, NULL);
		return;
	case CL_REQ_MAILBOX_USAGE:
		if (cl_master_usage(cl, r) == 0) {
			r->next = cl->pending;
			cl->pending = r;
		}
		return;
	case CL_REQ_FB_QUERY:
	case CL_REQ_BOOK:
	case CL_REQ_HOME_MOVE:
		if (cl_slave_ask(cl, r) == 0) {
			r->next = cl->pending;
			cl->pending = r;
		}
		return;
	}
	cl_request_done(cl, r, -1, "unknown request");
}

/* Take every queued request. */
static void drain_requests(cluster *cl)
{
	uint64_t v;

	if (read(cl->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		tlog(TLOG_ERROR, "cluster: eventfd read: %s", strerror(errno));
	for (;;) {
		pthread_mutex_lock(&cl->mu);
		cl_request *r = cl->queue;
		if (r != NULL)
			cl->queue = r->next;
		pthread_mutex_unlock(&cl->mu);
		if (r == NULL)
			break;
		r->next = NULL;
		run_request(cl, r);
	}
}

/* Fail pending network requests whose deadline passed (a leave then goes standalone
 * anyway: it is best effort). */
static void expire_pending(cluster *cl, int64_t now_ms, int all)
{
	cl_request **p = &cl->pending;

	while (*p != NULL) {
		cl_request *r = *p;

		if (!all && r->deadline_ms > now_ms) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		if (r->kind == CL_REQ_LEAVE && !all) {
			cl_slave_stop(cl);
			set_role(cl, CLUSTER_STANDALONE);
			cl_request_done(cl, r, 0, "the master did not answer");
		} else {
			char msg[160];

			snprintf(msg, sizeof(msg), "node %s did not answer within [cluster] request_timeout", r->node);
			/* a move without an answer was not decided as far as we know */
			cl_request_done(cl, r, r->kind == CL_REQ_HOME_MOVE ? -2 : -1,
					all ? "the cluster thread is stopping" : msg);
		}
	}
}

static void *cluster_main(void *arg)
{
	cluster *cl = arg;

	while (!atomic_load(&cl->quit)) {
		zmq_pollitem_t items[4];
		int n = 0, izap = -1, irouter = -1, idealer = -1;

		items[n++] = (zmq_pollitem_t){ NULL, cl->efd, ZMQ_POLLIN, 0 };
		if (cl->zap != NULL) {
			izap = n;
			items[n++] = (zmq_pollitem_t){ cl->zap, 0, ZMQ_POLLIN, 0 };
		}
		if (cl->router != NULL) {
			irouter = n;
			items[n++] = (zmq_pollitem_t){ cl->router, 0, ZMQ_POLLIN, 0 };
		}
		if (cl->dealer != NULL) {
			idealer = n;
			items[n++] = (zmq_pollitem_t){ cl->dealer, 0, ZMQ_POLLIN, 0 };
		}
		int rc = zmq_poll(items, n, CL_TICK_MS);
		if (rc < 0 && zmq_errno() != EINTR) {
			tlog(TLOG_ERROR, "cluster: zmq_poll: %s", zmq_strerror(zmq_errno()));
			usleep(100000);
		}
		if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
			drain_requests(cl);
		cl_svc_flush(cl);
		if (rc > 0 && izap >= 0 && (items[izap].revents & ZMQ_POLLIN))
			cl_master_zap(cl);
		if (rc > 0 && irouter >= 0 && (items[irouter].revents & ZMQ_POLLIN) && cl->router != NULL)
			cl_master_recv(cl);
		if (rc > 0 && idealer >= 0 && (items[idealer].revents & ZMQ_POLLIN) && cl->dealer != NULL)
			cl_slave_recv(cl);
		int64_t now = tern_mono_ms();
		if (cl->router != NULL) {
			if (atomic_exchange(&cl->repl_dirty, 0))
				cl_master_pump(cl);
			cl_master_tick(cl, now);
		}
		if (cl->dealer != NULL)
			cl_slave_tick(cl, now);
		expire_pending(cl, now, 0);
	}
	drain_requests(cl);
	expire_pending(cl, 0, 1);
	cl_master_stop(cl);
	cl_slave_stop(cl);
	return NULL;
}

/* The store's replication watcher (commit thread): a new record is durable. */
static void repl_wake(void *arg)
{
	cluster *cl = arg;

	atomic_store(&cl->repl_dirty, 1);
	cl_wake(cl);
}

int cl_thread_start(cluster *cl, char **error_r)
{
	cl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cl->efd < 0) {
		*error_r = strdup("cluster: eventfd failed");
		return -1;
	}
	cl->zctx = zmq_ctx_new();
	if (cl->zctx == NULL) {
		*error_r = strdup("cluster: zmq_ctx_new failed");
		return -1;
	}
	if (pthread_create(&cl->thread, NULL, cluster_main, cl) != 0) {
		*error_r = strdup("cluster: cannot start the cluster thread");
		return -1;
	}
	cl->thread_started = 1;
	store_repl_watch(cl->st, repl_wake, cl);
	return 0;
}

void cl_thread_stop(cluster *cl)
{
	if (cl->thread_started) {
		store_repl_watch(cl->st, NULL, NULL);
		pthread_mutex_lock(&cl->mu);
		atomic_store(&cl->quit, 1);
		pthread_mutex_unlock(&cl->mu);
		cl_wake(cl);
		pthread_join(cl->thread, NULL);
		cl->thread_started = 0;
	}
	if (cl->zctx != NULL)
		zmq_ctx_term(cl->zctx);
	cl->zctx = NULL;
	if (cl->efd >= 0)
		close(cl->efd);
	cl->efd = -1;
}
