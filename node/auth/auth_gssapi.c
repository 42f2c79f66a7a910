/* auth_gssapi.c - SASL GSSAPI (RFC 4752) and HTTP SPNEGO (RFC 4559) acceptors on MIT
 * GSS-API. The keytab comes from the cred store ("keytab" element) rather than the
 * process-wide KRB5_KTNAME, so each service can name its own; a host-based name without
 * a host accepts that service's key for any host name in the keytab. Only the "no
 * security layer" option is offered: the protocols run inside TLS. */
#include <stdlib.h>
#include <string.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include "auth_gssapi.h"
#include "auth_sasl.h"

#define LAYER_NONE 0x01

/* Kerberos 5 (RFC 1964), the only mechanism of SASL GSSAPI; spelled out here so that
 * only ldapmap/ includes the krb5 headers. */
static gss_OID_desc mech_krb5 = { 9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02" };

/* The GSS-API's text for major/minor, appended to b. */
static void status_text(OM_uint32 major, OM_uint32 minor, tbuf *b)
{
	OM_uint32 m, ctx = 0;
	gss_buffer_desc msg;

	do {
		if (GSS_ERROR(gss_display_status(&m, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &msg)))
			break;
		tbuf_appendf(b, "%s%.*s", b->len ? ": " : "", (int)msg.length, (const char *)msg.value);
		gss_release_buffer(&m, &msg);
	} while (ctx != 0);
	if (minor == 0)
		return;
	ctx = 0;
	do {
		if (GSS_ERROR(gss_display_status(&m, minor, GSS_C_MECH_CODE, GSS_C_NO_OID, &ctx, &msg)))
			break;
		tbuf_appendf(b, ": %.*s", (int)msg.length, (const char *)msg.value);
		gss_release_buffer(&m, &msg);
	} while (ctx != 0);
}

/* gss_acquire_cred_from for name with conf's keytab (cred store) or the default one. */
static OM_uint32 acquire_name(const auth_gssapi_conf *conf, gss_name_t name, gss_cred_id_t *cred_r,
			      OM_uint32 *minor)
{
	gss_key_value_element_desc el = { "keytab", conf->keytab };
	gss_key_value_set_desc cstore = { 1, &el };

	return gss_acquire_cred_from(minor, name, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT,
				     conf->keytab && conf->keytab[0] ? &cstore : GSS_C_NO_CRED_STORE, cred_r,
				     NULL, NULL);
}

/* Acceptor credentials for conf. 0 ok; -1 with *why_r (malloc'd) when why_r is set.
 * Any key of the keytab is tried first: MIT leaks the acceptor name when a named
 * acquire fails, and a missing keytab is the common failure. */
static int acquire(const auth_gssapi_conf *conf, gss_cred_id_t *cred_r, char **why_r)
{
	OM_uint32 major, minor;
	gss_name_t name = GSS_C_NO_NAME;
	tbuf b = TBUF_INIT;

	*cred_r = GSS_C_NO_CREDENTIAL;
	major = acquire_name(conf, GSS_C_NO_NAME, cred_r, &minor);
	if (!GSS_ERROR(major) && conf->service && conf->service[0]) {
		gss_buffer_desc nb;
		gss_release_cred(&minor, cred_r);
		if (conf->hostname && conf->hostname[0])
			tbuf_appendf(&b, "%s@%s", conf->service, conf->hostname);
		else
			tbuf_append_str(&b, conf->service);
		nb.value = b.data;
		nb.length = b.len;
		major = gss_import_name(&minor, &nb, GSS_C_NT_HOSTBASED_SERVICE, &name);
		tbuf_reset(&b);
		if (!GSS_ERROR(major))
			major = acquire_name(conf, name, cred_r, &minor);
		gss_release_name(&minor, &name);
	}
	if (!GSS_ERROR(major)) {
		tbuf_free(&b);
		return 0;
	}
	tbuf_appendf(&b, "no keytab key for %s in %s (",
		     conf->service && conf->service[0] ? conf->service : "any service",
		     conf->keytab && conf->keytab[0] ? conf->keytab : "the default keytab");
	size_t mark = b.len;
	status_text(major, minor, &b);
	if (b.len == mark)
		tbuf_append_str(&b, "unknown error");
	tbuf_append_char(&b, ')');
	if (why_r)
		*why_r = tbuf_steal(&b);
	tbuf_free(&b);
	return -1;
}

int auth_gssapi_available(const auth_gssapi_conf *conf, char **why_r)
{
	gss_cred_id_t cred;
	OM_uint32 minor;

	if (why_r)
		*why_r = NULL;
	if (acquire(conf, &cred, why_r) < 0)
		return 0;
	gss_release_cred(&minor, &cred);
	return 1;
}

/* The source name as text and its login. 0 ok; -1 with *reason_r. */
static int map_principal(const auth_gssapi_conf *conf, gss_name_t src, char *principal, size_t pn,
			 char *login, size_t ln, const char **reason_r)
{
	OM_uint32 minor;
	gss_buffer_desc text;

	principal[0] = login[0] = '\0';
	if (GSS_ERROR(gss_display_name(&minor, src, &text, NULL))) {
		*reason_r = "Kerberos principal unreadable";
		return -1;
	}
	int w = snprintf(principal, pn, "%.*s", (int)text.length, (const char *)text.value);
	gss_release_buffer(&minor, &text);
	if (w < 0 || (size_t)w >= pn || memchr(principal, '\0', (size_t)w) != NULL) {
		principal[0] = '\0';
		*reason_r = "Kerberos principal too long";
		return -1;
	}
	if (conf->map ? conf->map(conf->map_arg, principal, login, ln) < 0
		      : snprintf(login, ln, "%s", principal) >= (int)ln) {
		login[0] = '\0';
		*reason_r = "Kerberos principal has no account";
		return -1;
	}
	return 0;
}

/* ---- SASL GSSAPI ---- */

enum { GS_START, GS_ACCEPT, GS_WAIT_EMPTY, GS_LAYER, GS_OVER };

struct auth_gssapi {
	auth_gssapi_conf conf;
	int state;
	gss_cred_id_t cred;
	gss_ctx_id_t ctx;
	char principal[AUTH_PRINCIPAL_MAX];
	char login[AUTH_PRINCIPAL_MAX];
	char authzid[AUTH_PRINCIPAL_MAX];
};

auth_gssapi *auth_gssapi_new(const auth_gssapi_conf *conf, char **why_r)
{
	auth_gssapi *g = calloc(1, sizeof(*g));

	*why_r = NULL;
	if (g == NULL)
		return NULL;
	g->conf = *conf;
	g->ctx = GSS_C_NO_CONTEXT;
	if (acquire(conf, &g->cred, why_r) < 0) {
		free(g);
		return NULL;
	}
	return g;
}

void auth_gssapi_free(auth_gssapi **gp)
{
	auth_gssapi *g = *gp;
	OM_uint32 minor;

	if (g == NULL)
		return;
	if (g->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &g->ctx, GSS_C_NO_BUFFER);
	gss_release_cred(&minor, &g->cred);
	free(g);
	*gp = NULL;
}

const char *auth_gssapi_principal(const auth_gssapi *g)
{
	return g->principal;
}

const char *auth_gssapi_login(const auth_gssapi *g)
{
	return g->state == GS_OVER ? g->login : "";
}

const char *auth_gssapi_authzid(const auth_gssapi *g)
{
	return g->authzid;
}

/* The server's security-layer offer (RFC 4752 3.1): no layer, no buffer, integrity
 * protected by the established context. */
static int send_layer_offer(auth_gssapi *g, tbuf *out, const char **reason_r)
{
	unsigned char offer[4] = { LAYER_NONE, 0, 0, 0 };
	gss_buffer_desc in = { sizeof(offer), offer }, wrapped;
	OM_uint32 major, minor;

	major = gss_wrap(&minor, g->ctx, 0, GSS_C_QOP_DEFAULT, &in, NULL, &wrapped);
	if (GSS_ERROR(major)) {
		*reason_r = "GSSAPI wrap failed";
		return AUTH_GSSAPI_FAIL;
	}
	tbuf_append(out, wrapped.value, wrapped.length);
	gss_release_buffer(&minor, &wrapped);
	g->state = GS_LAYER;
	return AUTH_GSSAPI_CONTINUE;
}

/* One gss_accept_sec_context round. */
static int step_accept(auth_gssapi *g, const void *in, size_t n, tbuf *out, const char **reason_r)
{
	gss_buffer_desc tok = { n, (void *)in }, reply = GSS_C_EMPTY_BUFFER;
	gss_name_t src = GSS_C_NO_NAME;
	gss_OID mech = GSS_C_NO_OID;
	OM_uint32 major, minor;
	int rc;

	major = gss_accept_sec_context(&minor, &g->ctx, g->cred, &tok, GSS_C_NO_CHANNEL_BINDINGS, &src, &mech,
				       &reply, NULL, NULL, NULL);
	if (reply.length > 0)
		tbuf_append(out, reply.value, reply.length);
	gss_release_buffer(&minor, &reply);
	if (GSS_ERROR(major)) {
		gss_release_name(&minor, &src);
		*reason_r = major == GSS_S_DEFECTIVE_TOKEN ? "malformed GSSAPI token" : "Kerberos ticket refused";
		return major == GSS_S_DEFECTIVE_TOKEN ? AUTH_GSSAPI_MALFORMED : AUTH_GSSAPI_FAIL;
	}
	if (major & GSS_S_CONTINUE_NEEDED) {
		gss_release_name(&minor, &src);
		g->state = GS_ACCEPT;
		return AUTH_GSSAPI_CONTINUE;
	}
	if (mech == GSS_C_NO_OID || !gss_oid_equal(mech, &mech_krb5)) {
		gss_release_name(&minor, &src);
		*reason_r = "GSSAPI mechanism is not Kerberos 5";
		return AUTH_GSSAPI_FAIL;
	}
	rc = map_principal(&g->conf, src, g->principal, sizeof(g->principal), g->login, sizeof(g->login),
			   reason_r);
	gss_release_name(&minor, &src);
	if (rc < 0)
		return AUTH_GSSAPI_FAIL;
	if (out->len > 0) {                 /* mutual authentication: the client answers empty */
		g->state = GS_WAIT_EMPTY;
		return AUTH_GSSAPI_CONTINUE;
	}
	return send_layer_offer(g, out, reason_r);
}

/* The client's wrapped answer: chosen layer, its buffer size, the authzid. */
static int step_layer(auth_gssapi *g, const void *in, size_t n, const char **reason_r)
{
	gss_buffer_desc tok = { n, (void *)in }, plain;
	OM_uint32 major, minor;
	int rc = AUTH_GSSAPI_MALFORMED;

	*reason_r = "malformed GSSAPI security layer message";
	major = gss_unwrap(&minor, g->ctx, &tok, &plain, NULL, NULL);
	if (GSS_ERROR(major))
		return AUTH_GSSAPI_MALFORMED;
	const unsigned char *p = plain.value;
	if (plain.length < 4 || plain.length - 4 >= sizeof(g->authzid) || memchr(p + 4, '\0', plain.length - 4))
		goto out;
	if (p[0] != LAYER_NONE) {
		*reason_r = "GSSAPI security layer not offered";
		rc = AUTH_GSSAPI_FAIL;
		goto out;
	}
	memcpy(g->authzid, p + 4, plain.length - 4);
	g->authzid[plain.length - 4] = '\0';
	g->state = GS_OVER;
	rc = AUTH_GSSAPI_OK;
out:
	gss_release_buffer(&minor, &plain);
	return rc;
}

int auth_gssapi_step(auth_gssapi *g, const void *in, size_t n, tbuf *out, const char **reason_r)
{
	int rc;

	tbuf_reset(out);
	*reason_r = NULL;
	if (n > AUTH_GSSAPI_TOKEN_MAX) {
		*reason_r = "GSSAPI token too long";
		rc = AUTH_GSSAPI_MALFORMED;
	} else if (g->state == GS_START && n == 0) {
		g->state = GS_ACCEPT;           /* no initial response: empty challenge */
		return AUTH_GSSAPI_CONTINUE;
	} else if (g->state == GS_START || g->state == GS_ACCEPT) {
		rc = step_accept(g, in, n, out, reason_r);
	} else if (g->state == GS_WAIT_EMPTY) {
		if (n != 0) {
			*reason_r = "malformed GSSAPI message (expected an empty response)";
			rc = AUTH_GSSAPI_MALFORMED;
		} else {
			rc = send_layer_offer(g, out, reason_r);
		}
	} else if (g->state == GS_LAYER) {
		rc = step_layer(g, in, n, reason_r);
	} else {
		*reason_r = "exchange already finished";
		rc = AUTH_GSSAPI_MALFORMED;
	}
	if (rc != AUTH_GSSAPI_CONTINUE && rc != AUTH_GSSAPI_OK) {
		g->state = GS_OVER;
		g->login[0] = '\0';
		tbuf_reset(out);
	}
	return rc;
}

/* ---- SPNEGO for HTTP ---- */

int auth_spnego_accept(const auth_gssapi_conf *conf, const char *b64, size_t b64_len, tbuf *out_b64,
		       char *principal_r, size_t principal_n, char *login_r, size_t login_n,
		       const char **reason_r)
{
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc tok, reply = GSS_C_EMPTY_BUFFER;
	gss_name_t src = GSS_C_NO_NAME;
	OM_uint32 major, minor;
	tbuf raw = TBUF_INIT;
	char *why = NULL;
	int rc = -1;

	tbuf_reset(out_b64);
	principal_r[0] = login_r[0] = '\0';
	*reason_r = "malformed Negotiate token";
	if (b64_len == 0 || b64_len > AUTH_GSSAPI_TOKEN_MAX * 4 / 3 + 4 || auth_b64_decode(b64, b64_len, &raw) < 0)
		goto out;
	if (acquire(conf, &cred, &why) < 0) {
		*reason_r = "no keytab for HTTP Negotiate";
		goto out;
	}
	tok.value = raw.data;
	tok.length = raw.len;
	major = gss_accept_sec_context(&minor, &ctx, cred, &tok, GSS_C_NO_CHANNEL_BINDINGS, &src, NULL, &reply,
				       NULL, NULL, NULL);
	if (GSS_ERROR(major)) {
		*reason_r = major == GSS_S_DEFECTIVE_TOKEN ? "malformed Negotiate token" : "Kerberos ticket refused";
		goto out;
	}
	if (major & GSS_S_CONTINUE_NEEDED) {
		*reason_r = "Negotiate needs more than one round (only Kerberos is accepted)";
		goto out;
	}
	if (map_principal(conf, src, principal_r, principal_n, login_r, login_n, reason_r) < 0)
		goto out;
	if (reply.length > 0)
		auth_b64_encode(reply.value, reply.length, out_b64);
	rc = 0;
out:
	gss_release_buffer(&minor, &reply);
	gss_release_name(&minor, &src);
	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	if (cred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&minor, &cred);
	free(why);
	tbuf_free(&raw);
	if (rc < 0)
		login_r[0] = '\0';
	return rc;
}
