/* deliver_dsn.c - RFC 3464 delivery status notifications: the report message and its
 * hand-off to the deliverer from the null sender. The report is plain ASCII except for
 * the returned original, which keeps its bytes (the part is then declared 8bit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deliver_dsn.h"
#include "deliver_int.h"

#define BOUNDARY_TRIES 8
#define DIAG_MAX 900          /* a Diagnostic-Code is one logical line; keep it readable */

const char *deliver_dsn_action_name(dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED: return "failed";
	case DSN_ACTION_DELAYED: return "delayed";
	case DSN_ACTION_DELIVERED: return "delivered";
	case DSN_ACTION_RELAYED: return "relayed";
	case DSN_ACTION_EXPANDED: return "expanded";
	}
	return "failed";
}

int deliver_dsn_wanted(uint32_t notify, dsn_action a)
{
	if (notify & DELIVER_NOTIFY_NEVER)
		return 0;
	switch (a) {
	case DSN_ACTION_FAILED:
		return notify == 0 || (notify & DELIVER_NOTIFY_FAILURE);
	case DSN_ACTION_DELAYED:
		return notify == 0 || (notify & DELIVER_NOTIFY_DELAY);
	default:
		return (notify & DELIVER_NOTIFY_SUCCESS) != 0;
	}
}

/* Printable ASCII only, no line breaks: remote replies and our texts go into header-like
 * fields of the report. At most max bytes are taken. */
static void dsn_put_clean(tbuf *out, const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\r' || ch == '\n' || ch == '\t')
			tbuf_append_char(out, ' ');
		else if (ch < 0x20 || ch > 0x7e)
			tbuf_append_char(out, '?');
		else
			tbuf_append_char(out, (char)ch);
	}
}

/* The most serious action of the report decides its subject and explanation. */
static dsn_action dsn_main_action(const dsn_report *r)
{
	dsn_action best = DSN_ACTION_DELIVERED;

	for (size_t i = 0; i < r->nrcpts; i++) {
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			return DSN_ACTION_FAILED;
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			best = DSN_ACTION_DELAYED;
	}
	return best;
}

/* Length of the header section of msg, its final empty line included (the whole message
 * when it has no body). */
