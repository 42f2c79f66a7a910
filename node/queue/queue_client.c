/* queue_client.c - the SMTP client: one session to one server address for one group of
 * recipients of a queue entry.
 *
 * States follow the conversation, one command at a time: greeting, EHLO (HELO when EHLO
 * is refused), STARTTLS when offered and wanted (then EHLO again), AUTH PLAIN or LOGIN
 * when asked for (a relay to a node of the distributed domain: STARTTLS required with the
 * certificate pinned to the node's fingerprint, then AUTH PLAIN with the node login), MAIL FROM (SIZE, RET, ENVID when offered), one RCPT per recipient
 * (NOTIFY, ORCPT with DSN), DATA with the dot-stuffed header prefix and stored body, QUIT.
 * Replies are framed by qc_on_read (bounded lines, multi-line "250-", enhanced codes) and
 * handed whole to qc_reply_cb for the current state. The session ends only in on_close,
 * which reports the result and frees the client, so nothing is freed under a callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <openssl/evp.h>
#include "queue_int.h"

typedef enum {
	QC_GREETING, QC_EHLO, QC_HELO, QC_STARTTLS, QC_AUTH, QC_AUTH_USER, QC_AUTH_PASS,
	QC_MAIL, QC_RCPT, QC_DATA, QC_DOT, QC_QUIT,
} qc_state;

enum {
	EXT_SIZE = 1, EXT_DSN = 2, EXT_STARTTLS = 4, EXT_AUTH_PLAIN = 8, EXT_AUTH_LOGIN = 16,
};

typedef struct queue_client {
	qc_request req;
	char *host, *helo, *user, *pass;
	char *pin;                    /* req.fingerprint: pinned, required TLS */
	size_t *idx;
	qc_done_fn done;
	void *arg;
	tern_conn *c;
	qc_state state;
	int opened;
	int finished;                 /* the outcome is known: QUIT sent or a failure recorded */
	unsigned ext;
	int tls_started;
	int auth_step;                /* AUTH LOGIN: 0 = user asked next, 1 = password */
	size_t rcpt_i;
	unsigned accepted;
	/* the reply being read */
	unsigned lines;
	int code;
	char first[QC_TEXT_MAX];
	qc_result res;
} queue_client;

static void qc_send_mail(queue_client *q);

/* Derive the enhanced status from a reply: the server's own ("5.1.1") when it gave one of
 * the same class, else X.0.0. */
static void qc_status(int code, const char *text, char *out, size_t n)
{
	const char *p = text;
	int a, b, c, len = 0;

	if (sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &len) == 3 && a == code / 100 &&
	    (p[len] == ' ' || p[len] == '\0')) {
		snprintf(out, n, "%d.%d.%d", a, b, c);
		return;
	}
	snprintf(out, n, "%d.0.0", code / 100 >= 2 && code / 100 <= 5 ? code / 100 : 4);
}

/* A failure of the whole session before the transaction: the caller tries elsewhere. */
static void qc_fail(queue_client *q, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void qc_fail(queue_client *q, int code, const char *fmt, ...)
{
	va_list ap;

	if (!q->finished) {
		q->finished = 1;
		q->res.code = code;
		va_start(ap, fmt);
		vsnprintf(q->res.error, sizeof(q->res.error), fmt, ap);
		va_end(ap);
	}
	tern_conn_close(q->c);
}

/* Say goodbye politely; the result is already complete. */
static void qc_quit(queue_client *q)
{
	q->finished = 1;
	q->state = QC_QUIT;
	tern_conn_printf(q->c, "QUIT\r\n");
	tern_conn_close(q->c);
}

static void qc_b64(const char *in, size_t n, tbuf *out)
{
	size_t need = 4 * ((n + 2) / 3) + 1;

	tbuf_reserve(out, need);
	int len = EVP_EncodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)in,
				  (int)n);
	out->len += (size_t)len;
	out->data[out->len] = '\0';
}

/* xtext (RFC 3461): '+', '=' and anything outside 33..126 as "+HH". */
static void qc_xtext(tbuf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 33 || ch > 126 || ch == '+' || ch == '=')
			tbuf_appendf(out, "+%02X", ch);
		else
			tbuf_append_char(out, (char)ch);
	}
}

