/* deliver_local.c - the deliverer: one accepted message to its local mailboxes and the
 * queue in ONE durable store batch (store_submit), then the mail.log lines, the failure
 * or success reports (deliver_dsn.c) and the quota warnings.
 *
 * A submission is a job that goes through three steps:
 *   prepare   (caller's thread, or the cpu pool for a large message): copy, size limit,
 *             recipient plan, footer, header prefixes, MIME structure (node/mime),
 *             queue entry;
 *   commit    store_submit(); its callback runs on the caller's I/O thread once durable;
 *   follow-ups reports, quota warnings, iMIP and the recipients a migration held
 *             (deliver_followup.c), each its own durable write; the caller's
 *             callback runs when they are durable too, then the job is freed.
 * A message is refused as a whole only when nothing could be stored (size limit, every
 * recipient unknown or over quota, disk low, write error); otherwise the recipients
 * that failed get a report. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deliver_int.h"
#include "mime.h"

/* Messages above this are prepared on the cpu pool (footer work scans the body). */
#define DLV_INLINE_MAX (1024u * 1024u)

/* The deliverer keeps only the environment and its counters: jobs own everything else. */
deliverer *deliverer_new(const deliver_env *env)
{
	deliverer *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->st = env->st;
	d->conf = env->conf;
	d->cpu_pool = env->cpu_pool;
	snprintf(d->hostname, sizeof(d->hostname), "%s",
		 env->hostname && env->hostname[0] ? env->hostname : tern_conf_hostname(env->conf));
	pthread_mutex_init(&d->warn_mu, NULL);
	return d;
}

void deliverer_free(deliverer **dp)
{
	deliverer *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	pthread_mutex_destroy(&d->warn_mu);
	free(d);
}

void deliverer_stats(deliverer *d, deliver_stats *out)
{
	out->received = atomic_load(&d->received);
	out->delivered_local = atomic_load(&d->delivered_local);
	out->queued_remote = atomic_load(&d->queued_remote);
	out->queued_node = atomic_load(&d->queued_node);
	out->over_quota = atomic_load(&d->over_quota);
	out->failed_local = atomic_load(&d->failed_local);
	out->dsn_sent = atomic_load(&d->dsn_sent);
	out->quota_warnings = atomic_load(&d->warnings_sent);
	out->refused = atomic_load(&d->refused);
}

void dlv_queue_id(const uint8_t id[16], char *out, size_t n)
{
	snprintf(out, n, "%02x%02x%02x%02x-%02x%02x%02x%02x", id[0], id[1], id[2], id[3], id[4], id[5], id[6],
		 id[7]);
}

/* strdup that keeps NULL; out of memory aborts, as tbuf does. */
static char *dlv_dup(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		abort();
	return p;
}

/* Release the job and its deep copy of the message; after the caller's callback only. */
static void job_free(dlv_job *j)
{
	deliver_message *m = &j->m;

	for (size_t i = 0; i < m->nrcpts; i++) {
		free((char *)j->rcpts[i].address);
		free((char *)j->rcpts[i].orcpt);
	}
	free(j->rcpts);
	free((void *)m->data);
	free((char *)m->sender);
	free((char *)m->helo);
	free((char *)m->client_ip);
	free((char *)m->client_host);
	free((char *)m->auth_user);
	free((char *)m->protocol);
	free((char *)m->tls_info);
	free((char *)m->envid);
	free((char *)m->service);
	free((char *)m->report);
	free((char *)m->relayed_from);
	for (size_t i = 0; j->prefixes && i < j->plan.nlocal; i++)
		tbuf_free(&j->prefixes[i]);
	free(j->prefixes);
	free(j->apps);
	free(j->qrcpts);
	free(j->qrcpt_ptrs);
	free(j->delivered);
	tbuf_free(&j->footed);
	mime_info_free(&j->mime);
	tbuf_free(&j->qprefix);
	dlv_plan_free(&j->plan);
	free(j);
}

/* A job with a deep copy of src (the caller may free src on return), a fresh uuid as
 * queue id and the arrival time. */
