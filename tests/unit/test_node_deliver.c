/* test_node_deliver.c - the deliverer on a temporary store, without any network: fan-out
 * to users, aliases and a remote address in one batch (per-recipient header prefix, one
 * blob, one queue entry), the domain footer (single part, multipart/mixed, other
 * structures, remote senders, internal recipients skipped), quota refusal with a report
 * to the sender, the quota warning once per interval, outgoing size limits, RCPT-time
 * answers, and the mail.log lines. */
#include "store_test_util.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "deliver_dsn.h"
#include "mail_test_util.h"

#define FOOTER "-- \nExample Corp: mail is confidential."
#define PLAIN "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n" \
	      "Message-ID: <m1@example.test>\r\n\r\nHello Bob.\r\n"

typedef struct fixture {
	test_store *t;
	tern_conf conf;
	deliverer *d;
	char logdir[128];
	uint8_t alice[16], bob[16], carol[16], dave[16], full[16], warn[16];
} fixture;

/* ---- helpers ---- */

static void add_user(store *st, const char *name, int enabled, uint64_t qbytes, uint64_t qitems,
		     uint8_t id[16])
{
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;

	u.name = (char *)name;
	u.domain = (char *)"example.test";
	u.enabled = enabled;
	u.quota_bytes = qbytes;
	u.quota_items = qitems;
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
	memcpy(id, r.res.id, 16);
}

static void set_domain(fixture *f, const char *footer, int skip_internal, uint64_t out_limit)
{
	Tern__Domain *d = NULL;
	char *old;

	assert_int_equal(store_domain_get(f->t->st, "example.test", &d), STORE_OK);
	old = d->footer;
	d->footer = (char *)(footer ? footer : "");
	d->footer_skip_internal = skip_internal;
	d->outgoing_size_limit = out_limit;
	assert_int_equal(store_domain_update(f->t->st, d, STORE_SYNC, NULL), STORE_OK);
	d->footer = old;            /* ours is not the record's to free */
	store_free_record(d);
}

static void set_size_limit(fixture *f, const char *name, uint32_t mode, uint64_t limit)
{
	Tern__User *u = NULL;

	assert_int_equal(store_user_get(f->t->st, "example.test", name, &u), STORE_OK);
	u->size_limit_mode = mode;
	u->size_limit = limit;
	assert_int_equal(store_user_update(f->t->st, u, STORE_SYNC, NULL), STORE_OK);
	store_free_record(u);
}

/* deliver_submit and wait for its callback (which runs on a commit thread: io NULL). */
static deliver_result submit(fixture *f, const char *sender, const char *const *rcpts, const char *data,
			     const char *auth_user)
{
	deliver_message m;

	memset(&m, 0, sizeof(m));
	m.sender = sender;
	m.data = data;
	m.len = strlen(data);
	m.helo = "client.remote.test";
	m.client_ip = "192.0.2.1";
	m.client_host = "client.remote.test";
	m.auth_user = auth_user;
	m.protocol = "ESMTP";
	m.service = "SMTP";
	return mt_deliver(f->d, &m, rcpts);
}

typedef struct stored {
	char *prefix[8];
	char *body[8];
	uint8_t blob[8][32];
	size_t n;
} stored;

typedef struct scan_ctx {
	store *st;
	stored *out;
} scan_ctx;

static int collect(const Tern__MessageMeta *mm, void *arg)
{
	scan_ctx *c = arg;
	stored *s = c->out;
	tbuf body = TBUF_INIT;

	assert_true(s->n < 8);
	s->prefix[s->n] = strndup((const char *)mm->header_prefix.data, mm->header_prefix.len);
	assert_int_equal(mm->blob.len, 32);
	memcpy(s->blob[s->n], mm->blob.data, 32);
	assert_int_equal(store_blob_read(c->st, mm->blob.data, 0, 0, &body), STORE_OK);
	s->body[s->n] = tbuf_steal(&body);
	s->n++;
	return 0;
}

static void inbox(fixture *f, const uint8_t user[16], stored *s)
{
	Tern__Folder *fo = NULL;
	scan_ctx c = { f->t->st, s };

	memset(s, 0, sizeof(*s));
	assert_int_equal(store_folder_find(f->t->st, user, "INBOX", &fo), STORE_OK);
	assert_int_equal(store_msg_scan(f->t->st, user, fo->id.data, 1, collect, &c), STORE_OK);
	store_free_record(fo);
}

