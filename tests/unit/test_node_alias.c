/* test_node_alias.c - the alias rules of the guide (ch. 12.3) as a table run through
 * deliver_alias_resolve: every example of the chapter, wildcards, the catch-all,
 * several targets, chains and loops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <cmocka.h>
#include "deliver.h"

#define MAXA 12
#define MAXR 8

typedef struct alias_case {
	const char *what;
	deliver_alias_entry aliases[MAXA];   /* {NULL} ends */
	const char *names[MAXR];             /* users and groups of the domain */
	const char *input;
	const char *expect[MAXR];            /* final results, in order */
} alias_case;

static const alias_case cases[] = {
	/* ---- the guide's examples, ch. 12.3 ---- */
	{ "1. info -> #public/Info",
	  { { "info", "#public/Info" } }, { "jsmith" },
	  "info", { "#public/Info" } },
	{ "2. * -> Admin: an invalid address goes to Admin",
	  { { "*", "Admin" } }, { "admin", "jsmith" },
	  "nosuchuser", { "admin" } },
	{ "2. * -> Admin: a user keeps its mail",
	  { { "*", "Admin" } }, { "admin", "jsmith" },
	  "jsmith", { "jsmith" } },
	{ "2. without a catch-all the unknown name stays (and bounces)",
	  { { "info", "#public/Info" } }, { "admin" },
	  "nosuchuser", { "nosuchuser" } },
	{ "3. *sms*", { { "*sms*", "smsgate" } }, { "smsgate" }, "mysmsbox", { "smsgate" } },
	{ "3. *sms* matches sms alone", { { "*sms*", "smsgate" } }, { "smsgate" }, "sms", { "smsgate" } },
	{ "3. *sms* does not match s-m-x", { { "*sms*", "smsgate" } }, { "smsgate" }, "smx", { "smx" } },
	{ "3. a*00*", { { "a*00*", "sales" } }, { "sales" }, "a00", { "sales" } },
	{ "3. a*00* with text around", { { "a*00*", "sales" } }, { "sales" }, "abc001x", { "sales" } },
	{ "3. a*00* needs the leading a", { { "a*00*", "sales" } }, { "sales" }, "b00", { "b00" } },
	{ "3. a*00* needs two zeros", { { "a*00*", "sales" } }, { "sales" }, "a0x0", { "a0x0" } },
	{ "4. ?ime: time", { { "?ime", "clock" } }, { "clock" }, "time", { "clock" } },
	{ "4. ?ime: dime", { { "?ime", "clock" } }, { "clock" }, "dime", { "clock" } },
	{ "4. ?ime: one character, not none", { { "?ime", "clock" } }, { "clock" }, "ime", { "ime" } },
	{ "4. ?ime: one character, not two", { { "?ime", "clock" } }, { "clock" }, "prime", { "prime" } },
	{ "5. jwayne -> info + jwayne -> jwayne: both",
	  { { "jwayne", "info" }, { "jwayne", "jwayne" } }, { "jwayne", "info" },
	  "jwayne", { "info", "jwayne" } },
	{ "5. with info -> #public/Info as in example 1",
	  { { "info", "#public/Info" }, { "jwayne", "info" }, { "jwayne", "jwayne" } }, { "jwayne" },
	  "jwayne", { "#public/Info", "jwayne" } },
	{ "5. jwayne -> info alone: the user gets no copy",
	  { { "jwayne", "info" } }, { "jwayne", "info" },
	  "jwayne", { "info" } },
	{ "chain: jwayne -> wayne -> john.wayne -> wayne delivers to john.wayne",
	  { { "jwayne", "wayne" }, { "wayne", "john.wayne" }, { "john.wayne", "wayne" } }, { NULL },
	  "jwayne", { "john.wayne" } },
	{ "chain, same with john.wayne a user",
	  { { "jwayne", "wayne" }, { "wayne", "john.wayne" }, { "john.wayne", "wayne" } },
	  { "john.wayne" },
	  "jwayne", { "john.wayne" } },
	{ "fig. 12.6: * -> jsmith@company.com",
	  { { "*", "jsmith@company.com" } }, { "jsmith" },
	  "whoever", { "jsmith@company.com" } },
	{ "fig. 12.7: alias check sales -> jsmith@company.com",
	  { { "sales", "jsmith@company.com" } }, { "jsmith" },
	  "sales", { "jsmith@company.com" } },
	{ "fig. 7.13: programmer -> programmer@us.company.com (other office)",
	  { { "programmer", "programmer@us.company.com" }, { "technician", "technician@us.company.com" } },
	  { NULL },
	  "programmer", { "programmer@us.company.com" } },

	/* ---- which alias applies ---- */
	{ "wildcards never capture an existing user",
	  { { "*sms*", "smsgate" } }, { "smsadmin", "smsgate" },
	  "smsadmin", { "smsadmin" } },
	{ "an exact alias wins over wildcards",
	  { { "*sms*", "smsgate" }, { "sms", "bob" } }, { "bob", "smsgate" },
	  "sms", { "bob" } },
	{ "a wildcard wins over the catch-all",
	  { { "*", "admin" }, { "*sms*", "smsgate" } }, { "admin", "smsgate" },
	  "mysms", { "smsgate" } },
	{ "the catch-all takes what nothing else takes",
	  { { "*", "admin" }, { "*sms*", "smsgate" } }, { "admin", "smsgate" },
	  "other", { "admin" } },
	{ "every matching wildcard delivers",
	  { { "*sms*", "smsgate" }, { "sms*", "smsteam" } }, { "smsgate", "smsteam" },
	  "smsx", { "smsgate", "smsteam" } },
	{ "a pattern of ? only is a catch-all too",
	  { { "???", "three" }, { "a?c", "abc.owner" } }, { "three", "abc.owner" },
	  "abc", { "abc.owner" } },
	{ "case does not matter; results are lower case, folders keep theirs",
	  { { "Info", "#public/Info" }, { "Sales", "JSmith" } }, { "jsmith" },
	  "SALES", { "jsmith" } },
	{ "case: public folder", { { "Info", "#public/Info" } }, { NULL }, "INFO", { "#public/Info" } },

	/* ---- several targets, chains, loops ---- */
	{ "several targets: users, an alias, an external address",
	  { { "team", "ann" }, { "team", "bob" }, { "team", "Partner@Other.Test" }, { "bob", "robert" } },
	  { "ann", "robert" },
	  "team", { "ann", "robert", "partner@other.test" } },
	{ "a chain through a mistyped name ends at the catch-all",
	  { { "sales", "nobody" }, { "*", "admin" } }, { "admin" },
	  "sales", { "admin" } },
	{ "catch-all to a missing admin stops there",
	  { { "*", "admin" } }, { NULL },
	  "foo", { "admin" } },
	{ "two-name loop: a -> b -> a delivers to b",
	  { { "a", "b" }, { "b", "a" } }, { NULL },
	  "a", { "b" } },
	{ "self loop", { { "a", "a" } }, { NULL }, "a", { "a" } },
	{ "diamond: one result",
	  { { "x", "a" }, { "x", "b" }, { "a", "c" }, { "b", "c" } }, { "c" },
	  "x", { "c" } },
	{ "an alias to a user stops at the user even if it has a catch-all",
	  { { "help", "ann" }, { "*", "admin" } }, { "ann", "admin" },
	  "help", { "ann" } },
};