static dlv_job *job_new(deliverer *d, const deliver_message *src, tern_io *io,
			void (*cb)(const deliver_result *r, void *arg), void *arg)
{
	dlv_job *j = calloc(1, sizeof(*j));
	deliver_message *m;
	void *data;

	if (j == NULL || (data = malloc(src->len ? src->len : 1)) == NULL)
		abort();
	j->d = d;
	j->io = io;
	j->cb = cb;
	j->arg = arg;
	m = &j->m;
	*m = *src;
	memcpy(data, src->data, src->len);
	m->data = data;
	m->sender = dlv_dup(src->sender ? src->sender : "");
	m->helo = dlv_dup(src->helo);
	m->client_ip = dlv_dup(src->client_ip ? src->client_ip : "");
	m->client_host = dlv_dup(src->client_host);
	m->auth_user = dlv_dup(src->auth_user);
	m->protocol = dlv_dup(src->protocol);
	m->tls_info = dlv_dup(src->tls_info);
	m->envid = dlv_dup(src->envid);
	m->service = dlv_dup(src->service ? src->service : "SMTP");
	m->report = dlv_dup(src->report);
	m->relayed_from = dlv_dup(src->relayed_from);
	if ((j->rcpts = calloc(src->nrcpts ? src->nrcpts : 1, sizeof(*j->rcpts))) == NULL)
		abort();
	for (size_t i = 0; i < src->nrcpts; i++) {
		j->rcpts[i].address = dlv_dup(src->rcpts[i].address ? src->rcpts[i].address : "");
		j->rcpts[i].notify = src->rcpts[i].notify;
		j->rcpts[i].orcpt = dlv_dup(src->rcpts[i].orcpt);
	}
	m->rcpts = j->rcpts;
	atomic_init(&j->pending, 1);
	tern_uuid_new(j->uuid);
	dlv_queue_id(j->uuid, j->queue_id, sizeof(j->queue_id));
	j->now = tern_now();
	return j;
}

