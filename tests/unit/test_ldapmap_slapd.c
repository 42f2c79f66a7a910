/* test_ldapmap_slapd.c - ldapmap against real OpenLDAP servers (tests/fixtures/
 * dirfixture.py: a primary and a backup slapd, each with an AD-like and an Open-
 * Directory-like tree): connect and bind (good, wrong password, LDAPS with the right and
 * a wrong CA, StartTLS), a silent server, users and groups of both trees, paged results,
 * changed-since listings, lookups that try filter injection, LDAP-bind passwords,
 * lm_test, and failover to the backup and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lm_int.h"

typedef struct fixture {
	char tmp[256];             /* ours: fixture.json, fixture.err, fx/ */
	char dir[300];             /* the fixture's (it wants it empty) */
	char script[512];
	int up;
	char primary[64], primary_tls[64], backup[64], backup_tls[64];
	char ca_file[512], wrong_ca_file[512];
	char ad_dn[256], od_dn[256], password[128];
} fixture;

static fixture fx;

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void fixture_script(char *out, size_t n)
{
	const char *env = getenv("TERN_DIRFIXTURE");
	const char *slash = strrchr(__FILE__, '/');
	int w = env && *env ? snprintf(out, n, "%s", env)
		: snprintf(out, n, "%.*s/../fixtures/dirfixture.py", slash ? (int)(slash - __FILE__) : 1,
			   slash ? __FILE__ : ".");
	if (w < 0 || (size_t)w >= n)
		out[0] = '\0';
}

/* One line of the fixture's JSON, read by Python (the fixture's own language). */
static int read_info(void)
{
	char cmd[2048], line[600];
	char *fields[] = { fx.primary, fx.primary_tls, fx.backup, fx.backup_tls, fx.ca_file,
			   fx.wrong_ca_file, fx.ad_dn, fx.od_dn, fx.password };
	size_t sizes[] = { sizeof(fx.primary), sizeof(fx.primary_tls), sizeof(fx.backup),
			   sizeof(fx.backup_tls), sizeof(fx.ca_file), sizeof(fx.wrong_ca_file),
			   sizeof(fx.ad_dn), sizeof(fx.od_dn), sizeof(fx.password) };
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
		 "h=lambda s,p: \"%%s:%%d\" %% (s[\"host\"], s[p]); "
		 "print(h(d[\"primary\"],\"ldap_port\")); print(h(d[\"primary\"],\"ldaps_port\")); "
		 "print(h(d[\"backup\"],\"ldap_port\")); print(h(d[\"backup\"],\"ldaps_port\")); "
		 "print(d[\"tls\"][\"ca_file\"]); print(d[\"tls\"][\"wrong_ca_file\"]); "
		 "print(d[\"ad\"][\"bind_dn\"]); print(d[\"od\"][\"bind_dn\"]); "
		 "print(d[\"ad\"][\"bind_password\"])' %s/fixture.json", fx.tmp);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t i = 0;
	for (; i < sizeof(fields) / sizeof(fields[0]) && fgets(line, sizeof(line), p); i++) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(fields[i], sizes[i], "%s", line);
	}
	pclose(p);
	return i == sizeof(fields) / sizeof(fields[0]) ? 0 : -1;
}

static int setup(void **state)
{
	char cmd[2048];

	fixture_script(fx.script, sizeof(fx.script));
	if (!fx.script[0] || access(fx.script, R_OK) != 0)
		return 0;
	snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/tern-ldapfx-XXXXXX");
	if (!mkdtemp(fx.tmp))
		return 0;
	snprintf(fx.dir, sizeof(fx.dir), "%s/fx", fx.tmp);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s start %s --no-kdc >%s/fixture.json 2>%s/fixture.err",
		 fx.script, fx.dir, fx.tmp, fx.tmp);
	if (sh(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s/fixture.err >&2", fx.tmp);
		sh(cmd);
		return 0;
	}
	fx.up = read_info() == 0;
	return 0;
}

static int teardown(void **state)
{
	char cmd[2048];

	if (fx.tmp[0]) {
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s stop %s >/dev/null 2>&1; rm -rf %s",
			 fx.script, fx.dir, fx.tmp);
		sh(cmd);
	}
	return 0;
}

