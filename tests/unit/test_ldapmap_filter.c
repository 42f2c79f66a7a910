/* test_ldapmap_filter.c - ldapmap without a server: filter escaping, bounded and
 * UTF-8-checked attribute sets, and the mapping of AD and OD attribute sets onto lm_user
 * and lm_group. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lm_int.h"

static void test_filter_escape(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "alice", "alice" },
		{ "", "" },
		{ "*", "\\2a" },
		{ "a(b)c", "a\\28b\\29c" },
		{ "back\\slash", "back\\5cslash" },
		{ "*)(uid=*", "\\2a\\29\\28uid=\\2a" },
		{ "admin)(|(objectClass=*", "admin\\29\\28|\\28objectClass=\\2a" },
		{ "j\xc3\xa9r\xc3\xb4me", "j\xc3\xa9r\xc3\xb4me" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tbuf b = TBUF_INIT;
		lm_filter_escape(cases[i].in, &b);
		assert_string_equal(tbuf_cstr(&b), cases[i].out);
		tbuf_free(&b);
	}
}

static void test_utf8(void **state)
{
	static const struct { const char *s; size_t len; int ok; } cases[] = {
		{ "plain", 5, 1 },
		{ "caf\xc3\xa9", 5, 1 },
		{ "\xe2\x82\xac", 3, 1 },                 /* euro sign */
		{ "\xf0\x9f\x98\x80", 4, 1 },             /* emoji */
		{ "caf\xe9", 4, 0 },                      /* Latin-1 */
		{ "\xc0\xaf", 2, 0 },                     /* overlong '/' */
		{ "\xe0\x80\xaf", 3, 0 },                 /* overlong */
		{ "\xed\xa0\x80", 3, 0 },                 /* surrogate */
		{ "\xf4\x90\x80\x80", 4, 0 },             /* above U+10FFFF */
		{ "\xe2\x82", 2, 0 },                     /* truncated */
		{ "a\0b", 3, 0 },                         /* NUL */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(lm_utf8_valid(cases[i].s, cases[i].len), cases[i].ok);
}

static void test_entry_bounds(void **state)
{
	lm_entry e;
	char *big = malloc(LM_MAX_VALUE_LEN + 2);

	lm_entry_init(&e, "cn=x");
	memset(big, 'a', LM_MAX_VALUE_LEN + 1);
	big[LM_MAX_VALUE_LEN + 1] = '\0';
	assert_int_equal(lm_entry_add(&e, "description", big, LM_MAX_VALUE_LEN + 1), 1);
	assert_int_equal(lm_entry_add(&e, "description", big, LM_MAX_VALUE_LEN), 0);
	assert_int_equal(lm_entry_add(&e, "cn", "caf\xe9", 4), 1);
	assert_null(lm_entry_get(&e, "cn"));
	for (int i = 0; i < LM_MAX_VALUES + 10; i++) {
		char v[16];
		int n = snprintf(v, sizeof(v), "v%d", i);
		lm_entry_add(&e, "member", v, (size_t)n);
	}
	const lm_attr *a = lm_entry_get(&e, "MEMBER");   /* names are case-insensitive */
	assert_non_null(a);
	assert_int_equal(a->nvals, LM_MAX_VALUES);
	assert_string_equal(a->vals[0], "v0");
	assert_int_equal(e.dropped, 2 + 10);
	assert_int_equal(strlen(lm_entry_first(&e, "description")), LM_MAX_VALUE_LEN);
	lm_entry_clear(&e);
	free(big);
}

