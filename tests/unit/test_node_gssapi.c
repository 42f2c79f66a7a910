/* test_node_gssapi.c - Kerberos single sign-on on the server side (node/auth/auth_gssapi.c)
 * with the MIT KDC of tests/fixtures: alice gets a TGT by kinit into a temp ccache, then
 * an in-process GSS-API client (gss_init_sec_context) runs the RFC 4752 exchange against
 * the SASL GSSAPI server, directly and through auth_sasl with a store holding
 * alice@example.test; SPNEGO for HTTP; a ticket for another service, a missing keytab and
 * an unmapped principal are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include "auth_gssapi.h"
#include "auth_sasl.h"
#include "krb_fixture.h"
#include "store_test_util.h"

static const char alice_pw[] = "Alice-pw-1";

typedef struct fixture {
	krb_fixture kdc;
	test_store *ts;
	char ccache[600];
	char expect_principal[200];
} fixture;

/* "alice@REALM" -> "alice@example.test"; anything from another realm is unknown. */
static int map_realm(void *arg, const char *principal, char *login_r, size_t n)
{
	fixture *f = arg;
	const char *at = strrchr(principal, '@');

	if (at == NULL || strcmp(at + 1, f->kdc.realm) != 0)
		return -1;
	int w = snprintf(login_r, n, "%.*s@example.test", (int)(at - principal), principal);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char q[200];

	*state = f;
	if (kf_start(&f->kdc) != 0)
		return 0;
	snprintf(q, sizeof(q), "cpw -pw %s alice", alice_pw);
	if (kf_kadmin(&f->kdc, q) != 0)
		kf_stop(&f->kdc);
	snprintf(f->ccache, sizeof(f->ccache), "FILE:%s/alice.ccache", f->kdc.dir);
	if (kf_kinit(&f->kdc, "alice", alice_pw, f->ccache) != 0)
		kf_stop(&f->kdc);
	setenv("KRB5CCNAME", f->ccache, 1);
	setenv("KRB5_CONFIG", f->kdc.krb5_conf, 1);
	unsetenv("KRB5_KTNAME");
	snprintf(f->expect_principal, sizeof(f->expect_principal), "alice@%s", f->kdc.realm);

	Tern__User u = TERN__USER__INIT;
	store_sync_result r;
	f->ts = ts_new();
	ts_add_domain(f->ts->st);
	u.name = (char *)"alice";
	u.domain = (char *)"example.test";
	u.enabled = 1;
	if (store_user_add(f->ts->st, &u, STORE_SYNC, &r) != STORE_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	kf_stop(&f->kdc);
	if (f->ts)
		ts_free(&f->ts);
	free(f);
	return 0;
}

static fixture *need_kdc(void **state)
{
	fixture *f = *state;
	char script[512];

	kf_script(script, sizeof(script));
	if (f->kdc.dir[0] == '\0' && access(script, R_OK) != 0) {
		print_message("tests/fixtures/dirfixture.py is missing: Kerberos tests skipped\n");
		skip();
	}
	assert_true(f->kdc.dir[0] != '\0');
	return f;
}

static auth_gssapi_conf conf_for(fixture *f, const char *service)
{
	auth_gssapi_conf c = { f->kdc.keytab, service, NULL, map_realm, f };
	return c;
}

/* The client side of RFC 4752 for target "imap@localhost" (or another service): every
 * message goes through server(), which returns the server's answer. */
typedef int (*server_fn)(void *ctx, const void *in, size_t n, tbuf *out, const char **reason_r);

static int run_client(const char *target, const char *authzid, server_fn server, void *sctx,
		      const char **reason_r)
{
	OM_uint32 major, minor;
	gss_name_t name = GSS_C_NO_NAME;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc tn = { strlen(target), (void *)target }, in = GSS_C_EMPTY_BUFFER, out;
	tbuf reply = TBUF_INIT;
	int rc;

	assert_false(GSS_ERROR(gss_import_name(&minor, &tn, GSS_C_NT_HOSTBASED_SERVICE, &name)));
	for (;;) {
		major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx, name, gss_mech_krb5,
					     GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS,
					     &in, NULL, &out, NULL, NULL);
		assert_false(GSS_ERROR(major));
		rc = server(sctx, out.value, out.length, &reply, reason_r);
		gss_release_buffer(&minor, &out);
		if (rc != AUTH_GSSAPI_CONTINUE)
			goto done;
		in.value = reply.data;
		in.length = reply.len;
		if (!(major & GSS_S_CONTINUE_NEEDED))
			break;
	}
	/* context established (the client's empty answer to the server's AP-REP went out in
	 * the loop): reply is the wrapped security-layer offer, "no layer" */
	gss_buffer_desc plain;
	assert_false(GSS_ERROR(gss_unwrap(&minor, ctx, &in, &plain, NULL, NULL)));
	assert_int_equal(plain.length, 4);
	assert_int_equal(((unsigned char *)plain.value)[0], 0x01);
	gss_release_buffer(&minor, &plain);
	tbuf msg = TBUF_INIT;
	tbuf_append(&msg, "\x01\x00\x00\x00", 4);
	tbuf_append_str(&msg, authzid);
	gss_buffer_desc pm = { msg.len, msg.data }, wrapped;
	assert_false(GSS_ERROR(gss_wrap(&minor, ctx, 0, GSS_C_QOP_DEFAULT, &pm, NULL, &wrapped)));
	rc = server(sctx, wrapped.value, wrapped.length, &reply, reason_r);
	gss_release_buffer(&minor, &wrapped);
	tbuf_free(&msg);
done:
	gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	gss_release_name(&minor, &name);
	tbuf_free(&reply);
	return rc;
}

