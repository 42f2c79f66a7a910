/* test_ldapmap_range.c - Active Directory's ranged attributes end to end. AD sends at
 * most MaxValRange (1500) values of a large attribute, as "member;range=0-1499", and the
 * client asks for "member;range=1500-*" until a range ends in "*". OpenLDAP never does
 * that, so these tests run ldapmap against tests/fixtures/fakead.py, a small LDAP server
 * that splits attributes the way AD does: every member of a group of 3200 is read (three
 * range steps, asked of the group's entry), paged listings still see every user, and a
 * group larger than LM_MAX_VALUES stops at the bound instead of reading on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lm_int.h"

#define SERVICE_DN "cn=tern,cn=Users,dc=big,dc=test"
#define SERVICE_PASSWORD "Service-Pass-1"

typedef struct fake_ad {
	pid_t pid;
	char server[64];            /* "127.0.0.1:PORT" */
	char log[320];              /* its search log: "SCOPE BASE ATTRS" per request */
} fake_ad;

static char tmpdir[64];

static void script_path(char *out, size_t n)
{
	const char *slash = strrchr(__FILE__, '/');
	int w = snprintf(out, n, "%.*s/../fixtures/fakead.py", slash ? (int)(slash - __FILE__) : 1,
			 slash ? __FILE__ : ".");
	if (w < 0 || (size_t)w >= n)
		out[0] = '\0';
}

/* Start fakead.py with users and range size; it prints its port on the first line. */
static int fake_start(fake_ad *f, int users, int range, const char *tag)
{
	char script[512], nusers[16], nrange[16], line[32];
	int fds[2];

	script_path(script, sizeof(script));
	snprintf(nusers, sizeof(nusers), "%d", users);
	snprintf(nrange, sizeof(nrange), "%d", range);
	int w = snprintf(f->log, sizeof(f->log), "%s/%s.log", tmpdir, tag);
	if (w < 0 || (size_t)w >= sizeof(f->log) || access(script, R_OK) != 0 || pipe(fds) != 0)
		return -1;
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", script, "--users", nusers, "--range", nrange,
		      "--log", f->log, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *p = fdopen(fds[0], "r");
	int ok = p != NULL && fgets(line, sizeof(line), p) != NULL && atoi(line) > 0;
	if (ok)
		snprintf(f->server, sizeof(f->server), "127.0.0.1:%d", atoi(line));
	if (p != NULL)
		fclose(p);
	else
		close(fds[0]);
	return ok ? 0 : -1;
}

static void fake_stop(fake_ad *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
}

/* Lines of the server's search log that contain text. */
static int log_count(const fake_ad *f, const char *text)
{
	char line[1024];
	int n = 0;
	FILE *p = fopen(f->log, "r");

	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (strstr(line, text))
			n++;
	fclose(p);
	return n;
}

static lm_config make_cfg(const fake_ad *f)
{
	lm_config cfg = {
		.domain = "example.test", .type = LM_TYPE_AD, .server = f->server, .backup_server = "",
		.tls = LM_TLS_PLAIN, .ca_file = "", .bind_dn = SERVICE_DN,
		.bind_password = SERVICE_PASSWORD, .base = "dc=big,dc=test", .directory_domain = "",
		.realm = "BIG.TEST", .auth = LM_AUTH_BIND, .timeout = 5, .failover_retry = 30,
		.keytab = "",
	};
	return cfg;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tern-fakead-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);   /* mkdtemp's name: no quoting needed */
	return system(cmd) == 0 ? 0 : -1;
}

/* The groups of a listing, copied: name -> members. */
typedef struct seen_groups {
	int n;
	char name[4][64];
	size_t nmembers[4];
	int are_dns[4];
	char first[4][128], last[4][128];
	int distinct[4];            /* 1 when no member DN came twice */
} seen_groups;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int on_group(const lm_group *g, void *arg)
{
	seen_groups *s = arg;

	if (s->n >= 4)
		return 1;
	int i = s->n++;
	snprintf(s->name[i], sizeof(s->name[i]), "%s", g->name);
	s->nmembers[i] = g->nmembers;
	s->are_dns[i] = g->members_are_dns;
	if (g->nmembers > 0) {
		snprintf(s->first[i], sizeof(s->first[i]), "%s", g->members[0]);
		snprintf(s->last[i], sizeof(s->last[i]), "%s", g->members[g->nmembers - 1]);
	}
	char **sorted = calloc(g->nmembers + 1, sizeof(char *));
	assert_non_null(sorted);
	memcpy(sorted, g->members, g->nmembers * sizeof(char *));
	qsort(sorted, g->nmembers, sizeof(char *), cmp_str);
	s->distinct[i] = 1;
	for (size_t k = 1; k < g->nmembers; k++)
		if (strcmp(sorted[k - 1], sorted[k]) == 0)
			s->distinct[i] = 0;
	free(sorted);
	return 0;
}