/* The EHLO name, or the next step after it (STARTTLS, AUTH, MAIL). */
static void qc_after_ehlo(queue_client *q)
{
	if (q->req.use_tls && !q->tls_started && (q->ext & EXT_STARTTLS)) {
		q->state = QC_STARTTLS;
		tern_conn_printf(q->c, "STARTTLS\r\n");
		return;
	}
	if (q->pin != NULL && !q->tls_started) {
		qc_fail(q, 451, "451 4.7.0 %s offers no STARTTLS: a node is reached over TLS only", q->host);
		return;
	}
	if (q->pin != NULL && !(q->ext & EXT_AUTH_PLAIN)) {
		qc_fail(q, 451, "451 4.7.0 %s offers no AUTH PLAIN for the node login", q->host);
		return;
	}
	if (q->user != NULL) {
		tbuf b = TBUF_INIT;
		if (q->ext & EXT_AUTH_PLAIN) {
			tbuf raw = TBUF_INIT;
			tbuf_append_char(&raw, '\0');
			tbuf_append_str(&raw, q->user);
			tbuf_append_char(&raw, '\0');
			tbuf_append_str(&raw, q->pass != NULL ? q->pass : "");
			qc_b64(raw.data, raw.len, &b);
			explicit_bzero(raw.data, raw.len);
			tbuf_free(&raw);
			q->state = QC_AUTH;
			tern_conn_printf(q->c, "AUTH PLAIN %s\r\n", tbuf_cstr(&b));
			explicit_bzero(b.data, b.len);
			tbuf_free(&b);
			return;
		}
		if (q->ext & EXT_AUTH_LOGIN) {
			q->state = QC_AUTH_USER;
			tern_conn_printf(q->c, "AUTH LOGIN\r\n");
			return;
		}
		qc_fail(q, 451, "451 4.7.0 %s offers no AUTH PLAIN or LOGIN%s", q->host,
			q->tls_started ? "" : " without TLS");
		return;
	}
	qc_send_mail(q);
}

static void qc_send_mail(queue_client *q)
{
	const Tern__QueueEntry *e = q->req.e;
	tbuf cmd = TBUF_INIT;

	tbuf_appendf(&cmd, "MAIL FROM:<%s>", e->sender != NULL ? e->sender : "");
	if (q->ext & EXT_SIZE)
		tbuf_appendf(&cmd, " SIZE=%llu", (unsigned long long)e->size);
	if (q->ext & EXT_DSN) {
		if (e->ret == 1 || e->ret == 2)
			tbuf_appendf(&cmd, " RET=%s", e->ret == 1 ? "FULL" : "HDRS");
		if (e->envid != NULL && e->envid[0] != '\0') {
			tbuf_append_str(&cmd, " ENVID=");
			qc_xtext(&cmd, e->envid);
		}
	}
	tbuf_append_str(&cmd, "\r\n");
	q->state = QC_MAIL;
	tern_conn_write(q->c, cmd.data, cmd.len);
	tbuf_free(&cmd);
}

static void qc_send_rcpt(queue_client *q)
{
	const Tern__QueueRcpt *r = q->req.e->rcpts[q->idx[q->rcpt_i]];
	tbuf cmd = TBUF_INIT;

	tbuf_appendf(&cmd, "RCPT TO:<%s>", r->address);
	if ((q->ext & EXT_DSN) && r->notify != 0) {
		if (r->notify & DELIVER_NOTIFY_NEVER) {
			tbuf_append_str(&cmd, " NOTIFY=NEVER");
		} else {
			const char *sep = " NOTIFY=";
			static const struct { uint32_t bit; const char *name; } bits[] = {
				{ DELIVER_NOTIFY_SUCCESS, "SUCCESS" }, { DELIVER_NOTIFY_FAILURE, "FAILURE" },
				{ DELIVER_NOTIFY_DELAY, "DELAY" },
			};
			for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
				if (r->notify & bits[i].bit) {
					tbuf_appendf(&cmd, "%s%s", sep, bits[i].name);
					sep = ",";
				}
			}
		}
	}
	if ((q->ext & EXT_DSN) && r->orcpt != NULL && strchr(r->orcpt, ';') != NULL)
		tbuf_appendf(&cmd, " ORCPT=%s", r->orcpt);
	tbuf_append_str(&cmd, "\r\n");
	q->state = QC_RCPT;
	tern_conn_write(q->c, cmd.data, cmd.len);
	tbuf_free(&cmd);
}

/* Append data to out with a '.' doubled at the start of every line; *bol tracks whether
 * the next byte starts a line across calls. */