static void stored_free(stored *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->prefix[i]);
		free(s->body[i]);
	}
	s->n = 0;
}

static int ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

static char *read_log(fixture *f, const char *name)
{
	char path[256];
	FILE *fp;
	tbuf b = TBUF_INIT;
	char chunk[4096];
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", f->logdir, name);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		tbuf_append(&b, chunk, n);
	fclose(fp);
	return tbuf_steal(&b);
}

/* The queue entry for rcpt, or NULL (caller frees). */
static Tern__QueueEntry *queued_for(fixture *f, const char *rcpt)
{
	Tern__QueueEntry **list = NULL, *found = NULL;
	size_t n = 0;

	assert_int_equal(store_queue_list(f->t->st, &list, &n), STORE_OK);
	for (size_t i = 0; i < n; i++) {
		if (!found && list[i]->n_rcpts == 1 && strcmp(list[i]->rcpts[0]->address, rcpt) == 0) {
			found = list[i];
			list[i] = NULL;
		}
	}
	store_free_list((void **)list, n);
	return found;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	const char *err = NULL;
	char *cerr = NULL;
	tlog_options lo = { 0, 0, 0 };

	f->t = ts_new();
	ts_add_domain(f->t->st);
	add_user(f->t->st, "alice", 1, 0, 0, f->alice);
	add_user(f->t->st, "bob", 1, 0, 0, f->bob);
	add_user(f->t->st, "carol", 1, 0, 0, f->carol);
	add_user(f->t->st, "dave", 0, 0, 0, f->dave);
	add_user(f->t->st, "full", 1, 0, 1, f->full);
	add_user(f->t->st, "warn", 1, 20000, 0, f->warn);
	assert_int_equal(store_alias_add(f->t->st, "example.test", "team", "carol@example.test", NULL, STORE_SYNC, NULL), STORE_OK);
	assert_int_equal(store_alias_add(f->t->st, "example.test", "team", "alice@example.test", NULL, STORE_SYNC, NULL), STORE_OK);
	snprintf(f->logdir, sizeof(f->logdir), "%s/logs", f->t->dir);
	assert_int_equal(mkdir(f->logdir, 0700), 0);
	assert_int_equal(tlog_open(f->logdir, &lo, &err), 0);
	assert_int_equal(tern_conf_load_string(&f->conf, "[smtpd]\nx_envelope_to = 1\n", 0, &cerr), 0);
	f->d = mt_deliverer_new(f->t->st, &f->conf, "mx.example.test");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	deliverer_free(&f->d);
	assert_null(f->d);
	tlog_close();
	tern_conf_free(&f->conf);
	ts_free(&f->t);
	free(f);
	return 0;
}

/* ---- tests ---- */

