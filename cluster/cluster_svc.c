/* cluster_svc.c - requests that need the node module (node/dav) rather than the store:
 * resource bookings, decided on the master, and the busy time of users and resources
 * homed on the master. A slave forwards them (cl_slave_ask, a pending request completed
 * by the master's reply or by request_timeout). On the master the cluster thread hands
 * them to one service thread, which calls the installed handlers one at a time - so
 * bookings forwarded by slaves are decided strictly one after another and the cluster
 * thread never blocks on them - and leaves the encoded reply in an outbox that the
 * cluster thread sends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zmq.h>
#include "cluster_private.h"

#define CL_JOBS_MAX 10000             /* requests waiting for the service thread */

void cl_wake(cluster *cl)
{
	uint64_t one = 1;

	if (cl->efd >= 0 && write(cl->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		tlog(TLOG_ERROR, "cluster: cannot wake the cluster thread: %s", strerror(errno));
}

int cl_send_raw(cluster *cl, void *sock, const uint8_t *rid, size_t rid_len, const void *data, size_t len)
{
	(void)cl;
	if (rid != NULL && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -1;
	return zmq_send(sock, data, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

void cluster_set_handlers(cluster *cl, const cluster_handlers *h)
{
	pthread_mutex_lock(&cl->handler_mu);
	if (h != NULL)
		cl->handlers = *h;
	else
		memset(&cl->handlers, 0, sizeof(cl->handlers));
	cl->has_handlers = h != NULL;
	pthread_mutex_unlock(&cl->handler_mu);
}

/* ---- the service thread (master) ---- */

static void job_free(cl_job *j)
{
	free(j->address);
	free(j->organizer);
	free(j->uid);
	tbuf_free(&j->ical);
	free(j);
}

void cl_svc_reply(cluster *cl, const char *node, const Tern__Cluster__Envelope *e)
{
	cl_out *o = calloc(1, sizeof(*o));

	if (o == NULL)
		abort();
	snprintf(o->node, sizeof(o->node), "%s", node);
	cluster_frame_encode(e, &o->frame);
	pthread_mutex_lock(&cl->mu);
	cl_out **tail = &cl->outbox;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = o;
	pthread_mutex_unlock(&cl->mu);
	cl_wake(cl);
}

static void reply_error(cluster *cl, const cl_job *j, const char *msg)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Error er = TERN__CLUSTER__ERROR__INIT;
	char text[CLUSTER_TEXT_MAX + 1];

	snprintf(text, sizeof(text), "%s", msg);
	er.code = TERN__CLUSTER__ERROR__CODE__REFUSED;
	er.message = text;
	e.id = j->id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_ERROR;
	e.error = &er;
	cl_svc_reply(cl, j->node, &e);
}

static void run_book(cluster *cl, const cl_job *j)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__BookReply br = TERN__CLUSTER__BOOK_REPLY__INIT;
	tbuf why = TBUF_INIT;
	char reason[CLUSTER_TEXT_MAX + 1];
	int rc = -1;

	pthread_mutex_lock(&cl->handler_mu);
	if (cl->has_handlers && cl->handlers.book != NULL)
		rc = cl->handlers.book(cl->handlers.arg, j->address, j->organizer, j->uid, tbuf_cstr(&j->ical),
				       j->ical.len, j->cancel, &why);
	else
		tbuf_append_str(&why, "the master takes no booking decisions now");
	pthread_mutex_unlock(&cl->handler_mu);
	snprintf(reason, sizeof(reason), "%s", tbuf_cstr(&why));
	br.result = rc == 1 ? TERN__CLUSTER__BOOK_REPLY__RESULT__ACCEPTED :
		    rc == 0 ? TERN__CLUSTER__BOOK_REPLY__RESULT__DECLINED : TERN__CLUSTER__BOOK_REPLY__RESULT__FAILED;
	br.reason = reason;
	e.id = j->id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_BOOK_REPLY;
	e.book_reply = &br;
	cl_svc_reply(cl, j->node, &e);
	tbuf_free(&why);
}

static void run_freebusy(cluster *cl, const cl_job *j)
{
	cluster_busy *list = NULL;
	size_t n = 0;
	tbuf why = TBUF_INIT;
	int rc = -1;

	pthread_mutex_lock(&cl->handler_mu);
	if (cl->has_handlers && cl->handlers.freebusy != NULL)
		rc = cl->handlers.freebusy(cl->handlers.arg, j->address, j->from, j->to, &list, &n, &why);
	else
		tbuf_append_str(&why, "the master answers no free/busy queries now");
	pthread_mutex_unlock(&cl->handler_mu);
	if (rc < 0) {
		reply_error(cl, j, tbuf_cstr(&why));
	} else {
		Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
		Tern__Cluster__FreeBusyReply fr = TERN__CLUSTER__FREE_BUSY_REPLY__INIT;
		Tern__BusyPeriod *arr = NULL;
		size_t k = 0;

		for (size_t i = 0; i < n; i++)      /* only what the frame may carry */
			if (list[i].start < list[i].end && k < CLUSTER_LIST_MAX)
				list[k++] = list[i];
		fr.address = j->address;
		fr.known = 1;
		fr.from = j->from;
		fr.to = j->to;
		fr.periods = cl_busy_to_wire(list, k, &arr);
		fr.n_periods = k;
		e.id = j->id;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_REPLY;
		e.freebusy_reply = &fr;
		cl_svc_reply(cl, j->node, &e);
		free(fr.periods);
		free(arr);
	}
	free(list);
	tbuf_free(&why);
}

static void *svc_main(void *arg)
{
	cluster *cl = arg;

	for (;;) {
		pthread_mutex_lock(&cl->svc_mu);
		while (cl->jobs == NULL && !cl->svc_quit)
			pthread_cond_wait(&cl->svc_cv, &cl->svc_mu);
		cl_job *j = cl->svc_quit ? NULL : cl->jobs;
		if (j != NULL) {
			cl->jobs = j->next;
			cl->njobs--;
		}
		pthread_mutex_unlock(&cl->svc_mu);
		if (j == NULL)
			break;
		if (j->kind == CL_JOB_BOOK)
			run_book(cl, j);
		else if (j->kind == CL_JOB_MOVE)
			cl_move_run(cl, j);
		else
			run_freebusy(cl, j);
		job_free(j);
	}
	return NULL;
}

int cl_svc_start(cluster *cl, char **error_r)
{
	pthread_mutex_init(&cl->svc_mu, NULL);
	pthread_mutex_init(&cl->handler_mu, NULL);
	pthread_cond_init(&cl->svc_cv, NULL);
	pthread_cond_init(&cl->svc_done_cv, NULL);
	cl->svc_inited = 1;
	if (pthread_create(&cl->svc_thread, NULL, svc_main, cl) != 0) {
		*error_r = strdup("cluster: cannot start the service thread");
		return -1;
	}
	cl->svc_started = 1;
	return 0;
}

/* Stop after the running job; queued jobs are dropped (their senders time out, local
 * moves are told that nothing was decided). */
void cl_svc_stop(cluster *cl)
{
	if (cl->svc_started) {
		pthread_mutex_lock(&cl->svc_mu);
		cl->svc_quit = 1;
		pthread_cond_broadcast(&cl->svc_cv);
		pthread_mutex_unlock(&cl->svc_mu);
		pthread_join(cl->svc_thread, NULL);
		cl->svc_started = 0;
	}
	if (!cl->svc_inited)
		return;
	pthread_mutex_lock(&cl->svc_mu);
	while (cl->jobs != NULL) {
		cl_job *j = cl->jobs;

		cl->jobs = j->next;
		if (j->local != NULL) {
			j->local->rc = -2;
			snprintf(j->local->error, sizeof(j->local->error), "the cluster is stopping");
			j->local->done = 1;
			pthread_cond_broadcast(&cl->svc_done_cv);
		}
		job_free(j);
	}
	cl->njobs = 0;
	pthread_mutex_unlock(&cl->svc_mu);
}

void cl_svc_free(cluster *cl)
{
	while (cl->outbox != NULL) {
		cl_out *o = cl->outbox;

		cl->outbox = o->next;
		tbuf_free(&o->frame);
		free(o);
	}
	pthread_mutex_destroy(&cl->svc_mu);
	pthread_mutex_destroy(&cl->handler_mu);
	pthread_cond_destroy(&cl->svc_cv);
	pthread_cond_destroy(&cl->svc_done_cv);
}

static char *dupe(const char *s)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		abort();
	return d;
}

int cl_svc_submit(cluster *cl, const char *node, const Tern__Cluster__Envelope *e)
{
	cl_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	snprintf(j->node, sizeof(j->node), "%s", node);
	j->id = e->id;
	if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE) {
		j->kind = CL_JOB_MOVE;
		memcpy(j->user_id, e->home_move->user_id.data, 16);
		j->move_op = (int)e->home_move->op;
		snprintf(j->target, sizeof(j->target), "%s", e->home_move->target);
	} else if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_BOOK_REQUEST) {
		const Tern__Cluster__BookRequest *b = e->book_request;

		j->kind = CL_JOB_BOOK;
		j->address = dupe(b->resource);
		j->organizer = dupe(b->organizer);
		j->uid = dupe(b->uid);
		tbuf_append(&j->ical, (const char *)b->ical.data, b->ical.len);
		j->cancel = b->cancel;
	} else {
		j->kind = CL_JOB_FREEBUSY;
		j->address = dupe(e->freebusy_query->address);
		j->from = e->freebusy_query->from;
		j->to = e->freebusy_query->to;
	}
	if (cl_svc_queue(cl, j) < 0) {
		job_free(j);
		return -1;
	}
	return 0;
}

