/* fuzz_node_json.c - the strict decoding of admin API request bodies
 * (admin_json_decode), with the field table of POST and PATCH /api/v1/users, and the
 * conversions the handlers then apply to the accepted fields. No store. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

/* An accepted object holds only known fields of the right types; convert them the way
 * user_apply does. */
static void check_object(json_t *o, const aj_field *fields)
{
	const char *key;
	json_t *v;
	tbuf log = TBUF_INIT;
	if (!json_is_object(o))
		abort();
	json_object_foreach(o, key, v) {
		const aj_field *f = fields;
		while (f->name != NULL && strcmp(f->name, key) != 0)
			f++;
		if (f->name == NULL)
			abort();
		switch (f->type) {
		case AJ_STR:
			admin_log_kv(&log, key, json_string_value(v));
			break;
		case AJ_STR_OR_NULL:
			if (!json_is_null(v))
				admin_log_kv(&log, key, json_string_value(v));
			break;
		case AJ_UINT:
		case AJ_UINT_OR_NULL:
			if (!json_is_null(v) && json_integer_value(v) < 0)
				abort();
			break;
		case AJ_BOOL:
			if (!json_is_boolean(v))
				abort();
			break;
		case AJ_OBJECT:
			if (!json_is_object(v))
				abort();
			break;
		case AJ_STRLIST: {
			char **list = NULL;
			size_t n = 0;
			aj_strlist(v, &list, &n);
			json_t *back = aj_from_strlist(list, n);
			if (json_array_size(back) != n)
				abort();
			json_decref(back);
			aj_free_strlist(&list, &n);
			break;
		}
		}
	}
	if (log.len > 0 && (memchr(log.data, '\n', log.len) != NULL || memchr(log.data, '\r', log.len) != NULL))
		abort();    /* a config.log line stays one line */
	tbuf_free(&log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	for (int variant = 0; variant < 3; variant++) {
		const aj_field *fields = variant == 1 ? admin_user_fields + 1 : admin_user_fields;
		json_t *o = NULL;
		tbuf why = TBUF_INIT;
		int rc = admin_json_decode(text, size, fields, variant == 2, &o, &why);
		if (rc == 0) {
			if (o == NULL || why.len != 0)
				abort();
			check_object(o, fields);
			json_decref(o);
		} else if (rc != -1 || o != NULL || why.len == 0) {
			abort();
		}
		tbuf_free(&why);
	}
	free(text);
	return 0;
}