static int names_has(const char *local, void *ctx)
{
	const char *const *names = ctx;

	for (size_t i = 0; i < MAXR && names[i] != NULL; i++)
		if (strcmp(names[i], local) == 0)
			return 1;
	return 0;
}

static void test_table(void **state)
{
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const alias_case *k = &cases[c];
		char *out[MAXR];
		size_t na = 0, ne = 0, n;

		while (na < MAXA && k->aliases[na].pattern != NULL)
			na++;
		while (ne < MAXR && k->expect[ne] != NULL)
			ne++;
		n = deliver_alias_resolve(k->aliases, na, k->input, names_has, (void *)k->names, out, MAXR);
		if (n != ne)
			fail_msg("case \"%s\": %zu results, expected %zu", k->what, n, ne);
		for (size_t i = 0; i < n; i++) {
			if (strcmp(out[i], k->expect[i]) != 0)
				fail_msg("case \"%s\": result %zu is \"%s\", expected \"%s\"", k->what, i,
					 out[i], k->expect[i]);
			free(out[i]);
		}
	}
}

static void test_match(void **state)
{
	assert_int_equal(deliver_alias_match("*sms*", "mysmsbox"), 1);
	assert_int_equal(deliver_alias_match("*sms*", "SMS"), 1);
	assert_int_equal(deliver_alias_match("a*00*", "a00"), 1);
	assert_int_equal(deliver_alias_match("a*00*", "xa00"), 0);
	assert_int_equal(deliver_alias_match("?ime", "time"), 1);
	assert_int_equal(deliver_alias_match("?ime", "ime"), 0);
	assert_int_equal(deliver_alias_match("*", ""), 1);
	assert_int_equal(deliver_alias_match("john.wayne", "John.Wayne"), 1);
	assert_int_equal(deliver_alias_match(NULL, "x"), 0);
}

