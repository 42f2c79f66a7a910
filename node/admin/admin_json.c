/* admin_json.c - strict JSON bodies: unknown fields and wrong types are 400, never
 * ignored; plus conversions shared by the resource files. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"

static const char *aj_type_name(aj_type t)
{
	switch (t) {
	case AJ_STR: return "a string";
	case AJ_BOOL: return "true or false";
	case AJ_UINT: return "a non-negative integer";
	case AJ_STRLIST: return "a list of strings";
	case AJ_UINT_OR_NULL: return "a non-negative integer or null";
	case AJ_STR_OR_NULL: return "a string or null";
	case AJ_OBJECT: return "an object";
	}
	return "?";
}

static int aj_type_ok(json_t *v, aj_type t)
{
	switch (t) {
	case AJ_STR: return json_is_string(v);
	case AJ_BOOL: return json_is_boolean(v);
	case AJ_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case AJ_UINT_OR_NULL: return json_is_null(v) || (json_is_integer(v) && json_integer_value(v) >= 0);
	case AJ_STR_OR_NULL: return json_is_null(v) || json_is_string(v);
	case AJ_OBJECT: return json_is_object(v);
	case AJ_STRLIST: {
		if (!json_is_array(v))
			return 0;
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
			if (!json_is_string(e))
				return 0;
		return 1;
	}
	}
	return 0;
}

int admin_json_decode(const char *data, size_t len, const aj_field *fields, int allow_empty,
		      json_t **obj_r, tbuf *why)
{
	*obj_r = NULL;
	if (len == 0 && allow_empty) {
		*obj_r = json_object();
		return 0;
	}
	json_error_t err;
	json_t *j = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL) {
		/* jansson's text may quote the bad token: keep only its position, so that no
		 * part of a password ever comes back in an error */
		tbuf_appendf(why, "malformed JSON at line %d, column %d", err.line, err.column);
		return -1;
	}
	if (admin_json_check(j, fields, why) < 0) {
		json_decref(j);
		return -1;
	}
	*obj_r = j;
	return 0;
}

int admin_json_check(const json_t *obj, const aj_field *fields, tbuf *why)
{
	if (!json_is_object(obj)) {
		tbuf_append_str(why, "the body must be a JSON object");
		return -1;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		const aj_field *f = fields;
		while (f->name != NULL && strcmp(f->name, key) != 0)
			f++;
		if (f->name == NULL) {
			tbuf_appendf(why, "unknown field \"%s\"", key);
			return -1;
		}
		if (!aj_type_ok(v, f->type)) {
			tbuf_appendf(why, "field \"%s\" must be %s", key, aj_type_name(f->type));
			return -1;
		}
	}
	return 0;
}

int admin_parse_body(admin_req *r, const aj_field *fields, int allow_empty)
{
	const tbuf *b = &r->req->body;
	tbuf why = TBUF_INIT;
	if (admin_json_decode(b->data, b->len, fields, allow_empty, &r->body, &why) < 0) {
		admin_error(r, 400, "%s", tbuf_cstr(&why));
		tbuf_free(&why);
		return -1;
	}
	tbuf_free(&why);
	return 0;
}

const char *aj_str(admin_req *r, const char *name)
{
	json_t *v = json_object_get(r->body, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int aj_has(admin_req *r, const char *name)
{
	return json_object_get(r->body, name) != NULL;
}

void aj_free_strlist(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

/* Replace a repeated string field with the array's strings. */
void aj_strlist(json_t *arr, char ***out, size_t *n)
{
	aj_free_strlist(out, n);
	size_t cnt = json_array_size(arr);
	if (cnt == 0)
		return;
	*out = calloc(cnt, sizeof(char *));
	if (*out == NULL)
		abort();
	for (size_t i = 0; i < cnt; i++) {
		(*out)[i] = strdup(json_string_value(json_array_get(arr, i)));
		if ((*out)[i] == NULL)
			abort();
	}
	*n = cnt;
}

json_t *aj_from_strlist(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

const char *admin_rights_name(Tern__Rights r)
{
	switch (r) {
	case TERN__RIGHTS__RIGHTS_DOMAIN: return "domain";
	case TERN__RIGHTS__RIGHTS_READ_ONLY: return "read-only";
	case TERN__RIGHTS__RIGHTS_READ_WRITE: return "read-write";
	default: return "none";
	}
}

int admin_rights_parse(const char *s, Tern__Rights *r_out)
{
	static const struct { const char *name; Tern__Rights r; } map[] = {
		{ "none", TERN__RIGHTS__RIGHTS_NONE },
		{ "domain", TERN__RIGHTS__RIGHTS_DOMAIN },
		{ "read-only", TERN__RIGHTS__RIGHTS_READ_ONLY },
		{ "read-write", TERN__RIGHTS__RIGHTS_READ_WRITE },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcasecmp(s, map[i].name) == 0) {
			*r_out = map[i].r;
			return 0;
		}
	}
	return -1;
}

void admin_log_kv(tbuf *b, const char *key, const char *value)
{
	if (b->len > 0 && b->data[b->len - 1] != ' ')
		tbuf_append_str(b, ", ");
	tbuf_appendf(b, "%s='", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\'')
			tbuf_append_char(b, '\'');
		if (*p == '\n' || *p == '\r')
			tbuf_append_char(b, ' ');
		else
			tbuf_append_char(b, *p);
	}
	tbuf_append_char(b, '\'');
}

/* Replace a protobuf-c string field (freeing the old one unless it is the shared empty
 * default), so that the record can still be freed with store_free_record. */
void aj_set_str(char **field, const char *v)
{
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = strdup(v);
	if (*field == NULL)
		abort();
}
