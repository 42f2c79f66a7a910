/* queue_runner.c - scheduling of the outgoing queue on one I/O thread: scans for due
 * entries, the bound on parallel connections, the outcome of an attempt per recipient
 * (delivered, failed, deferred, delay warning, expiry), the reports to the sender, and
 * the operations of ternctl (retry, remove, run, stats).
 *
 * Life of an attempt (a q_job): job_start groups the pending recipients by next hop and
 * queues one q_hop per group for a connection slot; queue_hop_done returns the slot; when
 * the last hop is done, job_finish decides each recipient, hands the reports to the
 * deliverer, and once they are durable job_persist rewrites or removes the entry; the job
 * leaves the in-flight list only when that write is durable, so no entry is tried twice
 * at once and its next attempt always starts from the recorded state.
 *
 * Recipients of a local domain are routed inside the distributed domain (queue_node.c):
 * grouped by their home node as looked up now, or handed back to the deliverer when the
 * home is this node; their retries follow [cluster] relay_retry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>
#include "queue_int.h"
#include "deliver_dsn.h"

/* Entries fetched per scan beyond those already in flight. */
#define SCAN_EXTRA 64
#define SCAN_MAX 4096

typedef enum { OP_RETRY, OP_REMOVE } q_op_kind;

typedef struct q_op {
	queue_runner *r;
	q_op_kind kind;
	int all;
	uint8_t id[16];
	char *rcpt;                   /* all: only entries with this recipient pending */
	tern_io *done_io;
	void (*done)(int rc, unsigned n, void *arg);
	void *arg;
	int rc;
	unsigned n;
	unsigned left;                /* store writes outstanding, +1 while starting */
} q_op;

static void job_finish(q_job *job);
static void runner_kick(queue_runner *r);

void queue_id_text(const uint8_t *id, size_t id_len, char out[18])
{
	uint8_t b[8] = { 0 };

	memcpy(b, id, id_len < 8 ? id_len : 8);
	snprintf(out, 18, "%02x%02x%02x%02x-%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
		 b[6], b[7]);
}

static q_job *job_find(queue_runner *r, const uint8_t id[16])
{
	q_job *job;

	LIST_FOREACH(job, &r->jobs, link) {
		if (memcmp(job->id, id, 16) == 0)
			return job;
	}
	return NULL;
}

static void job_free(q_job *job)
{
	for (size_t i = 0; i < job->nhops; i++) {
		free(job->hops[i].idx);
		free(job->hops[i].hosts);
		free(job->hops[i].addrs);
		tbuf_free(&job->hops[i].local_msg);
		explicit_bzero(job->hops[i].node_pass, sizeof(job->hops[i].node_pass));
	}
	free(job->hops);
	free(job->res);
	if (job->e != NULL)
		store_free_record(job->e);
	free(job);
}

/* The job left the in-flight list: free it and look for more work. */
static void job_end(q_job *job)
{
	queue_runner *r = job->r;

	LIST_REMOVE(job, link);
	atomic_fetch_sub(&r->n_in_flight, 1);
	job_free(job);
	runner_kick(r);
}

/* ---- connection slots ---- */

/* Start waiting hops while slots are free. */
static void hops_pump(queue_runner *r)
{
	unsigned max = (unsigned)r->conf->queue_delivery_threads;
	q_hop *h;

	while (r->active < max && (h = TAILQ_FIRST(&r->waiting)) != NULL) {
		TAILQ_REMOVE(&r->waiting, h, wait);
		h->started = 1;
		r->active++;
		atomic_store(&r->n_active, r->active);
		queue_route_start(h);
	}
}

