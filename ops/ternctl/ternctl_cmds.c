/* ternctl_cmds.c - the node, domain, alias and IP group commands, and the helpers every
 * command uses to call the admin API (node/admin/API.md) and report its answer.
 * User and group commands are in ternctl_users.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ternctl.h"

#define MIB 1048576ull

void ctl_url_append(tbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '@') {
			tbuf_append_char(b, (char)*p);
		} else {
			tbuf_append_char(b, '%');
			tbuf_append_char(b, hex[*p >> 4]);
			tbuf_append_char(b, hex[*p & 15]);
		}
	}
}

/* Report a failed answer: the API's {"error": ...} or the HTTP status. */
static void report_http_error(const ctl_response *resp)
{
	json_t *j = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "error"));
	if (msg && *msg) {
		/* One line whatever the server sent. */
		tbuf line = TBUF_INIT;
		for (const char *p = msg; *p; p++)
			tbuf_append_char(&line, *p == '\n' || *p == '\r' ? ' ' : *p);
		ctl_err("%s", tbuf_cstr(&line));
		tbuf_free(&line);
	} else {
		ctl_err("the node answered HTTP %d", resp->status);
	}
	json_decref(j);
}

int ctl_call_raw(ctl_ctx *ctx, const char *method, const char *path, const char *content_type,
		 const void *body, size_t len, ctl_response *resp)
{
	char *error = NULL;
	int r = ctl_http(&ctx->target, method, path, content_type, body, len, resp, &error);
	if (r == CTL_HTTP_DOWN) {
		ctl_err("%s is not running", ctx->target.where);
		return CTL_EXIT_DOWN;
	}
	if (r < 0) {
		ctl_err("%s", error ? error : "request failed");
		free(error);
		return CTL_EXIT_ERROR;
	}
	if (resp->status < 200 || resp->status > 299) {
		report_http_error(resp);
		ctl_response_free(resp);
		return CTL_EXIT_ERROR;
	}
	return CTL_EXIT_OK;
}

int ctl_call(ctl_ctx *ctx, const char *method, const char *path, json_t *body,
	     json_t **result_r)
{
	char *text = NULL;
	*result_r = NULL;
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (!text) {
			ctl_err("cannot encode the request");
			return CTL_EXIT_ERROR;
		}
	}
	ctl_response resp;
	int rc = ctl_call_raw(ctx, method, path, text ? "application/json" : NULL, text,
			      text ? strlen(text) : 0, &resp);
	if (text) {
		memset(text, 0, strlen(text)); /* it may hold a password */
		free(text);
	}
	if (rc)
		return rc;
	json_error_t jerr;
	json_t *j = resp.body.len ? json_loadb(resp.body.data, resp.body.len, JSON_DECODE_ANY, &jerr)
				  : json_object();
	ctl_response_free(&resp);
	if (!j) {
		ctl_err("the node sent invalid JSON: %s", jerr.text);
		return CTL_EXIT_ERROR;
	}
	*result_r = j;
	return CTL_EXIT_OK;
}

int ctl_done(ctl_ctx *ctx, json_t *result, const char *fmt, ...)
{
	if (ctx->json) {
		ctl_print_json(result);
	} else {
		va_list ap;
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	json_decref(result);
	return CTL_EXIT_OK;
}

int ctl_opt_uint(const ctl_args *a, const char *name, uint64_t max, uint64_t mult,
		 json_t *obj, const char *key)
{
	const char *s = ctl_arg(a, name);
	if (!s)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *end || errno || v > max) {
		ctl_err("--%s wants a whole number from 0 to %llu, got '%s'", name,
			(unsigned long long)max, s);
		return CTL_EXIT_USAGE;
	}
	json_object_set_new(obj, key, json_integer((json_int_t)(v * mult)));
	return 0;
}

void ctl_opt_list(const ctl_args *a, const char *name, json_t *obj, const char *key)
{
	json_t *arr = NULL;
	for (int i = 0; i < a->nopt; i++) {
		if (strcmp(a->opt[i].name, name) != 0)
			continue;
		if (!arr)
			arr = json_array();
		json_array_append_new(arr, json_string(a->opt[i].value));
	}
	if (arr)
		json_object_set_new(obj, key, arr);
}

void ctl_opt_str(const ctl_args *a, const char *name, json_t *obj, const char *key)
{
	const char *v = ctl_arg(a, name);
	if (v)
		json_object_set_new(obj, key, json_string(v));
}

/* Sleep ms milliseconds. */
static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* status [--wait SECONDS]: ready once every enabled service is served. Retries every
 * 0.2 s; exit 3 when the node never answered, 1 when it answered but was not ready. */