int cl_svc_queue(cluster *cl, cl_job *j)
{
	pthread_mutex_lock(&cl->svc_mu);
	if (cl->svc_quit || !cl->svc_started || cl->njobs >= CL_JOBS_MAX) {
		pthread_mutex_unlock(&cl->svc_mu);
		return -1;
	}
	cl_job **tail = &cl->jobs;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = j;
	cl->njobs++;
	pthread_cond_signal(&cl->svc_cv);
	pthread_mutex_unlock(&cl->svc_mu);
	return 0;
}

void cl_svc_flush(cluster *cl)
{
	pthread_mutex_lock(&cl->mu);
	cl_out *list = cl->outbox;
	cl->outbox = NULL;
	pthread_mutex_unlock(&cl->mu);
	while (list != NULL) {
		cl_out *o = list;
		cl_peer *p = cl->router != NULL ? cl_peer_find(cl, o->node) : NULL;

		list = o->next;
		if (p == NULL || p->rid_len == 0 ||
		    cl_send_raw(cl, cl->router, p->rid, p->rid_len, o->frame.data, o->frame.len) < 0)
			tlog(TLOG_WARNING, "cluster: a reply to node %s could not be sent", o->node);
		tbuf_free(&o->frame);
		free(o);
	}
}

/* ---- slave: asking the master ---- */