static void test_fanout_one_batch(void **state)
{
	fixture *f = *state;
	const char *rc[] = { "alice@example.test", "bob@example.test", "team@example.test",
			     "ext@remote.test", NULL };
	deliver_result res = submit(f, "ann@remote.test", rc, PLAIN, NULL);
	const uint8_t *users[3] = { f->alice, f->bob, f->carol };
	const char *names[3] = { "alice@example.test", "bob@example.test", "carol@example.test" };
	uint8_t blob[32];
	Tern__QueueEntry *qe;
	deliver_stats ds;
	char *log, want[512];

	assert_int_equal(res.rc, STORE_OK);
	assert_int_equal(res.delivered_local, 3);
	assert_int_equal(res.queued_remote, 1);
	assert_int_equal(res.over_quota, 0);
	assert_int_equal(strlen(res.queue_id), 17);
	assert_int_equal(res.queue_id[8], '-');
	for (int i = 0; i < 3; i++) {
		stored s;
		char line[128];
		inbox(f, users[i], &s);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.body[0], PLAIN);
		assert_true(strncmp(s.prefix[0], "Return-Path: <ann@remote.test>\r\nReceived: from client.remote.test "
						 "(client.remote.test [192.0.2.1])\r\n\tby mx.example.test (Tern) with ESMTP id ",
				    120) == 0);
		snprintf(line, sizeof(line), "\r\n\tfor <%s>;\r\n\t", names[i]);
		assert_non_null(strstr(s.prefix[0], line));
		assert_non_null(strstr(s.prefix[0], res.queue_id));
		snprintf(line, sizeof(line), "X-Envelope-To: <%s>\r\n", names[i]);
		assert_true(ends_with(s.prefix[0], line));
		if (i == 0)
			memcpy(blob, s.blob[0], 32);
		else
			assert_memory_equal(blob, s.blob[0], 32);     /* one body for all */
		stored_free(&s);
	}
	qe = queued_for(f, "ext@remote.test");
	assert_non_null(qe);
	assert_string_equal(qe->sender, "ann@remote.test");
	assert_int_equal(qe->rcpts[0]->state, TERN__QUEUE_RCPT__STATE__PENDING);
	assert_string_equal(qe->client_ip, "192.0.2.1");
	assert_string_equal(qe->helo, "client.remote.test");
	assert_int_equal(qe->size, strlen(PLAIN) + qe->header_prefix.len);
	assert_memory_equal(qe->blob.data, blob, 32);
	assert_true(strncmp((const char *)qe->header_prefix.data, "Received: from client.remote.test", 33) == 0);
	assert_null(memmem(qe->header_prefix.data, qe->header_prefix.len, "for <", 5));
	store_free_record(qe);

	deliverer_stats(f->d, &ds);
	assert_int_equal(ds.received, 1);
	assert_int_equal(ds.delivered_local, 3);
	assert_int_equal(ds.queued_remote, 1);
	log = read_log(f, "mail.log");
	snprintf(want, sizeof(want), "Recv: Queue-ID: %s, Service: SMTP, From: <ann@remote.test>, "
		 "To: <alice@example.test>, <bob@example.test>, <team@example.test>, <ext@remote.test>, "
		 "Size: %zu, Sender-Host: 192.0.2.1, SSL: no\n", res.queue_id, strlen(PLAIN));
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "Sent: Queue-ID: %s, Recipient: <carol@example.test>, Result: delivered, "
		 "Status: 2.0.0\n", res.queue_id);
	assert_non_null(strstr(log, want));
	free(log);
}

static void test_footer_single_part(void **state)
{
	fixture *f = *state;
	const char *rc[] = { "bob@example.test", "ext@remote.test", NULL };
	const char *want = PLAIN "\r\n-- \r\nExample Corp: mail is confidential.\r\n";
	deliver_result res;
	Tern__QueueEntry *qe;
	tbuf qbody = TBUF_INIT;
	stored s;

	set_domain(f, FOOTER, 0, 0);
	res = submit(f, "alice@example.test", rc, PLAIN, "alice@example.test");
	assert_int_equal(res.rc, STORE_OK);
	inbox(f, f->bob, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.body[0], want);
	qe = queued_for(f, "ext@remote.test");
	assert_non_null(qe);
	assert_int_equal(store_blob_read(f->t->st, qe->blob.data, 0, 0, &qbody), STORE_OK);
	assert_string_equal(tbuf_cstr(&qbody), want);
	assert_string_equal(qe->auth_user, "alice@example.test");
	store_free_record(qe);
	tbuf_free(&qbody);
	stored_free(&s);

	/* a remote sender gets no footer */
	res = submit(f, "ann@remote.test", (const char *[]){ "bob@example.test", NULL }, PLAIN, NULL);
	assert_int_equal(res.rc, STORE_OK);
	inbox(f, f->bob, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.body[1], PLAIN);
	stored_free(&s);
}

static void test_footer_skip_internal(void **state)
{
	fixture *f = *state;
	const char *rc[] = { "bob@example.test", "ext@remote.test", NULL };
	Tern__QueueEntry *qe;
	tbuf qbody = TBUF_INIT;
	stored s;

	set_domain(f, FOOTER, 1, 0);
	assert_int_equal(submit(f, "alice@example.test", rc, PLAIN, NULL).rc, STORE_OK);
	inbox(f, f->bob, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.body[0], PLAIN);
	qe = queued_for(f, "ext@remote.test");
	assert_non_null(qe);
	assert_memory_not_equal(qe->blob.data, s.blob[0], 32);   /* two distinct bodies */
	assert_int_equal(store_blob_read(f->t->st, qe->blob.data, 0, 0, &qbody), STORE_OK);
	assert_non_null(strstr(tbuf_cstr(&qbody), "\r\n\r\n-- \r\nExample Corp: mail is confidential.\r\n"));
	store_free_record(qe);
	tbuf_free(&qbody);
	stored_free(&s);
}

