/* lm_krb5.c - Kerberos 5 password check of mapped users (DESIGN.md §7, guide ch. 26).
 * The KDC's answer alone proves nothing: anyone who can answer on the KDC's address can
 * hand out a TGT for any password. So the TGT is used to get a ticket for one of Tern's
 * own service principals and that ticket is decrypted with the keytab
 * (krb5_verify_init_creds with ap_req_nofail): only the real KDC knows that key. A
 * missing or empty keytab is an error, never a silent skip of that check. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <krb5.h>
#include "lm_int.h"

#define LM_KRB5_TKT_LIFE 300   /* seconds: the TGT is only needed for the verification */

/* *reason_r = malloc'd formatted text. */
static void set_reason(char **reason_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(char **reason_r, const char *fmt, ...)
{
	tbuf b = TBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	tbuf_vappendf(&b, fmt, ap);
	va_end(ap);
	free(*reason_r);
	*reason_r = tbuf_steal(&b);
}

/* The library's message for code, copied into the reason. */
static void set_krb5_reason(krb5_context ctx, krb5_error_code code, char **reason_r, const char *what)
{
	const char *msg = krb5_get_error_message(ctx, code);

	set_reason(reason_r, "%s: %s", what, msg ? msg : "unknown Kerberos error");
	krb5_free_error_message(ctx, msg);
}

/* The principal to ask for: "name" -> name@REALM; "name@realm" with the realm's name in
 * another case -> name@REALM; "name@upn.suffix" (AD userPrincipalName) -> enterprise name
 * in the realm, which the KDC canonicalises. *enterprise_r = 1 for the last. */
static krb5_error_code parse_principal(krb5_context ctx, const lm_config *cfg, const char *principal,
				       krb5_principal *p_r, int *enterprise_r)
{
	const char *realm = cfg->realm ? cfg->realm : "";
	const char *at = strrchr(principal, '@');
	krb5_error_code code;
	tbuf name = TBUF_INIT;

	*enterprise_r = 0;
	if (realm[0] == '\0')
		return krb5_parse_name(ctx, principal, p_r);
	if (at == NULL) {
		tbuf_appendf(&name, "%s@%s", principal, realm);
		code = krb5_parse_name_flags(ctx, tbuf_cstr(&name), KRB5_PRINCIPAL_PARSE_REQUIRE_REALM, p_r);
	} else if (strcasecmp(at + 1, realm) == 0) {
		tbuf_appendf(&name, "%.*s@%s", (int)(at - principal), principal, realm);
		code = krb5_parse_name_flags(ctx, tbuf_cstr(&name), KRB5_PRINCIPAL_PARSE_REQUIRE_REALM, p_r);
	} else {
		*enterprise_r = 1;
		code = krb5_parse_name_flags(ctx, principal, KRB5_PRINCIPAL_PARSE_ENTERPRISE, p_r);
		if (code == 0)
			code = krb5_set_principal_realm(ctx, *p_r, realm);
	}
	tbuf_free(&name);
	return code;
}

/* Rank of a keytab principal as the verification target: host/ first (the guide's
 * service principal), then Tern's own services; 0 = unusable (other realm, krbtgt). */
static int server_rank(krb5_context ctx, krb5_const_principal p, const krb5_data *realm)
{
	static const char *const services[] = { "host", "imap", "smtp", "pop", "HTTP" };

	if (p->realm.length != realm->length || memcmp(p->realm.data, realm->data, realm->length) != 0)
		return 0;
	if (krb5_princ_size(ctx, p) < 1)
		return 0;
	const krb5_data *first = krb5_princ_component(ctx, p, 0);
	if (first->length == 6 && memcmp(first->data, "krbtgt", 6) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (first->length == strlen(services[i]) && memcmp(first->data, services[i], first->length) == 0)
			return 10 - (int)i;
	return 1;
}

/* Pick the keytab's service principal for the realm. 0 ok; -1 with *reason_r. */
static int pick_server(krb5_context ctx, krb5_keytab kt, const char *kt_name, const krb5_data *realm,
		       krb5_principal *server_r, char **reason_r)
{
	krb5_kt_cursor cursor;
	krb5_keytab_entry entry;
	krb5_error_code code;
	int best = 0;

	*server_r = NULL;
	code = krb5_kt_have_content(ctx, kt);
	if (code == 0)
		code = krb5_kt_start_seq_get(ctx, kt, &cursor);
	if (code != 0) {
		set_reason(reason_r, "no keytab: %s is missing, unreadable or empty", kt_name);
		return -1;
	}
	while (krb5_kt_next_entry(ctx, kt, &entry, &cursor) == 0) {
		int rank = server_rank(ctx, entry.principal, realm);
		if (rank > best) {
			krb5_principal copy = NULL;
			if (krb5_copy_principal(ctx, entry.principal, &copy) == 0) {
				krb5_free_principal(ctx, *server_r);
				*server_r = copy;
				best = rank;
			}
		}
		krb5_free_keytab_entry_contents(ctx, &entry);
	}
	krb5_kt_end_seq_get(ctx, kt, &cursor);
	if (*server_r == NULL) {
		set_reason(reason_r, "keytab %s has no service key for realm %.*s", kt_name,
			   (int)realm->length, realm->data);
		return -1;
	}
	return 0;
}

/* The KDC's refusal of the initial request as the guide's reason: 1 when it is about
 * the user (refused), -1 when the KDC could not be asked properly. */
static int map_init_error(krb5_context ctx, krb5_error_code code, const char *realm, char **reason_r)
{
	switch (code) {
	case KRB5KDC_ERR_PREAUTH_FAILED:
	case KRB5KRB_AP_ERR_BAD_INTEGRITY:
	case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
	case KRB5_PREAUTH_FAILED:
		set_reason(reason_r, "bad credentials");
		return 1;
	case KRB5KDC_ERR_NAME_EXP:
		set_reason(reason_r, "account expired");
		return 1;
	case KRB5KDC_ERR_KEY_EXP:
		set_reason(reason_r, "password expired");
		return 1;
	case KRB5KDC_ERR_CLIENT_REVOKED:
	case KRB5KDC_ERR_POLICY:
		set_reason(reason_r, "account disabled");
		return 1;
	case KRB5KRB_AP_ERR_SKEW:
		set_reason(reason_r, "clock skew: this host's time differs too much from the KDC of %s",
			   realm);
		return -1;
	case KRB5_KDC_UNREACH:
		set_reason(reason_r, "KDC unreachable for realm %s", realm);
		return -1;
	case KRB5_REALM_UNKNOWN:
	case KRB5_REALM_CANT_RESOLVE:
		set_reason(reason_r, "no KDC known for realm %s (krb5.conf)", realm);
		return -1;
	default:
		set_krb5_reason(ctx, code, reason_r, "Kerberos error");
		return -1;
	}
}

/* Decrypt a service ticket got with creds by the keytab (the anti-forged-KDC check). */
static int verify_creds(krb5_context ctx, const lm_config *cfg, krb5_creds *creds, char **reason_r)
{
	krb5_keytab kt = NULL;
	krb5_principal server = NULL;
	krb5_verify_init_creds_opt vopt;
	krb5_error_code code;
	char kt_name[1024] = "";
	int rc = -1;

	if (cfg->keytab && cfg->keytab[0])
		code = krb5_kt_resolve(ctx, cfg->keytab, &kt);
	else
		code = krb5_kt_default(ctx, &kt);
	if (code != 0) {
		set_krb5_reason(ctx, code, reason_r, "no keytab");
		return -1;
	}
	if (krb5_kt_get_name(ctx, kt, kt_name, sizeof(kt_name)) != 0)
		snprintf(kt_name, sizeof(kt_name), "%s", "(default keytab)");
	if (pick_server(ctx, kt, kt_name, &creds->client->realm, &server, reason_r) < 0)
		goto out;
	krb5_verify_init_creds_opt_init(&vopt);
	krb5_verify_init_creds_opt_set_ap_req_nofail(&vopt, TRUE);
	code = krb5_verify_init_creds(ctx, creds, server, kt, NULL, &vopt);
	if (code == KRB5KRB_AP_ERR_SKEW) {
		set_reason(reason_r, "clock skew: this host's time differs too much from the KDC");
		goto out;
	}
	if (code != 0) {
		set_krb5_reason(ctx, code, reason_r,
				"KDC not verified by the keytab (stale keytab or forged KDC)");
		goto out;
	}
	rc = 0;
out:
	krb5_free_principal(ctx, server);
	krb5_kt_close(ctx, kt);
	return rc;
}

/* TGT of principal ("user@REALM", or a bare name to which cfg->realm is appended) for
 * password, then its verification by the keytab. KRB5_CONFIG is honoured. 0 = good;
 * 1 = refused ("bad credentials", "account expired", "password expired", "account
 * disabled"); -1 = could not ask (KDC unreachable, clock skew, no keytab, ticket not
 * verified). *reason_r is malloc'd and never holds the password. Blocking. */
int lm_krb5_check(const lm_config *cfg, const char *principal, const char *password, char **reason_r)
{
	krb5_context ctx = NULL;
	krb5_principal client = NULL;
	krb5_get_init_creds_opt *opt = NULL;
	krb5_creds creds;
	krb5_error_code code;
	int enterprise = 0, have_creds = 0, rc = -1;
	const char *realm = cfg->realm && cfg->realm[0] ? cfg->realm : "(default realm)";

	*reason_r = NULL;
	memset(&creds, 0, sizeof(creds));
	if (principal == NULL || principal[0] == '\0' || password == NULL || password[0] == '\0' ||
	    strlen(password) > 1024) {
		set_reason(reason_r, "bad credentials");
		return 1;
	}
	code = krb5_init_context(&ctx);            /* reads KRB5_CONFIG */
	if (code != 0) {
		set_reason(reason_r, "Kerberos configuration unusable (error %ld)", (long)code);
		return -1;
	}
	code = parse_principal(ctx, cfg, principal, &client, &enterprise);
	if (code != 0) {
		set_reason(reason_r, "bad credentials");
		rc = 1;
		goto out;
	}
	code = krb5_get_init_creds_opt_alloc(ctx, &opt);
	if (code != 0) {
		set_krb5_reason(ctx, code, reason_r, "Kerberos error");
		goto out;
	}
	krb5_get_init_creds_opt_set_tkt_life(opt, LM_KRB5_TKT_LIFE);
	krb5_get_init_creds_opt_set_forwardable(opt, 0);
	krb5_get_init_creds_opt_set_proxiable(opt, 0);
	krb5_get_init_creds_opt_set_address_list(opt, NULL);
	if (enterprise)
		krb5_get_init_creds_opt_set_canonicalize(opt, 1);
	/* no prompter: an expired password is a refusal, not a change dialogue */
	code = krb5_get_init_creds_password(ctx, &creds, client, password, NULL, NULL, 0, NULL, opt);
	if (code != 0) {
		rc = map_init_error(ctx, code, realm, reason_r);
		goto out;
	}
	have_creds = 1;
	rc = verify_creds(ctx, cfg, &creds, reason_r);
out:
	if (have_creds)
		krb5_free_cred_contents(ctx, &creds);
	krb5_get_init_creds_opt_free(ctx, opt);
	krb5_free_principal(ctx, client);
	krb5_free_context(ctx);
	return rc;
}