int cl_slave_ask(cluster *cl, cl_request *r)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__FreeBusyQuery q = TERN__CLUSTER__FREE_BUSY_QUERY__INIT;
	Tern__Cluster__BookRequest b = TERN__CLUSTER__BOOK_REQUEST__INIT;
	char msg[200];

	Tern__Cluster__HomeMove hm = TERN__CLUSTER__HOME_MOVE__INIT;
	int unreachable = r->kind == CL_REQ_HOME_MOVE ? -2 : -1;    /* a move: "try again later" */

	if (cl->dealer == NULL || !cl->synced) {
		snprintf(msg, sizeof(msg), "the master %s is not reachable", cl->master_name[0] ? cl->master_name : "");
		cl_request_done(cl, r, unreachable, msg);
		return -1;
	}
	if (r->kind == CL_REQ_BOOK && r->ical_len + 4096 > (size_t)cl->conf->cluster_max_frame) {
		cl_request_done(cl, r, -1, "the invitation is too large to forward to the master");
		return -1;
	}
	e.id = r->wire_id = cl_new_id(cl);
	if (r->kind == CL_REQ_HOME_MOVE) {
		cl_move_frame(r, &e, &hm);
	} else if (r->kind == CL_REQ_BOOK) {
		b.resource = (char *)r->address;
		b.organizer = (char *)r->organizer;
		b.uid = (char *)r->uid;
		b.ical.data = (uint8_t *)r->ical;
		b.ical.len = r->ical_len;
		b.cancel = r->cancel;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_BOOK_REQUEST;
		e.book_request = &b;
	} else {
		q.address = (char *)r->address;
		q.from = r->from;
		q.to = r->to;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_QUERY;
		e.freebusy_query = &q;
	}
	if (cl_send(cl, cl->dealer, NULL, 0, &e) < 0) {
		snprintf(msg, sizeof(msg), "cannot send to the master %s", cl->master_name);
		cl_request_done(cl, r, unreachable, msg);
		return -1;
	}
	snprintf(r->node, sizeof(r->node), "%s", cl->master_name);
	r->deadline_ms = tern_mono_ms() + cl->conf->cluster_request_timeout * 1000;
	return 0;
}

