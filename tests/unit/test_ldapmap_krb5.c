/* test_ldapmap_krb5.c - the Kerberos password check of mapped users (ldapmap/lm_krb5.c)
 * against the MIT KDC of tests/fixtures: a good password, a wrong one, an expired and a
 * disabled principal, a missing keytab (an error, never a success), an unreachable KDC,
 * and a forged KDC (a second KDC with its own database answering for the realm) whose
 * tickets the keytab does not accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "krb_fixture.h"
#include "lm_int.h"

typedef struct fixture {
	krb_fixture kdc;
	char keytab[600];          /* FILE: keytab with host/localhost of this realm */
	lm_config cfg;
} fixture;

static const char alice_pw[] = "Alice-pw-1";

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char q[800];

	*state = f;
	int rc = kf_start(&f->kdc);
	if (rc != 0)
		return 0;                   /* each test skips (or fails) on its own */
	kf_kadmin(&f->kdc, "addprinc -pw x alice");
	snprintf(q, sizeof(q), "cpw -pw %s alice", alice_pw);
	kf_kadmin(&f->kdc, q);
	kf_kadmin(&f->kdc, "addprinc -pw Old-pw-1 -expire 2001-01-01 krbtest-expired");
	kf_kadmin(&f->kdc, "addprinc -pw Pw-expired-1 -pwexpire 2001-01-01 krbtest-pwexp");
	kf_kadmin(&f->kdc, "addprinc -pw Disabled-pw-1 -allow_tix krbtest-disabled");
	kf_kadmin(&f->kdc, "addprinc -randkey host/localhost");
	snprintf(f->keytab, sizeof(f->keytab), "FILE:%s/krbtest.keytab", f->kdc.dir);
	snprintf(q, sizeof(q), "ktadd -k %s -norandkey host/localhost", f->keytab + 5);
	kf_kadmin(&f->kdc, q);
	f->cfg.domain = "example.test";
	f->cfg.realm = f->kdc.realm;
	f->cfg.keytab = f->keytab;
	f->cfg.timeout = 5;
	setenv("KRB5_CONFIG", f->kdc.krb5_conf, 1);
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	kf_stop(&f->kdc);
	free(f);
	return 0;
}

/* Skip when the fixture script is missing, fail when it is there but did not start. */
static fixture *need_kdc(void **state)
{
	fixture *f = *state;
	char script[512];

	kf_script(script, sizeof(script));
	if (f->kdc.dir[0] == '\0' && access(script, R_OK) != 0) {
		print_message("tests/fixtures/dirfixture.py is missing: KDC tests skipped\n");
		skip();
	}
	assert_true(f->kdc.realm[0] != '\0');
	return f;
}

static int check(fixture *f, const char *principal, const char *password, char **reason)
{
	free(*reason);
	*reason = NULL;
	int rc = lm_krb5_check(&f->cfg, principal, password, reason);
	if (rc == 0)
		assert_null(*reason);
	else
		assert_non_null(*reason);
	return rc;
}

static void test_good_password(void **state)
{
	fixture *f = need_kdc(state);
	char *reason = NULL, full[300];

	assert_int_equal(check(f, "alice", alice_pw, &reason), 0);
	/* the realm in another case and in full are the same principal */
	snprintf(full, sizeof(full), "alice@%s", f->kdc.realm);
	assert_int_equal(check(f, full, alice_pw, &reason), 0);
	free(reason);
}

static void test_wrong_password(void **state)
{
	fixture *f = need_kdc(state);
	char *reason = NULL;

	assert_int_equal(check(f, "alice", "not-her-password", &reason), 1);
	assert_string_equal(reason, "bad credentials");
	assert_int_equal(check(f, "nobody-such", "whatever", &reason), 1);
	assert_string_equal(reason, "bad credentials");
	assert_int_equal(check(f, "alice", "", &reason), 1);
	assert_string_equal(reason, "bad credentials");
	free(reason);
}