void queue_hop_done(q_hop *h)
{
	q_job *job = h->job;
	queue_runner *r = job->r;

	if (h->started) {
		h->started = 0;
		r->active--;
		atomic_store(&r->n_active, r->active);
	}
	for (size_t i = 0; i < h->n && (h->node[0] != '\0' || h->local); i++) {
		qc_reply *res = &job->res[h->idx[i]];
		res->cluster = 1;
		snprintf(res->node, sizeof(res->node), "%s", h->node);
	}
	/* Later, from the loop: the hop may be finishing inside queue_route_start. */
	event_active(r->scan_ev, EV_TIMEOUT, 1);
	if (--job->hops_left == 0)
		job_finish(job);
}

/* ---- starting an attempt ---- */

/* The domain of an address, lower case, or NULL. */
static int rcpt_domain(const char *address, char *out, size_t n)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || at[1] == '\0' || strlen(at + 1) >= n)
		return -1;
	snprintf(out, n, "%s", at + 1);
	tern_lower(out);
	return 0;
}

/* The hop of an attempt for this next hop, or NULL. */
static q_hop *hop_find(q_job *job, const char *domain, const char *node, int local)
{
	for (size_t k = 0; k < job->nhops; k++) {
		q_hop *h = &job->hops[k];
		if (strcmp(h->domain, domain) == 0 && strcmp(h->node, node) == 0 && h->local == local)
			return h;
	}
	return NULL;
}

static void job_start(queue_runner *r, Tern__QueueEntry *e)
{
	q_job *job = calloc(1, sizeof(*job));
	size_t nr = e->n_rcpts;
	int single = r->conf->queue_relay_host[0] != '\0' || (e->route != NULL && e->route[0] != '\0');

	if (job == NULL || (job->res = calloc(nr ? nr : 1, sizeof(*job->res))) == NULL ||
	    (job->hops = calloc(nr ? nr : 1, sizeof(*job->hops))) == NULL) {
		if (job != NULL)
			free(job->res);
		free(job);
		store_free_record(e);
		return;
	}
	job->r = r;
	job->e = e;
	memcpy(job->id, e->id.data, 16);
	queue_id_text(e->id.data, e->id.len, job->qid);
	LIST_INSERT_HEAD(&r->jobs, job, link);
	atomic_fetch_add(&r->n_in_flight, 1);
	for (size_t i = 0; i < nr; i++) {
		char domain[256] = "";
		if (e->rcpts[i]->state != TERN__QUEUE_RCPT__STATE__PENDING)
			continue;
		if (rcpt_domain(e->rcpts[i]->address, domain, sizeof(domain)) < 0) {
			qc_reply *bad = &job->res[i];
			bad->code = 550;
			snprintf(bad->status, sizeof(bad->status), "5.1.3");
			snprintf(bad->text, sizeof(bad->text), "550 5.1.3 bad recipient address");
			continue;
		}
		char node[64];
		q_route_kind kind = queue_node_classify(r, e->rcpts[i]->address, domain, node,
							sizeof(node), &job->res[i]);
		if (kind == Q_ROUTE_ANSWERED)
			continue;
		const char *key = single || kind != Q_ROUTE_DOMAIN ? "" : domain;
		q_hop *h = hop_find(job, key, node, kind == Q_ROUTE_LOCAL);
		if (h == NULL) {
			h = &job->hops[job->nhops];
			h->idx = calloc(nr, sizeof(*h->idx));
			if (h->idx == NULL) {
				job->res[i].code = 451;
				snprintf(job->res[i].status, sizeof(job->res[i].status), "4.3.0");
				snprintf(job->res[i].text, sizeof(job->res[i].text), "451 4.3.0 out of memory");
				continue;
			}
			job->nhops++;
			h->job = job;
			snprintf(h->domain, sizeof(h->domain), "%s", key);
			snprintf(h->node, sizeof(h->node), "%s", node);
			h->local = kind == Q_ROUTE_LOCAL;
			h->relay = kind == Q_ROUTE_DOMAIN && r->conf->queue_relay_host[0] != '\0' &&
				   (e->route == NULL || e->route[0] == '\0');
		}
		h->idx[h->n++] = i;
	}
	/* +1 holds the job while hops are being queued (one may finish at once). */
	job->hops_left = job->nhops + 1;
	for (size_t k = 0; k < job->nhops; k++)
		TAILQ_INSERT_TAIL(&r->waiting, &job->hops[k], wait);
	hops_pump(r);
	if (--job->hops_left == 0)
		job_finish(job);
}

