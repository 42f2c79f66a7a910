/* test_node_mime.c - node/mime: ENVELOPE and BODYSTRUCTURE of the corpus in
 * tests/unit/mime/ (X.eml with the expected X.bodystructure and X.envelope, checked
 * against Dovecot 2.3 except where mime_int.h's conventions differ: a bad Content-Type
 * is text/plain, octets are raw bytes), part offsets checked by slicing the input, part
 * lookup, decoding, and the depth and part limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "mime.h"

static const char *corpus[] = {
	"simple", "qp_charset", "alternative", "mixed_attach", "nested", "rfc822", "encoded_words",
	"group", "empty_body", "missing_final", "no_boundary", "bad_ctype", "no_separator",
	"eightbit_headers", "lf_only",
};

/* tests/unit/mime/<name><ext> read whole; the directory is found from this file's path. */
static void load(const char *name, const char *ext, tbuf *out)
{
	char path[1024];
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;
	char chunk[4096];
	size_t n;
	FILE *f;

	assert_true(snprintf(path, sizeof(path), "%.*s/mime/%s%s", dirlen, slash ? __FILE__ : ".", name, ext) <
		    (int)sizeof(path));
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	tbuf_reset(out);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tbuf_append(out, chunk, n);
	fclose(f);
}

static size_t count_lf(const char *p, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += p[i] == '\n';
	return c;
}

/* What every part must satisfy, whatever the message: offsets inside the bytes and
 * inside the parent's body, the header right before the body, body lines = LFs of the
 * slice, a multipart child right after a "--" boundary line and a body that ends at the
 * end of the data or just before a line break and "--". */
static void check_part(const Tern__MimePart *p, const char *d, size_t len, size_t lo, size_t hi, int in_multipart)
{
	assert_true(p->header_off >= lo);
	assert_int_equal(p->header_off + p->header_len, p->body_off);
	assert_true(p->body_off + p->body_len <= hi);
	assert_true(hi <= len);
	assert_int_equal(p->body_lines, count_lf(d + p->body_off, p->body_len));
	if (in_multipart && p->header_len + p->body_len > 0) {
		size_t ls = p->header_off - 1;
		assert_int_equal(d[ls], '\n');
		while (ls > 0 && d[ls - 1] != '\n')
			ls--;
		assert_memory_equal(d + ls, "--", 2);
	}
	size_t end = p->body_off + p->body_len;
	if (end < len && p->n_parts == 0 && in_multipart && p->body_len > 0) {
		size_t k = end + (d[end] == '\r');
		assert_int_equal(d[k], '\n');
		assert_memory_equal(d + k + 1, "--", 2);
	}
	for (size_t i = 0; i < p->n_parts; i++)
		check_part(p->parts[i], d, len, p->body_off, p->body_off + p->body_len, 1);
	if (p->message)
		check_part(p->message, d, len, p->body_off, p->body_off + p->body_len, 0);
}

static void test_corpus(void **state)
{
	tbuf eml = TBUF_INIT, bs = TBUF_INIT, env = TBUF_INIT;

	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		Tern__MimeInfo *m, *again;
		load(corpus[i], ".eml", &eml);
		load(corpus[i], ".bodystructure", &bs);
		load(corpus[i], ".envelope", &env);
		m = mime_analyze(eml.data, eml.len);
		assert_non_null(m);
		assert_int_equal(m->version, MIME_ANALYSIS_VERSION);
		if (m->bodystructure.len != bs.len || memcmp(m->bodystructure.data, bs.data, bs.len) != 0)
			fail_msg("%s: BODYSTRUCTURE\n got %.*s\nwant %s", corpus[i], (int)m->bodystructure.len,
				 m->bodystructure.data, bs.data);
		if (m->envelope.len != env.len || memcmp(m->envelope.data, env.data, env.len) != 0)
			fail_msg("%s: ENVELOPE\n got %.*s\nwant %s", corpus[i], (int)m->envelope.len, m->envelope.data,
				 env.data);
		check_part(m->root, eml.data, eml.len, 0, eml.len, 0);
		assert_int_equal(m->root->header_off, 0);
		/* deterministic */
		again = mime_analyze(eml.data, eml.len);
		assert_int_equal(again->body.len, m->body.len);
		assert_memory_equal(again->body.data, m->body.data, m->body.len);
		mime_info_free(&again);
		mime_info_free(&m);
		assert_null(m);
	}
	tbuf_free(&eml);
	tbuf_free(&bs);
	tbuf_free(&env);
}

