/* lm_auth.c - the password of a mapped user: disabled and empty-password refusals here,
 * then Kerberos (lm_krb5.c) or a simple bind as the user's DN on its own connection. */
#include <stdlib.h>
#include <string.h>
#include "lm_int.h"

/* AD puts the reason of a refused bind in the diagnostic ("data 533"). */
static const char *ad_reason(const char *diag)
{
	static const struct { const char *code, *reason; } codes[] = {
		{ "data 52e", "bad credentials" },
		{ "data 525", "user not found in the directory" },
		{ "data 530", "logon not permitted at this time" },
		{ "data 531", "logon not permitted from this workstation" },
		{ "data 532", "password expired" },
		{ "data 533", "account disabled" },
		{ "data 701", "account expired" },
		{ "data 773", "password must be changed" },
		{ "data 775", "account locked in the directory" },
	};
	for (size_t i = 0; diag && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strstr(diag, codes[i].code))
			return codes[i].reason;
	return "bad credentials";
}

/* LDAP-bind half: bind as the user's DN on a fresh handle to the server in use, so the
 * service account's handle is never rebound. */
static int bind_check(lm_conn *c, const lm_user *u, const char *password, char **reason_r)
{
	char *err = NULL, *diag = NULL;
	LDAP *ld;

	if (lm_ready(c, &err) < 0) {
		*reason_r = lm_errorf("directory unreachable: %s", err);
		free(err);
		return -1;
	}
	if (lm_open(&c->cfg, c->server, &ld, &err) < 0) {
		/* The server just went away: fail over and try once more. */
		free(err);
		err = NULL;
		lm_drop(c);
		if (lm_ready(c, &err) < 0 || lm_open(&c->cfg, c->server, &ld, &err) < 0) {
			*reason_r = lm_errorf("directory unreachable: %s", err);
			free(err);
			return -1;
		}
	}
	int rc = lm_simple_bind(ld, &c->cfg, u->dn, password, &diag);
	ldap_unbind_ext_s(ld, NULL, NULL);
	int ret;
	if (rc == LDAP_SUCCESS) {
		*reason_r = NULL;
		ret = 0;
	} else if (rc == LDAP_INVALID_CREDENTIALS) {
		*reason_r = lm_errorf("%s", ad_reason(diag));
		ret = 1;
	} else if (rc == LDAP_INAPPROPRIATE_AUTH || rc == LDAP_INSUFFICIENT_ACCESS ||
		   rc == LDAP_CONSTRAINT_VIOLATION) {
		*reason_r = lm_errorf("bind refused by the directory: %s", ldap_err2string(rc));
		ret = 1;
	} else {
		*reason_r = lm_errorf("%s: %s%s%s", c->server, ldap_err2string(rc),
				      diag ? ": " : "", diag ? diag : "");
		ret = -1;
	}
	free(diag);
	return ret;
}

int lm_check_password(lm_conn *c, const lm_user *u, const char *password, char **reason_r)
{
	*reason_r = NULL;
	if (!u->enabled) {
		*reason_r = lm_errorf("account disabled");
		return 1;
	}
	/* An empty password would be an unauthenticated LDAP bind, which succeeds. */
	if (!password || !*password) {
		*reason_r = lm_errorf("the password is empty");
		return 1;
	}
	if (c->cfg.auth == LM_AUTH_KERBEROS)
		return lm_krb5_check(&c->cfg, u->principal, password, reason_r);
	if (!u->dn || !*u->dn) {
		*reason_r = lm_errorf("the user has no DN to bind as");
		return -1;
	}
	return bind_check(c, u, password, reason_r);
}
