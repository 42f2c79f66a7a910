/* deliver_followup.c - what a delivery does once its batch is durable (deliver_local.c):
 * the report to the sender, the quota warnings, the iTIP hand-over to scheduling and the
 * re-queue of recipients whose mailbox a migration froze meanwhile. Each is its own
 * durable write holding a pending reference on the job; the caller's callback runs once
 * the last one is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deliver_dsn.h"
#include "deliver_int.h"
#include "mime.h"

/* A report made for this message is durable (or failed: logged, not fatal). */
static void job_followup_done(const deliver_result *r, void *arg)
{
	dlv_job *j = arg;

	if (r->rc != STORE_OK)
		tlog(TLOG_ERROR, "Queue-ID: %s: delivery report not stored: %s", j->queue_id, r->reply);
	dlv_job_release(j);
}

void dlv_job_report(dlv_job *j)
{
	dlv_plan *p = &j->plan;
	dsn_rcpt *rr = calloc(p->nfailed + p->nlocal + 1, sizeof(*rr));
	tbuf orig = TBUF_INIT;
	size_t n = 0;

	if (rr == NULL)
		abort();
	for (size_t i = 0; i < p->nfailed; i++) {
		const deliver_rcpt_req *req = &j->rcpts[p->failed[i].rcpt];
		if (!deliver_dsn_wanted(req->notify, DSN_ACTION_FAILED))
			continue;
		rr[n] = (dsn_rcpt){ p->failed[i].address, req->orcpt, DSN_ACTION_FAILED, p->failed[i].status,
				    p->failed[i].diagnostic, NULL, j->now, 0 };
		n++;
	}
	for (size_t i = 0; i < p->nlocal; i++) {
		const deliver_rcpt_req *req = &j->rcpts[p->local[i].rcpt];
		if (j->delivered[i] != STORE_OK || !deliver_dsn_wanted(req->notify, DSN_ACTION_DELIVERED))
			continue;
		rr[n] = (dsn_rcpt){ p->local[i].address, req->orcpt, DSN_ACTION_DELIVERED, "2.0.0",
				    "250 2.0.0 delivered to mailbox", NULL, j->now, 0 };
		n++;
	}
	if (n > 0) {
		dsn_report r = { j->d->hostname, j->m.sender, j->m.envid, j->now, j->m.ret, NULL, 0, rr, n };
		tbuf_append(&orig, j->qprefix.data, j->qprefix.len);
		tbuf_append(&orig, j->m.data, j->m.len);
		r.original = orig.data;
		r.original_len = orig.len;
		atomic_fetch_add(&j->pending, 1);
		deliver_dsn_submit(j->d, &r, j->io, job_followup_done, j);
	}
	tbuf_free(&orig);
	free(rr);
}

/* One quota warning being written: its buffers live until the append is durable. */
typedef struct dlv_warn {
	dlv_job *job;
	uint8_t user[16];
	tbuf prefix, body;
	Tern__MimeInfo *mime;
	char queue_id[40];
	char address[DELIVER_ADDR_MAX];
} dlv_warn;

/* The warning (and its quota_warned_at) is durable: the user may be warned again later. */
static void job_warn_done(const store_result *res, void *arg)
{
	dlv_warn *w = arg;
	dlv_job *j = w->job;

	if (res->rc == STORE_OK) {
		atomic_fetch_add(&j->d->warnings_sent, 1);
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: delivered, Status: 2.0.0 (quota warning)",
		     w->queue_id, w->address);
	} else {
		tlog(TLOG_ERROR, "Quota warning to %s not stored: %s", w->address,
		     res->error ? res->error : store_strerror(res->rc));
	}
	dlv_quota_warn_done(j->d, w->user);
	tbuf_free(&w->prefix);
	tbuf_free(&w->body);
	mime_info_free(&w->mime);
	free(w);
	dlv_job_release(j);
}