static int gssapi_server(void *ctx, const void *in, size_t n, tbuf *out, const char **reason_r)
{
	return auth_gssapi_step(ctx, in, n, out, reason_r);
}

static int sasl_server(void *ctx, const void *in, size_t n, tbuf *out, const char **reason_r)
{
	int rc = auth_sasl_step(ctx, in, n, 1, out, reason_r);
	return rc == AUTH_SASL_CONTINUE ? AUTH_GSSAPI_CONTINUE : rc;
}

static void test_available(void **state)
{
	fixture *f = need_kdc(state);
	auth_gssapi_conf c = conf_for(f, "imap");
	char *why = NULL, kt[600];

	assert_int_equal(auth_gssapi_available(&c, &why), 1);
	assert_null(why);
	snprintf(kt, sizeof(kt), "FILE:%s/no-such.keytab", f->kdc.dir);
	c.keytab = kt;
	assert_int_equal(auth_gssapi_available(&c, &why), 0);
	assert_non_null(why);
	assert_non_null(strstr(why, "no-such.keytab"));
	free(why);
	auth_gssapi *g = auth_gssapi_new(&c, &why);
	assert_null(g);
	assert_non_null(why);
	free(why);
}

static void test_gssapi_exchange(void **state)
{
	fixture *f = need_kdc(state);
	auth_gssapi_conf c = conf_for(f, "imap");
	char *why = NULL;
	const char *reason = NULL;

	auth_gssapi *g = auth_gssapi_new(&c, &why);
	assert_non_null(g);
	assert_int_equal(run_client("imap@localhost", "", gssapi_server, g, &reason), AUTH_GSSAPI_OK);
	assert_string_equal(auth_gssapi_principal(g), f->expect_principal);
	assert_string_equal(auth_gssapi_login(g), "alice@example.test");
	assert_string_equal(auth_gssapi_authzid(g), "");
	auth_gssapi_free(&g);
	assert_null(g);

	/* any service key of the keytab when no service is named */
	c.service = NULL;
	assert_non_null(g = auth_gssapi_new(&c, &why));
	assert_int_equal(run_client("pop@localhost", "", gssapi_server, g, &reason), AUTH_GSSAPI_OK);
	assert_string_equal(auth_gssapi_principal(g), f->expect_principal);
	auth_gssapi_free(&g);
}

static void test_gssapi_refused(void **state)
{
	fixture *f = need_kdc(state);
	auth_gssapi_conf c = conf_for(f, "smtp");
	char *why = NULL;
	const char *reason = NULL;

	/* a ticket for imap/ shown to the smtp service */
	auth_gssapi *g = auth_gssapi_new(&c, &why);
	assert_non_null(g);
	assert_int_equal(run_client("imap@localhost", "", gssapi_server, g, &reason), AUTH_GSSAPI_FAIL);
	assert_string_equal(reason, "Kerberos ticket refused");
	assert_string_equal(auth_gssapi_login(g), "");
	auth_gssapi_free(&g);

	/* a principal the directory does not know */
	c = conf_for(f, "imap");
	char realm[128];
	snprintf(realm, sizeof(realm), "%s", f->kdc.realm);
	snprintf(f->kdc.realm, sizeof(f->kdc.realm), "OTHER.TEST");
	assert_non_null(g = auth_gssapi_new(&c, &why));
	assert_int_equal(run_client("imap@localhost", "", gssapi_server, g, &reason), AUTH_GSSAPI_FAIL);
	assert_string_equal(reason, "Kerberos principal has no account");
	snprintf(f->kdc.realm, sizeof(f->kdc.realm), "%s", realm);
	auth_gssapi_free(&g);

	/* garbage instead of a context token */
	tbuf out = TBUF_INIT;
	assert_non_null(g = auth_gssapi_new(&c, &why));
	assert_true(auth_gssapi_step(g, "\x60\x03junk", 7, &out, &reason) < 0);
	assert_int_equal(out.len, 0);
	auth_gssapi_free(&g);
	tbuf_free(&out);
}

