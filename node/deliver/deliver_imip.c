/* deliver_imip.c - iMIP in (RFC 6047): a delivered message with a text/calendar part is
 * handed to scheduling (node/dav) for each local user that got it and each resource it
 * was sent to (a resource has no mailbox: the booking consumes its mail). Scheduling
 * blocks on store writes and may mail a reply, so it never runs on the thread that
 * delivered: it goes to the cpu pool (freed before the store at shutdown), or to a
 * detached thread when the deliverer has no pool (tools). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_sched.h"
#include "deliver_int.h"
#include "mime.h"

#define IMIP_MAX_BYTES (1024u * 1024u)   /* largest iCalendar part taken */

typedef struct imip_job {
	deliverer *d;
	char *sender;
	char **rcpts;
	size_t n;
	tbuf ical;
} imip_job;

/* The first text/calendar part under p (depth first), or NULL. */
static const Tern__MimePart *imip_find(const Tern__MimePart *p, int depth)
{
	if (p == NULL || depth > 16)
		return NULL;
	if (p->type && p->subtype && strcasecmp(p->type, "text") == 0 && strcasecmp(p->subtype, "calendar") == 0)
		return p;
	for (size_t i = 0; i < p->n_parts; i++) {
		const Tern__MimePart *f = imip_find(p->parts[i], depth + 1);
		if (f != NULL)
			return f;
	}
	return NULL;
}

/* A cheap test before the MIME parse: "text/calendar" anywhere, in any case. */
static int imip_mentions_calendar(const char *p, size_t len)
{
	for (size_t i = 0; i + 13 <= len; i++)
		if ((p[i] == 't' || p[i] == 'T') && strncasecmp(p + i, "text/calendar", 13) == 0)
			return 1;
	return 0;
}

static void imip_job_free(imip_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->rcpts[i]);
	free(j->rcpts);
	free(j->sender);
	tbuf_free(&j->ical);
	free(j);
}

/* Apply the iTIP part for every recipient (pool or thread). */
static void imip_run(void *arg)
{
	imip_job *j = arg;
	dav_env env = { .st = j->d->st, .conf = j->d->conf, .dlv = j->d, .hostname = j->d->hostname };

	for (size_t i = 0; i < j->n; i++)
		if (dav_sched_imip_in(&env, j->rcpts[i], j->sender, j->ical.data, j->ical.len) < 0)
			tlog(TLOG_WARNING, "iMIP from <%s> to <%s> could not be applied", j->sender, j->rcpts[i]);
}

static void imip_done(void *arg)
{
	imip_job_free(arg);
}

static void *imip_thread(void *arg)
{
	imip_run(arg);
	imip_done(arg);
	return NULL;
}

void dlv_imip_dispatch(deliverer *d, const void *msg, size_t len, const char *sender,
		       const char *const *rcpts, size_t n)
{
	if (n == 0 || !imip_mentions_calendar(msg, len))
		return;
	Tern__MimeInfo *mi = mime_analyze(msg, len);
	const Tern__MimePart *part = mi ? imip_find(mi->root, 0) : NULL;
	if (part == NULL || part->body_off + part->body_len > len || part->body_len > 4 * IMIP_MAX_BYTES) {
		mime_info_free(&mi);
		return;
	}
	imip_job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->rcpts = calloc(n, sizeof(char *))) == NULL || (j->sender = strdup(sender)) == NULL)
		abort();
	j->d = d;
	mime_decode_text(part, (const char *)msg + part->body_off, part->body_len, NULL, IMIP_MAX_BYTES, &j->ical);
	mime_info_free(&mi);
	for (size_t i = 0; i < n; i++)
		if ((j->rcpts[j->n++] = strdup(rcpts[i])) == NULL)
			abort();
	if (j->ical.len == 0) {
		imip_job_free(j);
		return;
	}
	if (d->cpu_pool) {
		if (tern_pool_submit(d->cpu_pool, imip_run, imip_done, j, NULL) < 0) {
			tlog(TLOG_WARNING, "iMIP from <%s> not applied: the cpu pool is full", sender);
			imip_job_free(j);
		}
		return;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, imip_thread, j) != 0) {
		tlog(TLOG_ERROR, "iMIP from <%s>: no thread to apply it", sender);
		imip_job_free(j);
	}
	pthread_attr_destroy(&attr);
}