int ctl_cmd_status(ctl_ctx *ctx, const ctl_args *a)
{
	double wait = 0;
	const char *w = ctl_arg(a, "wait");
	if (w) {
		char *end = NULL;
		wait = strtod(w, &end);
		if (!*w || *end || !(wait >= 0 && wait <= 86400)) {
			ctl_err("--wait wants a number of seconds, got '%s'", w);
			return CTL_EXIT_USAGE;
		}
	}
	int64_t deadline = tern_mono_ms() + (int64_t)(wait * 1000);
	int answered = 0, last = CTL_HTTP_DOWN;
	char *last_error = NULL;
	json_t *last_status = NULL;
	for (;;) {
		ctl_response resp;
		char *error = NULL;
		last = ctl_http(&ctx->target, "GET", "/api/v1/status", NULL, NULL, 0, &resp, &error);
		if (last == 0) {
			answered = 1;
			if (resp.status >= 400 && resp.status != 503) {
				report_http_error(&resp);
				ctl_response_free(&resp);
				json_decref(last_status);
				free(last_error);
				return CTL_EXIT_ERROR;
			}
			json_t *j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
			ctl_response_free(&resp);
			if (resp.status == 200 && json_is_true(json_object_get(j, "ready"))) {
				json_decref(last_status);
				free(last_error);
				if (ctx->json)
					ctl_print_json(j);
				else
					ctl_print_status(j);
				json_decref(j);
				return CTL_EXIT_OK;
			}
			json_decref(last_status);
			last_status = j;
		} else if (last == CTL_HTTP_ERROR) {
			free(last_error);
			last_error = error;
		}
		if (tern_mono_ms() >= deadline)
			break;
		sleep_ms(200);
	}
	int rc;
	if (answered) {
		ctl_err("%s is not ready", ctx->target.where);
		rc = CTL_EXIT_ERROR;
	} else if (last == CTL_HTTP_ERROR) {
		ctl_err("%s", last_error ? last_error : "request failed");
		rc = CTL_EXIT_ERROR;
	} else {
		ctl_err("%s is not running", ctx->target.where);
		rc = CTL_EXIT_DOWN;
	}
	json_decref(last_status);
	free(last_error);
	return rc;
}

