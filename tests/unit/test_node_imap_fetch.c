/* test_node_imap_fetch.c - FETCH of node/imap (imap_msg.h): attribute parsing, and the
 * exact reply bytes for messages stored with their MIME record (mime_analyze) in a
 * temporary store; flag lists. */
#include <stdlib.h>
#include <time.h>
#include "store_test_util.h"
#include "imap_test_util.h"

#define PREFIX "Return-Path: <ann@example.test>\r\n"

static const char M1[] =
	"From: Ann <ann@example.test>\r\n"
	"To: bob@example.test\r\n"
	"Subject: Test message\r\n"
	"Date: Tue, 1 Feb 1994 21:52:25 -0800\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--XX\r\n"
	"Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
	"\r\n"
	"--YY\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"alt plain\r\n"
	"--YY\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<b>alt</b>\r\n"
	"--YY--\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Caf=C3=A9 cr=\r\n"
	"=C3=A8me au lait\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"From: x@example.test\r\n"
	"\r\n"
	"inner body\r\n"
	"--XX--\r\n";

typedef struct fx {
	test_store *t;
	uint8_t bob[16];
	Tern__MessageMeta *meta;
	imap_msg m;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	f->t = ts_new();
	ts_add_domain(f->t->st);
	ts_add_user(f->t->st, "bob", 0, f->bob);
	it_append(f->t->st, f->bob, M1, PREFIX, TERN__FLAG__FLAG_SEEN, "$Label",
		  760104000 /* 1994-02-01 12:00:00 UTC */, 1, &f->meta, &f->m);
	assert_non_null(f->meta->mime);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	store_free_record(f->meta);
	ts_free(&f->t);
	free(f);
	return 0;
}

static imap_arg atom(const char *s)
{
	imap_arg a = { IMAP_ARG_ATOM, s, strlen(s), NULL, 0, 0 };
	return a;
}

/* Parse the attributes (as a list when n > 1) with the given UID-command flag. */
static int parse(const char *const *atts, size_t n, int uid_cmd, imap_fetch **f_r, const char **err)
{
	imap_arg items[16], list = { IMAP_ARG_LIST, NULL, 0, items, n, 0 };

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++)
		items[i] = atom(atts[i]);
	return imap_fetch_parse(n == 1 ? &items[0] : &list, NULL, uid_cmd, f_r, err);
}

static void expect_reply(fx *f, const char *att, int recent, const char *want)
{
	imap_fetch *fe = NULL;
	const char *err = NULL;
	tbuf out = TBUF_INIT;
	const char *atts[] = { att };

	assert_int_equal(parse(atts, 1, 0, &fe, &err), 0);
	f->m.recent = recent;
	assert_int_equal(imap_fetch_render(fe, &f->m, 0, 0, &out), 0);
	assert_string_equal(tbuf_cstr(&out), want);
	tbuf_free(&out);
	imap_fetch_free(&fe);
	assert_null(fe);
}

/* "* 1 FETCH (NAME {n}\r\ndata)\r\n" */
static void expect_literal(fx *f, const char *att, const char *name, const char *data, size_t n)
{
	tbuf want = TBUF_INIT;

	tbuf_appendf(&want, "* 1 FETCH (%s {%zu}\r\n", name, n);
	tbuf_append(&want, data, n);
	tbuf_append_str(&want, ")\r\n");
	expect_reply(f, att, 0, tbuf_cstr(&want));
	tbuf_free(&want);
}