static void qc_stuff(tbuf *out, const char *p, size_t n, int *bol)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (*bol && p[i] == '.') {
			tbuf_append(out, p + start, i - start);
			tbuf_append_char(out, '.');
			start = i;
		}
		*bol = p[i] == '\n';
	}
	tbuf_append(out, p + start, n - start);
}

/* The message after 354: header prefix and the stored body, read in chunks. 0 ok. */
static int qc_send_body(queue_client *q)
{
	const Tern__QueueEntry *e = q->req.e;
	tbuf out = TBUF_INIT, chunk = TBUF_INIT;
	int bol = 1;
	char last = '\n';

	qc_stuff(&out, (const char *)e->header_prefix.data, e->header_prefix.len, &bol);
	tern_conn_write(q->c, out.data, out.len);
	tbuf_reset(&out);
	if (e->blob.len != 32)
		return -1;
	/* size counts the header prefix and the body, as sent. */
	uint64_t body = e->size > e->header_prefix.len ? e->size - e->header_prefix.len : 0;
	for (uint64_t off = 0; off < body;) {
		uint64_t want = body - off < QC_CHUNK ? body - off : QC_CHUNK;
		tbuf_reset(&chunk);
		if (store_blob_read(q->req.st, e->blob.data, off, want, &chunk) != 0 || chunk.len == 0) {
			tbuf_free(&out);
			tbuf_free(&chunk);
			return -1;
		}
		qc_stuff(&out, chunk.data, chunk.len, &bol);
		last = chunk.data[chunk.len - 1];
		tern_conn_write(q->c, out.data, out.len);
		tbuf_reset(&out);
		off += chunk.len;
	}
	if (last != '\n')
		tern_conn_write(q->c, "\r\n", 2);
	tern_conn_write(q->c, ".\r\n", 3);
	tbuf_free(&out);
	tbuf_free(&chunk);
	return 0;
}

/* Record one recipient's answer. */
static void qc_set_rcpt(queue_client *q, size_t i, int code, const char *text)
{
	qc_reply *r = &q->res.rcpt[i];

	r->code = code;
	snprintf(r->text, sizeof(r->text), "%s", text);
	snprintf(r->mta, sizeof(r->mta), "%s", q->host);
	qc_status(code, text + (strlen(text) > 4 ? 4 : strlen(text)), r->status, sizeof(r->status));
}

/* Every recipient still without an answer gets this one (MAIL refused, DATA answer). */
static void qc_set_open_rcpts(queue_client *q, int code, const char *text, int only_accepted)
{
	for (size_t i = 0; i < q->res.n; i++) {
		int accepted = q->res.rcpt[i].code / 100 == 2;
		if (only_accepted ? accepted : q->res.rcpt[i].code == 0)
			qc_set_rcpt(q, i, code, text);
	}
}

