/* test_lib_util.c - name rules, glob matching, IP items, ids, first-line reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_domains(void **state)
{
	static const struct { const char *s; int ok; } cases[] = {
		{ "example.com", 1 }, { "mail.example.co.uk", 1 }, { "a-b.c0", 1 },
		{ "EXAMPLE.Test", 1 }, { "x.y", 1 },
		{ "localhost", 0 }, { "", 0 }, { ".example.com", 0 }, { "example.com.", 0 },
		{ "exa..mple.com", 0 }, { "-ab.com", 0 }, { "ab-.com", 0 }, { "a_b.com", 0 },
		{ "ex ample.com", 0 }, { "exämple.com", 0 },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", 1 },  /* 63 */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", 0 }, /* 64 */
	};
	for (size_t i = 0; i < N(cases); i++) {
		if (tern_valid_domain(cases[i].s) != cases[i].ok)
			fail_msg("domain '%s': expected %d", cases[i].s, cases[i].ok);
	}
	/* 253 characters is the limit */
	char d[300];
	memset(d, 0, sizeof(d));
	for (int i = 0; i < 63; i++) {
		memcpy(d + 4 * i, "abc.", 4);
	}
	memcpy(d + 252, "a", 2);   /* 253 chars */
	assert_int_equal(strlen(d), 253);
	assert_int_equal(tern_valid_domain(d), 1);
	memcpy(d + 252, "ab", 3);
	assert_int_equal(tern_valid_domain(d), 0);
}

static void test_localparts(void **state)
{
	static const struct { const char *s; int local, pattern; } cases[] = {
		{ "john", 1, 1 }, { "john.doe", 1, 1 }, { "j_d-1", 1, 1 }, { "A.B", 1, 1 },
		{ "", 0, 0 }, { ".john", 0, 0 }, { "john.", 0, 0 }, { "jo..hn", 0, 0 },
		{ "jo hn", 0, 0 }, { "jo@hn", 0, 0 }, { "jöhn", 0, 0 }, { "jo+hn", 0, 0 },
		{ "*sms*", 0, 1 }, { "?ime", 0, 1 }, { "a*00*", 0, 1 }, { "*", 0, 1 },
		{ "0123456789012345678901234567890123456789012345678901234567890123", 1, 1 },
		{ "01234567890123456789012345678901234567890123456789012345678901234", 0, 0 },
	};
	for (size_t i = 0; i < N(cases); i++) {
		if (tern_valid_localpart(cases[i].s) != cases[i].local)
			fail_msg("local part '%s': expected %d", cases[i].s, cases[i].local);
		if (tern_valid_alias_pattern(cases[i].s) != cases[i].pattern)
			fail_msg("alias pattern '%s': expected %d", cases[i].s, cases[i].pattern);
	}
}

static void test_addresses(void **state)
{
	static const struct { const char *s; int ok; const char *local, *domain; } cases[] = {
		{ "john@example.com", 1, "john", "example.com" },
		{ "John.Doe@Example.COM", 1, "john.doe", "example.com" },
		{ "john@localhost", 0, NULL, NULL }, { "john", 0, NULL, NULL },
		{ "@example.com", 0, NULL, NULL }, { "john@", 0, NULL, NULL },
		{ "a@b@example.com", 0, NULL, NULL }, { "jo hn@example.com", 0, NULL, NULL },
		{ "*@example.com", 0, NULL, NULL },
	};
	for (size_t i = 0; i < N(cases); i++) {
		char local[65], domain[254];
		if (tern_valid_address(cases[i].s) != cases[i].ok)
			fail_msg("address '%s': expected %d", cases[i].s, cases[i].ok);
		int r = tern_split_address(cases[i].s, local, sizeof(local), domain, sizeof(domain));
		assert_int_equal(r, cases[i].ok ? 0 : -1);
		if (cases[i].ok) {
			assert_string_equal(local, cases[i].local);
			assert_string_equal(domain, cases[i].domain);
		}
	}
	char small[4], domain[254];
	assert_int_equal(tern_split_address("john@example.com", small, sizeof(small), domain,
					    sizeof(domain)), -1);
	char s[] = "MiXeD-Case.1";
	tern_lower(s);
	assert_string_equal(s, "mixed-case.1");
}

static void test_glob(void **state)
{
	static const struct { const char *pat, *text; int match; } cases[] = {
		{ "*sms*", "sms", 1 }, { "*sms*", "mysms", 1 }, { "*sms*", "SMSgate", 1 },
		{ "*sms*", "my-sms-box", 1 }, { "*sms*", "smx", 0 }, { "*sms*", "", 0 },
		{ "a*00*", "a00", 1 }, { "a*00*", "a1200", 1 }, { "a*00*", "a1200x", 1 },
		{ "a*00*", "A_00_", 1 }, { "a*00*", "a0", 0 }, { "a*00*", "b00", 0 },
		{ "a*00*", "a0x0", 0 },
		{ "?ime", "time", 1 }, { "?ime", "lime", 1 }, { "?ime", "ime", 0 },
		{ "?ime", "slime", 0 }, { "?ime", "TIME", 1 },
		{ "*", "", 1 }, { "*", "anything", 1 }, { "", "", 1 }, { "", "x", 0 },
		{ "abc", "abc", 1 }, { "abc", "abd", 0 }, { "a?c", "abc", 1 }, { "a**c", "ac", 1 },
		{ "*a*b*c*", "xxaxxbxxcxx", 1 }, { "*a*b*c*", "xxaxxcxxbxx", 0 },
	};
	for (size_t i = 0; i < N(cases); i++) {
		if (tern_glob_match(cases[i].pat, cases[i].text) != cases[i].match)
			fail_msg("glob '%s' vs '%s': expected %d", cases[i].pat, cases[i].text,
				 cases[i].match);
	}
	/* the classic exponential case finishes quickly */
	char pat[200], text[300];
	memset(pat, 0, sizeof(pat));
	for (int i = 0; i < 30; i++)
		memcpy(pat + 2 * i, "a*", 2);
	pat[60] = 'b';
	memset(text, 'a', 250);
	text[250] = '\0';
	assert_int_equal(tern_glob_match(pat, text), 0);
}