/* Skip when the fixture script is not there; fail when it is there and did not start. */
static void need_slapd(void)
{
	if (!fx.script[0] || access(fx.script, R_OK) != 0) {
		print_message("tests/fixtures/dirfixture.py is missing: slapd tests skipped\n");
		skip();
	}
	assert_true(fx.up);
}

static void ctl(const char *which, const char *what)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s ctl %s %s %s >/dev/null", fx.script, fx.dir,
		 which, what);
	assert_int_equal(sh(cmd), 0);
}

static lm_config make_cfg(lm_type type)
{
	lm_config cfg = {
		.domain = "example.test", .type = type, .server = fx.primary, .backup_server = "",
		.tls = LM_TLS_PLAIN, .ca_file = "", .bind_dn = type == LM_TYPE_AD ? fx.ad_dn : fx.od_dn,
		.bind_password = fx.password, .base = type == LM_TYPE_AD ? "dc=ad,dc=test" : "dc=od,dc=test",
		.directory_domain = "", .realm = "EXAMPLE.TEST", .auth = LM_AUTH_BIND, .timeout = 3,
		.failover_retry = 30, .keytab = "",
	};
	return cfg;
}

static void test_connect(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_AD);
	char *err = NULL;

	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	assert_string_equal(lm_server(c), fx.primary);
	lm_close(&c);
	assert_null(c);

	cfg.bind_password = "wrong";
	assert_null(lm_connect(&cfg, &err));
	assert_non_null(strstr(err, "Invalid credentials"));
	assert_non_null(strstr(err, fx.primary));
	free(err);
	err = NULL;

	cfg.bind_password = "";   /* would be an unauthenticated bind: refused by us */
	assert_null(lm_connect(&cfg, &err));
	assert_non_null(strstr(err, "empty"));
	free(err);
	err = NULL;

	cfg = make_cfg(LM_TYPE_AD);
	cfg.server = "127.0.0.1:1";
	assert_null(lm_connect(&cfg, &err));
	assert_non_null(strstr(err, "127.0.0.1:1: "));
	free(err);
}

static void test_tls(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_OD);
	char *err = NULL;

	cfg.tls = LM_TLS_LDAPS;
	cfg.server = fx.primary_tls;
	cfg.ca_file = fx.ca_file;
	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	lm_close(&c);

	cfg.ca_file = fx.wrong_ca_file;
	assert_null(lm_connect(&cfg, &err));
	assert_non_null(err);
	print_message("wrong CA: %s\n", err);
	free(err);
	err = NULL;

	cfg.tls = LM_TLS_STARTTLS;
	cfg.server = fx.primary;
	cfg.ca_file = fx.ca_file;
	c = lm_connect(&cfg, &err);
	assert_non_null(c);
	lm_close(&c);
	cfg.ca_file = fx.wrong_ca_file;
	assert_null(lm_connect(&cfg, &err));
	assert_non_null(strstr(err, "StartTLS"));
	free(err);
}

/* "localhost:port" for the fixture's "127.0.0.1:port". */
static void as_localhost(const char *server, char *out, size_t n)
{
	const char *colon = strrchr(server, ':');
	assert_non_null(colon);
	int w = snprintf(out, n, "localhost%s", colon);
	assert_true(w > 0 && (size_t)w < n);
}

/* The server named "localhost": libldap would check the certificate against the
 * machine's host name instead (its special case for that name); the fixture's
 * certificate names localhost and 127.0.0.1, never the host name. Both LDAPS and
 * StartTLS must work with the fixture's CA and fail with another. */