/* One whole reply for the current state. */
static void qc_reply_cb(queue_client *q, int code, const char *text)
{
	int ok = code / 100 == 2;

	switch (q->state) {
	case QC_GREETING:
		if (!ok) {
			qc_fail(q, code, "%s", text);
			return;
		}
		q->state = QC_EHLO;
		tern_conn_printf(q->c, "EHLO %s\r\n", q->helo);
		return;
	case QC_EHLO:
		if (!ok && !q->tls_started) {
			q->state = QC_HELO;
			tern_conn_printf(q->c, "HELO %s\r\n", q->helo);
			return;
		}
		if (!ok) {
			qc_fail(q, code, "%s", text);
			return;
		}
		qc_after_ehlo(q);
		return;
	case QC_HELO:
		if (!ok) {
			qc_fail(q, code, "%s", text);
			return;
		}
		q->ext = 0;
		qc_after_ehlo(q);
		return;
	case QC_STARTTLS:
		if (code != 220 && q->pin != NULL) {
			qc_fail(q, 451, "451 4.7.0 %s refused STARTTLS: %s", q->host, text);
			return;
		}
		if (code != 220) {
			/* Offered but refused: carry on in plaintext (opportunistic). */
			q->tls_started = 1;
			q->ext &= ~(unsigned)EXT_STARTTLS;
			qc_after_ehlo(q);
			return;
		}
		if (tern_conn_starttls_client(q->c, q->host, q->pin) < 0) {
			q->res.tls_failed = 1;
			qc_fail(q, 451, "451 4.7.0 cannot start TLS with %s", q->host);
			return;
		}
		q->tls_started = 1;
		q->ext = 0;
		q->state = QC_EHLO;
		tern_conn_printf(q->c, "EHLO %s\r\n", q->helo);   /* sent once TLS is up */
		return;
	case QC_AUTH:
	case QC_AUTH_PASS:
		if (code != 235) {
			qc_fail(q, code / 100 == 5 ? 451 : code, "%s", text);
			return;
		}
		qc_send_mail(q);
		return;
	case QC_AUTH_USER: {
		if (code != 334) {
			qc_fail(q, code / 100 == 5 ? 451 : code, "%s", text);
			return;
		}
		tbuf b = TBUF_INIT;
		if (q->auth_step == 0) {
			qc_b64(q->user, strlen(q->user), &b);
			q->auth_step = 1;   /* the next 334 asks for the password */
		} else {
			const char *p = q->pass != NULL ? q->pass : "";
			qc_b64(p, strlen(p), &b);
			q->state = QC_AUTH_PASS;
		}
		tern_conn_printf(q->c, "%s\r\n", tbuf_cstr(&b));
		explicit_bzero(b.data, b.len);
		tbuf_free(&b);
		return;
	}
	case QC_MAIL:
		q->res.transaction = 1;
		if (!ok) {
			qc_set_open_rcpts(q, code, text, 0);
			qc_quit(q);
			return;
		}
		q->rcpt_i = 0;
		qc_send_rcpt(q);
		return;
	case QC_RCPT:
		qc_set_rcpt(q, q->rcpt_i, code, text);
		if (ok)
			q->accepted++;
		if (++q->rcpt_i < q->res.n) {
			qc_send_rcpt(q);
			return;
		}
		if (q->accepted == 0) {
			qc_quit(q);
			return;
		}
		q->state = QC_DATA;
		tern_conn_printf(q->c, "DATA\r\n");
		return;
	case QC_DATA:
		if (code != 354) {
			qc_set_open_rcpts(q, code, text, 1);
			qc_quit(q);
			return;
		}
		q->state = QC_DOT;
		if (qc_send_body(q) < 0) {
			/* Closing without the final dot makes the server drop the message. */
			qc_set_open_rcpts(q, 451, "451 4.3.0 cannot read the queued message", 1);
			q->finished = 1;
			tern_conn_close(q->c);
		}
		return;
	case QC_DOT:
		qc_set_open_rcpts(q, code, text, 1);
		qc_quit(q);
		return;
	case QC_QUIT:
		return;
	}
}

/* Note the extensions of one EHLO reply line ("250-SIZE 1000", "250 AUTH PLAIN LOGIN"). */
static void qc_ehlo_line(queue_client *q, const char *kw)
{
	char word[32];
	size_t i = 0;

	while (kw[i] != '\0' && kw[i] != ' ' && kw[i] != '=' && i + 1 < sizeof(word)) {
		word[i] = kw[i];
		i++;
	}
	word[i] = '\0';
	if (strcasecmp(word, "SIZE") == 0)
		q->ext |= EXT_SIZE;
	else if (strcasecmp(word, "DSN") == 0)
		q->ext |= EXT_DSN;
	else if (strcasecmp(word, "STARTTLS") == 0)
		q->ext |= EXT_STARTTLS;
	else if (strcasecmp(word, "AUTH") == 0) {
		for (const char *p = kw + i; *p != '\0';) {
			while (*p == ' ' || *p == '=')
				p++;
			size_t len = strcspn(p, " ");
			if (len == 5 && strncasecmp(p, "PLAIN", 5) == 0)
				q->ext |= EXT_AUTH_PLAIN;
			else if (len == 5 && strncasecmp(p, "LOGIN", 5) == 0)
				q->ext |= EXT_AUTH_LOGIN;
			p += len;
		}
	}
}

/* Frame reply lines: "DDD-text" continues, "DDD text" / "DDD" ends a reply. */
static void qc_on_read(tern_conn *c, void *session)
{
	queue_client *q = session;
	struct evbuffer *in = tern_conn_input(c);

	while (!q->finished) {
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > QC_LINE_MAX)
				qc_fail(q, 451, "451 4.5.0 %s sent an over-long reply line", q->host);
			return;
		}
		if ((size_t)eol.pos > QC_LINE_MAX) {
			qc_fail(q, 451, "451 4.5.0 %s sent an over-long reply line", q->host);
			return;
		}
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			return;
		int good = n >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' &&
			   line[1] <= '9' && line[2] >= '0' && line[2] <= '9' &&
			   (n == 3 || line[3] == ' ' || line[3] == '-') && memchr(line, '\0', n) == NULL;
		int code = good ? atoi(line) : 0;
		if (!good || (q->lines > 0 && code != q->code) || ++q->lines > QC_REPLY_LINES_MAX) {
			free(line);
			qc_fail(q, 451, "451 4.5.0 %s sent a malformed reply", q->host);
			return;
		}
		if (q->lines == 1) {
			q->code = code;
			snprintf(q->first, sizeof(q->first), "%s", line);
			if (n > 3)
				q->first[3] = ' ';
		}
		if (q->state == QC_EHLO && q->lines > 1 && n > 4)
			qc_ehlo_line(q, line + 4);
		int last = n == 3 || line[3] == ' ';
		free(line);
		if (last) {
			q->lines = 0;
			qc_reply_cb(q, q->code, q->first);
		}
	}
}