/* The body of section sec of the corpus message equals want. */
static void expect_body(const char *name, const char *sec, const char *type, const char *want)
{
	tbuf eml = TBUF_INIT;
	Tern__MimeInfo *m;
	const Tern__MimePart *p;

	load(name, ".eml", &eml);
	m = mime_analyze(eml.data, eml.len);
	p = mime_find_part(m->root, sec);
	if (p == NULL)
		fail_msg("%s: no part %s", name, sec);
	assert_string_equal(p->type, type);
	if (p->body_len != strlen(want) || memcmp(eml.data + p->body_off, want, p->body_len) != 0)
		fail_msg("%s[%s]: got '%.*s'", name, sec, (int)p->body_len, eml.data + p->body_off);
	mime_info_free(&m);
	tbuf_free(&eml);
}

static void test_slices(void **state)
{
	expect_body("simple", "", "text", "Hello Bob,\r\nthis is a plain message.\r\n");
	expect_body("simple", "1", "text", "Hello Bob,\r\nthis is a plain message.\r\n");
	expect_body("alternative", "1", "text", "Plain version\r\nof the news.");
	expect_body("alternative", "2", "text", "<html><body><p>HTML version</p></body></html>");
	expect_body("nested", "1.1", "text", "text part");
	expect_body("nested", "1.2.1", "text", "<img src=\"cid:img1\">");
	expect_body("nested", "1.2.2", "image", "iVBORw0KGgo=");
	expect_body("nested", "2", "text", "a,b\r\n1,2");
	expect_body("rfc822", "1", "text", "Forwarded below.");
	expect_body("rfc822", "2.1", "text", "original text");
	expect_body("rfc822", "2.2", "text", "<p>original text</p>");
	expect_body("missing_final", "1", "text", "first");
	expect_body("missing_final", "2", "text", "second, never closed\r\n");
	expect_body("lf_only", "1", "text", "line one\nline two");
	expect_body("lf_only", "2", "application", "JVBERi0xLjQK");
	expect_body("no_separator", "", "text", "");
	expect_body("no_boundary", "1", "text", "");
}

static void test_find_part(void **state)
{
	tbuf eml = TBUF_INIT;
	Tern__MimeInfo *m;
	const Tern__MimePart *p;
	static const char *bad[] = { "0", "3", "1.", ".1", "a", "2.3", "1.2", "2.1.2", "99999999999" };

	load("rfc822", ".eml", &eml);
	m = mime_analyze(eml.data, eml.len);
	assert_ptr_equal(mime_find_part(m->root, ""), m->root);
	p = mime_find_part(m->root, "2");
	assert_non_null(p);
	assert_string_equal(p->type, "message");
	assert_string_equal(p->subtype, "rfc822");
	assert_non_null(p->message);
	assert_memory_equal(eml.data + p->message->header_off, "From: Mallory", 13);
	assert_int_equal(p->message->header_off, p->body_off);
	assert_true(p->envelope.len > 0);
	assert_memory_equal(p->envelope.data, "(\"Wed, 9 Aug 2023 12:00:00 -0700\" \"Original\"", 44);
	assert_string_equal(p->message->type, "multipart");
	assert_ptr_equal(mime_find_part(m->root, "2.1"), p->message->parts[0]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mime_find_part(m->root, bad[i]) != NULL)
			fail_msg("section %s found", bad[i]);
	assert_null(mime_find_part(NULL, "1"));
	mime_info_free(&m);
	tbuf_free(&eml);
}