static void job_refuse(dlv_job *j, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message as a whole is refused with rc and this SMTP reply. */
static void job_refuse(dlv_job *j, int rc, const char *fmt, ...)
{
	va_list ap;

	j->res.rc = rc;
	va_start(ap, fmt);
	vsnprintf(j->res.reply, sizeof(j->res.reply), fmt, ap);
	va_end(ap);
}

/* Clients of the relay group are hidden in Received lines when the setting says so. */
static int job_hide_client(const dlv_job *j)
{
	const tern_conf *c = j->d->conf;
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	if (!c->smtpd_hide_local_ip || !c->smtpd_relay_ipgroup || !c->smtpd_relay_ipgroup[0] ||
	    !j->m.client_ip[0])
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, j->m.client_ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, j->m.client_ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		return 0;
	return store_ipgroup_match(j->d->st, c->smtpd_relay_ipgroup, (struct sockaddr *)&ss) == 1;
}

/* The sender's local domain record when the sender is in a local domain, else NULL. */
static Tern__Domain *job_sender_domain(const dlv_job *j)
{
	char local[65], domain[254], canon[254];
	Tern__Domain *dom = NULL;

	if (tern_split_address(j->m.sender, local, sizeof(local), domain, sizeof(domain)) < 0 ||
	    store_domain_resolve(j->d->st, domain, canon, sizeof(canon)) != STORE_OK ||
	    store_domain_get(j->d->st, canon, &dom) != STORE_OK)
		return NULL;
	return dom;
}

/* Bodies: with the footer for remote recipients, and for local ones unless the domain
 * keeps the footer off internal mail. Users on other nodes are internal too: an entry that
 * holds only them carries the local body (one entry has one body, so when it also holds
 * remote recipients they all get the remote one). Relayed mail got its footer at the
 * node that accepted it. */
static void job_bodies(dlv_job *j, const void **local_r, size_t *local_len_r)
{
	Tern__Domain *dom = j->m.relayed_from ? NULL : job_sender_domain(j);
	int footed = dom && dom->footer && dom->footer[0] &&
		     dlv_footer_apply(j->m.data, j->m.len, dom->footer, &j->footed);

	if (footed && !dom->footer_skip_internal) {
		*local_r = j->footed.data;
		*local_len_r = j->footed.len;
	} else {
		*local_r = j->m.data;
		*local_len_r = j->m.len;
	}
	if (footed && j->plan.nremote > j->plan.nnode) {
		j->qbody = j->footed.data;
		j->qlen = j->footed.len;
	} else {
		j->qbody = *local_r;
		j->qlen = *local_len_r;
	}
	if (dom)
		store_free_record(dom);
}

void dlv_job_entry(const dlv_job *j, const uint8_t id[16], Tern__QueueEntry *qe, Tern__QueueRcpt **rcpts,
		   size_t n)
{
	tern__queue_entry__init(qe);
	qe->id.data = (uint8_t *)id;
	qe->id.len = 16;
	qe->sender = (char *)j->m.sender;
	qe->n_rcpts = n;
	qe->rcpts = rcpts;
	qe->header_prefix.data = (uint8_t *)j->qprefix.data;
	qe->header_prefix.len = j->qprefix.len;
	qe->created = (uint64_t)j->now;
	qe->next_try = (uint64_t)j->now;
	if (j->plan.bounced)            /* let the nodes' views of the home agree first */
		qe->next_try += (uint64_t)j->d->conf->cluster_relay_retry;
	qe->envid = j->m.envid ? (char *)j->m.envid : "";
	qe->ret = j->m.ret;
	qe->helo = j->m.helo ? (char *)j->m.helo : "";
	qe->client_ip = (char *)j->m.client_ip;
	qe->auth_user = j->m.auth_user ? (char *)j->m.auth_user : "";
}

void dlv_job_entry_rcpt(const dlv_job *j, Tern__QueueRcpt *r, const char *address, size_t rcpt)
{
	const deliver_rcpt_req *req = &j->rcpts[rcpt];

	tern__queue_rcpt__init(r);
	r->address = (char *)address;
	r->state = TERN__QUEUE_RCPT__STATE__PENDING;
	r->notify = req->notify;
	r->orcpt = req->orcpt ? (char *)req->orcpt : "";
}

/* The queue entry of the remote recipients; it points into the job (no copies). */
static void job_queue_entry(dlv_job *j)
{
	dlv_plan *p = &j->plan;

	if ((j->qrcpts = calloc(p->nremote, sizeof(*j->qrcpts))) == NULL ||
	    (j->qrcpt_ptrs = calloc(p->nremote, sizeof(*j->qrcpt_ptrs))) == NULL)
		abort();
	for (size_t i = 0; i < p->nremote; i++) {
		dlv_job_entry_rcpt(j, &j->qrcpts[i], p->remote[i].address, p->remote[i].rcpt);
		j->qrcpt_ptrs[i] = &j->qrcpts[i];
	}
	dlv_job_entry(j, j->uuid, &j->qe, j->qrcpt_ptrs, p->nremote);
}

/* How the recipients are planned: relayed mail is final; relayed by this very node, it
 * is the queue's hand-back of mail for users homed here. */
static unsigned job_plan_flags(const dlv_job *j)
{
	const char *self = store_node_name(j->d->st);
	unsigned flags = 0;

	if (j->m.relayed_from != NULL) {
		flags |= DLV_PLAN_FINAL;
		if (self != NULL && self[0] != '\0' && strcmp(j->m.relayed_from, self) == 0)
			flags |= DLV_PLAN_HANDBACK;
	}
	return flags;
}

/* Everything up to the store call; sets res on a refusal (prepared stays 0). */
static void job_prepare(void *arg)
{
	dlv_job *j = arg;
	deliverer *d = j->d;
	dlv_plan *p = &j->plan;
	/* a relayed message was held to the sender's limit where it was accepted */
	uint64_t limit = j->m.relayed_from ? 0 : dlv_size_limit(d->st, j->m.auth_user, j->m.sender);
	const void *lbody;
	size_t llen;
	int hide, rc;

	if (limit && j->m.len > limit) {
		job_refuse(j, STORE_EINVAL, "552 5.3.4 Message size exceeds the limit for this sender");
		return;
	}
	unsigned flags = job_plan_flags(j);
	const char *from_node = (flags & DLV_PLAN_HANDBACK) ? NULL : j->m.relayed_from;
	if ((rc = dlv_plan_build(d->st, j->rcpts, j->m.nrcpts, flags, from_node, p)) != 0) {
		if (rc == STORE_EREFUSED && p->held)
			job_refuse(j, rc, "450 4.2.1 <%s>: mailbox is being moved to another server, try again later",
				   p->held_address);
		else
			job_refuse(j, rc, "451 4.3.0 Temporary lookup failure, try again later");
		return;
	}
	if (p->nlocal == 0 && p->nremote == 0 && p->nresource == 0) {
		if (p->nfailed)
			job_refuse(j, STORE_ENOTFOUND, "%s", p->failed[0].diagnostic);
		else
			job_refuse(j, STORE_ENOTFOUND, "554 5.5.1 No valid recipients");
		return;
	}
	job_bodies(j, &lbody, &llen);
	/* parsed once for all local recipients; large bodies get here on the cpu pool */
	if (p->nlocal)
		j->mime = mime_analyze(lbody, llen);
	hide = job_hide_client(j);
	dlv_received(&j->qprefix, &j->m, d->hostname, j->queue_id, NULL, hide, j->now);
	if ((j->prefixes = calloc(p->nlocal ? p->nlocal : 1, sizeof(*j->prefixes))) == NULL ||
	    (j->apps = calloc(p->nlocal ? p->nlocal : 1, sizeof(*j->apps))) == NULL ||
	    (j->delivered = calloc(p->nlocal ? p->nlocal : 1, sizeof(int))) == NULL)
		abort();
	for (size_t i = 0; i < p->nlocal; i++) {
		store_append *a = &j->apps[i];
		dlv_local_prefix(&j->prefixes[i], &j->m, d->hostname, j->queue_id, p->local[i].address,
				 hide, d->conf->smtpd_x_envelope_to, j->now);
		a->user = p->local[i].id;
		a->header_prefix = j->prefixes[i].data;
		a->header_prefix_len = j->prefixes[i].len;
		a->body = lbody;
		a->body_len = llen;
		a->internaldate = j->now;
		a->enforce_quota = 1;
		a->mime = j->mime;
	}
	if (p->nremote)
		job_queue_entry(j);
	j->prepared = 1;
}

/* mail.log "Recv:" in the guide's format (SSL shown for SMTP only). */
static void job_log_recv(const dlv_job *j)
{
	tbuf line = TBUF_INIT;
	const deliver_message *m = &j->m;

	tbuf_appendf(&line, "Recv: Queue-ID: %s, Service: %s, From: <%s>, To: ", j->queue_id, m->service,
		     m->sender);
	for (size_t i = 0; i < m->nrcpts; i++)
		tbuf_appendf(&line, "%s<%s>", i ? ", " : "", m->rcpts[i].address);
	tbuf_appendf(&line, ", Size: %zu", m->len);
	if (m->auth_user && m->auth_user[0])
		tbuf_appendf(&line, ", User: %s", m->auth_user);
	if (m->client_ip[0])
		tbuf_appendf(&line, ", Sender-Host: %s", m->client_ip);
	if (m->relayed_from && m->relayed_from[0])
		tbuf_appendf(&line, ", Relayed-From: node %s", m->relayed_from);
	if (strcmp(m->service, "SMTP") == 0)
		tbuf_appendf(&line, ", SSL: %s", m->tls_info && m->tls_info[0] ? "yes" : "no");
	if (m->report && m->report[0])
		tbuf_appendf(&line, ", Report: %s", m->report);
	tlog(TLOG_MAIL, "%s", tbuf_cstr(&line));
	tbuf_free(&line);
}

/* The caller's callback with the final result, then the job is gone. */
static void job_finish(dlv_job *j)
{
	if (j->res.rc == STORE_OK)
		snprintf(j->res.reply, sizeof(j->res.reply), "250 2.0.0 Ok: queued as %s", j->queue_id);
	else
		atomic_fetch_add(&j->d->refused, 1);
	snprintf(j->res.queue_id, sizeof(j->res.queue_id), "%s", j->queue_id);
	if (j->cb)
		j->cb(&j->res, j->arg);
	job_free(j);
}

void dlv_job_release(dlv_job *j)
{
	if (atomic_fetch_sub(&j->pending, 1) == 1)
		job_finish(j);
}

/* The store's answer for the batch (on the caller's I/O thread). */
static void job_committed(const store_result *res, void *arg)
{
	dlv_job *j = arg;
	deliverer *d = j->d;
	dlv_plan *p = &j->plan;

	if (res->rc != STORE_OK) {
		if (res->rc == STORE_EREFUSED)   /* a mailbox froze for a migration meanwhile */
			job_refuse(j, res->rc, "450 4.2.1 <%s>: mailbox is being moved to another server, "
				   "try again later", p->nlocal ? p->local[0].address : "");
		else if (res->rc == STORE_EDISK)
			job_refuse(j, res->rc, "452 4.3.1 Insufficient system storage, try again later");
		else if (res->rc == STORE_EQUOTA)
			job_refuse(j, res->rc, "552 5.2.2 <%s>: Mailbox full",
				   p->nlocal ? p->local[0].address : "");
		else
			job_refuse(j, res->rc, "451 4.3.0 Local error in processing, try again later");
		tlog(TLOG_ERROR, "Queue-ID: %s: message not stored: %s", j->queue_id,
		     res->error ? res->error : store_strerror(res->rc));
		dlv_job_release(j);
		return;
	}
	size_t nheld = 0;
	for (size_t i = 0; res->rcpt_rc && i < p->nlocal; i++)
		nheld += res->rcpt_rc[i] == STORE_EREFUSED;
	if (nheld > 0 && nheld == p->nlocal && p->nremote == 0 && p->nresource == 0 &&
	    (job_plan_flags(j) & DLV_PLAN_HANDBACK)) {
		/* the queue's hand-back of one recipient: it stays queued (4xx) */
		job_refuse(j, STORE_EREFUSED, "450 4.2.1 <%s>: mailbox is being moved to another server, "
			   "try again later", p->local[0].address);
		dlv_job_release(j);
		return;
	}
	job_log_recv(j);
	atomic_fetch_add(&d->received, 1);
	for (size_t i = 0; i < p->nlocal; i++) {
		int rc = res->rcpt_rc ? res->rcpt_rc[i] : STORE_OK;
		j->delivered[i] = rc;
		if (rc == STORE_EREFUSED) {
			continue;               /* held by a migration: queued below */
		} else if (rc == STORE_OK) {
			j->res.delivered_local++;
			tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: delivered, Status: 2.0.0",
			     j->queue_id, p->local[i].address);
		} else if (rc == STORE_EQUOTA) {
			j->res.over_quota++;
			dlv_plan_fail(p, p->local[i].address, p->local[i].rcpt, "5.2.2",
				      "552 5.2.2 <%s>: Mailbox full", p->local[i].address);
		} else {
			dlv_plan_fail(p, p->local[i].address, p->local[i].rcpt, "5.1.1",
				      "550 5.1.1 <%s>: mailbox unavailable (%s)", p->local[i].address,
				      store_strerror(rc));
		}
	}
	for (size_t i = 0; i < p->nfailed; i++)
		tlog(TLOG_MAIL, "Sent: Queue-ID: %s, Recipient: <%s>, Result: failed, Status: %s", j->queue_id,
		     p->failed[i].address, p->failed[i].status);
	j->res.queued_remote = (unsigned)(p->nremote - p->nnode);
	j->res.queued_node = (unsigned)p->nnode;
	atomic_fetch_add(&d->delivered_local, j->res.delivered_local);
	atomic_fetch_add(&d->over_quota, j->res.over_quota);
	atomic_fetch_add(&d->failed_local, p->nfailed - j->res.over_quota);
	atomic_fetch_add(&d->queued_remote, p->nremote - p->nnode);
	atomic_fetch_add(&d->queued_node, p->nnode);
	j->res.rc = STORE_OK;
	j->res.delivered_local += (unsigned)p->nresource;
	if (nheld > 0)
		dlv_job_requeue(j, nheld);
	dlv_job_imip(j);
	if (j->m.sender[0])
		dlv_job_report(j);
	dlv_job_quota_warnings(j);
	dlv_job_release(j);
}