/* A chain longer than the depth bound stops, without looping or overflowing. */
static void test_depth_bound(void **state)
{
	deliver_alias_entry a[40];
	char names[41][16];
	char *out[4];
	size_t n;

	for (int i = 0; i <= 40; i++)
		snprintf(names[i], sizeof(names[i]), "n%d", i);
	for (int i = 0; i < 40; i++) {
		a[i].pattern = names[i];
		a[i].target = names[i + 1];
	}
	n = deliver_alias_resolve(a, 40, "n0", NULL, NULL, out, 4);
	assert_int_equal(n, 1);
	assert_string_equal(out[0], "n16");
	free(out[0]);
}

/* Results stop at max; the ones returned are the first in order. */
static void test_max(void **state)
{
	const deliver_alias_entry a[] = { { "team", "ann" }, { "team", "bob" }, { "team", "cy" } };
	char *out[2];
	size_t n = deliver_alias_resolve(a, 3, "team", NULL, NULL, out, 2);

	assert_int_equal(n, 2);
	assert_string_equal(out[0], "ann");
	assert_string_equal(out[1], "bob");
	free(out[0]);
	free(out[1]);
	assert_int_equal(deliver_alias_resolve(a, 3, "", NULL, NULL, out, 2), 0);
}

/* ---- deliver_expand on a temporary store: domain aliases, groups, forwarding ---- */

typedef struct expand_fixture {
	char dir[64];
	store *st;
} expand_fixture;

static void add_domain(store *st, const char *name, const char *alias)
{
	Tern__Domain d = TERN__DOMAIN__INIT;
	char *aliases[1] = { (char *)alias };
	store_sync_result res;

	d.name = (char *)name;
	d.n_aliases = alias ? 1 : 0;
	d.aliases = aliases;
	assert_int_equal(store_domain_add(st, &d, STORE_SYNC, &res), STORE_OK);
}

static void add_user(store *st, const char *name, const char *domain, const char *extra,
		     const char *fwd1, const char *fwd2, int keep_copy)
{
	Tern__User u = TERN__USER__INIT;
	char *addresses[1] = { (char *)extra }, *forward[2] = { (char *)fwd1, (char *)fwd2 };
	store_sync_result res;

	u.name = (char *)name;
	u.domain = (char *)domain;
	u.enabled = 1;
	u.n_addresses = extra ? 1 : 0;
	u.addresses = addresses;
	u.n_forward = fwd2 ? 2 : fwd1 ? 1 : 0;
	u.forward = forward;
	u.forward_keep_copy = keep_copy;
	if (store_user_add(st, &u, STORE_SYNC, &res) != STORE_OK)
		fail_msg("user %s@%s: %s", name, domain, res.error);
}

static void add_alias(store *st, const char *pattern, const char *target)
{
	store_sync_result res;

	if (store_alias_add(st, "x.test", pattern, target, NULL, STORE_SYNC, &res) != STORE_OK)
		fail_msg("alias %s -> %s: %s", pattern, target, res.error);
}

