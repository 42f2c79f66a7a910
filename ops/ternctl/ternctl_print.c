/* ternctl_print.c - output: the API's JSON pretty-printed (--json), or readable tables and
 * "key: value" lines for people. Nothing here talks to the node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ternctl.h"

void ctl_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s) {
		fputs(s, stdout);
		putchar('\n');
		free(s);
	}
}

/* Display text of one JSON value: strings bare, arrays joined by ", ", null as "-". */
static void value_text(const json_t *v, tbuf *out)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		tbuf_append(out, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		tbuf_appendf(out, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		tbuf_appendf(out, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		tbuf_append_str(out, "yes");
		break;
	case JSON_FALSE:
		tbuf_append_str(out, "no");
		break;
	case JSON_NULL:
		tbuf_append_str(out, "-");
		break;
	case JSON_ARRAY:
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				tbuf_append_str(out, ", ");
			value_text(json_array_get(v, i), out);
		}
		break;
	case JSON_OBJECT: {
		const char *k;
		json_t *m;
		int first = 1;
		json_object_foreach((json_t *)v, k, m) {
			tbuf_appendf(out, "%s%s=", first ? "" : " ", k);
			value_text(m, out);
			first = 0;
		}
		break;
	}
	}
}

void ctl_value_text(const json_t *obj, const char *key, tbuf *out)
{
	const json_t *v = obj;
	char part[128];
	const char *p = key;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof part)
			return;
		memcpy(part, p, n);
		part[n] = '\0';
		v = json_object_get(v, part);
		p += n + (dot ? 1 : 0);
	}
	if (v)
		value_text(v, out);
}

/* Columns sized to their widest cell; the last column is not padded. */
void ctl_print_table(const json_t *rows, const ctl_column *cols)
{
	size_t ncol = 0, nrow = json_array_size(rows);
	while (cols[ncol].header)
		ncol++;
	size_t width[32] = { 0 };
	if (ncol > 32)
		ncol = 32;
	tbuf *cells = calloc((nrow + 1) * ncol, sizeof *cells);
	if (!cells)
		abort();
	for (size_t c = 0; c < ncol; c++) {
		tbuf_append_str(&cells[c], cols[c].header);
		for (size_t r = 0; r < nrow; r++)
			ctl_value_text(json_array_get(rows, r), cols[c].key, &cells[(r + 1) * ncol + c]);
	}
	for (size_t i = 0; i < (nrow + 1) * ncol; i++)
		if (cells[i].len > width[i % ncol])
			width[i % ncol] = cells[i].len;
	for (size_t r = 0; r <= nrow; r++) {
		for (size_t c = 0; c < ncol; c++) {
			const tbuf *cell = &cells[r * ncol + c];
			if (c + 1 < ncol)
				printf("%-*s  ", (int)width[c], tbuf_cstr(cell));
			else
				printf("%s\n", tbuf_cstr(cell));
		}
	}
	for (size_t i = 0; i < (nrow + 1) * ncol; i++)
		tbuf_free(&cells[i]);
	free(cells);
}

/* Nested objects become "parent.child: value". */
static void print_members(const json_t *obj, const char *prefix)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		tbuf name = TBUF_INIT;
		tbuf_appendf(&name, "%s%s%s", prefix, *prefix ? "." : "", k);
		if (json_is_object(v) && json_object_size(v)) {
			print_members(v, tbuf_cstr(&name));
		} else {
			tbuf text = TBUF_INIT;
			value_text(v, &text);
			printf("%s: %s\n", tbuf_cstr(&name), tbuf_cstr(&text));
			tbuf_free(&text);
		}
		tbuf_free(&name);
	}
}

void ctl_print_object(const json_t *obj)
{
	if (json_is_object(obj))
		print_members(obj, "");
	else
		ctl_print_json(obj);
}

void ctl_print_status(const json_t *st)
{
	static const ctl_column cols[] = {
		{ "SERVICE", "name" }, { "ENABLED", "enabled" }, { "SERVED", "served" },
		{ "CONNECTIONS", "connections" }, { "LISTEN", "listen" }, { NULL, NULL }
	};
	tbuf t = TBUF_INIT;
	ctl_value_text(st, "node", &t);
	tbuf_append_str(&t, " ready, version ");
	ctl_value_text(st, "version", &t);
	tbuf_append_str(&t, ", up ");
	ctl_value_text(st, "uptime", &t);
	printf("%s s\n", tbuf_cstr(&t));
	tbuf_free(&t);
	ctl_print_table(json_object_get(st, "services"), cols);
}

void ctl_print_stats(const json_t *stats)
{
	print_members(stats, "");
}

void ctl_print_alias_check(const json_t *check)
{
	json_t *rcpts = json_object_get(check, "recipients");
	printf("%s delivers to %zu recipient%s:\n", json_string_value(json_object_get(check, "address")) ?: "",
	       json_array_size(rcpts), json_array_size(rcpts) == 1 ? "" : "s");
	for (size_t i = 0; i < json_array_size(rcpts); i++) {
		json_t *r = json_array_get(rcpts, i);
		printf("  %s (%s)\n", json_string_value(json_object_get(r, "address")) ?: "",
		       json_string_value(json_object_get(r, "kind")) ?: "?");
	}
	json_t *trace = json_object_get(check, "trace");
	if (json_array_size(trace))
		printf("trace:\n");
	for (size_t i = 0; i < json_array_size(trace); i++)
		printf("  %s\n", json_string_value(json_array_get(trace, i)) ?: "");
}

/* One row per item: the group name repeated, as an administrator reads it. */
void ctl_print_ipgroups(const json_t *groups)
{
	static const ctl_column cols[] = {
		{ "GROUP", "group" }, { "ITEM", "value" }, { "ENABLED", "enabled" },
		{ "DESCRIPTION", "description" }, { NULL, NULL }
	};
	json_t *rows = json_array();
	for (size_t g = 0; g < json_array_size(groups); g++) {
		json_t *grp = json_array_get(groups, g);
		json_t *items = json_object_get(grp, "items");
		for (size_t i = 0; i < json_array_size(items); i++) {
			json_t *row = json_deep_copy(json_array_get(items, i));
			if (!json_is_object(row)) {
				json_decref(row);
				continue;
			}
			json_object_set(row, "group", json_object_get(grp, "name"));
			json_array_append_new(rows, row);
		}
	}
	ctl_print_table(rows, cols);
	json_decref(rows);
}