static void test_decode(void **state)
{
	tbuf eml = TBUF_INIT, out = TBUF_INIT;
	Tern__MimeInfo *m;
	const Tern__MimePart *p;
	unsigned char want[512];

	const char *folded = "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus\r\n =?UTF-8?B?TcO8bmNoZW4=?=";
	mime_decode_header(folded, strlen(folded), &out);
	assert_string_equal(tbuf_cstr(&out), "Grüße aus München");
	tbuf_reset(&out);
	mime_decode_header("=?ISO-8859-1?Q?Andr=E9?= <a@b>", 30, &out);
	assert_string_equal(tbuf_cstr(&out), "André <a@b>");
	tbuf_reset(&out);

	load("mixed_attach", ".eml", &eml);
	m = mime_analyze(eml.data, eml.len);
	p = mime_find_part(m->root, "2");
	assert_string_equal(p->encoding, "base64");
	assert_int_equal(mime_decode_transfer(p->encoding, eml.data + p->body_off, p->body_len, &out), 0);
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)i;
	assert_int_equal(out.len, 512);
	assert_memory_equal(out.data, want, 512);
	tbuf_reset(&out);
	p = mime_find_part(m->root, "3");
	assert_int_equal(mime_decode_text(p, eml.data + p->body_off, p->body_len, "utf-8", 1000, &out), 0);
	assert_string_equal(tbuf_cstr(&out), "€ 1.08\n");
	tbuf_reset(&out);
	/* max cuts at a character boundary: the 3-byte euro sign does not fit in 2 */
	assert_int_equal(mime_decode_text(p, eml.data + p->body_off, p->body_len, "utf-8", 2, &out), 0);
	assert_int_equal(out.len, 0);
	mime_info_free(&m);

	load("qp_charset", ".eml", &eml);
	m = mime_analyze(eml.data, eml.len);
	assert_string_equal(m->root->encoding, "quoted-printable");
	tbuf_reset(&out);
	assert_int_equal(mime_decode_text(m->root, eml.data + m->root->body_off, m->root->body_len, "ISO-8859-1", 0,
					  &out), 0);
	assert_memory_equal(out.data, "Café crème brûlée\r\n", strlen("Café crème brûlée\r\n"));
	assert_non_null(strstr(tbuf_cstr(&out), "très bonne"));   /* soft line break joined */
	mime_info_free(&m);

	tbuf_reset(&out);
	assert_int_equal(mime_decode_transfer("quoted-printable", "a=3Db=\r\nc", 10, &out), 0);
	assert_string_equal(tbuf_cstr(&out), "a=bc");
	tbuf_reset(&out);
	assert_int_equal(mime_decode_transfer("8bit", "x\xff", 2, &out), 0);
	assert_int_equal(out.len, 2);
	assert_int_equal(mime_decode_transfer("x-compress", "abc", 3, &out), -1);
	tbuf_free(&out);
	tbuf_free(&eml);
}

/* Deepest level of a part tree. */
static int depth_of(const Tern__MimePart *p)
{
	int d = 0;

	for (size_t i = 0; i < p->n_parts; i++) {
		int k = depth_of(p->parts[i]);
		d = k > d ? k : d;
	}
	if (p->message) {
		int k = depth_of(p->message);
		d = k > d ? k : d;
	}
	return d + 1;
}

static size_t count_parts(const Tern__MimePart *p)
{
	size_t n = 1;

	for (size_t i = 0; i < p->n_parts; i++)
		n += count_parts(p->parts[i]);
	return n + (p->message ? count_parts(p->message) : 0);
}

