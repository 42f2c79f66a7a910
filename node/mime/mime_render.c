/* mime_render.c - IMAP strings and the BODY / BODYSTRUCTURE of one entity (RFC 3501
 * §7.4.2, body in §9), in Dovecot's conventions: type, subtype, parameters and other
 * values as sent, ("charset" "us-ascii") added to text parts without a charset, "7bit"
 * when there is no Content-Transfer-Encoding, NIL for absent values. */
#include <string.h>
#include "mime_int.h"

/* Literal when quoting cannot carry the bytes (RFC 3501 §4.3: quoted strings are 7-bit
 * without CR/LF; '"' and '\\' are sent as literals too, like Dovecot's envelopes). */
void mime_imap_nstring(tbuf *out, const char *s, size_t n, int nolf)
{
	size_t len = 0;
	int literal = 0;

	if (s == NULL) {
		tbuf_append_str(out, "NIL");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (nolf && (c == '\r' || c == '\n'))
			continue;
		len++;
		if (c == '\r' || c == '\n' || c == '"' || c == '\\' || c >= 0x80 || c == 0)
			literal = 1;
	}
	if (literal)
		tbuf_appendf(out, "{%zu}\r\n", len);
	else
		tbuf_append_char(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (nolf && (s[i] == '\r' || s[i] == '\n'))
			continue;
		tbuf_append_char(out, s[i]);
	}
	if (!literal)
		tbuf_append_char(out, '"');
}

void mime_imap_string(tbuf *out, const char *s, size_t n)
{
	mime_imap_nstring(out, s ? s : "", s ? n : 0, 1);
}

/* A field value with the surrounding white space trimmed, NIL when absent. */
static void mr_field(tbuf *out, const mime_fields *f, enum mime_field which)
{
	const tbuf *v = &f->v[which];
	size_t a = 0, b = v->len;

	if (!f->present[which]) {
		tbuf_append_str(out, "NIL");
		return;
	}
	while (a < b && (v->data[a] == ' ' || v->data[a] == '\t'))
		a++;
	while (b > a && (v->data[b - 1] == ' ' || v->data[b - 1] == '\t'))
		b--;
	mime_imap_string(out, v->data ? v->data + a : "", b - a);
}

/* body-fld-param: ("name" "value" ...) or NIL; text parts get a default charset. */
static void mr_params(tbuf *out, const mime_ctype *ct, int text)
{
	size_t n = ct->valid ? ct->nparams : 0;
	int charset = !text || (ct->valid && mime_ctype_param(ct, "charset") != NULL);

	if (n == 0 && charset) {
		tbuf_append_str(out, "NIL");
		return;
	}
	tbuf_append_char(out, '(');
	for (size_t i = 0; i < n; i++) {
		if (i)
			tbuf_append_char(out, ' ');
		mime_imap_string(out, ct->params[i].name.data, ct->params[i].name.len);
		tbuf_append_char(out, ' ');
		mime_imap_string(out, ct->params[i].value.data, ct->params[i].value.len);
	}
	if (!charset)
		tbuf_append_str(out, n ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	tbuf_append_char(out, ')');
}

/* body-fld-dsp: ("type" params) or NIL. */
static void mr_disposition(tbuf *out, const mime_fields *f)
{
	mime_ctype d;

	mime_ctype_parse(f->present[MF_CDISP] ? f->v[MF_CDISP].data : NULL, f->v[MF_CDISP].len, 0, &d);
	if (!d.valid) {
		tbuf_append_str(out, "NIL");
		return;
	}
	tbuf_append_char(out, '(');
	mime_imap_string(out, d.type.data, d.type.len);
	tbuf_append_char(out, ' ');
	mr_params(out, &d, 0);
	tbuf_append_char(out, ')');
	mime_ctype_free(&d);
}

/* body-fld-lang: a list of the language tags, or NIL. */
static void mr_language(tbuf *out, const mime_fields *f)
{
	const tbuf *v = &f->v[MF_CLANG];
	size_t n = 0;

	if (f->present[MF_CLANG]) {
		for (size_t i = 0; i < v->len;) {
			size_t s;
			while (i < v->len && strchr(" \t,", v->data[i]))
				i++;
			if (v->data[i] == '(') {       /* a comment */
				while (i < v->len && v->data[i] != ')')
					i++;
				i += i < v->len;
				continue;
			}
			for (s = i; i < v->len && !strchr(" \t,(", v->data[i]); i++)
				;
			if (i == s)
				continue;
			tbuf_append_str(out, n++ ? " " : "(");
			mime_imap_string(out, v->data + s, i - s);
		}
	}
	tbuf_append_str(out, n ? ")" : "NIL");
}

/* The extension data after a single part's basic fields: md5 dsp lang loc. */
static void mr_single_ext(tbuf *out, const mime_fields *f)
{
	tbuf_append_char(out, ' ');
	mr_field(out, f, MF_CMD5);
	tbuf_append_char(out, ' ');
	mr_disposition(out, f);
	tbuf_append_char(out, ' ');
	mr_language(out, f);
	tbuf_append_char(out, ' ');
	mr_field(out, f, MF_CLOC);
}

/* One entity as body (ext 0) or BODYSTRUCTURE (ext 1). */
void mime_render_part(const mime_entity *e, int ext, tbuf *out)
{
	const mime_fields *f = e->fields;
	const mime_ctype *ct = e->ct;
	const tbuf *kids = ext ? e->child_bs : e->child_body;

	tbuf_append_char(out, '(');
	if (e->multipart) {
		tbuf_append(out, kids->data, kids->len);
		tbuf_append_char(out, ' ');
		if (ct->valid)
			mime_imap_string(out, ct->subtype.data, ct->subtype.len);
		else
			mime_imap_string(out, e->dsubtype, strlen(e->dsubtype));
		if (ext) {
			tbuf_append_char(out, ' ');
			mr_params(out, ct, 0);
			tbuf_append_char(out, ' ');
			mr_disposition(out, f);
			tbuf_append_char(out, ' ');
			mr_language(out, f);
			tbuf_append_char(out, ' ');
			mr_field(out, f, MF_CLOC);
		}
		tbuf_append_char(out, ')');
		return;
	}
	if (ct->valid) {
		mime_imap_string(out, ct->type.data, ct->type.len);
		tbuf_append_char(out, ' ');
		mime_imap_string(out, ct->subtype.data, ct->subtype.len);
	} else {
		tbuf_appendf(out, "\"%s\" \"%s\"", e->dtype, e->dsubtype);
	}
	tbuf_append_char(out, ' ');
	mr_params(out, ct, e->text);
	tbuf_append_char(out, ' ');
	mr_field(out, f, MF_CID);
	tbuf_append_char(out, ' ');
	mr_field(out, f, MF_CDESC);
	tbuf_append_char(out, ' ');
	if (f->present[MF_CTE] && e->part->encoding[0])
		mr_field(out, f, MF_CTE);
	else
		tbuf_append_str(out, "\"7bit\"");
	tbuf_appendf(out, " %llu", (unsigned long long)e->part->body_len);
	if (e->message) {
		tbuf_append_char(out, ' ');
		tbuf_append(out, e->child_env->data, e->child_env->len);
		tbuf_append_char(out, ' ');
		tbuf_append(out, kids->data, kids->len);
		tbuf_appendf(out, " %u", e->part->body_lines);
	} else if (e->text) {
		tbuf_appendf(out, " %u", e->part->body_lines);
	}
	if (ext)
		mr_single_ext(out, f);
	tbuf_append_char(out, ')');
}