static void test_parse(void **state)
{
	static const char *const valid[] = { "ALL", "fast", "Full", "BODY[]", "body.peek[header.fields (a b)]<0.10>",
		"BINARY[1.2]", "BINARY.PEEK[1]<5.5>", "BINARY.SIZE[1]", "RFC822", "rfc822.header", "RFC822.TEXT",
		"BODY[1.2.3.MIME]", "BODY[2.HEADER.FIELDS.NOT (\"X-A\" Received)]", "BODY[TEXT]<0.1>", "envelope",
		"BODYSTRUCTURE", "body", "uid", "MODSEQ", "INTERNALDATE", "RFC822.SIZE", "FLAGS" };
	static const char *const invalid[] = { "BODY[", "BODY[MIME]", "BODY[1.0]", "BODY[0]", "BODY[01]",
		"BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS]", "BODY[]<0.0>", "BODY[]<1>", "BODY[]<a.1>",
		"BINARY[TEXT]", "BINARY[1.MIME]", "BINARY.SIZE[1]<0.1>", "FOO", "BODY[1.]", "BODY[TEXT]x",
		"BODY[1..2]", "BODY[4294967296]", "BODY.PEK[]", "BODY[HEADER.FIELDS (a:b)]", "" };
	imap_fetch *fe = NULL;
	const char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		if (parse(&valid[i], 1, 0, &fe, &err) != 0)
			fail_msg("refused \"%s\": %s", valid[i], err);
		imap_fetch_free(&fe);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		err = NULL;
		if (parse(&invalid[i], 1, 0, &fe, &err) != -1)
			fail_msg("accepted \"%s\"", invalid[i]);
		assert_non_null(err);
		assert_null(fe);
	}
	/* Macros are not list elements. */
	const char *in_list[] = { "FLAGS", "ALL" };
	assert_int_equal(parse(in_list, 2, 0, &fe, &err), -1);

	/* Which forms set \Seen. */
	const char *seen[] = { "BODY[]", "RFC822", "RFC822.TEXT", "BINARY[1]" };
	const char *peek[] = { "BODY.PEEK[]", "RFC822.HEADER", "BINARY.PEEK[1]", "BINARY.SIZE[1]", "ENVELOPE" };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(parse(&seen[i], 1, 0, &fe, &err), 0);
		assert_int_equal(imap_fetch_sets_seen(fe), 1);
		imap_fetch_free(&fe);
	}
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(parse(&peek[i], 1, 0, &fe, &err), 0);
		assert_int_equal(imap_fetch_sets_seen(fe), 0);
		imap_fetch_free(&fe);
	}
}

static void test_modifiers(void **state)
{
	imap_arg flags = atom("FLAGS");
	imap_arg mods1[] = { atom("CHANGEDSINCE"), atom("12345") };
	imap_arg l1 = { IMAP_ARG_LIST, NULL, 0, mods1, 2, 0 };
	imap_arg mods2[] = { atom("VANISHED") };
	imap_arg l2 = { IMAP_ARG_LIST, NULL, 0, mods2, 1, 0 };
	imap_arg mods3[] = { atom("CHANGEDSINCE"), atom("x") };
	imap_arg l3 = { IMAP_ARG_LIST, NULL, 0, mods3, 2, 0 };
	imap_arg mods4[] = { atom("CHANGEDSINCE"), atom("7"), atom("VANISHED") };
	imap_arg l4 = { IMAP_ARG_LIST, NULL, 0, mods4, 3, 0 };
	imap_fetch *fe = NULL;
	const char *err;

	(void)state;
	assert_int_equal(imap_fetch_parse(&flags, &l1, 0, &fe, &err), 0);
	assert_int_equal(imap_fetch_changedsince(fe), 12345);
	assert_int_equal(imap_fetch_wants_modseq(fe), 1);
	imap_fetch_free(&fe);
	assert_int_equal(imap_fetch_parse(&flags, &l2, 1, &fe, &err), -1);
	assert_int_equal(imap_fetch_parse(&flags, &l3, 0, &fe, &err), -1);
	assert_int_equal(imap_fetch_parse(&flags, &l4, 0, &fe, &err), -1);
	assert_int_equal(imap_fetch_parse(&flags, &l4, 1, &fe, &err), 0);
	assert_int_equal(imap_fetch_vanished(fe), 1);
	imap_fetch_free(&fe);
	assert_int_equal(imap_fetch_parse(&flags, NULL, 0, &fe, &err), 0);
	assert_int_equal(imap_fetch_wants_modseq(fe), 0);
	imap_fetch_free(&fe);
}