/* A GET whose answer is printed as JSON or by print(). */
static int get_and_print(ctl_ctx *ctx, const char *path, void (*print)(const json_t *))
{
	json_t *res;
	int rc = ctl_call(ctx, "GET", path, NULL, &res);
	if (rc)
		return rc;
	if (ctx->json)
		ctl_print_json(res);
	else
		print(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

int ctl_cmd_node_show(ctl_ctx *ctx, const ctl_args *a)
{
	return get_and_print(ctx, "/api/v1/node", ctl_print_object);
}

int ctl_cmd_stats(ctl_ctx *ctx, const ctl_args *a)
{
	return get_and_print(ctx, "/api/v1/stats", ctl_print_stats);
}

/* logs NAME [--lines N]: the text as is, or a JSON array of lines with --json. */
int ctl_cmd_logs(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *q = json_object();
	int rc = ctl_opt_uint(a, "lines", 1000000, 1, q, "lines");
	if (rc) {
		json_decref(q);
		return rc;
	}
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/logs/");
	ctl_url_append(&path, a->pos[0]);
	if (json_object_get(q, "lines"))
		tbuf_appendf(&path, "?lines=%lld", (long long)json_integer_value(json_object_get(q, "lines")));
	json_decref(q);
	ctl_response resp;
	rc = ctl_call_raw(ctx, "GET", tbuf_cstr(&path), NULL, NULL, 0, &resp);
	tbuf_free(&path);
	if (rc)
		return rc;
	if (ctx->json) {
		json_t *lines = json_array();
		const char *p = tbuf_cstr(&resp.body), *end = p + resp.body.len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			json_array_append_new(lines, json_stringn(p, n));
			p += n + (nl ? 1 : 0);
		}
		ctl_print_json(lines);
		json_decref(lines);
	} else if (resp.body.len) {
		fwrite(resp.body.data, 1, resp.body.len, stdout);
		if (resp.body.data[resp.body.len - 1] != '\n')
			putchar('\n');
	}
	ctl_response_free(&resp);
	return CTL_EXIT_OK;
}

/* The JSON body of domain add/set from the options. */
static int domain_body(const ctl_args *a, json_t *o)
{
	int rc;
	ctl_opt_str(a, "description", o, "description");
	ctl_opt_list(a, "alias", o, "aliases");
	ctl_opt_str(a, "footer", o, "footer");
	if (ctl_flag(a, "footer-skip-internal"))
		json_object_set_new(o, "footer_skip_internal", json_true());
	if ((rc = ctl_opt_uint(a, "user-limit", 10000000, 1, o, "user_limit")) ||
	    (rc = ctl_opt_uint(a, "size-limit-mb", 1u << 30, MIB, o, "outgoing_size_limit")) ||
	    (rc = ctl_opt_uint(a, "retention-days", 365, 1, o, "deleted_retention_days")))
		return rc;
	return 0;
}

/* "/api/v1/KIND/NAME[SUFFIX]" with NAME encoded. */
static void item_path(tbuf *b, const char *kind, const char *name, const char *suffix)
{
	tbuf_appendf(b, "/api/v1/%s/", kind);
	ctl_url_append(b, name);
	if (suffix)
		tbuf_append_str(b, suffix);
}

/* One request on /api/v1/KIND/NAME[SUFFIX]; the answer is printed with --json, else msg. */
static int item_call(ctl_ctx *ctx, const char *method, const char *kind, const char *name,
		     const char *suffix, json_t *body, const char *msg)
{
	tbuf path = TBUF_INIT;
	item_path(&path, kind, name, suffix);
	json_t *res;
	int rc = ctl_call(ctx, method, tbuf_cstr(&path), body, &res);
	tbuf_free(&path);
	if (rc)
		return rc;
	if (!msg) {
		if (ctx->json)
			ctl_print_json(res);
		else
			ctl_print_object(res);
		json_decref(res);
		return CTL_EXIT_OK;
	}
	return ctl_done(ctx, res, "%s", msg);
}

/* A list GET with an optional ?domain= and a table. */
static int list_call(ctl_ctx *ctx, const char *kind, const char *domain, const ctl_column *cols,
		     void (*print)(const json_t *))
{
	tbuf path = TBUF_INIT;
	tbuf_appendf(&path, "/api/v1/%s", kind);
	if (domain) {
		tbuf_append_str(&path, "?domain=");
		ctl_url_append(&path, domain);
	}
	json_t *res;
	int rc = ctl_call(ctx, "GET", tbuf_cstr(&path), NULL, &res);
	tbuf_free(&path);
	if (rc)
		return rc;
	if (ctx->json)
		ctl_print_json(res);
	else if (print)
		print(res);
	else
		ctl_print_table(res, cols);
	json_decref(res);
	return CTL_EXIT_OK;
}

int ctl_cmd_domain_add(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *o = json_pack("{s:s}", "name", a->pos[0]);
	int rc = domain_body(a, o);
	if (rc) {
		json_decref(o);
		return rc;
	}
	json_t *res;
	if ((rc = ctl_call(ctx, "POST", "/api/v1/domains", o, &res)))
		return rc;
	return ctl_done(ctx, res, "domain %s added", a->pos[0]);
}

int ctl_cmd_domain_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{ "NAME", "name" }, { "PRIMARY", "primary" }, { "USERS", "users" },
		{ "ALIASES", "aliases" }, { "DESCRIPTION", "description" }, { NULL, NULL }
	};
	return list_call(ctx, "domains", NULL, cols, NULL);
}

int ctl_cmd_domain_show(ctl_ctx *ctx, const ctl_args *a)
{
	return item_call(ctx, "GET", "domains", a->pos[0], NULL, NULL, NULL);
}

int ctl_cmd_domain_set(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_set(ctx, a, "domain", "domains", domain_body);
}

int ctl_cmd_domain_remove(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_item_remove(ctx, a, "domain", "domains");
}

int ctl_cmd_domain_rename(ctl_ctx *ctx, const ctl_args *a)
{
	char msg[600];
	snprintf(msg, sizeof msg, "domain %s renamed to %s", a->pos[0], a->pos[1]);
	return item_call(ctx, "POST", "domains", a->pos[0], "/rename",
			 json_pack("{s:s}", "name", a->pos[1]), msg);
}

int ctl_cmd_domain_primary(ctl_ctx *ctx, const ctl_args *a)
{
	char msg[300];
	snprintf(msg, sizeof msg, "domain %s is now the primary domain", a->pos[0]);
	return item_call(ctx, "POST", "domains", a->pos[0], "/primary", NULL, msg);
}

int ctl_cmd_alias_add(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *o = json_pack("{s:s, s:s}", "alias", a->pos[0], "target", a->pos[1]);
	ctl_opt_str(a, "description", o, "description");
	json_t *res;
	int rc = ctl_call(ctx, "POST", "/api/v1/aliases", o, &res);
	if (rc)
		return rc;
	return ctl_done(ctx, res, "alias %s -> %s added", a->pos[0], a->pos[1]);
}

