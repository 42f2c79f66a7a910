/* ternctl_directory.c - `directory set|show|test DOMAIN`: a domain's directory mapping
 * (PUT/GET/DELETE /api/v1/directory/DOMAIN, POST .../test). The bind password comes
 * from a file only and is never printed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "ternctl.h"

static const char *const set_only[] = {
	"type", "server", "backup-server", "ldaps", "starttls", "ca-file", "bind-dn",
	"bind-password-file", "base", "realm", "auth", "directory-domain", NULL
};

/* `directory set DOMAIN --off`: the mapping is removed (mapped users stay, disabled
 * from logging in until a mapping returns). */
static int directory_off(ctl_ctx *ctx, const ctl_args *a)
{
	for (const char *const *o = set_only; *o; o++)
		if (ctl_flag(a, *o)) {
			ctl_err("--off takes no other option (got --%s)", *o);
			return CTL_EXIT_USAGE;
		}
	char msg[300];
	snprintf(msg, sizeof(msg), "directory mapping of %s turned off", a->pos[0]);
	return ctl_item_call(ctx, "DELETE", "directory", a->pos[0], NULL, NULL, msg);
}

/* The bind password from --bind-password-file into o["bind_password"]. */
static int opt_bind_password(const ctl_args *a, json_t *o)
{
	const char *f = ctl_arg(a, "bind-password-file");
	if (f == NULL)
		return 0;
	char *pw = tern_read_first_line(f);
	if (pw == NULL) {
		ctl_err("cannot read the password file %s: %s", f, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	if (*pw == '\0') {
		free(pw);
		ctl_err("the password file %s starts with an empty line", f);
		return CTL_EXIT_ERROR;
	}
	json_object_set_new(o, "bind_password", json_string(pw));
	OPENSSL_cleanse(pw, strlen(pw));
	free(pw);
	return 0;
}

int ctl_cmd_directory_set(ctl_ctx *ctx, const ctl_args *a)
{
	if (ctl_flag(a, "off"))
		return directory_off(ctx, a);
	static const char *const required[] = { "type", "server", "bind-dn", "base", NULL };
	for (const char *const *r = required; *r; r++)
		if (ctl_arg(a, *r) == NULL) {
			ctl_err("directory set needs --%s (or --off)", *r);
			return CTL_EXIT_USAGE;
		}
	if (ctl_flag(a, "ldaps") && ctl_flag(a, "starttls")) {
		ctl_err("--ldaps and --starttls exclude each other");
		return CTL_EXIT_USAGE;
	}
	const char *type = ctl_arg(a, "type"), *auth = ctl_arg(a, "auth");
	if (strcmp(type, "ad") != 0 && strcmp(type, "od") != 0 && strcmp(type, "ldap") != 0) {
		ctl_err("--type wants ad, od or ldap, got '%s'", type);
		return CTL_EXIT_USAGE;
	}
	if (auth != NULL && strcmp(auth, "kerberos") != 0 && strcmp(auth, "bind") != 0) {
		ctl_err("--auth wants kerberos or bind, got '%s'", auth);
		return CTL_EXIT_USAGE;
	}
	const char *realm = ctl_arg(a, "realm");
	if (auth != NULL && strcmp(auth, "kerberos") == 0 && (realm == NULL || !*realm)) {
		ctl_err("--auth kerberos needs --realm");
		return CTL_EXIT_USAGE;
	}
	json_t *o = json_object();
	int rc = opt_bind_password(a, o);
	if (rc) {
		json_decref(o);
		return rc;
	}
	const char *opt;
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "server", json_string(ctl_arg(a, "server")));
	json_object_set_new(o, "backup_server", json_string((opt = ctl_arg(a, "backup-server")) ? opt : ""));
	json_object_set_new(o, "tls", json_string(ctl_flag(a, "ldaps") ? "ldaps"
						  : ctl_flag(a, "starttls") ? "starttls" : "plain"));
	json_object_set_new(o, "ca_file", json_string((opt = ctl_arg(a, "ca-file")) ? opt : ""));
	json_object_set_new(o, "bind_dn", json_string(ctl_arg(a, "bind-dn")));
	json_object_set_new(o, "base", json_string(ctl_arg(a, "base")));
	json_object_set_new(o, "realm", json_string(realm ? realm : ""));
	json_object_set_new(o, "directory_domain",
			    json_string((opt = ctl_arg(a, "directory-domain")) ? opt : ""));
	/* Kerberos when a realm is known (the guide's method), else LDAP bind */
	json_object_set_new(o, "auth", json_string(auth ? auth : realm && *realm ? "kerberos" : "bind"));
	char msg[300];
	snprintf(msg, sizeof(msg), "directory mapping of %s set", a->pos[0]);
	return ctl_item_call(ctx, "PUT", "directory", a->pos[0], NULL, o, msg);
}

int ctl_cmd_directory_show(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_call(ctx, "GET", "directory", a->pos[0], NULL, NULL, NULL);
}

/* Prints the steps of the test; exit 1 when one failed (also with --json). */
int ctl_cmd_directory_test(ctl_ctx *ctx, const ctl_args *a)
{
	tbuf path = TBUF_INIT;
	json_t *res = NULL;

	tbuf_append_str(&path, "/api/v1/directory/");
	ctl_url_append(&path, a->pos[0]);
	tbuf_append_str(&path, "/test");
	int rc = ctl_call(ctx, "POST", tbuf_cstr(&path), NULL, &res);
	tbuf_free(&path);
	if (rc)
		return rc;
	int ok = json_is_true(json_object_get(res, "ok"));
	if (ctx->json) {
		ctl_print_json(res);
	} else {
		const char *report = json_string_value(json_object_get(res, "report"));
		fputs(report ? report : "", stdout);
		if (report && *report && report[strlen(report) - 1] != '\n')
			fputc('\n', stdout);
		printf("directory test of %s: %s\n", a->pos[0], ok ? "passed" : "FAILED");
	}
	json_decref(res);
	return ok ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}
