/* ternd_migrate.c - the daemon's side of live mailbox migration (migrate/): the hooks
 * that the migrate module calls on its own threads. "released" wakes the outgoing queue
 * so that mail held for a mailbox while it was frozen goes out now; "report" delivers the
 * result message to the admin who asked, from postmaster@<the admin's domain>, through
 * the deliverer like the server's other generated messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ternd_private.h"

/* Header-safe text: printable ASCII, no line breaks (subjects come from the runner). */
static void put_clean(tbuf *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		tbuf_append_char(out, ch < 0x20 || ch > 0x7e ? ' ' : (char)ch);
	}
}

int ternd_mig_message(tbuf *out, const char *hostname, const char *admin, const char *subject,
		      const char *body, int64_t now)
{
	const char *at = strchr(admin, '@');
	if (at == NULL || at[1] == '\0' || !tern_valid_address(admin))
		return -1;
	char date[64];
	time_t t = (time_t)now;
	struct tm tm;
	localtime_r(&t, &tm);
	if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		return -1;
	uint8_t id[16];
	char uuid[37];
	tern_uuid_new(id);
	tern_uuid_str(id, uuid);
	tbuf_appendf(out, "From: Mail Server <postmaster@%s>\r\nTo: <%s>\r\nSubject: ", at + 1, admin);
	put_clean(out, subject);
	tbuf_appendf(out, "\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
		     "Auto-Submitted: auto-generated\r\n\r\n", date, uuid, hostname);
	/* body: CRLF lines, whatever the runner wrote */
	for (const char *p = body ? body : ""; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			tbuf_append(out, "\r\n", 2);
		else
			tbuf_append_char(out, *p);
	}
	if (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0)
		tbuf_append(out, "\r\n", 2);
	return 0;
}

/* The report is durable (or refused): logged, the in-flight count drops. */
static void report_done(const deliver_result *r, void *arg)
{
	ternd_mig_hooks *h = arg;
	if (r->rc != STORE_OK)
		tlog(TLOG_ERROR, "Migration report not delivered: %s", r->reply);
	pthread_mutex_lock(&h->mu);
	h->reports--;
	pthread_mutex_unlock(&h->mu);
}

/* migrate_options.report: one plain-text message to admin. */
static void hook_report(void *arg, const char *admin, const char *subject, const char *body)
{
	ternd_mig_hooks *h = arg;
	tbuf msg = TBUF_INIT;
	if (admin == NULL || admin[0] == '\0' ||
	    ternd_mig_message(&msg, h->hostname, admin, subject, body, tern_now()) < 0) {
		tlog(TLOG_OPERATIONS, "Migration report not sent (no administrator address): %s", subject);
		tbuf_free(&msg);
		return;
	}
	pthread_mutex_lock(&h->mu);
	int live = h->live && h->dlv != NULL;
	if (live)
		h->reports++;
	pthread_mutex_unlock(&h->mu);
	if (!live) {
		tbuf_free(&msg);
		return;
	}
	deliver_rcpt_req rcpt = { admin, DELIVER_NOTIFY_NEVER, NULL };
	deliver_message m = { .sender = "", .rcpts = &rcpt, .nrcpts = 1, .data = msg.data, .len = msg.len,
			      .client_ip = "", .service = "Migration" };
	deliver_submit(h->dlv, &m, NULL, report_done, h);   /* the bytes are copied */
	tbuf_free(&msg);
}

/* migrate_options.released: mail queued for the user goes out now. */
static void hook_released(void *arg, const uint8_t user[16])
{
	ternd_mig_hooks *h = arg;
	Tern__User *u = NULL;
	if (store_user_get_by_id(h->st, user, &u) != STORE_OK)
		return;
	char addr[330];
	snprintf(addr, sizeof(addr), "%s@%s", u->name, u->domain);
	tern_lower(addr);
	store_free_record(u);
	pthread_mutex_lock(&h->mu);
	if (h->live && h->queue != NULL)
		queue_retry_rcpt(h->queue, addr);
	pthread_mutex_unlock(&h->mu);
}

int ternd_migrate_open(ternd_mig_hooks *h, cluster *cl, const tern_conf *conf, migrate **m_r, tbuf *err)
{
	pthread_mutex_init(&h->mu, NULL);
	h->inited = 1;
	h->live = 1;
	migrate_options mo = { .st = h->st, .cl = cl, .conf = conf, .released = hook_released,
			       .report = hook_report, .arg = h };
	char *e = NULL;
	if (migrate_open(&mo, m_r, &e) < 0) {
		tbuf_appendf(err, "migration: %s", e ? e : "cannot start");
		free(e);
		return -1;
	}
	return 0;
}

void ternd_migrate_quiesce(ternd_mig_hooks *h)
{
	if (!h->inited)
		return;
	pthread_mutex_lock(&h->mu);
	h->queue = NULL;
	pthread_mutex_unlock(&h->mu);
}

void ternd_migrate_drain(ternd_mig_hooks *h)
{
	if (!h->inited)
		return;
	pthread_mutex_lock(&h->mu);
	h->live = 0;
	pthread_mutex_unlock(&h->mu);
	int left = 0;
	for (int i = 0; i < 500; i++) {   /* at most 5 s: the store is still open */
		pthread_mutex_lock(&h->mu);
		left = h->reports;
		pthread_mutex_unlock(&h->mu);
		if (left <= 0)
			break;
		usleep(10000);
	}
	if (left > 0)
		tlog(TLOG_WARNING, "Migration reports still being written at shutdown");
	pthread_mutex_destroy(&h->mu);
	h->inited = 0;
}