int ctl_cmd_alias_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{ "ALIAS", "alias" }, { "DOMAIN", "domain" }, { "TARGETS", "targets" },
		{ "DESCRIPTION", "description" }, { NULL, NULL }
	};
	return list_call(ctx, "aliases", a->npos ? a->pos[0] : NULL, cols, NULL);
}

/* DELETE /api/v1/KIND/NAME for "remove NAME [MEMBER]": with a member only that one goes,
 * named by the query parameter param; the answer into *res_r. */
static int member_remove(ctl_ctx *ctx, const ctl_args *a, const char *kind, const char *param,
			 json_t **res_r)
{
	tbuf path = TBUF_INIT;
	item_path(&path, kind, a->pos[0], NULL);
	if (a->npos > 1) {
		tbuf_appendf(&path, "?%s=", param);
		ctl_url_append(&path, a->pos[1]);
	}
	int rc = ctl_call(ctx, "DELETE", tbuf_cstr(&path), NULL, res_r);
	tbuf_free(&path);
	return rc;
}

/* alias remove ALIAS@DOMAIN [TARGET]: one target, or the whole alias. */
int ctl_cmd_alias_remove(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *res;
	int rc = member_remove(ctx, a, "aliases", "target", &res);
	if (rc)
		return rc;
	if (a->npos > 1)
		return ctl_done(ctx, res, "alias %s -> %s removed", a->pos[0], a->pos[1]);
	return ctl_done(ctx, res, "alias %s removed", a->pos[0]);
}

int ctl_cmd_alias_check(ctl_ctx *ctx, const ctl_args *a)
{
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/aliases/check?address=");
	ctl_url_append(&path, a->pos[0]);
	int rc = get_and_print(ctx, tbuf_cstr(&path), ctl_print_alias_check);
	tbuf_free(&path);
	return rc;
}

/* gal list [DOMAIN]: the domain's Global Address List (default: the primary domain). */
int ctl_cmd_gal_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{ "ADDRESS", "address" }, { "KIND", "kind" }, { "FULL NAME", "full_name" },
		{ NULL, NULL }
	};
	return list_call(ctx, "gal", a->npos ? a->pos[0] : NULL, cols, NULL);
}

int ctl_cmd_ipgroup_add(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *o = json_pack("{s:s, s:s}", "name", a->pos[0], "item", a->pos[1]);
	ctl_opt_str(a, "description", o, "description");
	json_t *res;
	int rc = ctl_call(ctx, "POST", "/api/v1/ipgroups", o, &res);
	if (rc)
		return rc;
	return ctl_done(ctx, res, "%s added to IP address group %s", a->pos[1], a->pos[0]);
}

int ctl_cmd_ipgroup_list(ctl_ctx *ctx, const ctl_args *a)
{
	return list_call(ctx, "ipgroups", NULL, NULL, ctl_print_ipgroups);
}

int ctl_cmd_ipgroup_remove(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *res;
	int rc = member_remove(ctx, a, "ipgroups", "item", &res);
	if (rc)
		return rc;
	if (a->npos > 1)
		return ctl_done(ctx, res, "%s removed from IP address group %s", a->pos[1], a->pos[0]);
	return ctl_done(ctx, res, "IP address group %s removed", a->pos[0]);
}

/* Shared with ternctl_users.c through the header: list with the domain filter. */
int ctl_list_call(ctl_ctx *ctx, const char *kind, const char *domain, const ctl_column *cols)
{
	return list_call(ctx, kind, domain, cols, NULL);
}

/* Shared with ternctl_users.c: an item request printed as JSON / object / message. */
int ctl_item_call(ctl_ctx *ctx, const char *method, const char *kind, const char *name,
		  const char *suffix, json_t *body, const char *msg)
{
	return item_call(ctx, method, kind, name, suffix, body, msg);
}

int ctl_item_set(ctl_ctx *ctx, const ctl_args *a, const char *noun, const char *kind,
		 int (*body_fn)(const ctl_args *a, json_t *o))
{
	json_t *o = json_object();
	int rc = body_fn(a, o);
	if (rc || json_object_size(o) == 0) {
		if (!rc)
			ctl_err("nothing to change: give at least one option");
		json_decref(o);
		return rc ? rc : CTL_EXIT_USAGE;
	}
	char msg[300];
	snprintf(msg, sizeof msg, "%s %s changed", noun, a->pos[0]);
	return item_call(ctx, "PATCH", kind, a->pos[0], NULL, o, msg);
}

int ctl_item_remove(ctl_ctx *ctx, const ctl_args *a, const char *noun, const char *kind)
{
	char msg[300];
	snprintf(msg, sizeof msg, "%s %s removed", noun, a->pos[0]);
	return item_call(ctx, "DELETE", kind, a->pos[0], NULL, NULL, msg);
}