static void test_simple_items(void **state)
{
	fx *f = *state;
	char want[256];

	expect_reply(f, "FLAGS", 0, "* 1 FETCH (FLAGS (\\Seen $Label))\r\n");
	expect_reply(f, "FLAGS", 1, "* 1 FETCH (FLAGS (\\Seen \\Recent $Label))\r\n");
	snprintf(want, sizeof(want), "* 1 FETCH (UID %u)\r\n", f->meta->uid);
	expect_reply(f, "uid", 0, want);
	snprintf(want, sizeof(want), "* 1 FETCH (RFC822.SIZE %zu)\r\n", strlen(PREFIX) + sizeof(M1) - 1);
	expect_reply(f, "RFC822.SIZE", 0, want);
	expect_reply(f, "INTERNALDATE", 0, "* 1 FETCH (INTERNALDATE \" 1-Feb-1994 12:00:00 +0000\")\r\n");
	snprintf(want, sizeof(want), "* 1 FETCH (MODSEQ (%llu))\r\n", (unsigned long long)f->meta->modseq);
	expect_reply(f, "MODSEQ", 0, want);

	/* ENVELOPE and BODYSTRUCTURE are the cached renderings. */
	tbuf w = TBUF_INIT;
	tbuf_append_str(&w, "* 1 FETCH (ENVELOPE ");
	tbuf_append(&w, f->meta->mime->envelope.data, f->meta->mime->envelope.len);
	tbuf_append_str(&w, ")\r\n");
	expect_reply(f, "ENVELOPE", 0, tbuf_cstr(&w));
	tbuf_reset(&w);
	tbuf_append_str(&w, "* 1 FETCH (BODYSTRUCTURE ");
	tbuf_append(&w, f->meta->mime->bodystructure.data, f->meta->mime->bodystructure.len);
	tbuf_append_str(&w, ")\r\n");
	expect_reply(f, "BODYSTRUCTURE", 0, tbuf_cstr(&w));
	tbuf_free(&w);

	/* UID FETCH puts UID first; force_flags and with_modseq add FLAGS and MODSEQ. */
	imap_fetch *fe = NULL;
	const char *err, *atts[] = { "RFC822.SIZE" };
	tbuf out = TBUF_INIT;
	assert_int_equal(parse(atts, 1, 1, &fe, &err), 0);
	assert_int_equal(imap_fetch_render(fe, &f->m, 1, 1, &out), 0);
	snprintf(want, sizeof(want), "* 1 FETCH (UID %u RFC822.SIZE %zu FLAGS (\\Seen $Label) MODSEQ (%llu))\r\n",
		 f->meta->uid, strlen(PREFIX) + sizeof(M1) - 1, (unsigned long long)f->meta->modseq);
	assert_string_equal(tbuf_cstr(&out), want);
	tbuf_free(&out);
	imap_fetch_free(&fe);
}

static void test_sections(void **state)
{
	fx *f = *state;
	const char *text = strstr(M1, "\r\n\r\n") + 4;
	size_t hlen = (size_t)(text - M1);
	tbuf hdr = TBUF_INIT, whole = TBUF_INIT;

	tbuf_append_str(&hdr, PREFIX);
	tbuf_append(&hdr, M1, hlen);
	tbuf_append_str(&whole, PREFIX);
	tbuf_append_str(&whole, M1);

	expect_literal(f, "BODY[]", "BODY[]", whole.data, whole.len);
	expect_literal(f, "RFC822", "RFC822", whole.data, whole.len);
	expect_literal(f, "BODY.PEEK[HEADER]", "BODY[HEADER]", hdr.data, hdr.len);
	expect_literal(f, "RFC822.HEADER", "RFC822.HEADER", hdr.data, hdr.len);
	expect_literal(f, "BODY[TEXT]", "BODY[TEXT]", text, strlen(text));
	expect_literal(f, "BODY[]<2.6>", "BODY[]<2>", "turn-P", 6);
	expect_literal(f, "BODY[HEADER.FIELDS (Subject From)]", "BODY[HEADER.FIELDS (Subject From)]",
		       "From: Ann <ann@example.test>\r\nSubject: Test message\r\n\r\n", 55);
	expect_literal(f, "body.peek[header.fields (SUBJECT return-path)]",
		       "BODY[HEADER.FIELDS (SUBJECT return-path)]",
		       PREFIX "Subject: Test message\r\n\r\n", strlen(PREFIX) + 25);
	expect_literal(f, "BODY[HEADER.FIELDS.NOT (From To Subject Date MIME-Version Content-Type)]",
		       "BODY[HEADER.FIELDS.NOT (From To Subject Date MIME-Version Content-Type)]", PREFIX "\r\n",
		       strlen(PREFIX) + 2);
	expect_literal(f, "BODY[1.1]", "BODY[1.1]", "alt plain", 9);
	expect_literal(f, "BODY[1.2]<0.5>", "BODY[1.2]<0>", "<b>al", 5);
	expect_literal(f, "BODY[1.2]<7.100>", "BODY[1.2]<7>", "/b>", 3);
	expect_literal(f, "BODY[1.2]<50.5>", "BODY[1.2]<50>", "", 0);
	expect_literal(f, "BODY[1.MIME]", "BODY[1.MIME]",
		       "Content-Type: multipart/alternative; boundary=\"YY\"\r\n\r\n", 54);
	expect_literal(f, "BODY[2]", "BODY[2]", "Caf=C3=A9 cr=\r\n=C3=A8me au lait", 31);
	expect_literal(f, "BINARY[2]", "BINARY[2]", "Caf\xc3\xa9 cr\xc3\xa8me au lait", 20);
	expect_reply(f, "BINARY.SIZE[2]", 0, "* 1 FETCH (BINARY.SIZE[2] 20)\r\n");
	expect_literal(f, "BINARY.PEEK[2]<3.7>", "BINARY[2]<3>", "\xc3\xa9 cr\xc3\xa8", 7);
	/* The message/rfc822 part: the part, its message's header and text, its MIME header. */
	expect_literal(f, "BODY[3]", "BODY[3]", "Subject: inner\r\nFrom: x@example.test\r\n\r\ninner body", 50);
	expect_literal(f, "BODY[3.HEADER]", "BODY[3.HEADER]", "Subject: inner\r\nFrom: x@example.test\r\n\r\n", 40);
	expect_literal(f, "BODY[3.TEXT]", "BODY[3.TEXT]", "inner body", 10);
	expect_literal(f, "BODY[3.HEADER.FIELDS (from)]", "BODY[3.HEADER.FIELDS (from)]",
		       "From: x@example.test\r\n\r\n", 24);
	expect_literal(f, "BODY[3.MIME]", "BODY[3.MIME]", "Content-Type: message/rfc822\r\n\r\n", 32);
	expect_literal(f, "BODY[3.1]", "BODY[3.1]", "inner body", 10);
	/* Parts that do not exist, and HEADER of a part that is not a message. */
	expect_reply(f, "BODY[4]", 0, "* 1 FETCH (BODY[4] NIL)\r\n");
	expect_reply(f, "BODY[1.2.3]", 0, "* 1 FETCH (BODY[1.2.3] NIL)\r\n");
	expect_reply(f, "BODY[2.HEADER]", 0, "* 1 FETCH (BODY[2.HEADER] NIL)\r\n");
	tbuf_free(&hdr);
	tbuf_free(&whole);
}

