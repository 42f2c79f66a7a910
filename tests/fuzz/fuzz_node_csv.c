/* fuzz_node_csv.c - the user-import CSV parser of the admin API (admin_csv_parse), with
 * the multi-value cell split that the import applies to MailAddress and Groups. No store:
 * each row is checked and split the way import_line would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

/* A row holds a string for every column, and multi-value items are clean. */
static void check_row(const admin_csv_row *row, void *ctx)
{
	int *rows = ctx;
	(*rows)++;
	if (row->lineno < 2)
		abort();
	for (int k = 0; k < ADMIN_CSV_NCOLS; k++)
		if (row->cell[k] == NULL)
			abort();
	static const int multi[] = { ADMIN_CSV_MAILADDRESS, ADMIN_CSV_GROUPS };
	for (size_t m = 0; m < sizeof(multi) / sizeof(multi[0]); m++) {
		char **items = NULL;
		size_t n = admin_csv_split_multi(row->cell[multi[m]], &items);
		for (size_t i = 0; i < n; i++) {
			if (items[i] == NULL || items[i][0] == '\0')
				abort();
			for (const char *p = items[i]; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					abort();
		}
		aj_free_strlist(&items, &n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so that ASan sees any read past the body */
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	json_t *errors = json_array();
	int rows = 0;
	int rc = admin_csv_parse(text, size, check_row, &rows, errors);
	if (rc >= 0 && rc != rows)
		abort();
	if (rc < 0 && rows != 0)
		abort();
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
		if (!json_is_string(e))
			abort();
	/* the error list must always be encodable for the reply */
	char *s = json_dumps(errors, JSON_COMPACT);
	if (s == NULL)
		abort();
	free(s);
	json_decref(errors);
	free(text);
	return 0;
}