int cl_slave_answer(cluster *cl, const Tern__Cluster__Envelope *e)
{
	if (e->id == 0)
		return 0;
	for (cl_request **rp = &cl->pending; *rp != NULL; rp = &(*rp)->next) {
		cl_request *r = *rp;

		if (r->wire_id != e->id ||
		    (r->kind != CL_REQ_FB_QUERY && r->kind != CL_REQ_BOOK && r->kind != CL_REQ_HOME_MOVE))
			continue;
		*rp = r->next;
		if (r->kind == CL_REQ_FB_QUERY && e->body_case == TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_REPLY) {
			r->busy = cl_busy_from_wire(e->freebusy_reply->periods, e->freebusy_reply->n_periods);
			r->nbusy = e->freebusy_reply->n_periods;
			cl_request_done(cl, r, 0, NULL);
		} else if (r->kind == CL_REQ_BOOK && e->body_case == TERN__CLUSTER__ENVELOPE__BODY_BOOK_REPLY) {
			Tern__Cluster__BookReply__Result res = e->book_reply->result;

			r->decision = res == TERN__CLUSTER__BOOK_REPLY__RESULT__ACCEPTED ? 1 :
				      res == TERN__CLUSTER__BOOK_REPLY__RESULT__DECLINED ? 0 : -1;
			cl_request_done(cl, r, 0, e->book_reply->reason);
		} else if (r->kind == CL_REQ_HOME_MOVE && e->body_case == TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE_OK) {
			snprintf(r->source, sizeof(r->source), "%s", e->home_move_ok->source);
			cl_request_done(cl, r, 0, NULL);
		} else if (r->kind == CL_REQ_HOME_MOVE && e->body_case == TERN__CLUSTER__ENVELOPE__BODY_ERROR &&
			   e->error->code != TERN__CLUSTER__ERROR__CODE__REFUSED) {
			/* not decided (the master failed or is busy): the caller tries again */
			cl_request_done(cl, r, -2, e->error->message);
		} else {
			cl_request_done(cl, r, -1, e->body_case == TERN__CLUSTER__ENVELOPE__BODY_ERROR ?
					e->error->message : "unexpected reply from the master");
		}
		return 1;
	}
	return 0;
}

/* ---- bookings ---- */

int cluster_book(cluster *cl, const char *resource, const char *organizer, const char *uid, const char *ical,
		 size_t len, int cancel, tbuf *why)
{
	if (resource == NULL || strchr(resource, '@') == NULL || strlen(resource) > CLUSTER_TEXT_MAX ||
	    organizer == NULL || strlen(organizer) > CLUSTER_TEXT_MAX || uid == NULL || uid[0] == '\0' ||
	    strlen(uid) > CLUSTER_TEXT_MAX || (!cancel && (ical == NULL || len == 0))) {
		tbuf_append_str(why, "invalid booking request");
		return -1;
	}
	if (cluster_get_role(cl) != CLUSTER_SLAVE) {
		int rc = -1;

		pthread_mutex_lock(&cl->handler_mu);
		if (cl->has_handlers && cl->handlers.book != NULL)
			rc = cl->handlers.book(cl->handlers.arg, resource, organizer, uid, ical, len, cancel, why);
		else
			tbuf_append_str(why, "no booking handler on this node");
		pthread_mutex_unlock(&cl->handler_mu);
		return rc;
	}
	cl_request r;

	memset(&r, 0, sizeof(r));
	r.kind = CL_REQ_BOOK;
	r.address = resource;
	r.organizer = organizer;
	r.uid = uid;
	r.ical = ical;
	r.ical_len = cancel ? 0 : len;
	r.cancel = cancel;
	if (cl_request_run(cl, &r) < 0) {
		tbuf_append_str(why, r.error);
		return -1;
	}
	tbuf_append_str(why, r.error);
	return r.decision;
}
