/* ternctl_queue.c - the outgoing queue: queue list|retry|remove|run (guide ch. 23). */
#include <stdio.h>
#include <string.h>
#include "ternctl.h"

static void print_queue(const json_t *entries)
{
	static const ctl_column cols[] = {
		{ "QUEUE ID", "queue_id" }, { "CREATED", "created" }, { "NEXT TRY", "next_try" },
		{ "SIZE", "size" }, { "FROM", "from" }, { "TO", "to" }, { "STATUS", "status" },
		{ "LAST REPLY", "last_reply" }, { NULL, NULL }
	};
	ctl_print_table(entries, cols);
	printf("%zu message%s in the queue\n", json_array_size(entries),
	       json_array_size(entries) == 1 ? "" : "s");
}

int ctl_cmd_queue_list(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *res;
	int rc = ctl_call(ctx, "GET", "/api/v1/queue", NULL, &res);
	if (rc)
		return rc;
	if (ctx->json)
		ctl_print_json(res);
	else
		print_queue(res);
	json_decref(res);
	return CTL_EXIT_OK;
}

/* queue retry|remove [ID|--all]: one entry (its UUID or mail.log Queue-ID) or all. */
static int queue_act(ctl_ctx *ctx, const ctl_args *a, const char *method, const char *suffix,
		     const char *verb)
{
	int all = ctl_flag(a, "all");
	if (all == (a->npos == 1)) {
		ctl_err("give a queue ID or --all");
		return CTL_EXIT_USAGE;
	}
	tbuf path = TBUF_INIT;
	tbuf_append_str(&path, "/api/v1/queue");
	if (!all) {
		tbuf_append_char(&path, '/');
		ctl_url_append(&path, a->pos[0]);
	}
	tbuf_append_str(&path, suffix);
	json_t *res;
	int rc = ctl_call(ctx, method, tbuf_cstr(&path), NULL, &res);
	tbuf_free(&path);
	if (rc)
		return rc;
	json_int_t n = json_integer_value(json_object_get(res, "count"));
	return ctl_done(ctx, res, "%lld message%s %s", (long long)n, n == 1 ? "" : "s", verb);
}

int ctl_cmd_queue_retry(ctl_ctx *ctx, const ctl_args *a)
{
	return queue_act(ctx, a, "POST", "/retry", "to be tried now");
}

int ctl_cmd_queue_remove(ctl_ctx *ctx, const ctl_args *a)
{
	return queue_act(ctx, a, "DELETE", "", "removed");
}

int ctl_cmd_queue_run(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *res;
	int rc = ctl_call(ctx, "POST", "/api/v1/queue/run", NULL, &res);
	if (rc)
		return rc;
	json_int_t n = json_integer_value(json_object_get(res, "count"));
	return ctl_done(ctx, res, "queue run: %lld message%s to be tried now", (long long)n,
			n == 1 ? "" : "s");
}