static void test_footer_multipart(void **state)
{
	fixture *f = *state;
	const char *mixed =
		"From: alice@example.test\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed;\r\n\tboundary=\"XYZ\"\r\n\r\n"
		"preamble\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
		"--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"AAAA\r\n--XYZ--\r\nepilogue\r\n";
	const char *alt =
		"From: alice@example.test\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=ALT\r\n\r\n"
		"--ALT\r\nContent-Type: text/plain\r\n\r\nx\r\n--ALT\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--ALT--\r\n";
	const char *b64 = "From: alice@example.test\r\nContent-Type: text/plain; charset=utf-8\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n";
	const char *latin = "From: alice@example.test\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
			    "Content-Transfer-Encoding: 8bit\r\n\r\nna\xefve\r\n";
	const char *rc[] = { "bob@example.test", NULL };
	stored s;
	const char *part;

	set_domain(f, FOOTER, 0, 0);
	assert_int_equal(submit(f, "alice@example.test", rc, mixed, NULL).rc, STORE_OK);
	assert_int_equal(submit(f, "alice@example.test", rc, alt, NULL).rc, STORE_OK);
	assert_int_equal(submit(f, "alice@example.test", rc, b64, NULL).rc, STORE_OK);
	inbox(f, f->bob, &s);
	assert_int_equal(s.n, 3);
	part = strstr(s.body[0], "AAAA\r\n--XYZ\r\nContent-Type: text/plain; charset=us-ascii\r\n");
	assert_non_null(part);
	assert_non_null(strstr(part, "\r\n\r\n-- \r\nExample Corp: mail is confidential.\r\n--XYZ--\r\nepilogue\r\n"));
	assert_true(ends_with(s.body[0], "--XYZ--\r\nepilogue\r\n"));
	assert_string_equal(s.body[1], alt);      /* alternative: unchanged */
	assert_string_equal(s.body[2], b64);      /* base64 text: unchanged */
	stored_free(&s);

	/* a non-ASCII footer is not put into a Latin-1 body, but goes into a UTF-8 8bit one */
	set_domain(f, "Gr\xc3\xbc\xc3\x9f" "e", 0, 0);
	assert_int_equal(submit(f, "alice@example.test", rc, latin, NULL).rc, STORE_OK);
	assert_int_equal(submit(f, "alice@example.test", rc,
				"From: alice@example.test\r\nContent-Type: text/plain; charset=UTF-8\r\n"
				"Content-Transfer-Encoding: 8bit\r\n\r\nhi\r\n", NULL).rc, STORE_OK);
	assert_int_equal(submit(f, "alice@example.test", rc,
				"From: alice@example.test\r\nContent-Type: text/plain; charset=utf-8\r\n"
				"Content-Transfer-Encoding: quoted-printable\r\n\r\nhi=20there\r\n", NULL).rc, STORE_OK);
	inbox(f, f->bob, &s);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.body[3], latin);
	assert_true(ends_with(s.body[4], "hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n"));
	assert_true(ends_with(s.body[5], "hi=20there\r\n\r\nGr=C3=BC=C3=9Fe\r\n"));
	stored_free(&s);
}

