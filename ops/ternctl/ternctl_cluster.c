/* ternctl_cluster.c - the distributed-domain commands: status, join, leave, remove.
 * A join runs on the new slave and speaks to two nodes: its own (identity, then join)
 * and the master's admin HTTPS, whose certificate must match the pinned fingerprint
 * before anything - the admin's password included - is sent (DESIGN.md §5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ternctl.h"

/* "12 s ago" / "never" for the LAST SEEN column. */
static void last_seen_text(const json_t *node, time_t now, char *out, size_t n)
{
	const json_t *v = json_object_get(node, "last_seen");
	const char *status = json_string_value(json_object_get(node, "status"));
	if (status && strcmp(status, "this server") == 0)
		snprintf(out, n, "-");
	else if (!json_is_integer(v) || json_integer_value(v) <= 0)
		snprintf(out, n, "never");
	else if (json_integer_value(v) >= now)
		snprintf(out, n, "now");
	else
		snprintf(out, n, "%lld s ago", (long long)(now - json_integer_value(v)));
}

static void print_cluster(const json_t *st)
{
	static const ctl_column cols[] = {
		{ "NAME", "name" }, { "ROLE", "role" }, { "STATUS", "status" },
		{ "ADDRESS", "address" }, { "LAST SEEN", "last_seen_text" }, { "SEQ", "seq" },
		{ "LAG", "lag" }, { NULL, NULL }
	};
	json_t *rows = json_deep_copy(json_object_get(st, "nodes"));
	time_t now = time(NULL);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		char seen[64];
		last_seen_text(row, now, seen, sizeof seen);
		json_object_set_new(row, "last_seen_text", json_string(seen));
	}
	ctl_print_table(rows, cols);
	json_decref(rows);
}

/* cluster status: every node of the domain, this one included. */
int ctl_cmd_cluster_status(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *res;
	int rc = ctl_call(ctx, "GET", "/api/v1/cluster", NULL, &res);
	if (rc)
		return rc;
	if (ctx->json)
		ctl_print_json(res);
	else
		print_cluster(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

/* The master's answer to the admission of `identity` (stolen), over its admin HTTPS
 * with the certificate pinned. Returns an exit code; *answer_r on success. */
static int ask_master(ctl_ctx *ctx, const ctl_args *a, json_t *identity, json_t **answer_r)
{
	const char *master = ctl_arg(a, "master");
	ctl_ctx mctx = { .json = ctx->json, .data_dir = ctx->data_dir };
	int rc = ctl_target_remote(&mctx.target, "--master", master, ctl_arg(a, "admin"),
				   ctl_arg(a, "password-file"), "--master-fingerprint",
				   ctl_arg(a, "master-fingerprint"));
	if (rc) {
		json_decref(identity);
		ctl_target_free(&mctx.target);
		return rc;
	}
	snprintf(mctx.target.where, sizeof mctx.target.where, "the master at %s", master);
	rc = ctl_call(&mctx, "POST", "/api/v1/cluster/nodes", identity, answer_r);
	ctl_target_free(&mctx.target);
	/* exit 3 means "the local node is not running"; an unreachable master is an error */
	return rc == CTL_EXIT_DOWN ? CTL_EXIT_ERROR : rc;
}

/* cluster join --master HOST:ADMINPORT --admin USER@DOMAIN --password-file F
 *              --master-fingerprint SHA256 (on the node that joins) */
int ctl_cmd_cluster_join(ctl_ctx *ctx, const ctl_args *a)
{
	static const char *const need[] = { "master", "admin", "password-file", "master-fingerprint" };
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		if (!ctl_arg(a, need[i])) {
			ctl_err("cluster join needs --master HOST:ADMINPORT --admin USER@DOMAIN "
				"--password-file F --master-fingerprint SHA256 (missing --%s)", need[i]);
			return CTL_EXIT_USAGE;
		}
	}
	unsigned char pin[32];
	if (ctl_parse_fingerprint(ctl_arg(a, "master-fingerprint"), pin) < 0) {
		ctl_err("--master-fingerprint wants the SHA-256 of the master's certificate in hex "
			"(64 digits, colons allowed), as `ternctl node show` prints it on the master");
		return CTL_EXIT_USAGE;
	}
	json_t *identity, *answer, *res;
	int rc = ctl_call(ctx, "GET", "/api/v1/cluster/identity", NULL, &identity);
	if (rc)
		return rc;
	char name[128];
	snprintf(name, sizeof name, "%s", json_string_value(json_object_get(identity, "name")) ?: "?");
	if ((rc = ask_master(ctx, a, identity, &answer)))
		return rc;
	char master[128];
	snprintf(master, sizeof master, "%s",
		 json_string_value(json_object_get(json_object_get(answer, "master"), "name")) ?: "?");
	/* the answer holds this node's credential and the domain's secret: ctl_call wipes
	 * its encoded copy; the parsed one goes with the request */
	if ((rc = ctl_call(ctx, "POST", "/api/v1/cluster/join", answer, &res)))
		return rc;
	return ctl_done(ctx, res, "node %s joined the distributed domain of master %s", name, master);
}

/* cluster leave (on the slave): back to standalone. */
int ctl_cmd_cluster_leave(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *res;
	int rc = ctl_call(ctx, "POST", "/api/v1/cluster/leave", NULL, &res);
	if (rc)
		return rc;
	return ctl_done(ctx, res, "left the distributed domain: this node is standalone");
}

/* cluster remove NODE (on the master): revoke a node; refused while users live there. */
int ctl_cmd_cluster_remove(ctl_ctx *ctx, const ctl_args *a)
{
	char msg[300];
	snprintf(msg, sizeof msg, "node %s removed from the distributed domain", a->pos[0]);
	return ctl_item_call(ctx, "DELETE", "cluster/nodes", a->pos[0], NULL, NULL, msg);
}