static void test_parse_range(void **state)
{
	char base[64];
	long lo, hi;

	assert_int_equal(lm_parse_range("member;range=0-1499", base, sizeof(base), &lo, &hi), 1);
	assert_string_equal(base, "member");
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 1499);
	assert_int_equal(lm_parse_range("member;Range=1500-*", base, sizeof(base), &lo, &hi), 1);
	assert_int_equal(lo, 1500);
	assert_int_equal(hi, -1);
	assert_int_equal(lm_parse_range("member", base, sizeof(base), &lo, &hi), 0);
	assert_int_equal(lm_parse_range("cn;lang-de", base, sizeof(base), &lo, &hi), 0);
	assert_int_equal(lm_parse_range("member;range=9-3", base, sizeof(base), &lo, &hi), -1);
	assert_int_equal(lm_parse_range("member;range=x-*", base, sizeof(base), &lo, &hi), -1);
	assert_int_equal(lm_parse_range(";range=0-*", base, sizeof(base), &lo, &hi), -1);
}

static void test_stamps(void **state)
{
	lm_entry e;
	tbuf b = TBUF_INIT;

	lm_entry_init(&e, "cn=x");
	lm_entry_add(&e, "modifyTimestamp", "20240305101112Z", 15);
	lm_entry_add(&e, "uSNChanged", "123456", 6);
	assert_true(lm_entry_stamp(LM_TYPE_OD, &e) == 20240305101112ULL);
	assert_true(lm_entry_stamp(LM_TYPE_AD, &e) == 123456);
	lm_entry_clear(&e);
	lm_entry_init(&e, "cn=y");
	lm_entry_add(&e, "modifyTimestamp", "2024bad", 7);
	assert_true(lm_entry_stamp(LM_TYPE_LDAP, &e) == 0);
	lm_entry_clear(&e);

	lm_changed_filter(LM_TYPE_AD, "(objectClass=user)", 0, &b);
	assert_string_equal(tbuf_cstr(&b), "(objectClass=user)");
	tbuf_reset(&b);
	lm_changed_filter(LM_TYPE_AD, "(objectClass=user)", 1001, &b);
	assert_string_equal(tbuf_cstr(&b), "(&(objectClass=user)(uSNChanged>=1002))");
	tbuf_reset(&b);
	lm_changed_filter(LM_TYPE_OD, "(uid=*)", 20240305101112ULL, &b);
	assert_string_equal(tbuf_cstr(&b), "(&(uid=*)(modifyTimestamp>=20240305101112Z))");
	tbuf_free(&b);
}

/* Build an entry from "name", "value", ... NULL. */
static void make_entry(lm_entry *e, const char *dn, ...)
{
	va_list ap;
	const char *name;

	lm_entry_init(e, dn);
	va_start(ap, dn);
	while ((name = va_arg(ap, const char *))) {
		const char *val = va_arg(ap, const char *);
		lm_entry_add(e, name, val, strlen(val));
	}
	va_end(ap);
}

static const lm_config ad_cfg = {
	.domain = "example.test", .type = LM_TYPE_AD, .directory_domain = "ad.example.test",
	.realm = "EXAMPLE.TEST",
};
static const lm_config od_cfg = {
	.domain = "example.test", .type = LM_TYPE_OD, .directory_domain = "", .realm = "EXAMPLE.TEST",
};

