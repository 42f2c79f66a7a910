/* ternctl_migrate.c - live mailbox migration to the node spoken to (DESIGN.md §6 and §8,
 * guide ch. 11.5): migrate here|status|cancel. --wait polls GET /api/v1/migrations once a
 * second until none of the users concerned is queued, copying or in its cut-over; on a
 * terminal the running users get a progress bar redrawn in place. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "ternctl.h"

#define POLL_MS 1000
#define BAR_WIDTH 30

/* 1 while a migration in state s still runs. */
static int state_running(const char *s)
{
	return s != NULL && (strcmp(s, "queued") == 0 || strcmp(s, "copying") == 0 ||
			     strcmp(s, "cutover") == 0);
}

/* Whether row concerns one of users (NULL: every row does). */
static int row_wanted(const json_t *row, const char *const *users, int n)
{
	if (users == NULL)
		return 1;
	const char *u = json_string_value(json_object_get(row, "user"));
	for (int i = 0; u != NULL && i < n; i++)
		if (strcasecmp(u, users[i]) == 0)
			return 1;
	return 0;
}

/* The migrations of users (NULL = all) as a new array; *running_r = how many still run. */
static json_t *select_rows(const json_t *all, const char *const *users, int n, int *running_r)
{
	json_t *out = json_array();
	size_t i;
	json_t *row;
	*running_r = 0;
	json_array_foreach(all, i, row) {
		if (!row_wanted(row, users, n))
			continue;
		json_array_append(out, row);
		if (state_running(json_string_value(json_object_get(row, "state"))))
			(*running_r)++;
	}
	return out;
}

/* GET the migrations of users into *rows_r; an exit code. */
static int fetch(ctl_ctx *ctx, const char *const *users, int n, json_t **rows_r, int *running_r)
{
	json_t *all;
	int rc = ctl_call(ctx, "GET", "/api/v1/migrations", NULL, &all);
	if (rc)
		return rc;
	if (!json_is_array(all)) {
		json_decref(all);
		ctl_err("the node answered something that is not a list of migrations");
		return CTL_EXIT_ERROR;
	}
	*rows_r = select_rows(all, users, n, running_r);
	json_decref(all);
	return CTL_EXIT_OK;
}

static double num(const json_t *row, const char *key)
{
	return json_number_value(json_object_get(row, key));
}

/* "1.5 MB" style sizes (MB = 10^6 bytes, as the rate). */
static void fmt_mb(char *out, size_t n, double bytes)
{
	snprintf(out, n, "%.1f MB", bytes / 1e6);
}

