/* test_node_dsn.c - RFC 3464 reports made by deliver_dsn_build(), parsed back: the
 * multipart/report structure and boundaries, the per-message and per-recipient fields,
 * RET=FULL/HDRS and the size rule for returning the whole message, subjects per action,
 * 8-bit originals, and the RFC 3461 NOTIFY rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "deliver_dsn.h"

#define ORIGINAL "Received: from a.test by mx.a.test\r\n" \
		 "From: Ann <ann@a.test>\r\nTo: bob@b.test\r\nSubject: hello there\r\n" \
		 "Message-ID: <1@a.test>\r\n\r\nThe body line one.\r\nsecond line\r\n"

typedef struct parsed {
	char boundary[128];
	char *head;                 /* top-level header section */
	char *part[4];              /* the parts, each with its headers */
	size_t nparts;
	int closed;                 /* the close delimiter was found */
} parsed;

static char *dup_n(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Split a report into its parts by the boundary of its Content-Type. */
static void parse(const tbuf *msg, parsed *p)
{
	const char *m = msg->data, *end = m + msg->len, *b, *hdr_end, *cur;
	char delim[160];
	size_t dl;

	memset(p, 0, sizeof(*p));
	hdr_end = strstr(m, "\r\n\r\n");
	assert_non_null(hdr_end);
	p->head = dup_n(m, (size_t)(hdr_end - m) + 2);
	assert_non_null(strstr(p->head, "Content-Type: multipart/report; report-type=delivery-status;"));
	b = strstr(p->head, "boundary=\"");
	assert_non_null(b);
	b += 10;
	assert_true(strchr(b, '"') - b < 120);
	memcpy(p->boundary, b, (size_t)(strchr(b, '"') - b));
	dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", p->boundary);
	cur = memmem(hdr_end, (size_t)(end - hdr_end), delim, dl);
	assert_non_null(cur);
	while (cur) {
		const char *start = cur + dl, *next;
		if (start + 2 <= end && memcmp(start, "--", 2) == 0) {
			p->closed = 1;
			assert_true(end - start == 4 && memcmp(start, "--\r\n", 4) == 0);
			break;
		}
		assert_true(memcmp(start, "\r\n", 2) == 0);
		start += 2;
		next = memmem(start, (size_t)(end - start), delim, dl);
		assert_non_null(next);
		assert_true(p->nparts < 4);
		p->part[p->nparts++] = dup_n(start, (size_t)(next - start));
		cur = next;
	}
}

static void parsed_free(parsed *p)
{
	free(p->head);
	for (size_t i = 0; i < p->nparts; i++)
		free(p->part[i]);
}

static const char *body_of(const char *part)
{
	const char *b = strstr(part, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

static dsn_report base_report(const dsn_rcpt *rcpts, size_t n, uint32_t ret)
{
	dsn_report r = { "mx.example.test", "ann@a.test", "ENV-42", 1700000000, ret, ORIGINAL,
			 strlen(ORIGINAL), rcpts, n };
	return r;
}

static void test_failed_full_structure(void **state)
{
	dsn_rcpt rc[2] = {
		{ "bob@b.test", "rfc822;Bob@B.test", DSN_ACTION_FAILED, "5.1.1",
		  "550 5.1.1 <bob@b.test>: no such user\r\nsecond line", "mx.b.test", 1700000100, 0 },
		{ "eve@b.test", NULL, DSN_ACTION_FAILED, "5.2.2", "552 5.2.2 Mailbox full", NULL, 0, 0 },
	};
	dsn_report r = base_report(rc, 2, 1);
	tbuf out = TBUF_INIT;
	parsed p;
	const char *ds;

	(void)state;
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_int_equal(p.nparts, 3);
	assert_true(p.closed);
	assert_non_null(strstr(p.head, "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"));
	assert_non_null(strstr(p.head, "To: <ann@a.test>\r\n"));
	assert_non_null(strstr(p.head, "Subject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(strstr(p.head, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(p.head, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(p.head, "Date: "));
	assert_null(strstr(p.head, "Content-Transfer-Encoding"));
	/* human-readable part */
	assert_non_null(strstr(p.part[0], "Content-Type: text/plain"));
	assert_non_null(strstr(body_of(p.part[0]), "<bob@b.test>: failed: 550 5.1.1"));
	/* machine-readable part */
	assert_non_null(strstr(p.part[1], "Content-Type: message/delivery-status\r\n"));
	ds = body_of(p.part[1]);
	assert_true(strncmp(ds, "Reporting-MTA: dns; mx.example.test\r\n", 37) == 0);
	assert_non_null(strstr(ds, "Original-Envelope-Id: ENV-42\r\n"));
	assert_non_null(strstr(ds, "Arrival-Date: "));
	assert_non_null(strstr(ds, "\r\n\r\nOriginal-Recipient: rfc822;Bob@B.test\r\n"
				   "Final-Recipient: rfc822;bob@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
				   "Remote-MTA: dns; mx.b.test\r\n"
				   "Diagnostic-Code: smtp; 550 5.1.1 <bob@b.test>: no such user  second line\r\n"
				   "Last-Attempt-Date: "));
	assert_non_null(strstr(ds, "\r\n\r\nFinal-Recipient: rfc822;eve@b.test\r\nAction: failed\r\n"
				   "Status: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"));
	assert_null(strstr(ds, "Will-Retry-Until"));
	/* the whole original */
	assert_non_null(strstr(p.part[2], "Content-Type: message/rfc822\r\n"));
	assert_true(strncmp(body_of(p.part[2]), ORIGINAL, strlen(ORIGINAL)) == 0);
	parsed_free(&p);
	tbuf_free(&out);
}

static void test_ret_hdrs(void **state)
{
	dsn_rcpt rc = { "bob@b.test", NULL, DSN_ACTION_FAILED, "5.1.1", "550 5.1.1 no", NULL, 0, 0 };
	dsn_report r = base_report(&rc, 1, 2);
	tbuf out = TBUF_INIT;
	parsed p;

	(void)state;
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_int_equal(p.nparts, 3);
	assert_non_null(strstr(p.part[2], "Content-Type: text/rfc822-headers\r\n"));
	assert_non_null(strstr(body_of(p.part[2]), "Subject: hello there\r\n"));
	assert_null(strstr(out.data, "The body line one."));
	assert_null(strstr(out.data, "message/rfc822"));
	assert_null(strstr(out.data, "Original-Recipient"));
	parsed_free(&p);
	tbuf_free(&out);
}

/* No RET: the whole message when small, its headers when big; RET=FULL: whole. */
static void test_ret_default_big(void **state)
{
	dsn_rcpt rc = { "bob@b.test", NULL, DSN_ACTION_FAILED, "5.0.0", NULL, NULL, 0, 0 };
	tbuf big = TBUF_INIT, out = TBUF_INIT;
	dsn_report r;
	parsed p;

	(void)state;
	tbuf_append_str(&big, "From: ann@a.test\r\nSubject: big one\r\n\r\n");
	while (big.len < DSN_RETURN_DEFAULT_MAX + 10)
		tbuf_append_str(&big, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	tbuf_append_str(&big, "LAST LINE\r\n");
	r = base_report(&rc, 1, 0);
	r.original = big.data;
	r.original_len = big.len;
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_non_null(strstr(p.part[2], "Content-Type: text/rfc822-headers\r\n"));
	assert_null(strstr(out.data, "LAST LINE"));
	parsed_free(&p);

	tbuf_reset(&out);
	r.ret = 1;
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_non_null(strstr(p.part[2], "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(p.part[2], "LAST LINE\r\n"));
	parsed_free(&p);

	tbuf_reset(&out);
	r.ret = 0;
	r.original = ORIGINAL;
	r.original_len = strlen(ORIGINAL);
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_non_null(strstr(p.part[2], "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(p.part[2], "The body line one."));
	parsed_free(&p);
	tbuf_free(&out);
	tbuf_free(&big);
}

static void test_delayed_and_delivered(void **state)
{
	dsn_rcpt d = { "bob@b.test", NULL, DSN_ACTION_DELAYED, "4.4.1", "421 4.4.1 no answer", "mx.b.test",
		       1700000200, 1700432000 };
	dsn_rcpt s = { "bob@b.test", NULL, DSN_ACTION_DELIVERED, "2.0.0", NULL, NULL, 0, 0 };
	dsn_report r = base_report(&d, 1, 2);
	tbuf out = TBUF_INIT;
	parsed p;

	(void)state;
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_non_null(strstr(p.head, "Subject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(body_of(p.part[1]), "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(body_of(p.part[1]), "Will-Retry-Until: "));
	assert_non_null(strstr(body_of(p.part[0]), "will retry until"));
	parsed_free(&p);

	tbuf_reset(&out);
	r = base_report(&s, 1, 2);
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_non_null(strstr(p.head, "Subject: Successful Mail Delivery Report\r\n"));
	assert_non_null(strstr(body_of(p.part[1]), "Action: delivered\r\nStatus: 2.0.0\r\n"));
	parsed_free(&p);
	tbuf_free(&out);
}

/* The most serious action sets the subject; the boundary never occurs in the original. */
static void test_mixed_actions_and_boundary(void **state)
{
	dsn_rcpt rc[2] = {
		{ "a@b.test", NULL, DSN_ACTION_DELIVERED, "2.0.0", NULL, NULL, 0, 0 },
		{ "c@b.test", NULL, DSN_ACTION_FAILED, "5.2.2", NULL, NULL, 0, 0 },
	};
	dsn_report r = base_report(rc, 2, 1);
	tbuf out = TBUF_INIT;
	parsed p;

	(void)state;
	for (int i = 0; i < 20; i++) {
		tbuf_reset(&out);
		assert_int_equal(deliver_dsn_build(&r, &out), 0);
		parse(&out, &p);
		assert_int_equal(p.nparts, 3);
		assert_null(strstr(ORIGINAL, p.boundary));
		assert_non_null(strstr(p.head, "Subject: Undelivered Mail Returned to Sender"));
		parsed_free(&p);
	}
	tbuf_free(&out);
}

static void test_8bit_and_refusals(void **state)
{
	const char *orig = "From: a@a.test\r\nSubject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
	dsn_rcpt rc = { "b@b.test", NULL, DSN_ACTION_FAILED, "5.0.0", "550 bad \x01\xff", NULL, 0, 0 };
	dsn_report r = base_report(&rc, 1, 1);
	tbuf out = TBUF_INIT;
	parsed p;

	(void)state;
	r.original = orig;
	r.original_len = strlen(orig);
	assert_int_equal(deliver_dsn_build(&r, &out), 0);
	parse(&out, &p);
	assert_non_null(strstr(p.head, "Content-Transfer-Encoding: 8bit\r\n"));
	assert_non_null(strstr(p.part[2], "Content-Transfer-Encoding: 8bit\r\n"));
	assert_non_null(strstr(body_of(p.part[1]), "Diagnostic-Code: smtp; 550 bad ??\r\n"));
	parsed_free(&p);

	tbuf_reset(&out);
	r.sender = "";
	assert_int_equal(deliver_dsn_build(&r, &out), -1);
	r.sender = "a@a.test";
	r.nrcpts = 0;
	assert_int_equal(deliver_dsn_build(&r, &out), -1);
	tbuf_free(&out);
}

static void test_notify_rules(void **state)
{
	(void)state;
	assert_true(deliver_dsn_wanted(0, DSN_ACTION_FAILED));
	assert_true(deliver_dsn_wanted(0, DSN_ACTION_DELAYED));
	assert_false(deliver_dsn_wanted(0, DSN_ACTION_DELIVERED));
	assert_false(deliver_dsn_wanted(DELIVER_NOTIFY_NEVER, DSN_ACTION_FAILED));
	assert_false(deliver_dsn_wanted(DELIVER_NOTIFY_NEVER, DSN_ACTION_DELAYED));
	assert_true(deliver_dsn_wanted(DELIVER_NOTIFY_SUCCESS, DSN_ACTION_DELIVERED));
	assert_false(deliver_dsn_wanted(DELIVER_NOTIFY_SUCCESS, DSN_ACTION_FAILED));
	assert_true(deliver_dsn_wanted(DELIVER_NOTIFY_FAILURE | DELIVER_NOTIFY_DELAY, DSN_ACTION_DELAYED));
	assert_false(deliver_dsn_wanted(DELIVER_NOTIFY_FAILURE, DSN_ACTION_DELAYED));
	assert_string_equal(deliver_dsn_action_name(DSN_ACTION_RELAYED), "relayed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_full_structure),
		cmocka_unit_test(test_ret_hdrs),
		cmocka_unit_test(test_ret_default_big),
		cmocka_unit_test(test_delayed_and_delivered),
		cmocka_unit_test(test_mixed_actions_and_boundary),
		cmocka_unit_test(test_8bit_and_refusals),
		cmocka_unit_test(test_notify_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