static void test_over_quota_dsn(void **state)
{
	fixture *f = *state;
	const char *rc[] = { "bob@example.test", "full@example.test", NULL };
	deliver_result res;
	stored s;
	char reply[256];
	int local;
	const char *ds;

	/* full@ holds one item of its one-item quota after this */
	res = submit(f, "ann@remote.test", (const char *[]){ "full@example.test", NULL }, PLAIN, NULL);
	assert_int_equal(res.rc, STORE_OK);
	assert_int_equal(deliver_check_rcpt(f->d, "full@example.test", 0, &local, reply, sizeof(reply)), STORE_EQUOTA);
	assert_string_equal(reply, "552 5.2.2 <full@example.test>: Mailbox full");
	/* alone: the whole message is refused, nothing to report */
	res = submit(f, "alice@example.test", (const char *[]){ "full@example.test", NULL }, PLAIN, NULL);
	assert_int_equal(res.rc, STORE_EQUOTA);
	assert_string_equal(res.reply, "552 5.2.2 <full@example.test>: Mailbox full");
	inbox(f, f->alice, &s);
	assert_int_equal(s.n, 0);
	/* with another recipient: bob gets it, alice gets a report */
	res = submit(f, "alice@example.test", rc, PLAIN, NULL);
	assert_int_equal(res.rc, STORE_OK);
	assert_int_equal(res.delivered_local, 1);
	assert_int_equal(res.over_quota, 1);
	inbox(f, f->bob, &s);
	assert_int_equal(s.n, 1);
	stored_free(&s);
	inbox(f, f->alice, &s);
	assert_int_equal(s.n, 1);
	assert_true(strncmp(s.prefix[0], "Return-Path: <>\r\nReceived: by mx.example.test (Tern) id ", 55) == 0);
	assert_non_null(strstr(s.body[0], "Subject: Undelivered Mail Returned to Sender\r\n"));
	ds = strstr(s.body[0], "Content-Type: message/delivery-status\r\n");
	assert_non_null(ds);
	assert_non_null(strstr(ds, "Final-Recipient: rfc822;full@example.test\r\nAction: failed\r\nStatus: 5.2.2\r\n"));
	assert_non_null(strstr(ds, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(ds, "Hello Bob."));
	stored_free(&s);
	{
		deliver_stats st;
		char *log = read_log(f, "mail.log");
		deliverer_stats(f->d, &st);
		assert_int_equal(st.over_quota, 1);
		assert_int_equal(st.dsn_sent, 1);
		assert_non_null(strstr(log, "Recipient: <full@example.test>, Result: failed, Status: 5.2.2\n"));
		assert_non_null(strstr(log, ", Service: DSN, From: <>, To: <alice@example.test>, Size: "));
		assert_non_null(strstr(log, ", Report: failed\n"));
		free(log);
	}
	/* NOTIFY=NEVER and the null sender: no report */
	res = submit(f, "", rc, PLAIN, NULL);
	assert_int_equal(res.rc, STORE_OK);
	assert_int_equal(res.over_quota, 1);
	inbox(f, f->alice, &s);
	assert_int_equal(s.n, 1);
	stored_free(&s);
}

static void test_quota_warning_once(void **state)
{
	fixture *f = *state;
	const char *rc[] = { "warn@example.test", NULL };
	tbuf big = TBUF_INIT;
	stored s;
	Tern__Mailbox *mb = NULL;
	size_t want;

	/* a small message: far below 90%, no warning */
	assert_int_equal(submit(f, "ann@remote.test", rc, PLAIN, NULL).rc, STORE_OK);
	inbox(f, f->warn, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(store_mailbox_get(f->t->st, f->warn, &mb), STORE_OK);
	assert_int_equal(mb->quota_warned_at, 0);
	/* then one that brings usage to 91% of the 20000-byte quota */
	want = 20000 * 91 / 100 - mb->bytes - strlen(s.prefix[0]);
	store_free_record(mb);
	stored_free(&s);
	tbuf_append_str(&big, "From: ann@remote.test\r\nSubject: big\r\n\r\n");
	while (big.len + 50 < want)
		tbuf_append_str(&big, "filler filler filler filler filler filler filler\r\n");
	while (big.len < want)
		tbuf_append_char(&big, 'x');
	assert_int_equal(submit(f, "ann@remote.test", rc, tbuf_cstr(&big), NULL).rc, STORE_OK);
	inbox(f, f->warn, &s);
	assert_int_equal(s.n, 3);
	assert_non_null(strstr(s.body[2], "From: Postmaster <postmaster@example.test>\r\n"));
	assert_non_null(strstr(s.body[2], "Your mailbox warn@example.test is almost full."));
	assert_non_null(strstr(s.body[2], "of 19 KB (91%)"));
	assert_true(strncmp(s.prefix[2], "Return-Path: <>\r\n", 17) == 0);
	stored_free(&s);
	/* within the interval: no second warning (quota not enforced for warnings) */
	assert_int_equal(submit(f, "ann@remote.test", rc, PLAIN, NULL).rc, STORE_OK);
	inbox(f, f->warn, &s);
	assert_int_equal(s.n, 4);
	assert_null(strstr(s.body[3], "almost full"));
	stored_free(&s);
	{
		deliver_stats st;
		assert_int_equal(store_mailbox_get(f->t->st, f->warn, &mb), STORE_OK);
		assert_true(mb->quota_warned_at > 0);
		store_free_record(mb);
		deliverer_stats(f->d, &st);
		assert_int_equal(st.quota_warnings, 1);
	}
	tbuf_free(&big);
}

static void test_size_limits(void **state)
{
	fixture *f = *state;
	const char *rc[] = { "ext@remote.test", NULL };
	tbuf msg = TBUF_INIT;
	deliver_result res;

	tbuf_append_str(&msg, "From: alice@example.test\r\n\r\n");
	while (msg.len < 300)
		tbuf_append_str(&msg, "0123456789\r\n");
	set_domain(f, NULL, 0, 200);
	/* the domain's limit applies to its authenticated users (mode 0) */
	res = submit(f, "alice@example.test", rc, tbuf_cstr(&msg), "alice@example.test");
	assert_int_equal(res.rc, STORE_EINVAL);
	assert_string_equal(res.reply, "552 5.3.4 Message size exceeds the limit for this sender");
	assert_null(queued_for(f, "ext@remote.test"));
	/* bare account names are found in the sender's domain */
	assert_int_equal(submit(f, "alice@example.test", rc, tbuf_cstr(&msg), "alice").rc, STORE_EINVAL);
	/* unauthenticated: no sender limit */
	assert_int_equal(submit(f, "alice@example.test", rc, tbuf_cstr(&msg), NULL).rc, STORE_OK);
	/* the user's own limit beats the domain's */
	set_size_limit(f, "alice", 1, 1000);
	assert_int_equal(submit(f, "alice@example.test", rc, tbuf_cstr(&msg), "alice@example.test").rc, STORE_OK);
	set_size_limit(f, "alice", 1, 100);
	set_domain(f, NULL, 0, 0);
	assert_int_equal(submit(f, "alice@example.test", rc, tbuf_cstr(&msg), "alice@example.test").rc,
			 STORE_EINVAL);
	set_size_limit(f, "alice", 2, 100);
	set_domain(f, NULL, 0, 200);
	assert_int_equal(submit(f, "alice@example.test", rc, tbuf_cstr(&msg), "alice@example.test").rc, STORE_OK);
	{
		deliver_stats st;
		deliverer_stats(f->d, &st);
		assert_int_equal(st.refused, 3);
		assert_int_equal(st.queued_remote, 3);
	}
	tbuf_free(&msg);
}

static void test_check_rcpt(void **state)
{
	fixture *f = *state;
	char reply[256];
	int local = -1;

	assert_int_equal(deliver_check_rcpt(f->d, "nobody@example.test", 0, &local, reply, sizeof(reply)),
			 STORE_ENOTFOUND);
	assert_int_equal(local, 1);
	assert_string_equal(reply, "550 5.1.1 <nobody@example.test>: Recipient address rejected: no such user");
	assert_int_equal(deliver_check_rcpt(f->d, "dave@example.test", 0, &local, reply, sizeof(reply)),
			 STORE_EREFUSED);
	assert_true(strncmp(reply, "550 5.2.1 <dave@example.test>", 29) == 0);
	assert_int_equal(deliver_check_rcpt(f->d, "someone@remote.test", 0, &local, reply, sizeof(reply)), 0);
	assert_int_equal(local, 0);
	assert_int_equal(deliver_check_rcpt(f->d, "Bob@Example.Test", 0, &local, reply, sizeof(reply)), 0);
	assert_int_equal(local, 1);
	assert_string_equal(reply, "");
	assert_int_equal(deliver_check_rcpt(f->d, "team@example.test", 0, &local, reply, sizeof(reply)), 0);
	assert_int_equal(deliver_check_rcpt(f->d, "not an address", 0, &local, reply, sizeof(reply)), STORE_EINVAL);
	assert_true(strncmp(reply, "501 5.1.3", 9) == 0);
	/* at delivery, a recipient gone since RCPT fails alone */
	{
		const char *rc[] = { "nobody@example.test", "bob@example.test", NULL };
		deliver_result res = submit(f, "ann@remote.test", rc, PLAIN, NULL);
		assert_int_equal(res.rc, STORE_OK);
		assert_int_equal(res.delivered_local, 1);
		res = submit(f, "ann@remote.test", (const char *[]){ "nobody@example.test", NULL }, PLAIN, NULL);
		assert_int_equal(res.rc, STORE_ENOTFOUND);
		assert_true(strncmp(res.reply, "550 5.1.1", 9) == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fanout_one_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_footer_single_part, setup, teardown),
		cmocka_unit_test_setup_teardown(test_footer_skip_internal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_footer_multipart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_over_quota_dsn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_warning_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_rcpt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