/* Through auth_sasl: offered only with a conf; the account comes from the store. */
static void test_sasl_gssapi(void **state)
{
	fixture *f = need_kdc(state);
	auth_gssapi_conf c = conf_for(f, "imap");
	auth_sasl_env env = { f->ts->st, NULL, NULL };
	auth_sasl_mech mech;
	const char *reason = NULL;

	assert_int_equal(auth_sasl_mech_parse("gssapi", &mech), 0);
	assert_int_equal(mech, AUTH_SASL_GSSAPI);
	assert_string_equal(auth_sasl_mech_name(mech), "GSSAPI");
	assert_int_equal(auth_sasl_mech_plaintext(mech), 0);
	assert_int_equal(auth_sasl_mech_available(&env, AUTH_SASL_GSSAPI), 0);
	assert_int_equal(auth_sasl_mech_available(&env, AUTH_SASL_PLAIN), 1);
	assert_null(auth_sasl_new(&env, AUTH_SASL_GSSAPI, "127.0.0.1"));

	env.gssapi = &c;
	assert_int_equal(auth_sasl_mech_available(&env, AUTH_SASL_GSSAPI), 1);
	auth_sasl *s = auth_sasl_new(&env, AUTH_SASL_GSSAPI, "127.0.0.1");
	assert_non_null(s);
	assert_int_equal(run_client("imap@localhost", "", sasl_server, s, &reason), AUTH_SASL_OK);
	assert_string_equal(auth_sasl_account(s), "alice@example.test");
	assert_string_equal(auth_sasl_login(s), f->expect_principal);
	auth_sasl_free(&s);

	/* an authzid naming the same account is fine, another one is not */
	assert_non_null(s = auth_sasl_new(&env, AUTH_SASL_GSSAPI, "127.0.0.1"));
	assert_int_equal(run_client("imap@localhost", "alice@example.test", sasl_server, s, &reason), AUTH_SASL_OK);
	assert_string_equal(auth_sasl_account(s), "alice@example.test");
	auth_sasl_free(&s);
	assert_non_null(s = auth_sasl_new(&env, AUTH_SASL_GSSAPI, "127.0.0.1"));
	assert_int_equal(run_client("imap@localhost", "bob@example.test", sasl_server, s, &reason), AUTH_SASL_FAIL);
	assert_string_equal(reason, "authorization identity not allowed");
	assert_string_equal(auth_sasl_account(s), "");
	auth_sasl_free(&s);
}

/* SPNEGO (RFC 4559) as a browser or curl --negotiate sends it to the admin API. */
static void test_spnego(void **state)
{
	fixture *f = need_kdc(state);
	auth_gssapi_conf c = conf_for(f, "HTTP");
	gss_OID_desc spnego = { 6, (void *)"\x2b\x06\x01\x05\x05\x02" };
	OM_uint32 major, minor;
	gss_name_t name = GSS_C_NO_NAME;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc tn = { 14, (void *)"HTTP@localhost" }, out;
	tbuf b64 = TBUF_INIT, reply = TBUF_INIT;
	char principal[AUTH_PRINCIPAL_MAX], login[AUTH_PRINCIPAL_MAX];
	const char *reason = NULL;

	assert_false(GSS_ERROR(gss_import_name(&minor, &tn, GSS_C_NT_HOSTBASED_SERVICE, &name)));
	major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx, name, &spnego, GSS_C_MUTUAL_FLAG, 0,
				     GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, NULL, &out, NULL, NULL);
	assert_false(GSS_ERROR(major));
	auth_b64_encode(out.value, out.length, &b64);
	gss_release_buffer(&minor, &out);
	assert_int_equal(auth_spnego_accept(&c, b64.data, b64.len, &reply, principal, sizeof(principal), login,
					    sizeof(login), &reason), 0);
	assert_string_equal(principal, f->expect_principal);
	assert_string_equal(login, "alice@example.test");
	assert_true(reply.len > 0);         /* the mutual-authentication answer */

	/* not base64, and a token for the wrong service */
	assert_int_equal(auth_spnego_accept(&c, "%%%%", 4, &reply, principal, sizeof(principal), login,
					    sizeof(login), &reason), -1);
	assert_string_equal(reason, "malformed Negotiate token");
	c.service = "imap";
	assert_int_equal(auth_spnego_accept(&c, b64.data, b64.len, &reply, principal, sizeof(principal), login,
					    sizeof(login), &reason), -1);
	assert_string_equal(login, "");
	gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	gss_release_name(&minor, &name);
	tbuf_free(&b64);
	tbuf_free(&reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_available),
		cmocka_unit_test(test_gssapi_exchange),
		cmocka_unit_test(test_gssapi_refused),
		cmocka_unit_test(test_sasl_gssapi),
		cmocka_unit_test(test_spnego),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