/* "H:MM:SS" or "?" for an unknown ETA. */
static void fmt_eta(char *out, size_t n, double eta)
{
	if (eta < 0) {
		snprintf(out, n, "?");
		return;
	}
	long s = (long)eta;
	snprintf(out, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* One progress line of a migration: bar, percent, done/total, rate, ETA. */
static void progress_line(const json_t *row, tbuf *out)
{
	const char *user = json_string_value(json_object_get(row, "user"));
	const char *state = json_string_value(json_object_get(row, "state"));
	double done = num(row, "bytes"), total = num(row, "bytes_total");
	double frac = total > 0 ? done / total : 0;
	if (frac > 1)
		frac = 1;
	if (state != NULL && strcmp(state, "cutover") == 0)
		frac = 1;
	int fill = (int)(frac * BAR_WIDTH + 0.5);
	char d[32], t[32], eta[32];
	fmt_mb(d, sizeof(d), done);
	fmt_mb(t, sizeof(t), total);
	fmt_eta(eta, sizeof(eta), num(row, "eta"));
	tbuf_appendf(out, "%-30s %-8s [", user ? user : "?", state ? state : "?");
	for (int i = 0; i < BAR_WIDTH; i++)
		tbuf_append_char(out, i < fill ? '#' : '.');
	tbuf_appendf(out, "] %3d%%  %s / %s  %.1f MB/s  ETA %s", (int)(frac * 100 + 0.5), d, t,
		     num(row, "rate") / 1e6, eta);
}

/* The table of migrations. */
static void print_table(const json_t *rows)
{
	static const ctl_column cols[] = {
		{ "USER", "user" }, { "STATE", "state" }, { "SOURCE", "source" }, { "BYTES", "bytes" },
		{ "TOTAL BYTES", "bytes_total" }, { "MESSAGES", "messages" }, { "RATE B/S", "rate" },
		{ "ETA S", "eta" }, { "CUT-OVER MS", "cutover_ms" }, { "ERROR", "error" }, { NULL, NULL }
	};
	ctl_print_table(rows, cols);
}

/* Draw the progress bars of the running rows; *lines_r: lines drawn last time (erased
 * first), updated. */
static void draw_bars(const json_t *rows, int *lines_r)
{
	tbuf out = TBUF_INIT;
	if (*lines_r > 0)
		tbuf_appendf(&out, "\033[%dA", *lines_r);
	int lines = 0;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		if (!state_running(json_string_value(json_object_get(row, "state"))))
			continue;
		tbuf_append_str(&out, "\r\033[2K");
		progress_line(row, &out);
		tbuf_append_char(&out, '\n');
		lines++;
	}
	for (int k = lines; k < *lines_r; k++)     /* rows that finished: blank their lines */
		tbuf_append_str(&out, "\r\033[2K\n");
	if (*lines_r > lines)
		tbuf_appendf(&out, "\033[%dA", *lines_r - lines);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	fflush(stdout);
	tbuf_free(&out);
	*lines_r = lines;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Poll until none of users (NULL = all) runs; bars on a terminal unless JSON. The final
 * rows in *rows_r. An exit code. */
static int wait_done(ctl_ctx *ctx, const char *const *users, int n, json_t **rows_r)
{
	int bars = !ctx->json && isatty(STDOUT_FILENO), lines = 0, running = 0;
	json_t *rows = NULL;
	for (;;) {
		int rc = fetch(ctx, users, n, &rows, &running);
		if (rc)
			return rc;
		if (bars)
			draw_bars(rows, &lines);
		if (running == 0)
			break;
		json_decref(rows);
		sleep_ms(POLL_MS);
	}
	*rows_r = rows;
	return CTL_EXIT_OK;
}

/* One line per user of a finished wait; 1 when any did not end "done". */
static int print_results(const json_t *rows, const char *const *users, int n)
{
	int bad = 0;
	for (int k = 0; k < n; k++) {
		const json_t *row = NULL, *r;
		size_t i;
		json_array_foreach(rows, i, r)
			if (row_wanted(r, users + k, 1))
				row = r;
		if (row == NULL) {
			printf("%s: no migration on this node\n", users[k]);
			bad = 1;
			continue;
		}
		const char *state = json_string_value(json_object_get(row, "state"));
		const char *err = json_string_value(json_object_get(row, "error"));
		char size[32];
		fmt_mb(size, sizeof(size), num(row, "bytes"));
		if (state != NULL && strcmp(state, "done") == 0) {
			double secs = num(row, "finished") - num(row, "started");
			printf("%s: done, %s, %.0f messages in %.0f s, cut-over %.0f ms\n", users[k], size,
			       num(row, "messages"), secs < 0 ? 0 : secs, num(row, "cutover_ms"));
		} else {
			printf("%s: %s%s%s\n", users[k], state ? state : "unknown", err ? ": " : "", err ? err : "");
			bad = 1;
		}
	}
	return bad;
}

/* migrate here USER@DOMAIN... [--wait] [--admin ADDRESS] */
int ctl_cmd_migrate_here(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *users = json_array();
	for (int i = 0; i < a->npos; i++) {
		if (strchr(a->pos[i], '@') == NULL) {
			json_decref(users);
			ctl_err("not a user address: %s (give USER@DOMAIN)", a->pos[i]);
			return CTL_EXIT_USAGE;
		}
		json_array_append_new(users, json_string(a->pos[i]));
	}
	json_t *body = json_pack("{s:o}", "users", users);
	ctl_opt_str(a, "admin", body, "admin");
	json_t *res;
	int rc = ctl_call(ctx, "POST", "/api/v1/migrations", body, &res);
	if (rc)
		return rc;
	if (!ctl_flag(a, "wait")) {
		if (ctx->json) {
			ctl_print_json(res);
			json_decref(res);
			return CTL_EXIT_OK;
		}
		json_decref(res);
		printf("%d user%s queued for migration to this node\n", a->npos, a->npos == 1 ? "" : "s");
		return CTL_EXIT_OK;
	}
	json_decref(res);
	json_t *rows;
	if ((rc = wait_done(ctx, a->pos, a->npos, &rows)))
		return rc;
	int bad;
	if (ctx->json) {
		ctl_print_json(rows);
		bad = 0;
		size_t i;
		json_t *r;
		json_array_foreach(rows, i, r) {
			const char *s = json_string_value(json_object_get(r, "state"));
			if (s == NULL || strcmp(s, "done") != 0)
				bad = 1;
		}
		if (json_array_size(rows) < (size_t)a->npos)
			bad = 1;
	} else {
		bad = print_results(rows, a->pos, a->npos);
	}
	json_decref(rows);
	return bad ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}

/* migrate status [--wait] */
int ctl_cmd_migrate_status(ctl_ctx *ctx, const ctl_args *a)
{
	json_t *rows;
	int running, rc;
	if (ctl_flag(a, "wait"))
		rc = wait_done(ctx, NULL, 0, &rows);
	else
		rc = fetch(ctx, NULL, 0, &rows, &running);
	if (rc)
		return rc;
	if (ctx->json) {
		ctl_print_json(rows);
	} else {
		print_table(rows);
		if (!ctl_flag(a, "wait") && isatty(STDOUT_FILENO) && running > 0) {
			int lines = 0;
			printf("\n");
			draw_bars(rows, &lines);
		}
	}
	json_decref(rows);
	return CTL_EXIT_OK;
}

/* migrate cancel USER@DOMAIN */
int ctl_cmd_migrate_cancel(ctl_ctx *ctx, const ctl_args *a)
{
	char msg[400];
	snprintf(msg, sizeof msg, "migration of %s cancelled", a->pos[0]);
	return ctl_item_call(ctx, "DELETE", "migrations", a->pos[0], NULL, NULL, msg);
}