static size_t dsn_header_len(const char *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (msg[i + 1] == '\n')
			return i + 2;
		if (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* 8-bit bytes in the returned part make the report declare 8bit. */
static int dsn_has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return 1;
	return 0;
}

/* memmem for a C string needle (the boundary must not occur in the original). */
static int dsn_contains(const char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* The first part: what happened, in words, one line per recipient. */
static void dsn_human(tbuf *out, const dsn_report *r, dsn_action main)
{
	char date[40];

	tbuf_appendf(out, "This is the mail system at host %s.\r\n\r\n", r->reporting_mta);
	switch (main) {
	case DSN_ACTION_FAILED:
		tbuf_append_str(out, "I'm sorry to have to inform you that your message could not\r\n"
				     "be delivered to one or more recipients. It's attached below.\r\n\r\n");
		break;
	case DSN_ACTION_DELAYED:
		tbuf_append_str(out, "Your message could not be delivered yet to one or more\r\n"
				     "recipients. The mail system will keep trying to deliver it;\r\n"
				     "you do not need to send it again.\r\n\r\n");
		break;
	default:
		tbuf_append_str(out, "Your message was successfully delivered to the destination(s)\r\n"
				     "listed below.\r\n\r\n");
		break;
	}
	for (size_t i = 0; i < r->nrcpts; i++) {
		const dsn_rcpt *rc = &r->rcpts[i];
		tbuf_append_str(out, "<");
		dsn_put_clean(out, rc->address, DELIVER_ADDR_MAX);
		tbuf_appendf(out, ">: %s", deliver_dsn_action_name(rc->action));
		if (rc->diagnostic && rc->diagnostic[0]) {
			tbuf_append_str(out, ": ");
			dsn_put_clean(out, rc->diagnostic, DIAG_MAX);
		}
		if (rc->action == DSN_ACTION_DELAYED && rc->will_retry_until) {
			dlv_date(rc->will_retry_until, date);
			tbuf_appendf(out, " (will retry until %s)", date);
		}
		tbuf_append_str(out, "\r\n");
	}
}

/* message/delivery-status: per-message fields, then a block per recipient. */
static void dsn_status_part(tbuf *out, const dsn_report *r)
{
	char date[40];

	tbuf_appendf(out, "Reporting-MTA: dns; %s\r\n", r->reporting_mta);
	if (r->envid && r->envid[0]) {
		tbuf_append_str(out, "Original-Envelope-Id: ");
		dsn_put_clean(out, r->envid, 100);
		tbuf_append_str(out, "\r\n");
	}
	if (r->arrival) {
		dlv_date(r->arrival, date);
		tbuf_appendf(out, "Arrival-Date: %s\r\n", date);
	}
	for (size_t i = 0; i < r->nrcpts; i++) {
		const dsn_rcpt *rc = &r->rcpts[i];
		tbuf_append_str(out, "\r\n");
		if (rc->orcpt && rc->orcpt[0]) {
			tbuf_append_str(out, "Original-Recipient: ");
			if (strchr(rc->orcpt, ';') == NULL)
				tbuf_append_str(out, "rfc822;");
			dsn_put_clean(out, rc->orcpt, DELIVER_ADDR_MAX + 16);
			tbuf_append_str(out, "\r\n");
		}
		tbuf_append_str(out, "Final-Recipient: rfc822;");
		dsn_put_clean(out, rc->address, DELIVER_ADDR_MAX);
		tbuf_appendf(out, "\r\nAction: %s\r\n", deliver_dsn_action_name(rc->action));
		tbuf_append_str(out, "Status: ");
		dsn_put_clean(out, rc->status && rc->status[0] ? rc->status
			      : rc->action == DSN_ACTION_FAILED ? "5.0.0"
			      : rc->action == DSN_ACTION_DELAYED ? "4.0.0" : "2.0.0", 16);
		tbuf_append_str(out, "\r\n");
		if (rc->remote_mta && rc->remote_mta[0]) {
			tbuf_append_str(out, "Remote-MTA: dns; ");
			dsn_put_clean(out, rc->remote_mta, 255);
			tbuf_append_str(out, "\r\n");
		}
		if (rc->diagnostic && rc->diagnostic[0]) {
			tbuf_append_str(out, "Diagnostic-Code: smtp; ");
			dsn_put_clean(out, rc->diagnostic, DIAG_MAX);
			tbuf_append_str(out, "\r\n");
		}
		if (rc->last_attempt) {
			dlv_date(rc->last_attempt, date);
			tbuf_appendf(out, "Last-Attempt-Date: %s\r\n", date);
		}
		if (rc->action == DSN_ACTION_DELAYED && rc->will_retry_until) {
			dlv_date(rc->will_retry_until, date);
			tbuf_appendf(out, "Will-Retry-Until: %s\r\n", date);
		}
	}
}

/* How much of the original goes back: the whole message or its header section. */
static size_t dsn_returned(const dsn_report *r, int *full_r)
{
	size_t hdr = dsn_header_len(r->original, r->original_len);
	size_t max = r->ret == 1 ? DSN_RETURN_FULL_MAX : DSN_RETURN_DEFAULT_MAX;

	*full_r = r->ret != 2 && r->original_len <= max && hdr < r->original_len;
	return *full_r ? r->original_len : hdr;
}

int deliver_dsn_build(const dsn_report *r, tbuf *out)
{
	static const char *const subject[] = {
		[DSN_ACTION_FAILED] = "Undelivered Mail Returned to Sender",
		[DSN_ACTION_DELAYED] = "Delayed Mail (still being retried)",
		[DSN_ACTION_DELIVERED] = "Successful Mail Delivery Report",
	};
	const char *orig = r->original ? r->original : "";
	dsn_report rr = *r;
	char boundary[64], date[40], idtext[37];
	uint8_t rnd[12], id[16];
	size_t ret_len;
	int full, eight;
	dsn_action main;

	if (r->nrcpts == 0 || r->sender == NULL || r->sender[0] == '\0')
		return -1;
	rr.original = orig;
	if (r->original == NULL)
		rr.original_len = 0;
	ret_len = dsn_returned(&rr, &full);
	eight = dsn_has_8bit(orig, ret_len);
	for (int t = 0;; t++) {
		char hex[25];
		tern_random(rnd, sizeof(rnd));
		tern_hex(rnd, sizeof(rnd), hex);
		if (snprintf(boundary, sizeof(boundary), "=_tern-dsn-%s", hex) >= (int)sizeof(boundary))
			return -1;
		if (!dsn_contains(orig, ret_len, boundary) || t >= BOUNDARY_TRIES)
			break;
	}
	main = dsn_main_action(r);
	tern_uuid_new(id);
	tern_uuid_str(id, idtext);
	dlv_date(tern_now(), date);

	tbuf_appendf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->reporting_mta);
	tbuf_append_str(out, "To: <");
	dsn_put_clean(out, r->sender, DELIVER_ADDR_MAX);
	tbuf_append_str(out, ">\r\n");
	tbuf_appendf(out, "Subject: %s\r\n", subject[main]);
	tbuf_appendf(out, "Date: %s\r\n", date);
	tbuf_appendf(out, "Message-ID: <%s@%s>\r\n", idtext, r->reporting_mta);
	tbuf_append_str(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	tbuf_appendf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			  "\tboundary=\"%s\"\r\n", boundary);
	if (eight)
		tbuf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
	tbuf_append_str(out, "\r\nThis is a MIME-encapsulated message.\r\n");

	tbuf_appendf(out, "\r\n--%s\r\n", boundary);
	tbuf_append_str(out, "Content-Description: Notification\r\n"
			     "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	dsn_human(out, r, main);

	tbuf_appendf(out, "\r\n--%s\r\n", boundary);
	tbuf_append_str(out, "Content-Description: Delivery report\r\n"
			     "Content-Type: message/delivery-status\r\n\r\n");
	dsn_status_part(out, r);

	tbuf_appendf(out, "\r\n--%s\r\n", boundary);
	if (full)
		tbuf_append_str(out, "Content-Description: Undelivered Message\r\n"
				     "Content-Type: message/rfc822\r\n");
	else
		tbuf_append_str(out, "Content-Description: Undelivered Message Headers\r\n"
				     "Content-Type: text/rfc822-headers\r\n");
	if (eight)
		tbuf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
	tbuf_append_str(out, "\r\n");
	tbuf_append(out, orig, ret_len);
	if (ret_len > 0 && orig[ret_len - 1] != '\n')
		tbuf_append_str(out, "\r\n");
	tbuf_appendf(out, "\r\n--%s--\r\n", boundary);
	return 0;
}

void deliver_dsn_submit(deliverer *d, const dsn_report *r, tern_io *io,
			void (*cb)(const deliver_result *res, void *arg), void *arg)
{
	tbuf msg = TBUF_INIT;
	deliver_rcpt_req rcpt = { r->sender, DELIVER_NOTIFY_NEVER, NULL };
	deliver_message m;
	deliver_result res;

	if (deliver_dsn_build(r, &msg) < 0) {
		memset(&res, 0, sizeof(res));
		res.rc = STORE_EINVAL;
		snprintf(res.reply, sizeof(res.reply), "no report for the null sender");
		tbuf_free(&msg);
		if (cb)
			cb(&res, arg);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.sender = "";
	m.rcpts = &rcpt;
	m.nrcpts = 1;
	m.data = msg.data;
	m.len = msg.len;
	m.helo = NULL;
	m.client_ip = "";
	m.protocol = NULL;
	m.service = "DSN";
	m.report = deliver_dsn_action_name(dsn_main_action(r));
	atomic_fetch_add(&d->dsn_sent, 1);
	deliver_submit(d, &m, io, cb, arg);
	tbuf_free(&msg);
}