/* ---- scanning ---- */

static void runner_scan(queue_runner *r)
{
	Tern__QueueEntry **list = NULL;
	size_t n = 0;
	unsigned max = (unsigned)r->conf->queue_delivery_threads;
	size_t want = atomic_load(&r->n_in_flight) + max + SCAN_EXTRA;

	if (want > SCAN_MAX)
		want = SCAN_MAX;
	if (store_queue_due(r->st, tern_now(), want, &list, &n) != STORE_OK) {
		tlog(TLOG_ERROR, "Queue: cannot read the due entries");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		Tern__QueueEntry *e = list[i];
		list[i] = NULL;
		/* Hops waiting for a slot mean every slot is busy: leave the rest for later. */
		if (e->id.len != 16 || job_find(r, e->id.data) != NULL || !TAILQ_EMPTY(&r->waiting) ||
		    r->active >= max) {
			store_free_record(e);
			continue;
		}
		job_start(r, e);
	}
	free(list);
}

static void scan_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_runner *r = arg;

	hops_pump(r);
	runner_scan(r);
}

static void runner_kick(queue_runner *r)
{
	event_active(r->scan_ev, EV_TIMEOUT, 1);
}

/* Store watch: a new entry is durable (on the runner's io). */
static void watch_cb(void *arg)
{
	runner_kick(arg);
}

/* ---- the outcome of an attempt ---- */

static void set_str(char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return;
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = copy;
}

/* mail.log "Sent:"; a recipient relayed to another node of the domain says which. */
static void log_rcpt(q_job *job, const Tern__QueueRcpt *rc, const qc_reply *res, const char *result,
		     const char *status)
{
	if (res->node[0] != '\0')
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: %s, Status: %s, Relayed-To: node %s",
		     job->qid, rc->address, result, status, res->node);
	else
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: %s, Status: %s", job->qid,
		     rc->address, result, status);
}

/* The original message for a report: all of it, or only its header section when large. */
static void report_original(q_job *job, tbuf *out)
{
	const Tern__QueueEntry *e = job->e;
	queue_runner *r = job->r;

	tbuf_append(out, e->header_prefix.data, e->header_prefix.len);
	if (e->blob.len != 32)
		return;
	/* size counts the header prefix and the body. */
	uint64_t body = e->size > e->header_prefix.len ? e->size - e->header_prefix.len : 0;
	uint64_t len = body <= DSN_RETURN_FULL_MAX ? body : 256u * 1024u;
	if (len == 0 || store_blob_read(r->st, e->blob.data, 0, len, out) != 0)
		return;
	if (body > len) {
		const char *end = memmem(out->data, out->len, "\r\n\r\n", 4);
		tbuf_truncate(out, end != NULL ? (size_t)(end - out->data) + 4 : out->len);
	}
}

static void job_persist(q_job *job);

static void report_done(const deliver_result *res, void *arg)
{
	q_job *job = arg;

	if (res->rc != STORE_OK)
		tlog(TLOG_ERROR, "Queue-ID: %s: cannot deliver the report to <%s>: %s", job->qid,
		     job->e->sender, res->reply[0] ? res->reply : store_strerror(res->rc));
	if (--job->reports_left == 0)
		job_persist(job);
}