static void test_map_ad_user(void **state)
{
	lm_entry e;
	lm_user *u = NULL;
	const char *why;

	make_entry(&e, "CN=Alice Liddell,CN=Users,DC=ad,DC=test",
		   "sAMAccountName", "Alice", "userPrincipalName", "alice@example.test",
		   "displayName", "Alice Liddell", "cn", "Alice Liddell",
		   "mail", "alice@example.test",
		   "proxyAddresses", "smtp:ally@example.test",
		   "proxyAddresses", "SMTP:a.liddell@example.test",
		   "proxyAddresses", "X400:c=US;a= ;p=Test;o=Ex;s=Liddell;",
		   "proxyAddresses", "smtp:alice@elsewhere.test",
		   "proxyAddresses", "smtp:al@ad.example.test",
		   "memberOf", "CN=sales,CN=Users,DC=ad,DC=test",
		   "userAccountControl", "512", "uSNChanged", "1001",
		   "ternQuotaStorage", "100", "ternQuotaMessages", "5000", "ternAdminRights", "1",
		   NULL);
	assert_int_equal(lm_map_user(&ad_cfg, &e, &u, &why), 0);
	assert_string_equal(u->dn, "CN=Alice Liddell,CN=Users,DC=ad,DC=test");
	assert_string_equal(u->login, "alice");
	assert_string_equal(u->principal, "alice@EXAMPLE.TEST");
	assert_string_equal(u->full_name, "Alice Liddell");
	/* SMTP: (primary) first, then mail, then smtp:; other domains and X400 ignored. */
	assert_int_equal(u->naddresses, 4);
	assert_string_equal(u->addresses[0], "a.liddell");
	assert_string_equal(u->addresses[1], "alice");
	assert_string_equal(u->addresses[2], "ally");
	assert_string_equal(u->addresses[3], "al");
	assert_int_equal(u->enabled, 1);
	assert_int_equal(u->ngroups, 1);
	assert_string_equal(u->groups[0], "CN=sales,CN=Users,DC=ad,DC=test");
	assert_true(u->quota_bytes == 100ULL * 1024 * 1024);
	assert_true(u->quota_items == 5000);
	assert_int_equal(u->rights, 2);     /* read only -> RIGHTS_READ_ONLY */
	assert_int_equal(u->has_mailbox, 1);
	assert_int_equal(u->nforward, 0);
	lm_user_free(&u);
	assert_null(u);
	lm_entry_clear(&e);
}

static void test_map_ad_disabled(void **state)
{
	lm_entry e;
	lm_user *u;
	const char *why;

	make_entry(&e, "CN=Carol,DC=ad", "sAMAccountName", "carol", "userAccountControl", "514",
		   "userPrincipalName", "carol@corp.other", NULL);
	assert_int_equal(lm_map_user(&ad_cfg, &e, &u, &why), 0);
	assert_int_equal(u->enabled, 0);
	assert_string_equal(u->principal, "carol@corp.other");   /* other UPN suffix kept */
	assert_string_equal(u->full_name, "");
	assert_int_equal(u->naddresses, 0);
	lm_user_free(&u);
	lm_entry_clear(&e);

	make_entry(&e, "CN=Frank,DC=ad", "sAMAccountName", "frank", "userAccountControl", "512",
		   "ternMailboxEnabled", "FALSE", "ternCreateMailbox", "FALSE", NULL);
	assert_int_equal(lm_map_user(&ad_cfg, &e, &u, &why), 0);
	assert_int_equal(u->enabled, 0);
	assert_int_equal(u->has_mailbox, 0);
	assert_string_equal(u->principal, "frank@EXAMPLE.TEST");
	lm_user_free(&u);
	lm_entry_clear(&e);
}

static void test_map_od_user(void **state)
{
	lm_entry e;
	lm_user *u;
	const char *why;

	make_entry(&e, "uid=bob,cn=users,dc=od,dc=test", "uid", "bob", "cn", "Bob Builder",
		   "mail", "bob@example.test", "ternMailboxEnabled", "TRUE",
		   "ternAddress", "robert", "ternAddress", "bobby@example.test",
		   "ternAddress", "bob@other.test", "ternAddress", "bad..name",
		   "ternForward", "bob@remote.test", "ternForward", "not an address",
		   "ternForwardKeepCopy", "TRUE", "ternAdminRights", "2", NULL);
	assert_int_equal(lm_map_user(&od_cfg, &e, &u, &why), 0);
	assert_string_equal(u->login, "bob");
	assert_string_equal(u->principal, "bob@EXAMPLE.TEST");
	assert_string_equal(u->full_name, "Bob Builder");
	assert_int_equal(u->naddresses, 3);
	assert_string_equal(u->addresses[0], "bob");
	assert_string_equal(u->addresses[1], "robert");
	assert_string_equal(u->addresses[2], "bobby");
	assert_int_equal(u->enabled, 1);
	assert_int_equal(u->nforward, 1);
	assert_string_equal(u->forward[0], "bob@remote.test");
	assert_int_equal(u->forward_keep_copy, 1);
	assert_int_equal(u->rights, 3);     /* read/write -> RIGHTS_READ_WRITE */
	assert_true(u->quota_bytes == 0 && u->quota_items == 0);
	lm_user_free(&u);
	lm_entry_clear(&e);

	/* userAccountControl means nothing outside AD. */
	make_entry(&e, "uid=x,dc=od", "uid", "x", "userAccountControl", "514",
		   "krbPrincipalName", "x@OTHER.REALM", "ternAdminRights", "9", NULL);
	assert_int_equal(lm_map_user(&od_cfg, &e, &u, &why), 0);
	assert_int_equal(u->enabled, 1);
	assert_string_equal(u->principal, "x@OTHER.REALM");
	assert_int_equal(u->rights, 0);
	lm_user_free(&u);
	lm_entry_clear(&e);
}

