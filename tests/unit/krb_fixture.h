/* krb_fixture.h - an MIT KDC for unit tests, started by tests/fixtures/dirfixture.py in a
 * temp dir (`dirfixture.py start DIR --no-ldap`, `dirfixture.py stop DIR`). The realm, the KDC
 * address and Tern's service keytab come from the krb5.conf the fixture writes
 * (default_realm, default_keytab_name); the KDC profile (kdc.conf) beside it lets the
 * tests add their own principals with kadmin.local. Header-only: each test executable
 * includes it once. */
#ifndef TERN_KRB_FIXTURE_H
#define TERN_KRB_FIXTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <krb5.h>

typedef struct krb_fixture {
	char dir[256];
	char krb5_conf[512];
	char kdc_conf[512];
	char keytab[512];       /* "FILE:/..." */
	char realm[128];
} krb_fixture;

/* tests/fixtures/dirfixture.py, found from this file's path ($TERN_DIRFIXTURE overrides). */
static inline void kf_script(char *out, size_t n)
{
	const char *here = __FILE__, *env = getenv("TERN_DIRFIXTURE");
	if (env && env[0]) {
		snprintf(out, n, "%s", env);
		return;
	}
	const char *slash = strrchr(here, '/');
	int w = snprintf(out, n, "%.*s/../fixtures/dirfixture.py", slash ? (int)(slash - here) : 1,
			 slash ? here : ".");
	if (w < 0 || (size_t)w >= n)
		out[0] = '\0';
}

/* Run a shell command quietly; its exit status. */
static inline int kf_sh(const char *cmd)
{
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Start a fixture in a new temp dir. 0 ok; 1 the fixture script is not there (skip);
 * -1 it failed. */
static inline int kf_start(krb_fixture *f)
{
	char script[512], cmd[2048], line[600];
	FILE *p;

	memset(f, 0, sizeof(*f));
	kf_script(script, sizeof(script));
	if (script[0] == '\0' || access(script, R_OK) != 0)
		return 1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/tern-krb-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s start %s --no-ldap >%s.out 2>&1", script, f->dir, f->dir);
	int rc = kf_sh(cmd);
	if (rc != 0)
		snprintf(cmd, sizeof(cmd), "cat %s.out >&2; rm -f %s.out", f->dir, f->dir);
	else
		snprintf(cmd, sizeof(cmd), "rm -f %s.out", f->dir);
	kf_sh(cmd);
	if (rc != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "find %s -name krb5.conf | head -1", f->dir);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), p) == NULL)
		line[0] = '\0';
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	if (line[0] == '\0')
		return -1;
	snprintf(f->krb5_conf, sizeof(f->krb5_conf), "%s", line);
	char *slash = strrchr(line, '/');
	*slash = '\0';
	snprintf(f->kdc_conf, sizeof(f->kdc_conf), "%s/kdc.conf", line);

	/* realm and keytab as the library reads them from that profile */
	krb5_context ctx;
	krb5_keytab kt;
	char *realm = NULL;
	setenv("KRB5_CONFIG", f->krb5_conf, 1);
	if (krb5_init_context(&ctx) != 0)
		return -1;
	if (krb5_get_default_realm(ctx, &realm) == 0) {
		snprintf(f->realm, sizeof(f->realm), "%s", realm);
		krb5_free_default_realm(ctx, realm);
	}
	if (krb5_kt_default(ctx, &kt) == 0) {
		krb5_kt_get_name(ctx, kt, f->keytab, sizeof(f->keytab));
		krb5_kt_close(ctx, kt);
	}
	krb5_free_context(ctx);
	return f->realm[0] && f->keytab[0] ? 0 : -1;
}

static inline void kf_stop(krb_fixture *f)
{
	char script[512], cmd[2048];

	if (f->dir[0] == '\0')
		return;
	kf_script(script, sizeof(script));
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s stop %s >/dev/null 2>&1; rm -rf %s", script, f->dir, f->dir);
	kf_sh(cmd);
	f->dir[0] = '\0';
}

/* kadmin.local query on the fixture's database, e.g. "addprinc -pw x bob". 0 ok. */
static inline int kf_kadmin(const krb_fixture *f, const char *query)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "KRB5_CONFIG=%s KRB5_KDC_PROFILE=%s kadmin.local -r %s -q '%s' >/dev/null 2>&1",
		 f->krb5_conf, f->kdc_conf, f->realm, query);
	return kf_sh(cmd);
}

/* kinit principal with password into ccache ("FILE:/..."). 0 ok. */
static inline int kf_kinit(const krb_fixture *f, const char *principal, const char *password, const char *ccache)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "echo '%s' | KRB5_CONFIG=%s KRB5CCNAME=%s kinit %s >/dev/null 2>&1", password,
		 f->krb5_conf, ccache, principal);
	return kf_sh(cmd);
}

#endif