/* Hand one report (all recipients of one action) to the deliverer. */
static void report_send(q_job *job, dsn_rcpt *rcpts, size_t n, const tbuf *original)
{
	queue_runner *r = job->r;
	const Tern__QueueEntry *e = job->e;

	if (n == 0)
		return;
	dsn_report rep = {
		.reporting_mta = r->hostname, .sender = e->sender, .envid = e->envid,
		.arrival = (int64_t)e->created, .ret = e->ret, .original = original->data,
		.original_len = original->len, .rcpts = rcpts, .nrcpts = n,
	};
	if (rcpts[0].action == DSN_ACTION_FAILED)
		atomic_fetch_add(&r->n_bounced, 1);
	else if (rcpts[0].action == DSN_ACTION_DELAYED)
		atomic_fetch_add(&r->n_delayed, 1);
	job->reports_left++;
	deliver_dsn_submit(r->dlv, &rep, r->io, report_done, job);
}

static void dsn_add(dsn_rcpt *v, size_t *n, const Tern__QueueRcpt *rc, dsn_action a,
		    const char *status, int64_t now, int64_t until)
{
	dsn_rcpt *d = &v[(*n)++];

	memset(d, 0, sizeof(*d));
	d->address = rc->address;
	d->orcpt = rc->orcpt != NULL && rc->orcpt[0] != '\0' ? rc->orcpt : NULL;
	d->action = a;
	d->status = status;
	d->diagnostic = rc->last_reply != NULL && rc->last_reply[0] != '\0' ? rc->last_reply : NULL;
	d->remote_mta = rc->remote_mta != NULL && rc->remote_mta[0] != '\0' ? rc->remote_mta : NULL;
	d->last_attempt = now;
	d->will_retry_until = until;
}

/* Decide every recipient tried in this attempt, then the reports and the write. */
static void job_finish(q_job *job)
{
	queue_runner *r = job->r;
	Tern__QueueEntry *e = job->e;
	const tern_conf *conf = r->conf;
	int64_t now = tern_now();
	int64_t created = e->created != 0 ? (int64_t)e->created : now;
	size_t nr = e->n_rcpts, nfail = 0, ndelay = 0, nok = 0;
	dsn_rcpt *fail = calloc(nr ? nr : 1, sizeof(*fail));
	dsn_rcpt *delay = calloc(nr ? nr : 1, sizeof(*delay));
	dsn_rcpt *ok = calloc(nr ? nr : 1, sizeof(*ok));
	int reports = e->sender != NULL && e->sender[0] != '\0' && r->dlv != NULL &&
		      fail != NULL && delay != NULL && ok != NULL;
	int expired = now - created >= conf->queue_bounce_after;
	int warn = conf->queue_warn_after > 0 && now - created >= conf->queue_warn_after &&
		   !e->delay_warned;
	int64_t retry = conf->queue_retry_interval;

	for (size_t i = 0; i < nr; i++) {
		Tern__QueueRcpt *rc = e->rcpts[i];
		qc_reply *res = &job->res[i];
		if (rc->state != TERN__QUEUE_RCPT__STATE__PENDING || job->removing)
			continue;
		if (res->code == 0) {
			res->code = 451;
			snprintf(res->status, sizeof(res->status), "4.4.1");
			snprintf(res->text, sizeof(res->text), "451 4.4.1 not attempted");
		}
		rc->attempts++;
		set_str(&rc->last_reply, res->text);
		if (res->mta[0] != '\0')
			set_str(&rc->remote_mta, res->mta);
		if (res->code / 100 == 2) {
			rc->state = TERN__QUEUE_RCPT__STATE__DELIVERED;
			rc->done_at = (uint64_t)now;
			atomic_fetch_add(&r->n_delivered, 1);
			log_rcpt(job, rc, res, "delivered", res->status);
			if (reports && deliver_dsn_wanted(rc->notify, DSN_ACTION_DELIVERED))
				dsn_add(ok, &nok, rc, DSN_ACTION_DELIVERED, res->status, now, 0);
		} else if (res->code / 100 == 5) {
			rc->state = TERN__QUEUE_RCPT__STATE__FAILED;
			rc->done_at = (uint64_t)now;
			atomic_fetch_add(&r->n_failed, 1);
			log_rcpt(job, rc, res, "failed", res->status);
			if (reports && deliver_dsn_wanted(rc->notify, DSN_ACTION_FAILED))
				dsn_add(fail, &nfail, rc, DSN_ACTION_FAILED, res->status, now, 0);
		} else if (expired) {
			char text[QC_TEXT_MAX + 64];
			snprintf(text, sizeof(text), "4.4.7 delivery time expired; last reply: %s",
				 res->text);
			set_str(&rc->last_reply, text);
			rc->state = TERN__QUEUE_RCPT__STATE__FAILED;
			rc->done_at = (uint64_t)now;
			atomic_fetch_add(&r->n_failed, 1);
			log_rcpt(job, rc, res, "failed", "4.4.7");
			if (reports && deliver_dsn_wanted(rc->notify, DSN_ACTION_FAILED))
				dsn_add(fail, &nfail, rc, DSN_ACTION_FAILED, "4.4.7", now, 0);
		} else {
			if (res->cluster && conf->cluster_relay_retry < retry)
				retry = conf->cluster_relay_retry;
			atomic_fetch_add(&r->n_deferred, 1);
			log_rcpt(job, rc, res, "deferred", res->status);
			if (warn && reports && deliver_dsn_wanted(rc->notify, DSN_ACTION_DELAYED))
				dsn_add(delay, &ndelay, rc, DSN_ACTION_DELAYED, res->status, now,
					created + conf->queue_bounce_after);
		}
	}
	if (warn)
		e->delay_warned = 1;
	e->attempts++;
	e->next_try = (uint64_t)(now + retry);
	job->reports_left = 1;   /* held while the reports are handed over */
	if (reports && nfail + ndelay + nok > 0) {
		tbuf original = TBUF_INIT;
		report_original(job, &original);
		report_send(job, fail, nfail, &original);
		report_send(job, delay, ndelay, &original);
		report_send(job, ok, nok, &original);
		tbuf_free(&original);
	}
	free(fail);
	free(delay);
	free(ok);
	if (--job->reports_left == 0)
		job_persist(job);
}

