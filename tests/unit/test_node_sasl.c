/* test_node_sasl.c - server-side SASL (node/auth/auth_sasl.c) against a temporary store
 * holding user@example.test with the password "pencil": PLAIN, LOGIN and SCRAM-SHA-256
 * (the exact exchange of RFC 7677 section 3), wrong passwords, malformed messages,
 * lockout and disabled accounts; node-to-node logins (authcid "node/<name>") against a
 * Node record whose credential_hash is the SHA-256 of a known credential. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/sha.h>
#include "auth_sasl.h"
#include "store_test_util.h"

typedef struct fixture {
	test_store *ts;
	auth_lockout *lockout;
	auth_sasl_env env;
} fixture;

/* RFC 7677's example account: user "user", password "pencil", this salt, 4096 rounds. */
static const char rfc_salt_b64[] = "W22ZaJ0SNY7soEsUEjb6gQ==";

static void add_user(store *st, const char *name, int enabled)
{
	Tern__User u = TERN__USER__INIT;
	Tern__ScramKeys scram = TERN__SCRAM_KEYS__INIT;
	store_sync_result r;
	char *hash = NULL;
	uint8_t stored[32], server[32];
	tbuf salt = TBUF_INIT;

	assert_int_equal(auth_password_hash("pencil", &hash, &scram), 0);
	/* the RFC's salt instead of the random one, so the RFC's proofs apply */
	assert_int_equal(auth_b64_decode(rfc_salt_b64, strlen(rfc_salt_b64), &salt), 0);
	assert_int_equal(auth_scram_keys("pencil", (uint8_t *)salt.data, salt.len, 4096, stored, server), 0);
	auth_scram_clear(&scram);
	scram.salt.data = (uint8_t *)salt.data;
	scram.salt.len = salt.len;
	scram.iterations = 4096;
	scram.stored_key.data = stored;
	scram.stored_key.len = 32;
	scram.server_key.data = server;
	scram.server_key.len = 32;
	u.name = (char *)name;
	u.domain = (char *)"example.test";
	u.enabled = enabled;
	u.password_hash = hash;
	u.scram = &scram;
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
	free(hash);
	tbuf_free(&salt);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->ts = ts_new();
	ts_add_domain(f->ts->st);
	add_user(f->ts->st, "user", 1);
	add_user(f->ts->st, "sleeper", 0);
	f->lockout = auth_lockout_new(3, 600);
	f->env.st = f->ts->st;
	f->env.lockout = f->lockout;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	auth_lockout_free(&f->lockout);
	ts_free(&f->ts);
	free(f);
	return 0;
}

/* Run one step with a C string input (NULL = no input). */
static int step(auth_sasl *s, const char *in, size_t len, tbuf *out, const char **why)
{
	return auth_sasl_step(s, in, in ? len : 0, in != NULL, out, why);
}

static void test_b64(void **state)
{
	tbuf b = TBUF_INIT, d = TBUF_INIT;

	(void)state;
	auth_b64_encode("n,,", 3, &b);
	assert_string_equal(tbuf_cstr(&b), "biws");
	assert_int_equal(auth_b64_decode("AHVzZXIAcGVuY2ls", 16, &d), 0);
	assert_int_equal(d.len, 12);
	assert_memory_equal(d.data, "\0user\0pencil", 12);
	assert_int_equal(auth_b64_decode("", 0, &d), 0);
	assert_int_equal(d.len, 0);
	assert_int_equal(auth_b64_decode("abc", 3, &d), -1);
	assert_int_equal(auth_b64_decode("ab=c", 4, &d), -1);
	assert_int_equal(auth_b64_decode("a b=", 4, &d), -1);
	assert_int_equal(auth_b64_decode("YQ==", 4, &d), 0);
	assert_string_equal(tbuf_cstr(&d), "a");
	tbuf_free(&b);
	tbuf_free(&d);
}

