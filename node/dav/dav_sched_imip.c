/* dav_sched_imip.c - iMIP (RFC 6047): iTIP messages by mail. Out: a multipart/alternative
 * mail (a text/plain summary and the text/calendar part with its method) submitted to the
 * deliverer like any server-made message. In: an iTIP body that reached a local user or a
 * resource, applied to its calendar - a resource decides a booking and mails its REPLY. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "dav_sched_int.h"

typedef struct imip_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int rc;
	char reply[256];
} imip_wait;

/* The deliverer's answer (commit thread, or inline on a refusal). */
static void imip_sent(const deliver_result *r, void *arg)
{
	imip_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->rc = r->rc;
	snprintf(w->reply, sizeof(w->reply), "%s", r->reply);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* s as a header value: as it is when printable ASCII, else one RFC 2047 B-word. */
static void imip_header_text(tbuf *out, const char *s)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s);
	int plain = 1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			plain = 0;
	if (plain) {
		tbuf_append(out, s, n);
		return;
	}
	tbuf_append_str(out, "=?utf-8?B?");
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		tbuf_append_char(out, b64[(v >> 18) & 63]);
		tbuf_append_char(out, b64[(v >> 12) & 63]);
		tbuf_append_char(out, i + 1 < n ? b64[(v >> 6) & 63] : '=');
		tbuf_append_char(out, i + 2 < n ? b64[v & 63] : '=');
	}
	tbuf_append_str(out, "?=");
}

/* Append text with every line ending made CRLF. */
static void imip_crlf(tbuf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			tbuf_append_char(out, '\r');
		tbuf_append_char(out, s[i]);
	}
	if (n > 0 && s[n - 1] != '\n')
		tbuf_append_str(out, "\r\n");
}

/* The whole mail into out. */
static void imip_message(const dav_env *env, const char *from, const char *from_name, const char *to,
			 icalproperty_method method, const char *summary, const char *itip, size_t len,
			 tbuf *out)
{
	const char *mname = icalproperty_method_to_string(method);
	const char *who = from_name && from_name[0] ? from_name : from;
	uint8_t id[16];
	char uuid[37], date[64], bound[48];
	time_t now = (time_t)tern_now();
	struct tm tm;
	tbuf text = TBUF_INIT;

	tern_uuid_new(id);
	tern_uuid_str(id, uuid);
	snprintf(bound, sizeof(bound), "=_tern_%.8s", uuid);
	localtime_r(&now, &tm);
	if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		date[0] = '\0';
	tbuf_append_str(out, "From: ");
	if (from_name && from_name[0]) {
		imip_header_text(out, from_name);
		tbuf_append_char(out, ' ');
	}
	tbuf_appendf(out, "<%s>\r\nTo: <%s>\r\nSubject: ", from, to);
	switch (method) {
	case ICAL_METHOD_REQUEST: tbuf_append_str(&text, "Invitation: "); break;
	case ICAL_METHOD_CANCEL: tbuf_append_str(&text, "Cancelled: "); break;
	default: tbuf_append_str(&text, "Reply: "); break;
	}
	tbuf_append_str(&text, summary);
	imip_header_text(out, tbuf_cstr(&text));
	tbuf_appendf(out, "\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", date, uuid,
		     env->hostname ? env->hostname : "localhost");
	tbuf_appendf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bound);
	tbuf_appendf(out, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Transfer-Encoding: 8bit\r\n\r\n", bound);
	tbuf_reset(&text);
	switch (method) {
	case ICAL_METHOD_REQUEST: tbuf_appendf(&text, "%s invites you to: %s\n", who, summary); break;
	case ICAL_METHOD_CANCEL: tbuf_appendf(&text, "%s has cancelled: %s\n", who, summary); break;
	default: tbuf_appendf(&text, "%s has replied to: %s\n", who, summary); break;
	}
	tbuf_append_str(&text, "\nThe attached invitation can be answered with a calendar program.\n");
	imip_crlf(out, text.data, text.len);
	tbuf_appendf(out, "--%s\r\nContent-Type: text/calendar; charset=utf-8; method=%s\r\n"
		     "Content-Transfer-Encoding: 8bit\r\n\r\n", bound, mname);
	imip_crlf(out, itip, len);
	tbuf_appendf(out, "--%s--\r\n", bound);
	tbuf_free(&text);
}

int sched_imip_send(const dav_env *env, const char *from, const char *from_name, const char *to,
		    icalproperty_method method, const char *summary, const char *itip, size_t len)
{
	tbuf msg = TBUF_INIT;
	imip_wait w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

	if (env->dlv == NULL)
		return -1;
	imip_message(env, from, from_name, to, method, summary, itip, len, &msg);
	deliver_rcpt_req rcpt = { to, 0, NULL };
	deliver_message m = {
		.sender = from, .rcpts = &rcpt, .nrcpts = 1, .data = msg.data, .len = msg.len,
		.helo = env->hostname, .client_ip = "", .protocol = "HTTP", .service = "iMIP",
	};
	deliver_submit(env->dlv, &m, NULL, imip_sent, &w);
	tbuf_free(&msg);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	if (w.rc != STORE_OK)
		tlog(TLOG_WARNING, "iMIP %s from %s to %s not sent: %s", icalproperty_method_to_string(method),
		     from, to, w.reply);
	return w.rc == STORE_OK ? 0 : -1;
}