static void test_tls_localhost(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_OD);
	char ldaps[80], plain[80], *err = NULL;

	as_localhost(fx.primary_tls, ldaps, sizeof(ldaps));
	as_localhost(fx.primary, plain, sizeof(plain));
	for (int mode = 0; mode < 2; mode++) {
		cfg.tls = mode == 0 ? LM_TLS_LDAPS : LM_TLS_STARTTLS;
		cfg.server = mode == 0 ? ldaps : plain;
		cfg.ca_file = fx.ca_file;
		lm_conn *c = lm_connect(&cfg, &err);
		if (!c)
			print_message("%s: %s\n", cfg.server, err);
		assert_non_null(c);
		assert_string_equal(lm_server(c), cfg.server);
		lm_user *u = NULL;
		assert_int_equal(lm_find_user(c, "alice", &u, &err), 0);
		assert_string_equal(u->login, "alice");
		lm_user_free(&u);
		lm_close(&c);

		cfg.ca_file = fx.wrong_ca_file;
		assert_null(lm_connect(&cfg, &err));
		print_message("%s, wrong CA: %s\n", cfg.server, err);
		assert_non_null(strstr(err, mode == 0 ? "TLS failed" : "StartTLS failed"));
		assert_non_null(strstr(err, cfg.server));
		free(err);
		err = NULL;
	}
}

/* A server that accepts connections (kernel backlog) and never says a word. */
static void test_silent_server(void **state)
{
	need_slapd();
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char server[64], *err = NULL;

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 16), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sa.sin_port));

	lm_config cfg = make_cfg(LM_TYPE_AD);
	cfg.server = server;
	cfg.timeout = 1;
	for (int tls = LM_TLS_PLAIN; tls <= LM_TLS_STARTTLS; tls++) {
		cfg.tls = (lm_tls)tls;
		cfg.ca_file = fx.ca_file;
		int64_t t0 = tern_mono_ms();
		assert_null(lm_connect(&cfg, &err));
		int64_t took = tern_mono_ms() - t0;
		print_message("silent server, tls mode %d: %lld ms: %s\n", tls, (long long)took, err);
		assert_true(took < 4000);
		free(err);
		err = NULL;
	}
	close(s);
}

typedef struct seen {
	char names[32][65];
	lm_user users[32];
	size_t n;
} seen;

static int collect_user(const lm_user *u, void *arg)
{
	seen *s = arg;
	if (s->n < 32) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", u->login);
		s->users[s->n].enabled = u->enabled;
		s->users[s->n].naddresses = u->naddresses;
		s->users[s->n].ngroups = u->ngroups;
		s->users[s->n].rights = u->rights;
		s->users[s->n].quota_bytes = u->quota_bytes;
	}
	s->n++;
	return 0;
}

static const lm_user *find(seen *s, const char *login)
{
	for (size_t i = 0; i < s->n && i < 32; i++)
		if (!strcmp(s->names[i], login))
			return &s->users[i];
	return NULL;
}

static void test_users_ad(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_AD);
	char *err = NULL;
	seen s = { 0 };
	uint64_t max = 0;

	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	c->page_size = 2;          /* fewer than the 7 users: several pages */
	c->pages = 0;
	assert_int_equal(lm_users(c, 0, collect_user, &s, &max, &err), 0);
	assert_int_equal(s.n, 7);  /* tern (the service account) and the six users */
	assert_true(c->pages >= 4);
	assert_true(max == 1006);  /* frank's uSNChanged */
	const lm_user *alice = find(&s, "alice");
	assert_non_null(alice);
	assert_int_equal(alice->enabled, 1);
	assert_int_equal(alice->naddresses, 2);       /* alice, ally */
	assert_int_equal(alice->ngroups, 2);          /* sales, staff (memberof overlay) */
	assert_int_equal(alice->rights, 2);
	assert_true(alice->quota_bytes == 100ULL << 20);
	assert_int_equal(find(&s, "carol")->enabled, 0);   /* userAccountControl 514 */
	assert_int_equal(find(&s, "frank")->enabled, 0);   /* ternMailboxEnabled FALSE */

	/* changed since: only what has a higher uSNChanged */
	memset(&s, 0, sizeof(s));
	assert_int_equal(lm_users(c, 1005, collect_user, &s, &max, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.names[0], "frank");
	memset(&s, 0, sizeof(s));
	assert_int_equal(lm_users(c, 1006, collect_user, &s, &max, &err), 0);
	assert_int_equal(s.n, 0);
	assert_true(max == 1006);
	lm_close(&c);
}