/* tern_io_post adapter: refusals reach the caller on its I/O thread, never re-entrantly. */
static void job_post_finish(void *arg)
{
	job_finish(arg);
}

/* Mail for resources only: nothing to store, straight to the follow-ups. */
static void job_post_resources(void *arg)
{
	store_result res = { 0 };
	job_committed(&res, arg);
}

/* After prepare: refuse at once, or hand the batch to the store. */
static void job_prepared(void *arg)
{
	dlv_job *j = arg;

	if (!j->prepared) {
		if (j->io)
			tern_io_post(j->io, job_post_finish, j);
		else
			job_finish(j);
		return;
	}
	if (j->plan.nlocal == 0 && j->plan.nremote == 0) {
		if (j->io)
			tern_io_post(j->io, job_post_resources, j);
		else
			job_post_resources(j);
		return;
	}
	store_submit(j->d->st, j->apps, j->plan.nlocal, j->plan.nremote ? &j->qe : NULL, j->qbody, j->qlen,
		     (store_cb){ job_committed, j, j->io }, NULL);
}

/* Large messages are prepared on the cpu pool when there is one (and room in it). */
void deliver_submit(deliverer *d, const deliver_message *m, tern_io *io,
		    void (*cb)(const deliver_result *r, void *arg), void *arg)
{
	dlv_job *j = job_new(d, m, io, cb, arg);

	if (d->cpu_pool && m->len > DLV_INLINE_MAX &&
	    tern_pool_submit(d->cpu_pool, job_prepare, job_prepared, j, io) == 0)
		return;
	job_prepare(j);
	job_prepared(j);
}
