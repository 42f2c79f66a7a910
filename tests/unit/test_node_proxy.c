/* test_node_proxy.c - proxied IMAP logins (node/proxy, node/imap/cmd_proxy.c) between two
 * nodes in one process: "front" and "home", each with its own store, tern_server and IMAP
 * server on loopback. carol is homed on "home"; front has her account (for its own
 * password check) but no mailbox. Logging in at front reaches home's INBOX through the
 * splice (an APPEND at front lands in home's store, SELECT sees it). A home node that
 * accepts TCP but never answers fails the login with NO [UNAVAILABLE] within
 * [cluster] request_timeout, the client's session going on; a home node whose
 * certificate does not match the pinned fingerprint is refused the same way (the node
 * credential never leaves); a node login at home with a wrong credential is refused. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cmocka.h>
#include <openssl/sha.h>
#include "auth_sasl.h"
#include "imap.h"
#include "mime.h"
#include "store_test_util.h"
#include "net_test_util.h"

#define TIMEOUT 2

typedef struct side {
	test_store *ts;
	tern_conf conf;
	nt_server net;
	imap_server *imap;
	unsigned port;
} side;

static struct {
	side front, home;
	tern_pool *auth_pool;
	auth_lockout *lockout;
	int silent_fd;            /* listens, never accepts: a home node that never answers */
	unsigned silent_port;
	uint8_t cred[32];
} T;

static void put_node(store *st, const char *name, unsigned imap_port, const char *fingerprint,
		     const uint8_t *cred)
{
	Tern__Node n = TERN__NODE__INIT;
	uint8_t key[32] = { 9 }, hash[SHA256_DIGEST_LENGTH];
	store_sync_result r;

	key[1] = (uint8_t)name[0];
	n.name = (char *)name;
	n.address = (char *)"127.0.0.1";
	n.fingerprint = (char *)fingerprint;
	n.curve_public.data = key;
	n.curve_public.len = sizeof(key);
	if (cred != NULL) {
		SHA256(cred, 32, hash);
		n.credential_hash.data = hash;
		n.credential_hash.len = sizeof(hash);
	}
	n.imap_port = imap_port;
	assert_int_equal(store_node_put(st, &n, STORE_SYNC, &r), STORE_OK);
}

static void side_start(side *s, const char *name)
{
	char *err = NULL;
	char text[256];

	s->ts = ts_new();
	store_set_node_name(s->ts->st, name);
	ts_add_domain(s->ts->st);
	snprintf(text, sizeof(text), "[server]\nio_threads = 1\nhostname = %s.example.test\n"
		 "[cluster]\nrequest_timeout = %d\n", name, TIMEOUT);
	if (tern_conf_load_string(&s->conf, text, 0, &err) < 0)
		fail_msg("conf: %s", err);
	imap_env env = { .st = s->ts->st, .conf = &s->conf, .auth_pool = T.auth_pool, .lockout = T.lockout };
	s->imap = imap_server_new(&env);
	assert_non_null(s->imap);
	const tern_service_id svc = TERN_SVC_imap;
	const tern_service_handler *h = imap_server_handler(s->imap, svc);
	assert_int_equal(nt_start(&s->net, &s->conf, s->ts->dir, "", &svc, &h, 1, &s->port), 0);
}

static void side_stop(side *s)
{
	nt_stop(&s->net);
	imap_server_free(&s->imap);
	tern_conf_free(&s->conf);
	ts_free(&s->ts);
}

static int group_setup(void **state)
{
	Tern__ClusterSelf self = TERN__CLUSTER_SELF__INIT;
	store_sync_result r;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	(void)state;
	mime_init();
	T.auth_pool = tern_pool_new("auth", 2, 64);
	T.lockout = auth_lockout_new(5, 600);
	for (int i = 0; i < 32; i++)
		T.cred[i] = (uint8_t)(0xa0 + i);
	side_start(&T.home, "home");
	side_start(&T.front, "front");
	/* home: carol's mailbox, and front's node credential */
	nt_add_user_homed(T.home.ts->st, "carol", "pencil", "home", NULL);
	put_node(T.home.ts->st, "front", T.front.port, tern_server_fingerprint(T.front.net.srv), T.cred);
	/* front: carol's account homed on "home", users of a silent and of a lying node */
	self.role = TERN__CLUSTER_SELF__ROLE__SLAVE;
	self.credential.data = T.cred;
	self.credential.len = sizeof(T.cred);
	assert_int_equal(store_cluster_self_put(T.front.ts->st, &self, STORE_SYNC, &r), STORE_OK);
	put_node(T.front.ts->st, "home", T.home.port, tern_server_fingerprint(T.home.net.srv), NULL);
	T.silent_fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(T.silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(T.silent_fd, 8), 0);
	assert_int_equal(getsockname(T.silent_fd, (struct sockaddr *)&a, &alen), 0);
	T.silent_port = ntohs(a.sin_port);
	put_node(T.front.ts->st, "silent", T.silent_port, tern_server_fingerprint(T.home.net.srv), NULL);
	put_node(T.front.ts->st, "liar", T.home.port,
		 "0000000000000000000000000000000000000000000000000000000000000000", NULL);
	nt_add_user_homed(T.front.ts->st, "carol", "pencil", "home", NULL);
	nt_add_user_homed(T.front.ts->st, "dan", "pencil", "silent", NULL);
	nt_add_user_homed(T.front.ts->st, "eve", "pencil", "liar", NULL);
	nt_add_user_homed(T.home.ts->st, "eve", "pencil", "home", NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	side_stop(&T.front);
	side_stop(&T.home);
	close(T.silent_fd);
	tern_pool_free(&T.auth_pool);
	auth_lockout_free(&T.lockout);
	mime_shutdown();
	return 0;
}

static void cmd(int fd, const char *tag, const char *text, tbuf *out)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s %s\r\n", tag, text);
	nt_say(fd, buf);
	nt_until_tag(fd, tag, out);
}