static void test_expired_disabled(void **state)
{
	fixture *f = need_kdc(state);
	char *reason = NULL;

	assert_int_equal(check(f, "krbtest-expired", "Old-pw-1", &reason), 1);
	assert_string_equal(reason, "account expired");
	assert_int_equal(check(f, "krbtest-pwexp", "Pw-expired-1", &reason), 1);
	assert_string_equal(reason, "password expired");
	assert_int_equal(check(f, "krbtest-disabled", "Disabled-pw-1", &reason), 1);
	assert_string_equal(reason, "account disabled");
	free(reason);
}

static void test_missing_keytab(void **state)
{
	fixture *f = need_kdc(state);
	char *reason = NULL, kt[600];

	snprintf(kt, sizeof(kt), "FILE:%s/no-such.keytab", f->kdc.dir);
	f->cfg.keytab = kt;
	assert_int_equal(check(f, "alice", alice_pw, &reason), -1);
	assert_non_null(strstr(reason, "no keytab"));
	assert_non_null(strstr(reason, "no-such.keytab"));
	/* KRB5_KTNAME is honoured when the setting is empty */
	f->cfg.keytab = "";
	setenv("KRB5_KTNAME", kt, 1);
	assert_int_equal(check(f, "alice", alice_pw, &reason), -1);
	assert_non_null(strstr(reason, "no keytab"));
	setenv("KRB5_KTNAME", f->keytab, 1);
	assert_int_equal(check(f, "alice", alice_pw, &reason), 0);
	unsetenv("KRB5_KTNAME");
	f->cfg.keytab = f->keytab;
	free(reason);
}

/* A krb5.conf naming a port where nothing listens. */
static void test_kdc_unreachable(void **state)
{
	fixture *f = need_kdc(state);
	char *reason = NULL, conf[600];
	FILE *fp;

	snprintf(conf, sizeof(conf), "%s/dead-krb5.conf", f->kdc.dir);
	assert_non_null(fp = fopen(conf, "w"));
	fprintf(fp, "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n"
		"[realms]\n %s = {\n  kdc = 127.0.0.1:9\n }\n", f->kdc.realm, f->kdc.realm);
	fclose(fp);
	setenv("KRB5_CONFIG", conf, 1);
	assert_int_equal(check(f, "alice", alice_pw, &reason), -1);
	assert_non_null(strstr(reason, "KDC unreachable"));
	setenv("KRB5_CONFIG", f->kdc.krb5_conf, 1);
	free(reason);
}

/* A second KDC with its own database answers for the realm and knows alice's password:
 * its TGT is fine, but the service ticket it makes is not sealed with our keytab's key. */
static void test_forged_kdc(void **state)
{
	fixture *f = need_kdc(state);
	krb_fixture forged;
	char *reason = NULL, q[300];

	assert_int_equal(kf_start(&forged), 0);
	setenv("KRB5_CONFIG", f->kdc.krb5_conf, 1);
	assert_string_equal(forged.realm, f->kdc.realm);
	kf_kadmin(&forged, "addprinc -pw x alice");
	snprintf(q, sizeof(q), "cpw -pw %s alice", alice_pw);
	assert_int_equal(kf_kadmin(&forged, q), 0);
	kf_kadmin(&forged, "addprinc -randkey host/localhost");
	setenv("KRB5_CONFIG", forged.krb5_conf, 1);
	assert_int_equal(check(f, "alice", alice_pw, &reason), -1);
	assert_non_null(strstr(reason, "KDC not verified by the keytab"));
	setenv("KRB5_CONFIG", f->kdc.krb5_conf, 1);
	kf_stop(&forged);
	/* the real KDC still passes */
	assert_int_equal(check(f, "alice", alice_pw, &reason), 0);
	free(reason);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_password),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_expired_disabled),
		cmocka_unit_test(test_missing_keytab),
		cmocka_unit_test(test_kdc_unreachable),
		cmocka_unit_test(test_forged_kdc),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