void dlv_job_quota_warnings(dlv_job *j)
{
	dlv_plan *p = &j->plan;

	for (size_t i = 0; i < p->nlocal; i++) {
		dlv_quota_view v;
		dlv_warn *w;
		deliver_message wm;
		store_append a;
		uint8_t id[16];

		if (j->delivered[i] != STORE_OK || !dlv_quota_warn_needed(j->d, p->local[i].id, j->now, &v))
			continue;
		if ((w = calloc(1, sizeof(*w))) == NULL)
			abort();
		w->job = j;
		memcpy(w->user, p->local[i].id, 16);
		snprintf(w->address, sizeof(w->address), "%s", v.address);
		tern_uuid_new(id);
		dlv_queue_id(id, w->queue_id, sizeof(w->queue_id));
		dlv_quota_warn_message(&w->body, j->d, &v, j->now);
		memset(&wm, 0, sizeof(wm));
		wm.sender = "";
		wm.client_ip = "";
		dlv_local_prefix(&w->prefix, &wm, j->d->hostname, w->queue_id, v.address, 0,
				 j->d->conf->smtpd_x_envelope_to, j->now);
		memset(&a, 0, sizeof(a));
		a.user = w->user;
		a.header_prefix = w->prefix.data;
		a.header_prefix_len = w->prefix.len;
		a.body = w->body.data;
		a.body_len = w->body.len;
		a.internaldate = j->now;
		a.quota_warned_at = j->now;
		w->mime = mime_analyze(w->body.data, w->body.len);
		a.mime = w->mime;
		tlog(TLOG_MAIL, "Recv: Queue-ID: %s, Service: Quota, From: <postmaster@%s>, To: <%s>, Size: %zu",
		     w->queue_id, v.domain, v.address, w->body.len);
		atomic_fetch_add(&j->pending, 1);
		store_msg_append(j->d->st, &a, (store_cb){ job_warn_done, w, j->io }, NULL);
	}
}

/* Resources take the message as a booking request, and local users that got it have
 * their calendars updated from its iTIP part (node/dav, off this thread). */
void dlv_job_imip(dlv_job *j)
{
	dlv_plan *p = &j->plan;
	const char **to = calloc(p->nlocal + p->nresource + 1, sizeof(*to));
	size_t n = 0;

	if (to == NULL)
		abort();
	for (size_t i = 0; i < p->nlocal; i++)
		if (j->delivered[i] == STORE_OK)
			to[n++] = p->local[i].address;
	for (size_t i = 0; i < p->nresource; i++) {
		to[n++] = p->resource[i].address;
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: delivered, Status: 2.0.0 (resource)",
		     j->queue_id, p->resource[i].address);
	}
	dlv_imip_dispatch(j->d, j->m.data, j->m.len, j->m.sender, to, n);
	free(to);
}

/* The re-queued recipients: their entry's buffers live until it is durable. */
typedef struct dlv_requeue {
	dlv_job *job;
	uint8_t id[16];
	char qid[40];
	Tern__QueueEntry qe;
	Tern__QueueRcpt *rcpts;
	Tern__QueueRcpt **ptrs;
} dlv_requeue;

/* The follow-up entry is durable (or not: the recipients' mail is then lost - logged). */
static void job_requeue_done(const store_result *res, void *arg)
{
	dlv_requeue *q = arg;
	dlv_job *j = q->job;

	for (size_t i = 0; i < q->qe.n_rcpts; i++) {
		if (res->rc == STORE_OK)
			tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: deferred, Status: 4.2.1 "
			     "(mailbox moving, queued as %s)", j->queue_id, q->rcpts[i].address, q->qid);
		else
			tlog(TLOG_ERROR, "Queue-ID: %s: recipient <%s> held by a migration not queued: %s",
			     j->queue_id, q->rcpts[i].address, res->error ? res->error : store_strerror(res->rc));
	}
	free(q->rcpts);
	free(q->ptrs);
	free(q);
	dlv_job_release(j);
}

/* One entry for this node (the queue delivers them at their home when the migration
 * ends), with the local body. */
void dlv_job_requeue(dlv_job *j, size_t nheld)
{
	dlv_plan *p = &j->plan;
	dlv_requeue *q = calloc(1, sizeof(*q));
	size_t n = 0, first = 0;

	if (q == NULL || (q->rcpts = calloc(nheld, sizeof(*q->rcpts))) == NULL ||
	    (q->ptrs = calloc(nheld, sizeof(*q->ptrs))) == NULL)
		abort();
	q->job = j;
	tern_uuid_new(q->id);
	dlv_queue_id(q->id, q->qid, sizeof(q->qid));
	for (size_t i = 0; i < p->nlocal && n < nheld; i++) {
		if (j->delivered[i] != STORE_EREFUSED)
			continue;
		if (n == 0)
			first = i;
		dlv_job_entry_rcpt(j, &q->rcpts[n], p->local[i].address, p->local[i].rcpt);
		q->ptrs[n] = &q->rcpts[n];
		n++;
	}
	dlv_job_entry(j, q->id, &q->qe, q->ptrs, n);
	atomic_fetch_add(&j->pending, 1);
	store_submit(j->d->st, NULL, 0, &q->qe, j->apps[first].body, j->apps[first].body_len,
		     (store_cb){ job_requeue_done, q, j->io }, NULL);
}