static int find_group(const seen_groups *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return i;
	fail_msg("group %s not listed", name);
	return -1;
}

static int count_user(const lm_user *u, void *arg)
{
	int *n = arg;
	if (u->enabled && u->login && strncmp(u->login, "user", 4) == 0)
		(*n)++;
	return 0;
}

/* 3200 members: "member;range=0-1499" in the listing, then 1500-* and 3000-* asked of
 * the group's entry (base scope); every member arrives once, in order. */
static void test_range_members(void **state)
{
	fake_ad f = { 0 };
	char *err = NULL;
	seen_groups s = { 0 };
	uint64_t stamp = 0;

	(void)state;
	if (fake_start(&f, 3200, 1500, "range") != 0) {
		fake_stop(&f);
		fail_msg("tests/fixtures/fakead.py did not start");
	}
	lm_config cfg = make_cfg(&f);
	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);

	assert_int_equal(lm_groups(c, 0, on_group, &s, &stamp, &err), 0);
	assert_int_equal(s.n, 2);
	int big = find_group(&s, "biggroup"), small = find_group(&s, "smallgroup");
	assert_int_equal(s.nmembers[big], 3200);
	assert_true(s.are_dns[big]);
	assert_true(s.distinct[big]);
	assert_string_equal(s.first[big], "cn=user0000,cn=Users,dc=big,dc=test");
	assert_string_equal(s.last[big], "cn=user3199,cn=Users,dc=big,dc=test");
	assert_int_equal(s.nmembers[small], 2);
	assert_int_equal(stamp, 5001);
	/* the follow-ups: base-scope reads of the group, one per range, no more */
	assert_int_equal(log_count(&f, "0 cn=biggroup,cn=Users,dc=big,dc=test member;range=1500-*"), 1);
	assert_int_equal(log_count(&f, "0 cn=biggroup,cn=Users,dc=big,dc=test member;range=3000-*"), 1);
	assert_int_equal(log_count(&f, "member;range="), 2);
	assert_int_equal(log_count(&f, "smallgroup"), 0);

	/* the users beside it: 3200 in pages of LM_PAGE_SIZE */
	int nusers = 0;
	unsigned long pages = c->pages;
	assert_int_equal(lm_users(c, 0, count_user, &nusers, &stamp, &err), 0);
	assert_int_equal(nusers, 3200);
	assert_int_equal(c->pages - pages, (3200 + LM_PAGE_SIZE - 1) / LM_PAGE_SIZE);
	assert_int_equal(stamp, 1000 + 3199);

	/* a member found by login and checked by LDAP bind */
	lm_user *u = NULL;
	assert_int_equal(lm_find_user(c, "user1742", &u, &err), 0);
	assert_string_equal(u->dn, "cn=user1742,cn=Users,dc=big,dc=test");
	char *why = NULL;
	assert_int_equal(lm_check_password(c, u, "User1742-Pass", &why), 0);
	free(why);
	why = NULL;
	assert_int_equal(lm_check_password(c, u, "wrong", &why), 1);
	free(why);
	lm_user_free(&u);
	lm_close(&c);
	fake_stop(&f);
}

/* A group larger than LM_MAX_VALUES: the range steps stop at the bound. */
static void test_range_bounded(void **state)
{
	fake_ad f = { 0 };
	char *err = NULL;
	seen_groups s = { 0 };

	(void)state;
	if (fake_start(&f, LM_MAX_VALUES + 1200, 1000, "bounded") != 0) {
		fake_stop(&f);
		fail_msg("tests/fixtures/fakead.py did not start");
	}
	lm_config cfg = make_cfg(&f);
	lm_conn *c = lm_connect(&cfg, &err);
	assert_non_null(c);
	assert_int_equal(lm_groups(c, 0, on_group, &s, NULL, &err), 0);
	int big = find_group(&s, "biggroup");
	assert_int_equal(s.nmembers[big], LM_MAX_VALUES);
	assert_true(s.distinct[big]);
	assert_string_equal(s.last[big], "cn=user4999,cn=Users,dc=big,dc=test");
	/* 1000-*, 2000-*, 3000-*, 4000-*: then the bound is reached, 5000-* is never asked */
	assert_int_equal(log_count(&f, "member;range="), 4);
	assert_int_equal(log_count(&f, "member;range=5000-*"), 0);
	lm_close(&c);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_members),
		cmocka_unit_test(test_range_bounded),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