static void test_map_unusable(void **state)
{
	static const char *const logins[] = { "has space", "caf\xc3\xa9", "a*b", ".dot" };
	lm_entry e;
	lm_user *u = NULL;
	const char *why = NULL;

	make_entry(&e, "uid=x,dc=od", "cn", "No Login", NULL);
	assert_int_equal(lm_map_user(&od_cfg, &e, &u, &why), 1);
	assert_null(u);
	assert_non_null(why);
	lm_entry_clear(&e);
	for (size_t i = 0; i < sizeof(logins) / sizeof(logins[0]); i++) {
		make_entry(&e, "uid=x,dc=od", "uid", logins[i], NULL);
		assert_int_equal(lm_map_user(&od_cfg, &e, &u, &why), 1);
		lm_entry_clear(&e);
	}
}

static void test_map_groups(void **state)
{
	lm_entry e;
	lm_group *g;
	const char *why;

	make_entry(&e, "CN=sales,CN=Users,DC=ad,DC=test", "cn", "Sales",
		   "mail", "sales@example.test", "proxyAddresses", "smtp:team@example.test",
		   "ternAdminRights", "1",
		   "member", "CN=Alice Liddell,CN=Users,DC=ad,DC=test",
		   "member", "CN=Bob Builder,CN=Users,DC=ad,DC=test", NULL);
	assert_int_equal(lm_map_group(&ad_cfg, &e, &g, &why), 0);
	assert_string_equal(g->name, "sales");
	assert_int_equal(g->naddresses, 2);
	assert_string_equal(g->addresses[0], "sales");
	assert_string_equal(g->addresses[1], "team");
	assert_int_equal(g->members_are_dns, 1);
	assert_int_equal(g->nmembers, 2);
	assert_string_equal(g->members[1], "CN=Bob Builder,CN=Users,DC=ad,DC=test");
	assert_int_equal(g->rights, 2);
	lm_group_free(&g);
	assert_null(g);
	lm_entry_clear(&e);

	make_entry(&e, "cn=staff,cn=groups,dc=od,dc=test", "cn", "staff",
		   "ternPrimaryAddress", "staff@example.test", "ternAddress", "team",
		   "memberUid", "alice", "memberUid", "Carol", "memberUid", "bad uid", NULL);
	assert_int_equal(lm_map_group(&od_cfg, &e, &g, &why), 0);
	assert_int_equal(g->members_are_dns, 0);
	assert_int_equal(g->nmembers, 2);
	assert_string_equal(g->members[0], "alice");
	assert_string_equal(g->members[1], "carol");
	assert_int_equal(g->naddresses, 2);
	assert_string_equal(g->addresses[0], "staff");
	assert_string_equal(g->addresses[1], "team");
	lm_group_free(&g);
	lm_entry_clear(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_escape),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_entry_bounds),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_stamps),
		cmocka_unit_test(test_map_ad_user),
		cmocka_unit_test(test_map_ad_disabled),
		cmocka_unit_test(test_map_od_user),
		cmocka_unit_test(test_map_unusable),
		cmocka_unit_test(test_map_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