static void persist_done(const store_result *res, void *arg)
{
	q_job *job = arg;

	if (res->rc != STORE_OK && res->rc != STORE_ENOTFOUND)
		tlog(TLOG_ERROR, "Queue-ID: %s: cannot record the attempt: %s", job->qid,
		     res->error != NULL ? res->error : store_strerror(res->rc));
	job_end(job);
}

/* Write the attempt's outcome: remove the entry when nothing is pending (or removal was
 * asked), else rewrite it with the next try. */
static void job_persist(q_job *job)
{
	queue_runner *r = job->r;
	const Tern__QueueEntry *e = job->e;
	store_cb cb = { persist_done, job, r->io };
	int pending = 0;

	for (size_t i = 0; i < e->n_rcpts; i++)
		pending |= e->rcpts[i]->state == TERN__QUEUE_RCPT__STATE__PENDING;
	if (job->remove_after || !pending)
		store_queue_remove(r->st, job->id, cb, NULL);
	else
		store_queue_update(r->st, e, cb, NULL);
}

/* ---- operations ---- */

static void op_reply(void *arg)
{
	q_op *op = arg;

	op->done(op->rc, op->n, op->arg);
	free(op->rcpt);
	free(op);
}

static void op_step(q_op *op)
{
	queue_runner *r = op->r;

	if (--op->left > 0)
		return;
	runner_kick(r);
	if (op->done == NULL) {
		free(op->rcpt);
		free(op);
		return;
	}
	tern_io *io = op->done_io != NULL ? op->done_io : r->io;
	if (io == r->io)
		op_reply(op);
	else
		tern_io_post(io, op_reply, op);
}