static void sa4(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

static void sa6(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
}

static void test_ipitems(void **state)
{
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/255.0.255.0", "10.0.0.9-10.0.0.1",
		"1.2.3.4-::1", "host.example.com", "::1/129", "1.2.3.4/", "/8", "::1/255.0.0.0",
	};
	tern_ipitem it;
	for (size_t i = 0; i < N(bad); i++) {
		if (tern_ipitem_parse(bad[i], &it) == 0)
			fail_msg("ip item '%s' should be refused", bad[i]);
	}
	static const struct { const char *item, *peer; int v6, match; } cases[] = {
		/* the guide's "Local clients" group */
		{ "10.0.0.0/8", "10.1.2.3", 0, 1 }, { "10.0.0.0/8", "11.0.0.1", 0, 0 },
		{ "127.0.0.1", "127.0.0.1", 0, 1 }, { "127.0.0.1", "127.0.0.2", 0, 0 },
		{ "172.16.0.0/12", "172.31.255.255", 0, 1 }, { "172.16.0.0/12", "172.32.0.0", 0, 0 },
		{ "192.168.0.0/16", "192.168.44.1", 0, 1 }, { "192.168.0.0/16", "192.169.0.1", 0, 0 },
		{ "192.168.0.0/255.255.0.0", "192.168.9.9", 0, 1 },
		{ "192.168.0.0/255.255.0.0", "192.167.9.9", 0, 0 },
		{ "10.0.0.5 - 10.0.0.9", "10.0.0.7", 0, 1 }, { "10.0.0.5-10.0.0.9", "10.0.0.10", 0, 0 },
		{ "10.0.0.5-10.0.0.9", "10.0.0.5", 0, 1 }, { "0.0.0.0/0", "8.8.8.8", 0, 1 },
		/* IPv4-mapped IPv6 peers match IPv4 items */
		{ "10.0.0.0/8", "::ffff:10.9.8.7", 1, 1 }, { "127.0.0.1", "::ffff:127.0.0.1", 1, 1 },
		{ "127.0.0.1", "::1", 1, 0 },
		{ "::1", "::1", 1, 1 }, { "2001:db8::/32", "2001:db8:1::5", 1, 1 },
		{ "2001:db8::/32", "2001:db9::5", 1, 0 }, { "2001:db8::/32", "10.0.0.1", 0, 0 },
		{ "fe80::1-fe80::ff", "fe80::80", 1, 1 }, { "fe80::1-fe80::ff", "fe80::100", 1, 0 },
		{ "::ffff:10.0.0.0/104", "10.2.3.4", 0, 1 },
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct sockaddr_storage ss;
		if (tern_ipitem_parse(cases[i].item, &it) != 0)
			fail_msg("ip item '%s' refused", cases[i].item);
		if (cases[i].v6)
			sa6(&ss, cases[i].peer);
		else
			sa4(&ss, cases[i].peer);
		if (tern_ipitem_match(&it, (struct sockaddr *)&ss) != cases[i].match)
			fail_msg("item '%s' vs peer %s: expected %d", cases[i].item, cases[i].peer,
				 cases[i].match);
	}
}

static void test_uuid_random_time(void **state)
{
	uint8_t a[16], b[16], c[16];
	char s[37];
	tern_uuid_new(a);
	tern_uuid_new(b);
	assert_memory_not_equal(a, b, 16);
	tern_uuid_str(a, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(s[14], '4');     /* version 4, random */
	assert_int_equal(tern_uuid_parse(s, c), 0);
	assert_memory_equal(a, c, 16);
	assert_int_equal(tern_uuid_parse("not-a-uuid", c), -1);

	uint8_t r1[32] = { 0 }, r2[32] = { 0 };
	tern_random(r1, sizeof(r1));
	tern_random(r2, sizeof(r2));
	assert_memory_not_equal(r1, r2, sizeof(r1));

	assert_true(tern_now() > 1700000000);
	int64_t m1 = tern_mono_ms();
	usleep(20000);
	int64_t m2 = tern_mono_ms();
	assert_true(m2 - m1 >= 19 && m2 - m1 < 5000);
}

static void test_first_line(void **state)
{
	static const struct { const char *content, *want; } cases[] = {
		{ "secret\nsecond line\n", "secret" }, { "crlf\r\nx", "crlf" },
		{ "no newline", "no newline" }, { "", "" }, { "\n", "" },
	};
	char path[] = "/tmp/tern-test-firstline-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	for (size_t i = 0; i < N(cases); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(cases[i].content, f);
		fclose(f);
		char *line = tern_read_first_line(path);
		assert_non_null(line);
		assert_string_equal(line, cases[i].want);
		free(line);
	}
	unlink(path);
	assert_null(tern_read_first_line(path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_localparts),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_ipitems),
		cmocka_unit_test(test_uuid_random_time),
		cmocka_unit_test(test_first_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