/* Several items in one reply keep their order. */
static void test_list(void **state)
{
	fx *f = *state;
	imap_fetch *fe = NULL;
	const char *err, *atts[] = { "FLAGS", "BODY.PEEK[1.1]", "UID" };
	tbuf out = TBUF_INIT;
	char want[256];

	assert_int_equal(parse(atts, 3, 1, &fe, &err), 0);
	assert_int_equal(imap_fetch_render(fe, &f->m, 0, 0, &out), 0);
	snprintf(want, sizeof(want), "* 1 FETCH (FLAGS (\\Seen $Label) BODY[1.1] {9}\r\nalt plain UID %u)\r\n",
		 f->meta->uid);
	assert_string_equal(tbuf_cstr(&out), want);
	tbuf_free(&out);
	imap_fetch_free(&fe);
}

static void test_flags(void **state)
{
	imap_arg items[] = { atom("\\seen"), atom("$Label"), atom("\\DRAFT"), atom("$label"), atom("Junk") };
	imap_arg list = { IMAP_ARG_LIST, NULL, 0, items, 5, 0 };
	uint32_t flags;
	const char **kw;
	size_t nkw;
	const char *err;

	(void)state;
	assert_int_equal(imap_flags_parse(&list, &flags, &kw, &nkw, &err), 0);
	assert_int_equal(flags, TERN__FLAG__FLAG_SEEN | TERN__FLAG__FLAG_DRAFT);
	assert_int_equal(nkw, 2);
	assert_string_equal(kw[0], "$Label");
	assert_string_equal(kw[1], "Junk");
	free(kw);

	imap_arg one = atom("\\Flagged");
	assert_int_equal(imap_flags_parse(&one, &flags, &kw, &nkw, &err), 0);
	assert_int_equal(flags, TERN__FLAG__FLAG_FLAGGED);
	assert_int_equal(nkw, 0);
	assert_null(kw);

	imap_arg empty = { IMAP_ARG_LIST, NULL, 0, NULL, 0, 0 };
	assert_int_equal(imap_flags_parse(&empty, &flags, &kw, &nkw, &err), 0);
	assert_int_equal(flags, 0);

	const char *bad[] = { "\\Recent", "\\Foo", "a(b", "a]", "\\" };
	for (size_t i = 0; i < 5; i++) {
		imap_arg b = atom(bad[i]);
		assert_int_equal(imap_flags_parse(&b, &flags, &kw, &nkw, &err), -1);
	}
	imap_arg s = { IMAP_ARG_STRING, "x", 1, NULL, 0, 0 };
	assert_int_equal(imap_flags_parse(&s, &flags, &kw, &nkw, &err), -1);

	char *kws[] = { (char *)"$Label", (char *)"Junk" };
	tbuf out = TBUF_INIT;
	imap_flags_render(TERN__FLAG__FLAG_ANSWERED | TERN__FLAG__FLAG_DELETED, kws, 2, 1, &out);
	assert_string_equal(tbuf_cstr(&out), "(\\Answered \\Deleted \\Recent $Label Junk)");
	tbuf_reset(&out);
	imap_flags_render(0, NULL, 0, 0, &out);
	assert_string_equal(tbuf_cstr(&out), "()");
	tbuf_free(&out);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_modifiers),
		cmocka_unit_test(test_flags),
		cmocka_unit_test_setup_teardown(test_simple_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_shutdown();
	return rc;
}
