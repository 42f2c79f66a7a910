/* ternctl_users.c - the user and group commands: accounts, CSV import/export, members.
 * Quotas are MiB on the command line and bytes in JSON; passwords come from files only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "ternctl.h"

#define MIB 1048576ull
#define MAX_CSV (64u * 1024 * 1024)

static const char *const rights_names[] = { "none", "domain", "read-only", "read-write", NULL };

/* --rights must be one of the API's four values. */
static int opt_rights(const ctl_args *a, json_t *o)
{
	const char *r = ctl_arg(a, "rights");
	if (!r)
		return 0;
	for (const char *const *n = rights_names; *n; n++) {
		if (strcmp(*n, r) == 0) {
			json_object_set_new(o, "rights", json_string(r));
			return 0;
		}
	}
	ctl_err("--rights wants none, domain, read-only or read-write, got '%s'", r);
	return CTL_EXIT_USAGE;
}

/* The password from --password-file into o["password"]. */
static int opt_password(const ctl_args *a, json_t *o)
{
	const char *f = ctl_arg(a, "password-file");
	if (!f)
		return 0;
	char *pw = tern_read_first_line(f);
	if (!pw) {
		ctl_err("cannot read the password file %s: %s", f, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	if (!*pw) {
		free(pw);
		ctl_err("the password file %s starts with an empty line", f);
		return CTL_EXIT_ERROR;
	}
	json_object_set_new(o, "password", json_string(pw));
	OPENSSL_cleanse(pw, strlen(pw));
	free(pw);
	return 0;
}

/* The JSON body of user add/set from the options. */
static int user_body(const ctl_args *a, json_t *o)
{
	int rc;
	if (ctl_flag(a, "enabled") && ctl_flag(a, "disabled")) {
		ctl_err("--enabled and --disabled exclude each other");
		return CTL_EXIT_USAGE;
	}
	if (ctl_flag(a, "keep-copy") && ctl_flag(a, "no-keep-copy")) {
		ctl_err("--keep-copy and --no-keep-copy exclude each other");
		return CTL_EXIT_USAGE;
	}
	if (ctl_flag(a, "publish-in-gal") && ctl_flag(a, "no-publish-in-gal")) {
		ctl_err("--publish-in-gal and --no-publish-in-gal exclude each other");
		return CTL_EXIT_USAGE;
	}
	ctl_opt_str(a, "full-name", o, "full_name");
	ctl_opt_str(a, "description", o, "description");
	ctl_opt_str(a, "home", o, "home");
	ctl_opt_list(a, "address", o, "addresses");
	ctl_opt_list(a, "forward", o, "forward");
	if (ctl_flag(a, "keep-copy"))
		json_object_set_new(o, "keep_copy", json_true());
	if (ctl_flag(a, "no-keep-copy"))
		json_object_set_new(o, "keep_copy", json_false());
	if (ctl_flag(a, "publish-in-gal"))
		json_object_set_new(o, "publish_in_gal", json_true());
	if (ctl_flag(a, "no-publish-in-gal"))
		json_object_set_new(o, "publish_in_gal", json_false());
	if (ctl_flag(a, "disabled"))
		json_object_set_new(o, "enabled", json_false());
	if (ctl_flag(a, "enabled"))
		json_object_set_new(o, "enabled", json_true());
	if ((rc = ctl_opt_uint(a, "quota-mb", 1ull << 40, MIB, o, "quota_bytes")) ||
	    (rc = ctl_opt_uint(a, "quota-items", 1ull << 40, 1, o, "quota_items")) ||
	    (rc = ctl_opt_uint(a, "size-limit-mb", 1ull << 30, MIB, o, "size_limit")) ||
	    (rc = opt_rights(a, o)) || (rc = opt_password(a, o)))
		return rc;
	return 0;
}

int ctl_cmd_user_add(ctl_ctx *ctx, const ctl_args *a)
{
	if (!ctl_arg(a, "password-file")) {
		ctl_err("user add needs --password-file FILE (passwords are never taken on the "
			"command line)");
		return CTL_EXIT_USAGE;
	}
	json_t *o = json_pack("{s:s}", "address", a->pos[0]);
	int rc = user_body(a, o);
	if (rc) {
		json_decref(o);
		return rc;
	}
	json_t *res;
	if ((rc = ctl_call(ctx, "POST", "/api/v1/users", o, &res)))
		return rc;
	return ctl_done(ctx, res, "user %s added", a->pos[0]);
}

/* user list [DOMAIN] [--this-node | --node NODE]: --this-node shows only the users
 * homed on the node ternctl speaks to (its name from GET /api/v1/node). */
/* The HOME column: the home node, or "SOURCE -> TARGET (moving)" while the mailbox is
 * migrated (home_state "moving"), "NODE (reserved)" while the account is made there. */
static void user_home_column(json_t *rows)
{
	size_t i;
	json_t *u;
	json_array_foreach(rows, i, u) {
		const char *home = json_string_value(json_object_get(u, "home"));
		const char *state = json_string_value(json_object_get(u, "home_state"));
		const char *target = json_string_value(json_object_get(u, "home_target"));
		tbuf t = TBUF_INIT;
		tbuf_append_str(&t, home ? home : "");
		if (state && strcmp(state, "moving") == 0)
			tbuf_appendf(&t, " -> %s (moving)", target ? target : "?");
		else if (state && strcmp(state, "reserved") == 0)
			tbuf_append_str(&t, " (reserved)");
		json_object_set_new(u, "home_column", json_string(tbuf_cstr(&t)));
		tbuf_free(&t);
	}
}

int ctl_cmd_user_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{ "ADDRESS", "address" }, { "FULL NAME", "full_name" }, { "TYPE", "type" },
		{ "ENABLED", "enabled" }, { "RIGHTS", "rights" }, { "HOME SERVER", "home_column" },
		{ "USED BYTES", "usage.bytes" }, { "QUOTA BYTES", "quota.bytes" }, { NULL, NULL }
	};
	const char *node = ctl_arg(a, "node");
	if (node && ctl_flag(a, "this-node")) {
		ctl_err("--this-node and --node exclude each other");
		return CTL_EXIT_USAGE;
	}
	json_t *self = NULL, *res;
	int rc;
	if (!node && ctl_flag(a, "this-node")) {
		if ((rc = ctl_call(ctx, "GET", "/api/v1/node", NULL, &self)))
			return rc;
		node = json_string_value(json_object_get(self, "name"));
		if (!node || !*node) {
			json_decref(self);
			ctl_err("the node did not say its name");
			return CTL_EXIT_ERROR;
		}
	}
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/users");
	char sep = '?';
	if (node) {
		tbuf_append_str(&path, "?node=");
		ctl_url_append(&path, node);
		sep = '&';
	}
	json_decref(self);
	if (a->npos) {
		tbuf_appendf(&path, "%cdomain=", sep);
		ctl_url_append(&path, a->pos[0]);
	}
	rc = ctl_call(ctx, "GET", tbuf_cstr(&path), NULL, &res);
	tbuf_free(&path);
	if (rc)
		return rc;
	if (ctx->json) {
		ctl_print_json(res);
	} else {
		user_home_column(res);
		ctl_print_table(res, cols);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

int ctl_cmd_user_show(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_call(ctx, "GET", "users", a->pos[0], NULL, NULL, NULL);
}

int ctl_cmd_user_set(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_set(ctx, a, "user", "users", user_body);
}

int ctl_cmd_user_remove(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_remove(ctx, a, "user", "users");
}

int ctl_cmd_user_stats(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_call(ctx, "GET", "users", a->pos[0], "/stats", NULL, NULL);
}

int ctl_cmd_user_unlock(ctl_ctx *ctx, const ctl_args *a)
{
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/users/");
	ctl_url_append(&path, a->pos[0]);
	tbuf_append_str(&path, "/unlock");
	json_t *res;
	int rc = ctl_call(ctx, "POST", tbuf_cstr(&path), NULL, &res);
	tbuf_free(&path);
	if (rc)
		return rc;
	long long n = (long long)json_integer_value(json_object_get(res, "unlocked"));
	return ctl_done(ctx, res, "%lld account%s unlocked", n, n == 1 ? "" : "s");
}

/* Read a whole file ("-" = stdin), bounded. 0 ok, else an exit code. */
static int read_file(const char *name, tbuf *out)
{
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "re");
	if (!f) {
		ctl_err("cannot open %s: %s", name, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (out->len + n > MAX_CSV) {
			ctl_err("%s is larger than %u MiB", name, MAX_CSV >> 20);
			if (f != stdin)
				fclose(f);
			return CTL_EXIT_ERROR;
		}
		tbuf_append(out, chunk, n);
	}
	int err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (err) {
		ctl_err("cannot read %s", name);
		return CTL_EXIT_ERROR;
	}
	return 0;
}

/* user import DOMAIN FILE.csv: the node parses the guide's CSV (ch. 8.9). Lines it
 * refused are listed on stderr and make the exit status 1. */
int ctl_cmd_user_import(ctl_ctx *ctx, const ctl_args *a)
{
	tbuf csv = TBUF_INIT;
	int rc = read_file(a->pos[1], &csv);
	if (rc) {
		tbuf_free(&csv);
		return rc;
	}
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/users/import?domain=");
	ctl_url_append(&path, a->pos[0]);
	ctl_response resp;
	rc = ctl_call_raw(ctx, "POST", tbuf_cstr(&path), "text/csv; charset=utf-8", csv.data, csv.len,
			  &resp);
	tbuf_free(&path);
	OPENSSL_cleanse(csv.data, csv.len); /* the file may hold passwords */
	tbuf_free(&csv);
	if (rc)
		return rc;
	json_error_t jerr;
	json_t *res = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
	ctl_response_free(&resp);
	if (!res) {
		ctl_err("the node sent invalid JSON: %s", jerr.text);
		return CTL_EXIT_ERROR;
	}
	json_t *errors = json_object_get(res, "errors");
	size_t nerr = json_array_size(errors);
	long long created = (long long)json_integer_value(json_object_get(res, "created"));
	if (ctx->json) {
		ctl_print_json(res);
	} else {
		printf("%lld user%s created in %s\n", created, created == 1 ? "" : "s", a->pos[0]);
		for (size_t i = 0; i < nerr; i++)
			ctl_err("%s: %s", a->pos[1], json_string_value(json_array_get(errors, i)));
	}
	json_decref(res);
	return nerr ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}

/* user export DOMAIN [FILE]: the guide's CSV (ch. 8.10) into FILE, by default
 * users_DOMAIN_YYYY-MM-DD.csv; "-" writes it to stdout. */
int ctl_cmd_user_export(ctl_ctx *ctx, const ctl_args *a)
{
	char name[512];
	if (a->npos > 1) {
		snprintf(name, sizeof name, "%s", a->pos[1]);
	} else {
		time_t now = time(NULL);
		struct tm tm;
		char day[16];
		localtime_r(&now, &tm);
		strftime(day, sizeof day, "%Y-%m-%d", &tm);
		int n = snprintf(name, sizeof name, "users_%s_%s.csv", a->pos[0], day);
		if (n < 0 || (size_t)n >= sizeof name || strchr(a->pos[0], '/')) {
			ctl_err("bad domain name %s", a->pos[0]);
			return CTL_EXIT_USAGE;
		}
	}
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/users/export?domain=");
	ctl_url_append(&path, a->pos[0]);
	ctl_response resp;
	int rc = ctl_call_raw(ctx, "GET", tbuf_cstr(&path), NULL, NULL, 0, &resp);
	tbuf_free(&path);
	if (rc)
		return rc;
	size_t users = 0;
	for (size_t i = 0; i < resp.body.len; i++)
		users += resp.body.data[i] == '\n';
	if (users && resp.body.data[resp.body.len - 1] != '\n')
		users++;
	users = users ? users - 1 : 0; /* the header line */
	if (strcmp(name, "-") == 0) {
		fwrite(resp.body.data ? resp.body.data : "", 1, resp.body.len, stdout);
		ctl_response_free(&resp);
		return CTL_EXIT_OK;
	}
	FILE *f = fopen(name, "we");
	if (!f) {
		ctl_err("cannot create %s: %s", name, strerror(errno));
		ctl_response_free(&resp);
		return CTL_EXIT_ERROR;
	}
	size_t w = resp.body.len ? fwrite(resp.body.data, 1, resp.body.len, f) : 0;
	int bad = w != resp.body.len;
	bad |= fclose(f) != 0;
	ctl_response_free(&resp);
	if (bad) {
		ctl_err("writing %s failed: %s", name, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	json_t *res = json_object();
	json_object_set_new(res, "file", json_string(name));
	json_object_set_new(res, "users", json_integer((json_int_t)users));
	return ctl_done(ctx, res, "%zu user%s of %s exported to %s", users, users == 1 ? "" : "s",
			a->pos[0], name);
}

/* The JSON body of group add/set from the options. */
static int group_body(const ctl_args *a, json_t *o)
{
	ctl_opt_str(a, "description", o, "description");
	ctl_opt_list(a, "address", o, "addresses");
	ctl_opt_list(a, "member", o, "members");
	if (ctl_flag(a, "publish-in-gal"))
		json_object_set_new(o, "publish_in_gal", json_true());
	if (ctl_flag(a, "local-only"))
		json_object_set_new(o, "local_only", json_true());
	return opt_rights(a, o);
}

int ctl_cmd_group_add(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *o = json_pack("{s:s}", "address", a->pos[0]);
	int rc = group_body(a, o);
	if (rc) {
		json_decref(o);
		return rc;
	}
	json_t *res;
	if ((rc = ctl_call(ctx, "POST", "/api/v1/groups", o, &res)))
		return rc;
	return ctl_done(ctx, res, "group %s added", a->pos[0]);
}

int ctl_cmd_group_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{ "ADDRESS", "address" }, { "MEMBERS", "members" }, { "RIGHTS", "rights" },
		{ "DESCRIPTION", "description" }, { NULL, NULL }
	};
	return ctl_list_call(ctx, "groups", a->npos ? a->pos[0] : NULL, cols);
}

int ctl_cmd_group_show(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_call(ctx, "GET", "groups", a->pos[0], NULL, NULL, NULL);
}

int ctl_cmd_group_set(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_set(ctx, a, "group", "groups", group_body);
}

int ctl_cmd_group_remove(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_remove(ctx, a, "group", "groups");
}

/* group members NAME@DOMAIN [--add A]... [--remove A]...: changes the members when asked,
 * then lists them one per line (or prints the GROUP with --json). */
int ctl_cmd_group_members(ctl_ctx *ctx, const ctl_args *a)
{
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/groups/");
	ctl_url_append(&path, a->pos[0]);
	json_t *res;
	int rc;
	if (ctl_arg(a, "add") || ctl_arg(a, "remove")) {
		json_t *o = json_object();
		ctl_opt_list(a, "add", o, "add");
		ctl_opt_list(a, "remove", o, "remove");
		tbuf_append_str(&path, "/members");
		rc = ctl_call(ctx, "POST", tbuf_cstr(&path), o, &res);
	} else {
		rc = ctl_call(ctx, "GET", tbuf_cstr(&path), NULL, &res);
	}
	tbuf_free(&path);
	if (rc)
		return rc;
	if (ctx->json) {
		ctl_print_json(res);
	} else {
		json_t *m = json_object_get(res, "members");
		for (size_t i = 0; i < json_array_size(m); i++)
			printf("%s\n", json_string_value(json_array_get(m, i)) ?: "");
	}
	json_decref(res);
	return CTL_EXIT_OK;
}