static void *qc_on_open(tern_conn *c, void *ctx)
{
	queue_client *q = ctx;

	q->c = c;
	q->opened = 1;
	q->state = QC_GREETING;
	return q;
}

static void qc_free(queue_client *q)
{
	if (q->pass != NULL) {
		explicit_bzero(q->pass, strlen(q->pass));
		free(q->pass);
	}
	free(q->host);
	free(q->pin);
	free(q->helo);
	free(q->user);
	free(q->idx);
	free(q->res.rcpt);
	free(q);
}

/* The end of every session: complete the result and report it. */
static void qc_on_close(tern_conn *c, void *session)
{
	queue_client *q = session;
	char ip[64] = "";
	const char *why = tern_conn_error(c);

	if (q->c == NULL)
		q->c = c;
	snprintf(ip, sizeof(ip), "%s", tern_conn_peer_ip(c));
	if (!q->opened) {
		snprintf(q->res.error, sizeof(q->res.error), "451 4.4.1 cannot connect to %s[%s]: %s",
			 q->host, ip, why[0] != '\0' ? why : "connection failed");
		q->res.code = 451;
	} else if (!q->finished) {
		/* Lost in the middle: nothing after MAIL counts as delivered. */
		if (q->tls_started && q->state == QC_EHLO)
			q->res.tls_failed = 1;
		if (q->res.tls_failed && q->pin != NULL)
			snprintf(q->res.error, sizeof(q->res.error),
				 "451 4.7.0 %s[%s]: TLS with the pinned certificate failed: %s", q->host, ip,
				 why[0] != '\0' ? why : "connection lost");
		else
			snprintf(q->res.error, sizeof(q->res.error), "451 4.4.2 %s[%s]: %s", q->host, ip,
				 why[0] != '\0' ? why : "connection lost");
		q->res.code = 451;
		if (q->res.transaction) {
			for (size_t i = 0; i < q->res.n; i++) {
				if (q->res.rcpt[i].code == 0 || q->res.rcpt[i].code / 100 == 2)
					qc_set_rcpt(q, i, 451, q->res.error);
			}
		}
	}
	q->done(&q->res, q->arg);
	qc_free(q);
}

static char *qc_dup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int queue_client_start(const qc_request *req, qc_done_fn done, void *arg)
{
	queue_client *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return -1;
	q->req = *req;
	q->done = done;
	q->arg = arg;
	q->host = qc_dup(req->host);
	q->helo = qc_dup(req->helo);
	q->user = qc_dup(req->auth_user);
	q->pass = qc_dup(req->auth_pass);
	q->pin = qc_dup(req->fingerprint);
	q->idx = calloc(req->n ? req->n : 1, sizeof(*q->idx));
	q->res.rcpt = calloc(req->n ? req->n : 1, sizeof(*q->res.rcpt));
	q->res.n = req->n;
	if (q->host == NULL || q->helo == NULL || q->idx == NULL || q->res.rcpt == NULL ||
	    (req->auth_user != NULL && q->user == NULL) ||
	    (req->fingerprint != NULL && q->pin == NULL)) {
		qc_free(q);
		return -1;
	}
	memcpy(q->idx, req->idx, req->n * sizeof(*q->idx));
	q->req.idx = q->idx;
	tern_service_handler h = { .on_open = qc_on_open, .on_read = qc_on_read,
				   .on_close = qc_on_close, .ctx = q,
				   .idle_timeout = req->command_timeout };
	if (tern_client_connect(req->io, (const struct sockaddr *)&req->addr, req->addrlen,
				req->connect_timeout, &h) < 0) {
		qc_free(q);
		return -1;
	}
	return 0;
}