/* A resource answers an invitation by mail: the booking decision, then its REPLY. */
static int imip_resource(const dav_env *env, const Tern__Resource *r, const char *sender,
			 icalproperty_method method, icalcomponent *cal, const char *ical, size_t len)
{
	char self[SCHED_ADDR_MAX], org[SCHED_ADDR_MAX];
	const char *uid = sched_uid(cal);
	tbuf why = TBUF_INIT, reply = TBUF_INIT;

	dav_book_address(r, self, sizeof(self));
	if (uid == NULL || sched_organizer(cal, org, sizeof(org)) < 0)
		return 1;
	/* bookable_by is checked against the organizer: the mail must come from it */
	if (strcasecmp(sender, org) != 0) {
		tlog(TLOG_WARNING, "iMIP %s for %s ignored: sender <%s> is not the organizer <%s>",
		     icalproperty_method_to_string(method), self, sender, org);
		return 0;
	}
	if (method == ICAL_METHOD_CANCEL) {
		dav_book_cancel(env, r, uid);
		return 0;
	}
	if (method != ICAL_METHOD_REQUEST)
		return 0;
	int rc = dav_book(env, r, org, uid, ical, len, &why);
	const char *ps = rc == 1 ? "ACCEPTED" : "DECLINED";
	if (sched_set_param(cal, self, "PARTSTAT", ps) > 0) {
		if (rc != 1)
			for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
			     c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT))
				if (icalcomponent_isa(c) == ICAL_VEVENT_COMPONENT ||
				    icalcomponent_isa(c) == ICAL_VTODO_COMPONENT)
					icalcomponent_add_property(c, icalproperty_new_comment(tbuf_cstr(&why)));
		sched_itip(cal, ICAL_METHOD_REPLY, self, &reply);
		sched_imip_send(env, self, r->description && r->description[0] ? r->description : NULL, org,
				ICAL_METHOD_REPLY, sched_summary(cal), reply.data, reply.len);
	}
	tbuf_free(&why);
	tbuf_free(&reply);
	return 0;
}

/* The attendee address under which user u is invited in cal: the recipient address or
 * the user's own; NULL when neither is an attendee. */
static const char *imip_user_addr(icalcomponent *cal, const char *recipient, const Tern__User *u,
				  char *buf, size_t n)
{
	if (sched_partstat(cal, recipient) != NULL)
		return recipient;
	snprintf(buf, n, "%s@%s", u->name, u->domain);
	tern_lower(buf);
	return sched_partstat(cal, buf) != NULL ? buf : NULL;
}

int dav_sched_imip_in(const dav_env *env, const char *recipient, const char *sender, const char *ical,
		      size_t len)
{
	icalcomponent *cal = sched_parse(ical, len);
	Tern__Resource *r = NULL;
	Tern__User *u = NULL;
	char buf[SCHED_ADDR_MAX], from[SCHED_ADDR_MAX];
	int rc = 1;

	if (cal == NULL)
		return 1;
	icalproperty_method method = icalcomponent_get_method(cal);
	if ((method != ICAL_METHOD_REQUEST && method != ICAL_METHOD_REPLY && method != ICAL_METHOD_CANCEL) ||
	    sched_uid(cal) == NULL) {
		icalcomponent_free(cal);
		return 1;
	}
	if (store_resource_find(env->st, recipient, &r) == STORE_OK) {
		rc = imip_resource(env, r, sender ? sender : "", method, cal, ical, len);
		store_free_record(r);
	} else if (store_user_find(env->st, recipient, &u) == STORE_OK) {
		if (method == ICAL_METHOD_REPLY) {
			/* the one attendee of a REPLY is the one answering */
			char **att = NULL;
			size_t n = sched_attendees(cal, NULL, 0, &att);
			if (n == 1) {
				snprintf(from, sizeof(from), "%s", att[0]);
				rc = sched_apply_reply(env, u->id.data, from, cal, ical, len) == STORE_OK ? 0 : 1;
			}
			sched_list_free(&att, n);
		} else {
			const char *addr = imip_user_addr(cal, recipient, u, buf, sizeof(buf));
			if (addr != NULL)
				rc = sched_apply_request(env, u->id.data, addr, method, cal, ical, len) == STORE_OK
					     ? 0 : -1;
		}
		store_free_record(u);
	}
	icalcomponent_free(cal);
	return rc;
}