static void op_write_done(const store_result *res, void *arg)
{
	q_op *op = arg;

	if (res->rc != STORE_OK && res->rc != STORE_ENOTFOUND && op->rc == 0)
		op->rc = res->rc;
	op_step(op);
}

static void op_remove_done(const store_result *res, void *arg)
{
	q_job *job = arg;
	q_op *op = job->op;

	if (res->rc != STORE_OK && res->rc != STORE_ENOTFOUND && op->rc == 0)
		op->rc = res->rc;
	job_end(job);
	op_step(op);
}

/* One entry of an operation. */
static void op_entry(q_op *op, Tern__QueueEntry *e)
{
	queue_runner *r = op->r;
	q_job *job = job_find(r, e->id.data);

	op->n++;
	if (op->kind == OP_RETRY) {
		if (job == NULL) {
			e->next_try = (uint64_t)tern_now();
			op->left++;
			store_queue_update(r->st, e, (store_cb){ op_write_done, op, r->io }, NULL);
		}
		store_free_record(e);
		return;
	}
	if (job != NULL) {
		job->remove_after = 1;
		store_free_record(e);
		return;
	}
	/* A removal holds the id like an attempt, so no scan starts one meanwhile. */
	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		store_free_record(e);
		op->rc = STORE_EIO;
		return;
	}
	job->r = r;
	job->removing = 1;
	job->op = op;
	memcpy(job->id, e->id.data, 16);
	queue_id_text(job->id, 16, job->qid);
	store_free_record(e);
	LIST_INSERT_HEAD(&r->jobs, job, link);
	atomic_fetch_add(&r->n_in_flight, 1);
	op->left++;
	tlog(TLOG_MAIL, "Queue-ID: %s removed from the queue by the administrator", job->qid);
	store_queue_remove(r->st, job->id, (store_cb){ op_remove_done, job, r->io }, NULL);
}

/* Whether recipient address (any case) of e is still pending. */
static int entry_has_pending(const Tern__QueueEntry *e, const char *address)
{
	for (size_t i = 0; i < e->n_rcpts; i++)
		if (e->rcpts[i]->state == TERN__QUEUE_RCPT__STATE__PENDING &&
		    strcasecmp(e->rcpts[i]->address, address) == 0)
			return 1;
	return 0;
}

static void op_run(void *arg)
{
	q_op *op = arg;
	queue_runner *r = op->r;

	op->left = 1;
	if (op->all) {
		Tern__QueueEntry **list = NULL;
		size_t n = 0;
		op->rc = store_queue_list(r->st, &list, &n);
		for (size_t i = 0; i < n; i++) {
			if (op->rcpt == NULL || entry_has_pending(list[i], op->rcpt))
				op_entry(op, list[i]);
			else
				store_free_record(list[i]);
		}
		free(list);
	} else {
		Tern__QueueEntry *e = NULL;
		op->rc = store_queue_get(r->st, op->id, &e);
		if (op->rc == STORE_OK)
			op_entry(op, e);
	}
	op_step(op);
}

static void op_post(queue_runner *r, q_op_kind kind, const uint8_t *id, tern_io *done_io,
		    void (*done)(int rc, unsigned n, void *arg), void *arg)
{
	q_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		abort();   /* as tern_io_post: losing an operation silently is worse */
	op->r = r;
	op->kind = kind;
	op->all = id == NULL;
	if (id != NULL)
		memcpy(op->id, id, 16);
	op->done_io = done_io;
	op->done = done;
	op->arg = arg;
	tern_io_post(r->io, op_run, op);
}

int queue_list(queue_runner *r, Tern__QueueEntry ***list_r, size_t *n_r)
{
	return store_queue_list(r->st, list_r, n_r);
}

void queue_retry(queue_runner *r, const uint8_t *id, tern_io *done_io,
		 void (*done)(int rc, unsigned n, void *arg), void *arg)
{
	op_post(r, OP_RETRY, id, done_io, done, arg);
}

