/* test_node_imap_session.c - the IMAP server over real sockets against a temporary store:
 * LOGIN and the standard folders, APPEND, SELECT, FETCH, STORE, EXPUNGE; two sessions on
 * one INBOX (an EXPUNGE reaches the other only at a command other than FETCH, STORE or
 * SEARCH; flag changes are reported; \Recent goes to one session); IDLE woken by an
 * APPEND of another session; bad input answered with BAD/NO and the session still
 * usable; keywords in FLAGS, BADCHARSET, modified UTF-7 names, subscriptions in the
 * folder record, COPY into the same folder, SEARCH and large APPENDs on the cpu pool. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cmocka.h>
#include "imap.h"
#include "mime.h"
#include "store_test_util.h"
#include "net_test_util.h"
#include "imap_test_util.h"

static struct {
	test_store *ts;
	tern_conf conf;
	nt_server net;
	it_server srv;
	unsigned port;
	uint8_t bob_id[16];
} T;

static int group_setup(void **state)
{
	char *err = NULL;

	(void)state;
	mime_init();
	T.ts = ts_new();
	ts_add_domain(T.ts->st);
	nt_add_user(T.ts->st, "bob", "pencil", T.bob_id);
	if (tern_conf_load_string(&T.conf, "[server]\nio_threads = 1\nhostname = mx.example.test\n", 0, &err) < 0)
		fail_msg("conf: %s", err);
	it_server_new(&T.srv, T.ts->st, &T.conf, "mx.example.test", 5);
	const tern_service_id svc = TERN_SVC_imap;
	const tern_service_handler *h = imap_server_handler(T.srv.imap, svc);
	return nt_start(&T.net, &T.conf, T.ts->dir, "", &svc, &h, 1, &T.port);
}

static int group_teardown(void **state)
{
	(void)state;
	nt_stop(&T.net);
	imap_stats st;
	imap_server_stats(T.srv.imap, &st);
	assert_int_equal(st.open_folders, 0);
	it_server_free(&T.srv);
	tern_conf_free(&T.conf);
	ts_free(&T.ts);
	mime_shutdown();
	return 0;
}

static int dial(void)
{
	return nt_dial(NULL, T.port, 10, 0);
}

static int login(void)
{
	char line[1024];
	int fd = dial();
	nt_hear(fd, line, sizeof(line));
	assert_true(strncmp(line, "* OK [CAPABILITY IMAP4rev1", 26) == 0);
	nt_imap_cmd(fd, "L1", "LOGIN bob pencil", "OK", NULL);
	return fd;
}

static void append(int fd, const char *tag, const char *folder, const char *flags, const char *msg)
{
	char buf[512], line[1024];
	snprintf(buf, sizeof(buf), "%s APPEND \"%s\" %s {%zu}\r\n", tag, folder, flags, strlen(msg));
	nt_say(fd, buf);
	nt_hear(fd, line, sizeof(line));
	assert_true(line[0] == '+');
	nt_say(fd, msg);
	nt_say(fd, "\r\n");
	tbuf out = TBUF_INIT;
	nt_until_tag(fd, tag, &out);
	if (strstr(tbuf_cstr(&out), " OK [APPENDUID ") == NULL)
		fail_msg("APPEND: %s", tbuf_cstr(&out));
	tbuf_free(&out);
}

static const char MSG1[] = "From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: one\r\n\r\nHello\r\n";
static const char MSG2[] = "From: Eve <eve@example.test>\r\nSubject: two\r\n\r\nBody two\r\n";

static void test_basic(void **state)
{
	tbuf out = TBUF_INIT;
	(void)state;
	int fd = dial();
	char line[1024];
	nt_hear(fd, line, sizeof(line));
	nt_imap_cmd(fd, "a0", "SELECT INBOX", "BAD", &out);                 /* wrong state */
	nt_imap_cmd(fd, "a1", "LOGIN bob wrong", "NO", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "[AUTHENTICATIONFAILED]"));
	nt_imap_cmd(fd, "a2", "LOGIN bob pencil", "OK", &out);
	nt_imap_cmd(fd, "a3", "LIST \"\" *", "OK", &out);
	const char *l = tbuf_cstr(&out);
	assert_non_null(strstr(l, "* LIST (\\HasNoChildren) \"/\" \"INBOX\""));
	assert_non_null(strstr(l, "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\""));
	assert_non_null(strstr(l, "\\Trash) \"/\" \"Deleted Items\""));
	assert_non_null(strstr(l, "\\Junk) \"/\" \"Junk E-mail\""));
	assert_non_null(strstr(l, "\\Drafts) \"/\" \"Drafts\""));
	append(fd, "a4", "INBOX", "(\\Flagged)", MSG1);
	nt_imap_cmd(fd, "a5", "SELECT INBOX", "OK [READ-WRITE]", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 EXISTS"));
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 RECENT"));
	assert_non_null(strstr(tbuf_cstr(&out), "* OK [UIDVALIDITY "));
	nt_imap_cmd(fd, "a6", "FETCH 1 (FLAGS UID)", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 FETCH ("));
	assert_non_null(strstr(tbuf_cstr(&out), "\\Flagged"));
	nt_imap_cmd(fd, "a7", "STORE 1 +FLAGS (\\Deleted)", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "\\Deleted"));
	nt_imap_cmd(fd, "a8", "EXPUNGE", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 EXPUNGE"));
	nt_imap_cmd(fd, "a9", "STATUS INBOX (MESSAGES UIDNEXT)", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT "));
	nt_imap_cmd(fd, "b1", "CREATE Work/Projects", "OK", &out);
	nt_imap_cmd(fd, "b2", "LIST \"\" %", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "(\\Noselect \\HasChildren) \"/\" \"Work\""));
	nt_imap_cmd(fd, "b3", "RENAME Work/Projects Done", "OK", &out);
	nt_imap_cmd(fd, "b4", "DELETE Done", "OK", &out);
	nt_imap_cmd(fd, "b5", "GETQUOTAROOT INBOX", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* QUOTAROOT \"INBOX\" \"\""));
	nt_imap_cmd(fd, "b9", "LOGOUT", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* BYE"));
	close(fd);
	tbuf_free(&out);
}

/* RFC 3501 §7.4.1 across two sessions, flag changes, \Recent in one session only. */
static void test_two_sessions(void **state)
{
	tbuf out = TBUF_INIT;
	(void)state;
	int a = login(), b = login();
	append(a, "c1", "INBOX", "()", MSG1);
	append(a, "c2", "INBOX", "()", MSG2);
	nt_imap_cmd(a, "c3", "SELECT INBOX", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 2 EXISTS"));
	assert_non_null(strstr(tbuf_cstr(&out), "* 2 RECENT"));
	nt_imap_cmd(b, "d1", "SELECT INBOX", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 2 EXISTS"));
	assert_non_null(strstr(tbuf_cstr(&out), "* 0 RECENT"));      /* session a has them */
	nt_imap_cmd(a, "c4", "STORE 1 +FLAGS.SILENT (\\Deleted)", "OK", &out);
	nt_imap_cmd(a, "c5", "EXPUNGE", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 EXPUNGE"));
	/* b: no EXPUNGE during FETCH, STORE or SEARCH */
	nt_imap_cmd(b, "d2", "FETCH 1:2 (UID)", "OK", &out);
	assert_null(strstr(tbuf_cstr(&out), "EXPUNGE"));
	assert_non_null(strstr(tbuf_cstr(&out), "* 2 FETCH"));
	nt_imap_cmd(b, "d3", "SEARCH ALL", "OK", &out);
	assert_null(strstr(tbuf_cstr(&out), "EXPUNGE"));
	nt_imap_cmd(b, "d4", "NOOP", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 EXPUNGE"));
	nt_imap_cmd(b, "d5", "FETCH 1 (FLAGS)", "OK", &out);
	/* a flags change by a reaches b as an untagged FETCH */
	nt_imap_cmd(a, "c6", "STORE 1 +FLAGS (\\Answered)", "OK", &out);
	nt_imap_cmd(b, "d6", "NOOP", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 FETCH (FLAGS (\\Answered"));
	close(a);
	close(b);
	tbuf_free(&out);
}

/* IDLE gets EXISTS when another session appends. */
static void test_idle(void **state)
{
	tbuf out = TBUF_INIT;
	char line[1024];
	(void)state;
	int a = login(), b = login();
	nt_imap_cmd(b, "e1", "SELECT INBOX", "OK", &out);
	nt_say(b, "e2 IDLE\r\n");
	nt_hear(b, line, sizeof(line));
	assert_string_equal(line, "+ idling");
	append(a, "f1", "INBOX", "()", MSG2);
	nt_hear(b, line, sizeof(line));
	assert_true(strstr(line, " EXISTS") != NULL);
	nt_say(b, "DONE\r\n");
	nt_until_tag(b, "e2", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "e2 OK"));
	close(a);
	close(b);
	tbuf_free(&out);
}

/* The bad-input cases of the issue: BAD/NO, and the session goes on. */
static void test_bad_input(void **state)
{
	tbuf out = TBUF_INIT;
	char line[1024];
	(void)state;
	int fd = login();
	nt_imap_cmd(fd, "g1", "SELECT INBOX", "OK", &out);
	nt_imap_cmd(fd, "g2", "FETCH 0 FLAGS", "BAD", &out);
	nt_imap_cmd(fd, "g3", "FETCH 4294967296 FLAGS", "BAD", &out);
	nt_imap_cmd(fd, "g4", "FETCH 1:*:* FLAGS", "BAD", &out);
	nt_say(fd, "g5 APPEND INBOX {18446744073709551615}\r\n");
	nt_until_tag(fd, "g5", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "g5 NO [TOOBIG]"));
	char deep[200];
	memset(deep, '(', 100);
	memcpy(deep + 100, "\r\n", 3);
	nt_say(fd, "g6 FETCH 1 ");
	nt_say(fd, deep);
	nt_until_tag(fd, "g6", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "g6 BAD"));
	nt_imap_cmd(fd, "g7", "SEARCH TEXT \"\xff\xfe\"", "BAD", &out);   /* not UTF-8 */
	nt_imap_cmd(fd, "g8", "LOGIN bob pencil", "BAD", &out);       /* wrong state */
	nt_imap_cmd(fd, "g9", "NOOP", "OK", &out);
	/* vanish mid-literal */
	nt_say(fd, "h1 APPEND INBOX {100}\r\n");
	nt_hear(fd, line, sizeof(line));
	assert_true(line[0] == '+');
	nt_say(fd, "From: x\r\n");
	close(fd);
	/* the server is fine */
	fd = login();
	nt_imap_cmd(fd, "h2", "NOOP", "OK", &out);
	close(fd);
	tbuf_free(&out);
}

/* AUTHENTICATE PLAIN with SASL-IR, and with a continuation; "*" cancels. */
static void test_authenticate(void **state)
{
	tbuf out = TBUF_INIT;
	char line[1024];
	(void)state;
	int fd = dial();
	nt_hear(fd, line, sizeof(line));
	assert_non_null(strstr(line, "AUTH=PLAIN"));
	assert_null(strstr(line, "LOGINDISABLED"));
	nt_say(fd, "s0 AUTHENTICATE PLAIN\r\n");
	nt_hear(fd, line, sizeof(line));
	assert_string_equal(line, "+ ");
	nt_say(fd, "*\r\n");
	nt_until_tag(fd, "s0", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "s0 BAD"));
	nt_imap_cmd(fd, "s1", "AUTHENTICATE PLAIN AGJvYgBwZW5jaWw=", "OK", &out);
	nt_imap_cmd(fd, "s2", "AUTHENTICATE PLAIN AGJvYgBwZW5jaWw=", "BAD", &out);   /* already in */
	close(fd);
	fd = dial();
	nt_hear(fd, line, sizeof(line));
	nt_say(fd, "s3 AUTHENTICATE PLAIN\r\n");
	nt_hear(fd, line, sizeof(line));
	assert_string_equal(line, "+ ");
	nt_say(fd, "AGJvYgBwZW5jaWw=\r\n");
	nt_until_tag(fd, "s3", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "s3 OK"));
	nt_imap_cmd(fd, "s4", "NAMESPACE", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* NAMESPACE ((\"\" \"/\")) NIL NIL"));
	close(fd);
	tbuf_free(&out);
}

/* Position of needle in hay, or -1. */
static long pos_of(const tbuf *hay, const char *needle)
{
	const char *p = strstr(tbuf_cstr(hay), needle);
	return p ? (long)(p - hay->data) : -1;
}

/* Keywords: SELECT lists them; a STORE that adds one sends FLAGS before its FETCH, to
 * this session and to another with the folder selected. */
static void test_keywords(void **state)
{
	tbuf out = TBUF_INIT;
	(void)state;
	int a = login(), b = login();
	nt_imap_cmd(a, "k1", "CREATE Kw", "OK", &out);
	append(a, "k2", "Kw", "(\\Seen)", MSG1);
	append(a, "k3", "Kw", "($Work)", MSG2);
	nt_imap_cmd(a, "k4", "SELECT Kw", "OK [READ-WRITE]", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\n"));
	assert_non_null(strstr(tbuf_cstr(&out),
			       "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)]"));
	nt_imap_cmd(b, "m1", "EXAMINE Kw", "OK [READ-ONLY]", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "$Work)"));
	assert_non_null(strstr(tbuf_cstr(&out), "* OK [PERMANENTFLAGS ()]"));
	nt_imap_cmd(a, "k5", "STORE 1 +FLAGS ($Urgent)", "OK", &out);
	long fl = pos_of(&out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work $Urgent)");
	long fe = pos_of(&out, "* 1 FETCH (FLAGS (");
	if (fl < 0 || fe < fl || pos_of(&out, "$Urgent))") < fe)
		fail_msg("FLAGS before FETCH wanted:\n%s", tbuf_cstr(&out));
	nt_imap_cmd(b, "m2", "NOOP", "OK", &out);
	fl = pos_of(&out, "$Work $Urgent)");
	fe = pos_of(&out, "* 1 FETCH (FLAGS (\\Seen $Urgent))");
	if (fl < 0 || fe < fl)
		fail_msg("FLAGS before FETCH wanted:\n%s", tbuf_cstr(&out));
	nt_imap_cmd(b, "m3", "NOOP", "OK", &out);             /* told once */
	assert_int_equal(pos_of(&out, "* FLAGS"), -1);
	/* an APPEND with a new keyword: FLAGS to the sessions that have the folder */
	append(a, "k6", "Kw", "($Later)", MSG1);
	nt_imap_cmd(b, "m4", "NOOP", "OK", &out);
	fl = pos_of(&out, "$Urgent $Later)");
	assert_true(fl >= 0 && pos_of(&out, "* 3 EXISTS") >= 0);
	close(a);
	close(b);
	tbuf_free(&out);
}

/* SEARCH: BADCHARSET is NO; body keys and plain keys give the same answers as before
 * (the first on the cpu pool). COPY into the selected folder makes new UIDs. A large
 * APPEND is analysed (on the pool) and stored with its MIME record. */
static void test_search_copy_append(void **state)
{
	tbuf out = TBUF_INIT;
	(void)state;
	int a = login();
	nt_imap_cmd(a, "n1", "CREATE Sx", "OK", &out);
	append(a, "n2", "Sx", "()", MSG1);
	append(a, "n3", "Sx", "()", MSG2);
	nt_imap_cmd(a, "n4", "SELECT Sx", "OK", &out);
	nt_imap_cmd(a, "n5", "SEARCH CHARSET KOI8-R ALL", "NO [BADCHARSET (UTF-8 US-ASCII)]", &out);
	nt_imap_cmd(a, "n6", "SEARCH CHARSET UTF-8 BODY \"body TWO\"", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* SEARCH 2\n"));
	nt_imap_cmd(a, "n7", "UID SEARCH TEXT hello", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* SEARCH 1\n"));
	nt_imap_cmd(a, "n8", "SEARCH ALL", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* SEARCH 1 2\n"));
	nt_imap_cmd(a, "n9", "COPY 1:2 Sx", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), " 1:2 3:4] COPY completed"));
	assert_non_null(strstr(tbuf_cstr(&out), "* 4 EXISTS"));
	nt_imap_cmd(a, "o1", "UID SEARCH SUBJECT two", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* SEARCH 2 4\n"));
	/* 300 KiB: over IMAP_APPEND_INLINE_MAX */
	size_t big = 300 * 1024;
	char *msg = malloc(big + 1);
	const char head[] = "From: a@example.test\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n";
	memcpy(msg, head, sizeof(head) - 1);
	for (size_t i = sizeof(head) - 1; i < big; i++)
		msg[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'x';
	msg[big] = '\0';
	append(a, "o2", "Sx", "()", msg);
	free(msg);
	Tern__Folder *f = NULL;
	Tern__MessageMeta *m = NULL;
	assert_int_equal(store_folder_find(T.ts->st, (const uint8_t *)T.bob_id, "Sx", &f), STORE_OK);
	assert_int_equal(store_msg_get(T.ts->st, T.bob_id, f->id.data, 5, &m), STORE_OK);
	assert_non_null(m->mime);
	assert_int_equal(m->size, big);
	store_free_record(m);
	store_free_record(f);
	nt_imap_cmd(a, "o3", "SEARCH LARGER 100000", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* SEARCH 5\n"));
	close(a);
	tbuf_free(&out);
}

/* Modified UTF-7 names are checked; subscriptions live in Folder.subscribed. */
static void test_names_and_subscriptions(void **state)
{
	tbuf out = TBUF_INIT;
	(void)state;
	int a = login();
	nt_imap_cmd(a, "p1", "CREATE \"Entw&APw-rfe\"", "OK", &out);
	nt_imap_cmd(a, "p2", "CREATE \"bad&name\"", "BAD", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "modified UTF-7"));
	nt_imap_cmd(a, "p3", "CREATE \"&AGE-\"", "BAD", &out);          /* "a" must not be encoded */
	nt_imap_cmd(a, "p4", "SELECT \"x&2D0-\"", "BAD", &out);         /* a lone surrogate */
	nt_imap_cmd(a, "p5", "RENAME \"Entw&APw-rfe\" \"T\xc3\xa4st\"", "BAD", &out);   /* raw 8-bit */
	nt_imap_cmd(a, "p6", "SELECT \"Entw&APw-rfe\"", "OK", &out);
	nt_imap_cmd(a, "p7", "LSUB \"\" \"Entw*\"", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* LSUB (\\HasNoChildren) \"/\" \"Entw&APw-rfe\""));
	nt_imap_cmd(a, "p8", "UNSUBSCRIBE \"Entw&APw-rfe\"", "OK", &out);
	Tern__Folder *f = NULL;
	assert_int_equal(store_folder_find(T.ts->st, T.bob_id, "Entw&APw-rfe", &f), STORE_OK);
	assert_false(f->subscribed);
	store_free_record(f);
	nt_imap_cmd(a, "p9", "LSUB \"\" \"Entw*\"", "OK", &out);
	assert_null(strstr(tbuf_cstr(&out), "* LSUB"));
	nt_imap_cmd(a, "q1", "LIST (SUBSCRIBED) \"\" \"*\"", "OK", &out);
	assert_null(strstr(tbuf_cstr(&out), "Entw"));
	assert_non_null(strstr(tbuf_cstr(&out), "\\Subscribed) \"/\" \"INBOX\""));
	nt_imap_cmd(a, "q2", "LIST \"\" \"Entw*\" RETURN (SUBSCRIBED)", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\""));
	nt_imap_cmd(a, "q3", "SUBSCRIBE \"Entw&APw-rfe\"", "OK", &out);
	nt_imap_cmd(a, "q4", "LIST \"\" \"Entw*\" RETURN (SUBSCRIBED)", "OK", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Entw&APw-rfe\""));
	nt_imap_cmd(a, "q5", "SUBSCRIBE \"Not/There\"", "NO [NONEXISTENT]", &out);
	close(a);
	tbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_two_sessions),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_authenticate),
		cmocka_unit_test(test_keywords),
		cmocka_unit_test(test_search_copy_append),
		cmocka_unit_test(test_names_and_subscriptions),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
