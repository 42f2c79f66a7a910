/* mime_param.c - Content-Type and Content-Disposition values (RFC 2045 §5.1, RFC 2183)
 * with their parameters: quoted strings unquoted, comments skipped, RFC 2231
 * continuations (name*0, name*1*, ...) joined into one parameter that stays encoded
 * ("name*" "utf-8''%E2%82%AC.txt"), as Dovecot sends them: IMAP clients decode RFC 2231
 * themselves and BODYSTRUCTURE must not carry 8-bit text. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "mime_int.h"

typedef struct ptok {
	const char *p, *end;
} ptok;

/* RFC 2045 token characters: CHAR except SPACE, CTLs and tspecials. Bytes >= 0x80 are
 * accepted so that 8-bit junk ends up in a value instead of derailing the parse. */
static int mp_tokchar(unsigned char c)
{
	return c > ' ' && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skip white space and (nested) comments. */
static void mp_skip_cfws(ptok *t)
{
	while (t->p < t->end) {
		if (*t->p == ' ' || *t->p == '\t' || *t->p == '\r' || *t->p == '\n') {
			t->p++;
		} else if (*t->p == '(') {
			int depth = 0;
			for (; t->p < t->end; t->p++) {
				if (*t->p == '\\' && t->p + 1 < t->end)
					t->p++;
				else if (*t->p == '(')
					depth++;
				else if (*t->p == ')' && --depth == 0) {
					t->p++;
					break;
				}
			}
		} else {
			break;
		}
	}
}

/* A token into out (appended); 0 when there is none. */
static int mp_token(ptok *t, tbuf *out)
{
	const char *s = t->p;

	while (t->p < t->end && mp_tokchar((unsigned char)*t->p))
		t->p++;
	tbuf_append(out, s, (size_t)(t->p - s));
	return t->p > s;
}

/* A parameter value: a quoted string (unescaped; an unterminated one runs to the end)
 * or anything up to ';' or white space. */
static void mp_value(ptok *t, tbuf *out)
{
	if (t->p < t->end && *t->p == '"') {
		for (t->p++; t->p < t->end && *t->p != '"'; t->p++) {
			if (*t->p == '\\' && t->p + 1 < t->end)
				t->p++;
			tbuf_append_char(out, *t->p);
		}
		if (t->p < t->end)
			t->p++;
		return;
	}
	const char *s = t->p;
	while (t->p < t->end && *t->p != ';' && *t->p != ' ' && *t->p != '\t' && *t->p != '(')
		t->p++;
	tbuf_append(out, s, (size_t)(t->p - s));
}

/* Skip to just after the next ';' (or the end): recovery from a malformed parameter. */
static void mp_skip_param(ptok *t)
{
	while (t->p < t->end && *t->p != ';') {
		if (*t->p == '"') {
			for (t->p++; t->p < t->end && *t->p != '"'; t->p++)
				if (*t->p == '\\' && t->p + 1 < t->end)
					t->p++;
		}
		if (t->p < t->end)
			t->p++;
	}
}

/* "base*N" or "base*N*": 1 with the base length, section and extended flag. */
static int mp_section(const tbuf *name, size_t *baselen_r, unsigned *sec_r, int *ext_r)
{
	const char *star = name->data ? memchr(name->data, '*', name->len) : NULL;
	const char *p;
	unsigned sec = 0;

	if (star == NULL || star == name->data)
		return 0;
	p = star + 1;
	if (p >= name->data + name->len || !isdigit((unsigned char)*p))
		return 0;
	for (; p < name->data + name->len && isdigit((unsigned char)*p); p++) {
		sec = sec * 10 + (unsigned)(*p - '0');
		if (sec > 1000)
			return 0;
	}
	*ext_r = 0;
	if (p < name->data + name->len && *p == '*') {
		*ext_r = 1;
		p++;
	}
	if (p != name->data + name->len)
		return 0;
	*baselen_r = (size_t)(star - name->data);
	*sec_r = sec;
	return 1;
}

/* Raw parameter of section sec of base, or -1. */
static int mp_find_section(const mime_param *raw, size_t n, const char *base, size_t blen, unsigned sec,
			   int *ext_r)
{
	for (size_t i = 0; i < n; i++) {
		size_t bl;
		unsigned s;
		if (mp_section(&raw[i].name, &bl, &s, ext_r) && bl == blen && s == sec &&
		    strncasecmp(raw[i].name.data, base, blen) == 0)
			return (int)i;
	}
	return -1;
}

/* Append v percent-encoded where RFC 2231 attribute-char does not allow it. */
static void mp_pct(tbuf *out, const tbuf *v)
{
	for (size_t i = 0; i < v->len; i++) {
		unsigned char c = (unsigned char)v->data[i];
		if (mp_tokchar(c) && c < 0x80 && c != '*' && c != '\'' && c != '%')
			tbuf_append_char(out, (char)c);
		else
			tbuf_appendf(out, "%%%02X", c);
	}
}

/* Move raw parameters into ct, joining RFC 2231 continuations (section 0 first). */
static void mp_join(mime_param *raw, size_t n, mime_ctype *ct)
{
	for (size_t i = 0; i < n; i++) {
		size_t blen;
		unsigned sec;
		int ext, ext0, j;
		mime_param *out;

		if (raw[i].name.data == NULL)
			continue;          /* already joined into an earlier parameter */
		out = &ct->params[ct->nparams++];
		if (!mp_section(&raw[i].name, &blen, &sec, &ext) ||
		    (j = mp_find_section(raw, n, raw[i].name.data, blen, 0, &ext0)) < 0) {
			*out = raw[i];
			memset(&raw[i], 0, sizeof(raw[i]));
			continue;
		}
		tbuf_init(&out->name);
		tbuf_init(&out->value);
		tbuf_append(&out->name, raw[i].name.data, blen);
		if (ext0)
			tbuf_append_char(&out->name, '*');
		for (unsigned s = 0; s < MIME_CONT_MAX; s++) {
			int k = mp_find_section(raw, n, out->name.data, blen, s, &ext);
			if (k < 0)
				break;
			if (ext0 && !ext)
				mp_pct(&out->value, &raw[k].value);
			else
				tbuf_append(&out->value, raw[k].value.data, raw[k].value.len);
			tbuf_free(&raw[k].name);
			tbuf_free(&raw[k].value);
		}
		/* sections past a gap or the limit are dropped with their base */
		for (size_t k = i; k < n; k++) {
			size_t bl;
			unsigned s;
			int e;
			if (raw[k].name.data && mp_section(&raw[k].name, &bl, &s, &e) && bl == blen &&
			    strncasecmp(raw[k].name.data, out->name.data, blen) == 0) {
				tbuf_free(&raw[k].name);
				tbuf_free(&raw[k].value);
			}
		}
	}
}

/* Parse a Content-Type (type "/" subtype) or Content-Disposition (type) value. */
void mime_ctype_parse(const char *v, size_t len, int want_subtype, mime_ctype *ct)
{
	ptok t = { v, v + len };
	mime_param *raw;
	size_t nraw = 0;

	memset(ct, 0, sizeof(*ct));
	if (v == NULL)
		return;
	mp_skip_cfws(&t);
	if (!mp_token(&t, &ct->type))
		goto invalid;
	if (want_subtype) {
		mp_skip_cfws(&t);
		if (t.p >= t.end || *t.p != '/')
			goto invalid;
		t.p++;
		mp_skip_cfws(&t);
		if (!mp_token(&t, &ct->subtype))
			goto invalid;
	}
	mp_skip_cfws(&t);
	if (t.p < t.end && *t.p != ';')
		goto invalid;
	ct->valid = 1;
	if ((raw = calloc(MIME_PARAMS_MAX, sizeof(*raw))) == NULL)
		abort();
	while (t.p < t.end && nraw < MIME_PARAMS_MAX) {
		mime_param *p = &raw[nraw];
		if (*t.p == ';')
			t.p++;
		mp_skip_cfws(&t);
		if (t.p >= t.end)
			break;
		if (!mp_token(&t, &p->name)) {
			tbuf_free(&p->name);
			mp_skip_param(&t);
			continue;
		}
		mp_skip_cfws(&t);
		if (t.p >= t.end || *t.p != '=') {
			tbuf_free(&p->name);
			mp_skip_param(&t);
			continue;
		}
		t.p++;
		mp_skip_cfws(&t);
		mp_value(&t, &p->value);
		tbuf_append(&p->value, "", 0);   /* never NULL data, even when empty */
		nraw++;
		mp_skip_cfws(&t);
		if (t.p < t.end && *t.p != ';')
			mp_skip_param(&t);
	}
	mp_join(raw, nraw, ct);
	for (size_t i = 0; i < nraw; i++) {
		tbuf_free(&raw[i].name);
		tbuf_free(&raw[i].value);
	}
	free(raw);
	return;
invalid:
	tbuf_free(&ct->type);
	tbuf_free(&ct->subtype);
	ct->valid = 0;
}

void mime_ctype_free(mime_ctype *ct)
{
	tbuf_free(&ct->type);
	tbuf_free(&ct->subtype);
	for (size_t i = 0; i < ct->nparams; i++) {
		tbuf_free(&ct->params[i].name);
		tbuf_free(&ct->params[i].value);
	}
	ct->nparams = 0;
	ct->valid = 0;
}

/* Parameters are looked up case-insensitively (RFC 2045 §5.1). */
const tbuf *mime_ctype_param(const mime_ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->nparams; i++)
		if (ct->params[i].name.len == strlen(name) && strcasecmp(ct->params[i].name.data, name) == 0)
			return &ct->params[i].value;
	return NULL;
}