static int expand_setup(void **state)
{
	expand_fixture *f = calloc(1, sizeof(*f));
	store_options o;
	char path[96], *err = NULL;
	Tern__Group g = TERN__GROUP__INIT;
	char *gaddr[1] = { "team" };
	char *members[3] = { "ann@x.test", "bob@x.test", "eve@y.test" };
	store_sync_result res;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/tern-alias-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/db", f->dir);
	store_options_default(&o);
	o.path = path;
	o.commit_threads = 1;
	o.sweep_interval = 0;
	o.disk_check_interval = 0;
	o.disk_soft_limit = o.disk_hard_limit = 0;
	if (store_open(&o, &f->st, &err) != 0)
		fail_msg("store_open: %s", err ? err : "?");

	add_domain(f->st, "x.test", "alias.test");
	add_domain(f->st, "y.test", NULL);
	add_user(f->st, "ann", "x.test", NULL, NULL, NULL, 0);
	add_user(f->st, "bob", "x.test", NULL, "ext@remote.test", NULL, 0);
	add_user(f->st, "cy", "x.test", NULL, "ann@x.test", "dan@x.test", 1);
	add_user(f->st, "dan", "x.test", NULL, "cy@x.test", NULL, 0);
	add_user(f->st, "jwayne", "x.test", "john", NULL, NULL, 0);
	add_user(f->st, "eve", "y.test", NULL, NULL, NULL, 0);
	g.name = "team";
	g.domain = "x.test";
	g.n_addresses = 1;
	g.addresses = gaddr;
	g.n_members = 3;
	g.members = members;
	if (store_group_add(f->st, &g, STORE_SYNC, &res) != STORE_OK)
		fail_msg("group: %s", res.error);
	add_alias(f->st, "info", "#public/Info");
	add_alias(f->st, "sales", "team@x.test");
	add_alias(f->st, "sales", "ann@alias.test");
	add_alias(f->st, "jwayne", "info@x.test");
	add_alias(f->st, "jwayne", "jwayne@x.test");
	add_alias(f->st, "ext", "eve@y.test");
	add_alias(f->st, "*", "ann@x.test");
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int expand_teardown(void **state)
{
	expand_fixture *f = *state;

	store_close(&f->st);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

typedef struct want {
	deliver_kind kind;
	const char *address;
} want;

/* Expand addr and compare the recipients, in order, with the list. */
static void check_expand(store *st, const char *addr, const want *w, size_t nw, const char *trace_has)
{
	deliver_expansion e;

	assert_int_equal(deliver_expand(st, addr, &e), 0);
	if (e.n != nw)
		fail_msg("%s: %zu recipients, expected %zu; trace:\n%s", addr, e.n, nw,
			 tbuf_cstr(&e.trace));
	for (size_t i = 0; i < nw; i++)
		if (e.rcpts[i].kind != w[i].kind || strcmp(e.rcpts[i].address, w[i].address) != 0)
			fail_msg("%s: recipient %zu is %d %s, expected %d %s; trace:\n%s", addr, i,
				 e.rcpts[i].kind, e.rcpts[i].address, w[i].kind, w[i].address,
				 tbuf_cstr(&e.trace));
	if (trace_has && strstr(tbuf_cstr(&e.trace), trace_has) == NULL)
		fail_msg("%s: trace lacks \"%s\":\n%s", addr, trace_has, tbuf_cstr(&e.trace));
	deliver_expansion_free(&e);
	assert_null(e.rcpts);
}

#define CHECK(st, addr, trace, ...) do { \
	const want w_[] = { __VA_ARGS__ }; \
	check_expand(st, addr, w_, sizeof(w_) / sizeof(w_[0]), trace); \
} while (0)

static void test_expand_store(void **state)
{
	store *st = ((expand_fixture *)*state)->st;

	CHECK(st, "ann@x.test", "ann@x.test -> local mailbox",
	      { DELIVER_LOCAL_USER, "ann@x.test" });
	/* Forward without keep-copy: only the target. */
	CHECK(st, "bob@x.test", "bob@x.test -> forward -> ext@remote.test",
	      { DELIVER_REMOTE, "ext@remote.test" });
	/* Keep-copy; a forward coming back to cy stays with dan, who forwarded it. */
	CHECK(st, "cy@x.test", "cy@x.test -> forward -> dan@x.test",
	      { DELIVER_LOCAL_USER, "cy@x.test" }, { DELIVER_LOCAL_USER, "ann@x.test" },
	      { DELIVER_LOCAL_USER, "dan@x.test" });
	/* Alias to a group and to a duplicate through the domain alias. */
	CHECK(st, "Sales@X.Test", "team@x.test -> group member -> bob@x.test",
	      { DELIVER_LOCAL_USER, "ann@x.test" }, { DELIVER_REMOTE, "ext@remote.test" },
	      { DELIVER_LOCAL_USER, "eve@y.test" });
	/* The group itself by its address, reached through the domain alias. */
	CHECK(st, "team@alias.test", NULL,
	      { DELIVER_LOCAL_USER, "ann@x.test" }, { DELIVER_REMOTE, "ext@remote.test" },
	      { DELIVER_LOCAL_USER, "eve@y.test" });
	/* Guide example 5 with example 1: a public folder and the user's copy. */
	CHECK(st, "jwayne@x.test", "jwayne@x.test -> alias -> info@x.test",
	      { DELIVER_PUBLIC, "#public/Info" }, { DELIVER_LOCAL_USER, "jwayne@x.test" });
	/* An extra address of a user is the user; the catch-all does not take it. */
	CHECK(st, "john@alias.test", "john@x.test -> address of -> jwayne@x.test",
	      { DELIVER_LOCAL_USER, "jwayne@x.test" });
	CHECK(st, "nobody@x.test", "nobody@x.test -> alias -> ann@x.test",
	      { DELIVER_LOCAL_USER, "ann@x.test" });
	CHECK(st, "ext@x.test", NULL, { DELIVER_LOCAL_USER, "eve@y.test" });
	/* No catch-all in y.test: unknown. Outside the local domains: remote. */
	CHECK(st, "nobody@y.test", "nobody@y.test -> unknown recipient",
	      { DELIVER_UNKNOWN, "nobody@y.test" });
	CHECK(st, "Someone@Remote.Test", NULL, { DELIVER_REMOTE, "someone@remote.test" });
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_max),
		cmocka_unit_test_setup_teardown(test_expand_store, expand_setup, expand_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