static void test_limits(void **state)
{
	tbuf msg = TBUF_INIT;
	Tern__MimeInfo *m;

	/* 200 nested multiparts, 200 nested messages */
	for (int i = 0; i < 200; i++)
		tbuf_appendf(&msg, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
	tbuf_append_str(&msg, "\r\ninnermost\r\n");
	m = mime_analyze(msg.data, msg.len);
	assert_non_null(m);
	assert_true(depth_of(m->root) <= 32);
	check_part(m->root, msg.data, msg.len, 0, msg.len, 0);
	mime_info_free(&m);
	tbuf_reset(&msg);
	for (int i = 0; i < 200; i++)
		tbuf_append_str(&msg, "Content-Type: message/rfc822\r\n\r\n");
	m = mime_analyze(msg.data, msg.len);
	assert_true(depth_of(m->root) <= 32);
	check_part(m->root, msg.data, msg.len, 0, msg.len, 0);
	mime_info_free(&m);

	/* 5000 parts */
	tbuf_reset(&msg);
	tbuf_append_str(&msg, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		tbuf_append_str(&msg, "--x\r\n\r\np\r\n");
	tbuf_append_str(&msg, "--x--\r\n");
	m = mime_analyze(msg.data, msg.len);
	assert_true(count_parts(m->root) <= 2000);
	assert_true(m->root->n_parts > 1000);
	check_part(m->root, msg.data, msg.len, 0, msg.len, 0);
	mime_info_free(&m);

	/* nothing at all */
	m = mime_analyze("", 0);
	assert_string_equal((char *)m->bodystructure.data,
			    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	assert_string_equal((char *)m->envelope.data, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	mime_info_free(&m);
	mime_info_free(&m);
	tbuf_free(&msg);
}

/* Header edge cases rendered exactly. */
static void test_fields(void **state)
{
	static const struct {
		const char *msg, *env, *bs;
	} cases[] = {
		{ "From: bob\r\nBcc: \"Phrase only\"\r\nReply-To:\r\nSubject: a\r\n\tb\r\nSubject: c\r\n\r\nx",
		  "(NIL \"c\" ((NIL NIL \"bob\" \"MISSING_DOMAIN\")) ((NIL NIL \"bob\" \"MISSING_DOMAIN\")) "
		  "((NIL NIL \"bob\" \"MISSING_DOMAIN\")) NIL NIL ((\"Phrase only\" NIL \"MISSING_MAILBOX\" "
		  "\"MISSING_DOMAIN\")) NIL NIL)",
		  NULL },
		{ "From: <@a,@b:r@x.y>\r\nSubject: multi\r\n line\r\n\r\n",
		  "(NIL \"multi line\" ((NIL \"@a,@b\" \"r\" \"x.y\")) ((NIL \"@a,@b\" \"r\" \"x.y\")) "
		  "((NIL \"@a,@b\" \"r\" \"x.y\")) NIL NIL NIL NIL NIL)",
		  NULL },
		{ "Content-Type: TEXT/Plain; CHARSET=UTF-8; Format=\"flowed\"\r\n"
		  "Content-Transfer-Encoding: QUOTED-PRINTABLE\r\nContent-Language: de\r\n"
		  "Content-MD5: Q2hlY2s=\r\nContent-Disposition: INLINE\r\n\r\nx\r\n",
		  NULL,
		  "(\"TEXT\" \"Plain\" (\"CHARSET\" \"UTF-8\" \"Format\" \"flowed\") NIL NIL \"QUOTED-PRINTABLE\" 3 1 "
		  "\"Q2hlY2s=\" (\"INLINE\" NIL) (\"de\") NIL)" },
		{ "Content-Type: text/plain; name*0=\"long\"; name*1=\"name.txt\"; t*0*=utf-8''a%20; t*1=\"b c\"\r\n\r\n",
		  NULL,
		  "(\"text\" \"plain\" (\"name\" \"longname.txt\" \"t*\" \"utf-8''a%20b%20c\" \"charset\" \"us-ascii\") "
		  "NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)" },
		{ "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\nbody\r\n--d--\r\n",
		  NULL,
		  "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 19 (NIL \"in\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL) "
		  "\"digest\" (\"boundary\" \"d\") NIL NIL NIL)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Tern__MimeInfo *m = mime_analyze(cases[i].msg, strlen(cases[i].msg));
		if (cases[i].env && strcmp((char *)m->envelope.data, cases[i].env) != 0)
			fail_msg("case %zu: ENVELOPE %s", i, m->envelope.data);
		if (cases[i].bs && strcmp((char *)m->bodystructure.data, cases[i].bs) != 0)
			fail_msg("case %zu: BODYSTRUCTURE %s", i, m->bodystructure.data);
		mime_info_free(&m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),   cmocka_unit_test(test_slices),
		cmocka_unit_test(test_find_part), cmocka_unit_test(test_decode),
		cmocka_unit_test(test_limits),   cmocka_unit_test(test_fields),
	};
	int rc;

	mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mime_shutdown();
	return rc;
}
