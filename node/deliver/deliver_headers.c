/* deliver_headers.c - the header lines a delivery adds in front of the stored body: the
 * RFC 5321 4.4 trace line (Received), Return-Path and X-Envelope-To. They make up each
 * recipient's header prefix; the body bytes stay shared. Values that come from the
 * client (HELO, host names, addresses) are cleaned so they cannot break the header. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "deliver_int.h"

#define HELO_MAX 255
#define HOST_MAX 255

void dlv_date(int64_t t, char out[40])
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	long off;

	if (localtime_r(&tt, &tm) == NULL) {
		snprintf(out, 40, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	off = tm.tm_gmtoff / 60;
	if (snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
		     tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
		     (off < 0 ? -off : off) % 60) >= 40)
		out[39] = '\0';
}

/* A client-given word (HELO argument, host name): printable ASCII without spaces,
 * parentheses or brackets that would end our comment; at most max bytes. */
static void hdr_put_word(tbuf *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '(' || ch == ')' || ch == '\\' || ch == ';')
			tbuf_append_char(out, '?');
		else
			tbuf_append_char(out, (char)ch);
	}
}

/* An envelope address inside <>: no line breaks, no angle brackets. */
static void hdr_put_addr(tbuf *out, const char *s)
{
	tbuf_append_char(out, '<');
	for (size_t i = 0; s && s[i] && i < DELIVER_ADDR_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		tbuf_append_char(out, ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>' ? '?' : (char)ch);
	}
	tbuf_append_char(out, '>');
}

void dlv_received(tbuf *out, const deliver_message *m, const char *hostname, const char *queue_id,
		  const char *rcpt, int hide_client, int64_t now)
{
	int client = m->client_ip && m->client_ip[0];
	char date[40];

	tbuf_append_str(out, "Received: ");
	if (client) {
		tbuf_append_str(out, "from ");
		if (m->helo && m->helo[0])
			hdr_put_word(out, m->helo, HELO_MAX);
		else
			tbuf_append_str(out, "unknown");
		if (!hide_client) {
			tbuf_append_str(out, " (");
			if (m->client_host && m->client_host[0])
				hdr_put_word(out, m->client_host, HOST_MAX);
			else
				tbuf_append_str(out, "unknown");
			tbuf_append_str(out, strchr(m->client_ip, ':') ? " [IPv6:" : " [");
			hdr_put_word(out, m->client_ip, 64);
			tbuf_append_str(out, "])");
		}
		tbuf_append_str(out, "\r\n\t");
	}
	tbuf_appendf(out, "by %s (Tern)", hostname);
	if (m->protocol && m->protocol[0]) {
		tbuf_append_str(out, " with ");
		hdr_put_word(out, m->protocol, 16);
	}
	tbuf_appendf(out, " id %s", queue_id);
	if (m->tls_info && m->tls_info[0]) {
		tbuf_append_str(out, "\r\n\t(");
		for (size_t i = 0; m->tls_info[i] && i < 200; i++) {
			unsigned char ch = (unsigned char)m->tls_info[i];
			tbuf_append_char(out, ch < 0x20 || ch >= 0x7f || ch == '(' || ch == ')' ? '?'
					 : (char)ch);
		}
		tbuf_append_char(out, ')');
	}
	if (rcpt) {
		tbuf_append_str(out, "\r\n\tfor ");
		hdr_put_addr(out, rcpt);
	}
	dlv_date(now, date);
	tbuf_appendf(out, ";\r\n\t%s\r\n", date);
}

void dlv_local_prefix(tbuf *out, const deliver_message *m, const char *hostname,
		      const char *queue_id, const char *rcpt, int hide_client, int x_envelope_to,
		      int64_t now)
{
	tbuf_append_str(out, "Return-Path: ");
	hdr_put_addr(out, m->sender ? m->sender : "");
	tbuf_append_str(out, "\r\n");
	dlv_received(out, m, hostname, queue_id, rcpt, hide_client, now);
	if (x_envelope_to) {
		tbuf_append_str(out, "X-Envelope-To: ");
		hdr_put_addr(out, rcpt);
		tbuf_append_str(out, "\r\n");
	}
}