static void test_users_od(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_OD);
	char *err = NULL;
	seen s = { 0 };
	uint64_t max = 0;

	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	c->page_size = 3;
	c->pages = 0;
	assert_int_equal(lm_users(c, 0, collect_user, &s, &max, &err), 0);
	assert_int_equal(s.n, 7);
	assert_true(c->pages >= 3);
	assert_true(max > 20200101000000ULL && max < 30000101000000ULL);
	assert_int_equal(find(&s, "bob")->naddresses, 3);   /* bob, robert, bobby */
	assert_int_equal(find(&s, "bob")->rights, 3);
	assert_int_equal(find(&s, "carol")->enabled, 0);
	assert_int_equal(find(&s, "dave")->enabled, 1);
	/* modifyTimestamp: the last second is visited again, the future never */
	memset(&s, 0, sizeof(s));
	assert_int_equal(lm_users(c, max, collect_user, &s, NULL, &err), 0);
	assert_true(s.n >= 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(lm_users(c, 20990101000000ULL, collect_user, &s, &max, &err), 0);
	assert_int_equal(s.n, 0);
	lm_close(&c);
}

typedef struct groups_seen {
	size_t n;
	int ok_sales, ok_staff;
} groups_seen;

static int check_group(const lm_group *g, void *arg)
{
	groups_seen *s = arg;
	s->n++;
	if (!strcmp(g->name, "sales")) {
		s->ok_sales = g->nmembers == 2 && g->naddresses == 2 && !strcmp(g->addresses[0], "sales") &&
			      !strcmp(g->addresses[1], "team") && g->rights == 2;
		if (g->members_are_dns)
			s->ok_sales = s->ok_sales && strstr(g->members[0], "Alice Liddell") != NULL;
		else
			s->ok_sales = s->ok_sales && !strcmp(g->members[0], "alice") &&
				      !strcmp(g->members[1], "bob");
	} else if (!strcmp(g->name, "staff")) {
		s->ok_staff = g->nmembers == 3 && g->naddresses == 1 && g->rights == 0;
	}
	return 0;
}

static void test_groups(void **state)
{
	need_slapd();
	for (int t = 0; t < 2; t++) {
		lm_config cfg = make_cfg(t == 0 ? LM_TYPE_AD : LM_TYPE_OD);
		char *err = NULL;
		groups_seen s = { 0 };
		uint64_t max = 0;

		lm_conn *c = lm_connect(&cfg, &err);
		assert_non_null(c);
		c->page_size = 1;
		assert_int_equal(lm_groups(c, 0, check_group, &s, &max, &err), 0);
		assert_int_equal(s.n, 2);
		assert_true(s.ok_sales);
		assert_true(s.ok_staff);
		if (t == 0)
			assert_true(max == 1008);
		lm_close(&c);
	}
}

static void test_find_user(void **state)
{
	need_slapd();
	static const char *const injections[] = {
		"*", "(", ")", "\\", "alice)(sAMAccountName=*", "*)(|(objectClass=*",
		"al*", "alice\\2a", "",
	};
	for (int t = 0; t < 2; t++) {
		lm_config cfg = make_cfg(t == 0 ? LM_TYPE_AD : LM_TYPE_OD);
		char *err = NULL;
		lm_user *u = NULL;

		lm_conn *c = lm_connect(&cfg, &err);
		assert_non_null(c);
		assert_int_equal(lm_find_user(c, "ALICE", &u, &err), 0);
		assert_string_equal(u->login, "alice");
		assert_string_equal(u->principal, "alice@EXAMPLE.TEST");
		assert_string_equal(u->full_name, "Alice Liddell");
		lm_user_free(&u);
		for (size_t i = 0; i < sizeof(injections) / sizeof(injections[0]); i++) {
			int rc = lm_find_user(c, injections[i], &u, &err);
			if (rc < 0)
				print_message("%s: %s\n", injections[i], err);
			assert_int_equal(rc, 1);
			assert_null(u);
		}
		lm_close(&c);
	}
}