static int greeted(unsigned port)
{
	char line[1024];
	int fd = nt_dial(NULL, port, 15, 0);

	nt_hear(fd, line, sizeof(line));
	assert_true(strncmp(line, "* OK ", 5) == 0);
	return fd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Login at front, work at home: APPEND through the splice lands in home's store. */
static void test_proxied_login(void **state)
{
	tbuf out = TBUF_INIT;
	Tern__User *u = NULL;
	Tern__Folder *inbox = NULL;
	int fd = greeted(T.front.port);

	(void)state;
	cmd(fd, "L1", "LOGIN carol pencil", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "L1 OK [CAPABILITY IMAP4rev1 "));
	assert_non_null(strstr(tbuf_cstr(&out), " UIDPLUS "));
	cmd(fd, "S1", "SELECT INBOX", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 0 EXISTS"));
	assert_non_null(strstr(tbuf_cstr(&out), "S1 OK [READ-WRITE]"));
	nt_say(fd, "A1 APPEND INBOX {27+}\r\nSubject: proxied\r\n\r\nHello.\r\n");
	nt_until_tag(fd, "A1", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "A1 OK [APPENDUID "));
	cmd(fd, "S2", "SELECT INBOX", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* 1 EXISTS"));
	assert_int_equal(store_user_find(T.home.ts->st, "carol@example.test", &u), STORE_OK);
	assert_int_equal(store_folder_find(T.home.ts->st, u->id.data, "INBOX", &inbox), STORE_OK);
	assert_int_equal(inbox->messages, 1);
	store_free_record(inbox);
	store_free_record(u);
	/* front holds no mailbox for her */
	assert_int_equal(store_user_find(T.front.ts->st, "carol@example.test", &u), STORE_OK);
	assert_int_not_equal(store_folder_find(T.front.ts->st, u->id.data, "INBOX", &inbox), STORE_OK);
	store_free_record(u);
	cmd(fd, "O1", "LOGOUT", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "* BYE"));
	close(fd);
	tbuf_free(&out);
}

/* LOGIN user (password pencil) at front, refused with NO [UNAVAILABLE] because the home
 * node is out of reach; the session stays open in *fd_r. The seconds the LOGIN took. */
static double login_unreachable(const char *user, int *fd_r)
{
	tbuf out = TBUF_INIT;
	char text[128];
	int fd = greeted(T.front.port);
	double t0 = now_s();

	snprintf(text, sizeof(text), "LOGIN %s pencil", user);
	cmd(fd, "L1", text, &out);
	double spent = now_s() - t0;
	assert_non_null(strstr(tbuf_cstr(&out), "L1 NO [UNAVAILABLE] home server unreachable"));
	tbuf_free(&out);
	*fd_r = fd;
	return spent;
}

/* A home node that never answers: NO [UNAVAILABLE] after the timeout; the session goes on. */
static void test_silent_home(void **state)
{
	tbuf out = TBUF_INIT;
	int fd;

	(void)state;
	double spent = login_unreachable("dan", &fd);
	assert_true(spent >= TIMEOUT - 0.5 && spent < TIMEOUT + 4);
	cmd(fd, "N1", "NOOP", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "N1 OK"));
	close(fd);
	tbuf_free(&out);
}

/* A certificate that does not match the pin: refused, quickly. */
static void test_wrong_fingerprint(void **state)
{
	int fd;

	(void)state;
	assert_true(login_unreachable("eve", &fd) < TIMEOUT);
	close(fd);
}

/* At home: a node login with a wrong credential is refused; the right one is carol. */
static void test_node_login_at_home(void **state)
{
	tbuf out = TBUF_INIT, msg = TBUF_INIT, b64 = TBUF_INIT;
	char hex[65], text[512];
	int fd = greeted(T.home.port);

	(void)state;
	tern_hex(T.cred, 32, hex);
	hex[63] = hex[63] == '0' ? '1' : '0';
	tbuf_append(&msg, "carol\0node/front\0", 17);
	tbuf_append_str(&msg, hex);
	auth_b64_encode(msg.data, msg.len, &b64);
	snprintf(text, sizeof(text), "AUTHENTICATE PLAIN %s", tbuf_cstr(&b64));
	cmd(fd, "A1", text, &out);
	assert_non_null(strstr(tbuf_cstr(&out), "A1 NO [AUTHENTICATIONFAILED]"));
	tern_hex(T.cred, 32, hex);
	tbuf_reset(&msg);
	tbuf_append(&msg, "carol\0node/front\0", 17);
	tbuf_append_str(&msg, hex);
	auth_b64_encode(msg.data, msg.len, &b64);
	cmd(fd, "I1", "ID (\"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"4711\")", &out);
	snprintf(text, sizeof(text), "AUTHENTICATE PLAIN %s", tbuf_cstr(&b64));
	cmd(fd, "A2", text, &out);
	assert_non_null(strstr(tbuf_cstr(&out), "A2 OK [CAPABILITY IMAP4rev1"));
	cmd(fd, "S1", "STATUS INBOX (MESSAGES)", &out);
	assert_non_null(strstr(tbuf_cstr(&out), "S1 OK"));
	close(fd);
	tbuf_free(&out);
	tbuf_free(&msg);
	tbuf_free(&b64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxied_login),
		cmocka_unit_test(test_silent_home),
		cmocka_unit_test(test_wrong_fingerprint),
		cmocka_unit_test(test_node_login_at_home),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
