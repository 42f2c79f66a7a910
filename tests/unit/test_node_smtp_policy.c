/* test_node_smtp_policy.c - the per-address security options and the relay decision of
 * node/smtp (guide ch. 12.2): connection counts, the sliding hour, the harvest block,
 * POP3 before SMTP, and the exception for a failed AUTH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include "smtp_int.h"

static void test_counters(void **state)
{
	smtp_policy *p = smtp_policy_new();
	int64_t t0 = 1700000000;

	(void)state;
	assert_int_equal(smtp_policy_conn_open(p, "192.0.2.1"), 1);
	assert_int_equal(smtp_policy_conn_open(p, "192.0.2.1"), 2);
	assert_int_equal(smtp_policy_conn_open(p, "192.0.2.2"), 1);
	smtp_policy_conn_close(p, "192.0.2.1");
	assert_int_equal(smtp_policy_conn_open(p, "192.0.2.1"), 2);

	/* messages in the sliding hour */
	for (int i = 0; i < 5; i++)
		smtp_policy_msg_accepted(p, "192.0.2.1", t0 + i * 600);
	assert_int_equal(smtp_policy_msgs_last_hour(p, "192.0.2.1", t0 + 2400), 5);
	assert_int_equal(smtp_policy_msgs_last_hour(p, "192.0.2.1", t0 + 3600 + 601), 3);
	assert_int_equal(smtp_policy_msgs_last_hour(p, "192.0.2.1", t0 + 7300), 0);
	assert_int_equal(smtp_policy_msgs_last_hour(p, "192.0.2.9", t0), 0);

	/* harvest: the 3rd unknown recipient blocks for 100 s */
	assert_int_equal(smtp_policy_unknown_rcpt(p, "192.0.2.3", 3, 100, t0), 0);
	assert_int_equal(smtp_policy_unknown_rcpt(p, "192.0.2.3", 3, 100, t0 + 1), 0);
	assert_false(smtp_policy_blocked(p, "192.0.2.3", t0 + 1));
	assert_int_equal(smtp_policy_unknown_rcpt(p, "192.0.2.3", 3, 100, t0 + 2), 1);
	assert_true(smtp_policy_blocked(p, "192.0.2.3", t0 + 50));
	assert_false(smtp_policy_blocked(p, "192.0.2.4", t0 + 50));
	assert_false(smtp_policy_blocked(p, "192.0.2.3", t0 + 103));
	/* unknowns more than an hour apart never add up */
	assert_int_equal(smtp_policy_unknown_rcpt(p, "192.0.2.5", 2, 100, t0), 0);
	assert_int_equal(smtp_policy_unknown_rcpt(p, "192.0.2.5", 2, 100, t0 + 4000), 0);
	assert_int_equal(smtp_policy_unknown_rcpt(p, "192.0.2.5", 0, 100, t0 + 4001), 0);

	/* POP3 before SMTP */
	smtp_policy_pop3_login(p, "192.0.2.6", t0);
	assert_true(smtp_policy_pop3_recent(p, "192.0.2.6", 1800, t0 + 1800));
	assert_false(smtp_policy_pop3_recent(p, "192.0.2.6", 1800, t0 + 1801));
	assert_false(smtp_policy_pop3_recent(p, "192.0.2.7", 1800, t0));
	smtp_policy_free(&p);
	assert_null(p);
}

static void test_relay_decision(void **state)
{
	tern_conf conf;
	char *err = NULL;
	static const struct {
		int open, auth_on, pop3_on, group, authed, failed, pop3, allowed;
	} cases[] = {
		{ 0, 1, 0, 0, 0, 0, 0, 0 },   /* a stranger */
		{ 1, 1, 0, 0, 0, 0, 0, 1 },   /* open relay */
		{ 0, 1, 0, 1, 0, 0, 0, 1 },   /* Local clients */
		{ 0, 1, 0, 1, 0, 1, 0, 0 },   /* Local client whose AUTH failed: the exception */
		{ 0, 0, 0, 1, 0, 1, 0, 1 },   /* ... but only when SMTP auth relay is on */
		{ 0, 1, 0, 0, 1, 1, 0, 1 },   /* authenticated after a failure */
		{ 0, 0, 0, 0, 1, 0, 0, 0 },   /* authenticated, auth relay off */
		{ 0, 1, 1, 0, 0, 0, 1, 1 },   /* POP3 before SMTP */
		{ 0, 1, 0, 0, 0, 0, 1, 0 },   /* POP3 login but the option is off */
	};

	(void)state;
	assert_int_equal(tern_conf_load_string(&conf, "", 0, &err), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf.smtpd_relay_open = cases[i].open;
		conf.smtpd_relay_auth = cases[i].auth_on;
		conf.smtpd_relay_pop3 = cases[i].pop3_on;
		smtp_relay_facts f = { cases[i].group, cases[i].authed, cases[i].failed, cases[i].pop3 };
		if (smtp_policy_relay_allowed(&conf, &f) != cases[i].allowed)
			fail_msg("case %zu", i);
	}
	tern_conf_free(&conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_relay_decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