static void test_plain(void **state)
{
	fixture *f = *state;
	tbuf out = TBUF_INIT;
	const char *why = NULL;
	static const struct {
		const char *msg;
		size_t len;
		int rc;
		const char *account;
	} cases[] = {
		{ "\0user\0pencil", 12, AUTH_SASL_OK, "user@example.test" },
		{ "\0USER@Example.Test\0pencil", 25, AUTH_SASL_OK, "user@example.test" },
		{ "user\0user\0pencil", 16, AUTH_SASL_OK, "user@example.test" },
		{ "other\0user\0pencil", 17, AUTH_SASL_FAIL, "" },
		{ "\0user\0Pencil", 12, AUTH_SASL_FAIL, "" },
		{ "\0nobody\0pencil", 14, AUTH_SASL_FAIL, "" },
		{ "\0sleeper\0pencil", 15, AUTH_SASL_FAIL, "" },
		{ "user pencil", 11, AUTH_SASL_MALFORMED, "" },
		{ "\0user\0", 6, AUTH_SASL_MALFORMED, "" },
		{ "\0\0pencil", 8, AUTH_SASL_MALFORMED, "" },
		{ "\0user\0pen\0cil", 13, AUTH_SASL_MALFORMED, "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		auth_sasl *s = auth_sasl_new(&f->env, AUTH_SASL_PLAIN, "192.0.2.1");
		int rc = step(s, cases[i].msg, cases[i].len, &out, &why);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d want %d (%s)", i, rc, cases[i].rc, why ? why : "");
		assert_string_equal(auth_sasl_account(s), cases[i].account);
		if (rc != AUTH_SASL_OK) {
			assert_non_null(why);
			assert_null(strstr(why, "pencil"));
		}
		auth_sasl_free(&s);
		assert_null(s);
	}
	/* no initial response: an empty challenge first */
	auth_sasl *s = auth_sasl_new(&f->env, AUTH_SASL_PLAIN, "192.0.2.1");
	assert_int_equal(step(s, NULL, 0, &out, &why), AUTH_SASL_CONTINUE);
	assert_int_equal(out.len, 0);
	assert_int_equal(step(s, "\0user\0pencil", 12, &out, &why), AUTH_SASL_OK);
	assert_int_equal(step(s, "", 0, &out, &why), AUTH_SASL_MALFORMED);  /* over */
	auth_sasl_free(&s);
	tbuf_free(&out);
}

static void test_login(void **state)
{
	fixture *f = *state;
	tbuf out = TBUF_INIT;
	const char *why = NULL;
	auth_sasl *s = auth_sasl_new(&f->env, AUTH_SASL_LOGIN, "192.0.2.1");

	assert_int_equal(step(s, NULL, 0, &out, &why), AUTH_SASL_CONTINUE);
	assert_string_equal(tbuf_cstr(&out), "Username:");
	assert_int_equal(step(s, "user", 4, &out, &why), AUTH_SASL_CONTINUE);
	assert_string_equal(tbuf_cstr(&out), "Password:");
	assert_int_equal(step(s, "pencil", 6, &out, &why), AUTH_SASL_OK);
	assert_string_equal(auth_sasl_account(s), "user@example.test");
	auth_sasl_free(&s);

	/* user name as initial response; wrong password */
	s = auth_sasl_new(&f->env, AUTH_SASL_LOGIN, "192.0.2.1");
	assert_int_equal(step(s, "user", 4, &out, &why), AUTH_SASL_CONTINUE);
	assert_string_equal(tbuf_cstr(&out), "Password:");
	assert_int_equal(step(s, "crayon", 6, &out, &why), AUTH_SASL_FAIL);
	assert_string_equal(why, "bad credentials");
	assert_string_equal(auth_sasl_account(s), "");
	auth_sasl_free(&s);

	s = auth_sasl_new(&f->env, AUTH_SASL_LOGIN, "192.0.2.1");
	assert_int_equal(step(s, "", 0, &out, &why), AUTH_SASL_MALFORMED);
	auth_sasl_free(&s);
	tbuf_free(&out);
}

/* RFC 7677 section 3, byte for byte. */
static void test_scram_rfc7677(void **state)
{
	fixture *f = *state;
	tbuf out = TBUF_INIT;
	const char *why = NULL;
	auth_sasl *s = auth_sasl_new(&f->env, AUTH_SASL_SCRAM_SHA_256, "192.0.2.1");
	static const char c1[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
	static const char c2[] = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
				 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

	auth_sasl_set_server_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
	assert_int_equal(step(s, NULL, 0, &out, &why), AUTH_SASL_CONTINUE);
	assert_int_equal(out.len, 0);
	assert_int_equal(step(s, c1, strlen(c1), &out, &why), AUTH_SASL_CONTINUE);
	assert_string_equal(tbuf_cstr(&out), "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					     "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	assert_int_equal(step(s, c2, strlen(c2), &out, &why), AUTH_SASL_CONTINUE);
	assert_string_equal(tbuf_cstr(&out), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	assert_string_equal(auth_sasl_account(s), "user@example.test");
	assert_int_equal(step(s, "", 0, &out, &why), AUTH_SASL_OK);
	assert_string_equal(auth_sasl_account(s), "user@example.test");
	auth_sasl_free(&s);
	tbuf_free(&out);
}

/* With a random server nonce: the server-first shape, then a wrong proof. */
static void test_scram_failures(void **state)
{
	fixture *f = *state;
	tbuf out = TBUF_INIT;
	const char *why = NULL;
	static const char c1[] = "n,,n=user,r=clientnonce";

	auth_sasl *s = auth_sasl_new(&f->env, AUTH_SASL_SCRAM_SHA_256, "192.0.2.2");
	assert_int_equal(step(s, c1, strlen(c1), &out, &why), AUTH_SASL_CONTINUE);
	const char *sf = tbuf_cstr(&out);
	assert_memory_equal(sf, "r=clientnonce", 13);
	const char *comma = strchr(sf, ',');
	assert_non_null(comma);
	assert_true(comma - sf > 13 + 16);                /* a server nonce was added */
	assert_string_equal(comma, ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	tbuf c2 = TBUF_INIT;
	tbuf_appendf(&c2, "c=biws,%.*s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", (int)(comma - sf), sf);
	assert_int_equal(step(s, c2.data, c2.len, &out, &why), AUTH_SASL_FAIL);
	assert_string_equal(why, "bad credentials");
	assert_string_equal(auth_sasl_account(s), "");
	auth_sasl_free(&s);

	/* an unknown user still gets a plausible challenge, then fails */
	s = auth_sasl_new(&f->env, AUTH_SASL_SCRAM_SHA_256, "192.0.2.2");
	assert_int_equal(step(s, "n,,n=nobody,r=abc", 17, &out, &why), AUTH_SASL_CONTINUE);
	assert_memory_equal(out.data, "r=abc", 5);
	assert_non_null(strstr(tbuf_cstr(&out), ",s="));
	assert_non_null(strstr(tbuf_cstr(&out), ",i=4096"));
	auth_sasl_free(&s);

	static const struct {
		const char *first;
		int rc;
	} bad_first[] = {
		{ "p=tls-unique,,n=user,r=abc", AUTH_SASL_FAIL },
		{ "x,,n=user,r=abc", AUTH_SASL_MALFORMED },
		{ "n,,m=ext,n=user,r=abc", AUTH_SASL_MALFORMED },
		{ "n,,n=user", AUTH_SASL_MALFORMED },
		{ "n,,n=user,r=", AUTH_SASL_MALFORMED },
		{ "n,,n=us=2Xer,r=abc", AUTH_SASL_MALFORMED },
		{ "n,,n=,r=abc", AUTH_SASL_MALFORMED },
		{ "n,n=user,r=abc", AUTH_SASL_MALFORMED },
		{ "", AUTH_SASL_MALFORMED },
	};
	for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
		s = auth_sasl_new(&f->env, AUTH_SASL_SCRAM_SHA_256, "192.0.2.2");
		int rc = step(s, bad_first[i].first, strlen(bad_first[i].first), &out, &why);
		if (rc != bad_first[i].rc)
			fail_msg("first %s: rc %d", bad_first[i].first, rc);
		auth_sasl_free(&s);
	}

	/* final messages with a wrong channel binding, nonce or proof encoding */
	static const char *const bad_final[] = {
		"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	for (size_t i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
		s = auth_sasl_new(&f->env, AUTH_SASL_SCRAM_SHA_256, "192.0.2.2");
		auth_sasl_set_server_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
		assert_int_equal(step(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", 32, &out, &why),
				 AUTH_SASL_CONTINUE);
		int rc = step(s, bad_final[i], strlen(bad_final[i]), &out, &why);
		if (rc >= 0)
			fail_msg("final %zu accepted", i);
		assert_string_equal(auth_sasl_account(s), "");
		auth_sasl_free(&s);
	}
	tbuf_free(&c2);
	tbuf_free(&out);
}

/* Three failures from one address lock the account there; the right password then fails
 * too, from that address only. */
static void test_lockout_and_check(void **state)
{
	fixture *f = *state;
	char account[400];
	const char *why = NULL;

	assert_int_equal(auth_check_password(&f->env, "user", "pencil", "192.0.2.9", account,
					     sizeof(account), &why), 0);
	assert_string_equal(account, "user@example.test");
	for (int i = 0; i < 3; i++)
		assert_int_equal(auth_check_password(&f->env, "user@example.test", "wrong", "192.0.2.9",
						     account, sizeof(account), &why), -1);
	assert_int_equal(auth_check_password(&f->env, "user", "pencil", "192.0.2.9", account,
					     sizeof(account), &why), -1);
	assert_string_equal(why, "bad credentials (account locked)");
	assert_string_equal(account, "");
	assert_int_equal(auth_check_password(&f->env, "user", "pencil", "192.0.2.10", account,
					     sizeof(account), &why), 0);
	assert_int_equal(auth_check_password(&f->env, "sleeper", "pencil", "192.0.2.10", account,
					     sizeof(account), &why), -1);
	assert_int_equal(auth_check_password(&f->env, "", "pencil", "192.0.2.10", account,
					     sizeof(account), &why), -1);
	auth_lockout_unlock(f->lockout, NULL);
}

/* The node credential of node "front": 32 bytes 0x01..0x20, as its hex password. */
static const char node_pw[] = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

static void add_node(store *st, const char *name)
{
	Tern__Node n = TERN__NODE__INIT;
	uint8_t cred[32], hash[SHA256_DIGEST_LENGTH], key[32] = { 7 };
	store_sync_result r;

	for (int i = 0; i < 32; i++)
		cred[i] = (uint8_t)(i + 1);
	SHA256(cred, sizeof(cred), hash);
	n.name = (char *)name;
	n.address = (char *)"127.0.0.1";
	n.fingerprint = (char *)"00";
	n.curve_public.data = key;
	n.curve_public.len = sizeof(key);
	n.credential_hash.data = hash;
	n.credential_hash.len = sizeof(hash);
	n.imap_port = 10143;
	assert_int_equal(store_node_put(st, &n, STORE_SYNC, &r), STORE_OK);
}

/* One PLAIN message authzid NUL authcid NUL password, from 192.0.2.50. */
static int node_plain(fixture *f, const char *authzid, const char *authcid, const char *pw,
		      char *account, size_t an, char *node, size_t nn, const char **why)
{
	tbuf msg = TBUF_INIT, out = TBUF_INIT;
	auth_sasl *s = auth_sasl_new(&f->env, AUTH_SASL_PLAIN, "192.0.2.50");

	assert_non_null(s);
	tbuf_append_str(&msg, authzid);
	tbuf_append_char(&msg, '\0');
	tbuf_append_str(&msg, authcid);
	tbuf_append_char(&msg, '\0');
	tbuf_append_str(&msg, pw);
	int rc = auth_sasl_step(s, msg.data, msg.len, 1, &out, why);
	snprintf(account, an, "%s", auth_sasl_account(s));
	snprintf(node, nn, "%s", auth_sasl_node(s) ? auth_sasl_node(s) : "(none)");
	auth_sasl_free(&s);
	tbuf_free(&msg);
	tbuf_free(&out);
	return rc;
}

/* Node logins: the node itself (empty authzid), a user on the node's word, and every
 * refusal - wrong credential, unknown node, unknown or disabled user - never counting
 * toward the lockout. */
static void test_node_login(void **state)
{
	fixture *f = *state;
	char account[400], node[64];
	const char *why = NULL;
	static const char bad_pw[] = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f21";
	static const struct {
		const char *authzid, *authcid, *pw;
		int rc;
		const char *account, *node, *why;
	} cases[] = {
		{ "", "node/front", node_pw, AUTH_SASL_OK, "node/front", "front", NULL },
		{ "user@example.test", "node/front", node_pw, AUTH_SASL_OK, "user@example.test", "front", NULL },
		{ "USER", "node/front", node_pw, AUTH_SASL_OK, "user@example.test", "front", NULL },
		{ "user@example.test", "node/front", bad_pw, AUTH_SASL_FAIL, "", "(none)", "bad node credentials" },
		{ "", "node/front", "pencil", AUTH_SASL_FAIL, "", "(none)", "bad node credentials" },
		{ "user@example.test", "node/other", node_pw, AUTH_SASL_FAIL, "", "(none)", "bad node credentials" },
		{ "", "node/", node_pw, AUTH_SASL_FAIL, "", "(none)", "bad node credentials" },
		{ "nobody@example.test", "node/front", node_pw, AUTH_SASL_FAIL, "", "(none)",
		  "authorization identity not allowed (unknown or disabled account)" },
		{ "sleeper@example.test", "node/front", node_pw, AUTH_SASL_FAIL, "", "(none)",
		  "authorization identity not allowed (unknown or disabled account)" },
		/* a user's own login is not a node login: no node name */
		{ "", "user", "pencil", AUTH_SASL_OK, "user@example.test", "(none)", NULL },
	};

	add_node(f->ts->st, "front");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = node_plain(f, cases[i].authzid, cases[i].authcid, cases[i].pw, account,
				    sizeof(account), node, sizeof(node), &why);
		assert_int_equal(rc, cases[i].rc);
		assert_string_equal(account, cases[i].account);
		assert_string_equal(node, cases[i].node);
		if (cases[i].why != NULL)
			assert_string_equal(why, cases[i].why);
	}
	/* five refused node logins from one address lock nobody out */
	for (int i = 0; i < 5; i++)
		assert_int_equal(node_plain(f, "user@example.test", "node/front", bad_pw, account,
					    sizeof(account), node, sizeof(node), &why), AUTH_SASL_FAIL);
	assert_false(auth_lockout_is_locked(f->lockout, "user@example.test", "192.0.2.50"));
	assert_int_equal(node_plain(f, "user@example.test", "node/front", node_pw, account,
				    sizeof(account), node, sizeof(node), &why), AUTH_SASL_OK);
	assert_string_equal(account, "user@example.test");
}

static void test_mech_names(void **state)
{
	auth_sasl_mech m;

	(void)state;
	assert_int_equal(auth_sasl_mech_parse("scram-sha-256", &m), 0);
	assert_int_equal(m, AUTH_SASL_SCRAM_SHA_256);
	assert_int_equal(auth_sasl_mech_parse("plain", &m), 0);
	assert_int_equal(m, AUTH_SASL_PLAIN);
	assert_int_equal(auth_sasl_mech_parse("CRAM-MD5", &m), -1);
	assert_true(auth_sasl_mech_plaintext(AUTH_SASL_LOGIN));
	assert_false(auth_sasl_mech_plaintext(AUTH_SASL_SCRAM_SHA_256));
}

/* HTTP Basic credentials, as the admin API and DAV read them. */
static void test_basic_parse(void **state)
{
	(void)state;
	char *u = NULL, *p = NULL;

	/* "Bob@Example.Test:s3cr:et" */
	assert_int_equal(auth_basic_parse("Basic Qm9iQEV4YW1wbGUuVGVzdDpzM2NyOmV0", &u, &p), 0);
	assert_string_equal(u, "bob@example.test");
	assert_string_equal(p, "s3cr:et");
	free(u);
	free(p);
	assert_int_equal(auth_basic_parse("basic   Ym9iOg==", &u, &p), 0);   /* "bob:" */
	assert_string_equal(p, "");
	free(u);
	free(p);
	assert_int_equal(auth_basic_parse("Basic Ym9i", &u, &p), -1);        /* "bob": no colon */
	assert_null(u);
	assert_int_equal(auth_basic_parse("Basic OnB3", &u, &p), -1);        /* ":pw": no user */
	assert_int_equal(auth_basic_parse("Basic Ym9iAHg6cHc=", &u, &p), -1); /* NUL inside */
	assert_int_equal(auth_basic_parse("Basic Ym9i*jpw", &u, &p), -1);    /* bad base64 */
	assert_int_equal(auth_basic_parse("Bearer Ym9iOnB3", &u, &p), -1);
	assert_int_equal(auth_basic_parse("Basic ", &u, &p), -1);
	assert_int_equal(auth_basic_parse(NULL, &u, &p), -1);
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_rfc7677, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockout_and_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_login, setup, teardown),
		cmocka_unit_test(test_basic_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