static void test_bind_password(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_AD);
	char *err = NULL, *reason = NULL;
	lm_user *u = NULL;

	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	assert_int_equal(lm_find_user(c, "alice", &u, &err), 0);
	assert_int_equal(lm_check_password(c, u, "Alice-Pass-1", &reason), 0);
	assert_null(reason);
	assert_int_equal(lm_check_password(c, u, "Alice-Pass-2", &reason), 1);
	assert_string_equal(reason, "bad credentials");
	free(reason);
	assert_int_equal(lm_check_password(c, u, "", &reason), 1);
	free(reason);
	lm_user_free(&u);

	assert_int_equal(lm_find_user(c, "carol", &u, &err), 0);
	assert_int_equal(lm_check_password(c, u, "Carol-Pass-3", &reason), 1);
	assert_string_equal(reason, "account disabled");
	free(reason);
	lm_user_free(&u);
	/* the service handle still works after user binds */
	assert_int_equal(lm_find_user(c, "bob", &u, &err), 0);
	lm_user_free(&u);
	lm_close(&c);
}

static void test_lm_test(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_AD);
	tbuf r = TBUF_INIT;

	cfg.tls = LM_TLS_LDAPS;
	cfg.server = fx.primary_tls;
	cfg.backup_server = fx.backup_tls;
	cfg.ca_file = fx.ca_file;
	assert_int_equal(lm_test(&cfg, &r), 0);
	print_message("%s", tbuf_cstr(&r));
	assert_non_null(strstr(tbuf_cstr(&r), "OK: schema: Tern attributes installed"));
	assert_non_null(strstr(tbuf_cstr(&r), "OK: 7 users found"));
	assert_non_null(strstr(tbuf_cstr(&r), "OK: 2 groups found"));
	assert_non_null(strstr(tbuf_cstr(&r), "user alice <alice@EXAMPLE.TEST>"));
	assert_null(strstr(tbuf_cstr(&r), "FAILED"));
	assert_null(strstr(tbuf_cstr(&r), fx.password));     /* never the password */

	tbuf_reset(&r);
	cfg.bind_password = "wrong";
	assert_int_equal(lm_test(&cfg, &r), -1);
	assert_non_null(strstr(tbuf_cstr(&r), "FAILED: server: bind as"));
	assert_null(strstr(tbuf_cstr(&r), "wrong"));
	tbuf_free(&r);
}

static void test_failover(void **state)
{
	need_slapd();
	lm_config cfg = make_cfg(LM_TYPE_OD);
	char *err = NULL;
	seen s = { 0 };
	lm_user *u = NULL;

	cfg.backup_server = fx.backup;
	cfg.failover_retry = 2;
	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	assert_string_equal(lm_server(c), fx.primary);

	ctl("primary", "stop");
	assert_int_equal(lm_users(c, 0, collect_user, &s, NULL, &err), 0);
	assert_int_equal(s.n, 7);
	assert_string_equal(lm_server(c), fx.backup);
	/* a new connection goes straight to the backup too */
	lm_conn *c2 = lm_connect(&cfg, &err);
	assert_non_null(c2);
	assert_string_equal(lm_server(c2), fx.backup);
	lm_close(&c2);

	/* primary back: used again once failover_retry has passed */
	ctl("primary", "start");
	assert_int_equal(lm_find_user(c, "bob", &u, &err), 0);
	lm_user_free(&u);
	assert_string_equal(lm_server(c), fx.backup);
	sleep(3);
	assert_int_equal(lm_find_user(c, "bob", &u, &err), 0);
	lm_user_free(&u);
	assert_string_equal(lm_server(c), fx.primary);

	/* both down: a clear error naming both */
	ctl("primary", "stop");
	ctl("backup", "stop");
	memset(&s, 0, sizeof(s));
	assert_int_equal(lm_users(c, 0, collect_user, &s, NULL, &err), -1);
	print_message("both down: %s\n", err);
	assert_non_null(strstr(err, fx.primary));
	assert_non_null(strstr(err, fx.backup));
	free(err);
	ctl("primary", "start");
	ctl("backup", "start");
	lm_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_localhost),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_users_ad),
		cmocka_unit_test(test_users_od),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_find_user),
		cmocka_unit_test(test_bind_password),
		cmocka_unit_test(test_lm_test),
		cmocka_unit_test(test_failover),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