void queue_retry_rcpt(queue_runner *r, const char *address)
{
	q_op *op = calloc(1, sizeof(*op));

	if (op == NULL || (op->rcpt = strdup(address)) == NULL)
		abort();
	op->r = r;
	op->kind = OP_RETRY;
	op->all = 1;
	tern_io_post(r->io, op_run, op);
}

void queue_remove(queue_runner *r, const uint8_t *id, tern_io *done_io,
		  void (*done)(int rc, unsigned n, void *arg), void *arg)
{
	op_post(r, OP_REMOVE, id, done_io, done, arg);
}

static void run_job(void *arg)
{
	runner_kick(arg);
}

void queue_run(queue_runner *r)
{
	tern_io_post(r->io, run_job, r);
}

void queue_runner_stats(queue_runner *r, queue_stats *out)
{
	out->delivered = atomic_load(&r->n_delivered);
	out->deferred = atomic_load(&r->n_deferred);
	out->failed = atomic_load(&r->n_failed);
	out->bounced = atomic_load(&r->n_bounced);
	out->delayed = atomic_load(&r->n_delayed);
	out->in_flight = atomic_load(&r->n_in_flight);
	out->connections = atomic_load(&r->n_active);
}

/* ---- life cycle ---- */

queue_runner *queue_runner_new(const queue_env *env, char **error_r)
{
	queue_runner *r = calloc(1, sizeof(*r));
	const tern_conf *conf = env->conf;

	if (r == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	r->st = env->st;
	r->conf = conf;
	r->io = env->io;
	r->dns = env->dns;
	r->dlv = env->dlv;
	snprintf(r->hostname, sizeof(r->hostname), "%s",
		 env->hostname != NULL && env->hostname[0] ? env->hostname : "localhost");
	LIST_INIT(&r->jobs);
	TAILQ_INIT(&r->waiting);
	if (queue_route_parse_static(conf->queue_static_mx, (unsigned)conf->queue_remote_port,
				     &r->smx, &r->nsmx, error_r) < 0)
		goto fail;
	if (conf->queue_relay_user[0] != '\0') {
		if (conf->queue_relay_password_file[0] == '\0' ||
		    (r->relay_password = tern_read_first_line(conf->queue_relay_password_file)) == NULL) {
			tbuf b = TBUF_INIT;
			tbuf_appendf(&b, "queue.relay_password_file: cannot read \"%s\"",
				     conf->queue_relay_password_file);
			*error_r = tbuf_steal(&b);
			goto fail;
		}
	}
	struct event_base *base = tern_io_base(r->io);
	r->timer = event_new(base, -1, EV_PERSIST, scan_cb, r);
	r->scan_ev = event_new(base, -1, 0, scan_cb, r);
	if (r->timer == NULL || r->scan_ev == NULL) {
		*error_r = strdup("cannot make the queue timers");
		goto fail;
	}
	return r;
fail:
	queue_runner_free(&r);
	return NULL;
}

static void start_job(void *arg)
{
	queue_runner *r = arg;
	struct timeval tv = { r->conf->queue_check_interval, 0 };

	event_add(r->timer, &tv);
	runner_kick(r);
}

void queue_runner_start(queue_runner *r)
{
	store_queue_watch(r->st, r->io, watch_cb, r);
	tern_io_post(r->io, start_job, r);
}

void queue_runner_free(queue_runner **rp)
{
	queue_runner *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	while (!LIST_EMPTY(&r->jobs)) {
		q_job *job = LIST_FIRST(&r->jobs);
		LIST_REMOVE(job, link);
		job_free(job);
	}
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->scan_ev != NULL)
		event_free(r->scan_ev);
	if (r->relay_password != NULL) {
		explicit_bzero(r->relay_password, strlen(r->relay_password));
		free(r->relay_password);
	}
	free(r->smx);
	free(r);
}
