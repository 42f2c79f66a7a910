/* mime_scan.c - the structure of a message: entities, their header and body offsets,
 * body lines, and their BODY / BODYSTRUCTURE / ENVELOPE, in one pass over the bytes.
 *
 * Boundaries follow Dovecot: a line starting with "--" + the boundary of any enclosing
 * multipart ends the current entity (even inside its header), the line break before it
 * belongs to the boundary, "--boundary--" closes the multipart and its epilogue runs to
 * the next enclosing boundary. A multipart without parts (no boundary parameter, the
 * boundary never found, a limit reached) is described with one empty text/plain part.
 * Depth and part count are bounded; every byte is looked at a bounded number of times. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "mime_int.h"

typedef struct ms_ctx {
	const char *d;
	size_t len;
	size_t nparts;
	const char *bnd[MIME_DEPTH_MAX + 1];   /* enclosing multiparts' boundaries */
	size_t blen[MIME_DEPTH_MAX + 1];
	int nb;
} ms_ctx;

/* What an entity hands to its parent. */
typedef struct ms_out {
	tbuf bs, body, env;
	size_t stop;                           /* the boundary line that ended it, or len */
} ms_out;

static const struct {
	const char *name;
	enum mime_field field;
} ms_fields[] = {
	{ "content-type", MF_CONTENT_TYPE }, { "content-transfer-encoding", MF_CTE },
	{ "content-id", MF_CID }, { "content-description", MF_CDESC },
	{ "content-disposition", MF_CDISP }, { "content-language", MF_CLANG },
	{ "content-location", MF_CLOC }, { "content-md5", MF_CMD5 }, { "date", MF_DATE },
	{ "subject", MF_SUBJECT }, { "from", MF_FROM }, { "sender", MF_SENDER },
	{ "reply-to", MF_REPLY_TO }, { "to", MF_TO }, { "cc", MF_CC }, { "bcc", MF_BCC },
	{ "in-reply-to", MF_IN_REPLY_TO }, { "message-id", MF_MESSAGE_ID },
};

static const char ms_empty_bs[] = "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";
static const char ms_empty_body[] = "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";

void mime_fields_free(mime_fields *f)
{
	for (int i = 0; i < MF_COUNT; i++)
		tbuf_free(&f->v[i]);
}

/* Just after the line at pos (its LF), or len. */
static size_t ms_eol(const ms_ctx *c, size_t pos)
{
	const char *lf = memchr(c->d + pos, '\n', c->len - pos);

	return lf ? (size_t)(lf - c->d) + 1 : c->len;
}

/* Is the line at pos a boundary of the first nb enclosing multiparts (innermost first,
 * prefix match as Dovecot)? *idx_r is the stack index, *close_r set for "--b--". */
static int ms_is_boundary(const ms_ctx *c, size_t pos, int nb, int *idx_r, int *close_r)
{
	const char *p = c->d + pos;
	size_t room = c->len - pos;

	if (nb == 0 || room < 3 || p[0] != '-' || p[1] != '-')
		return 0;
	for (int i = nb - 1; i >= 0; i--) {
		size_t bl = c->blen[i];
		if (bl + 2 <= room && memcmp(p + 2, c->bnd[i], bl) == 0) {
			*idx_r = i;
			*close_r = bl + 4 <= room && p[bl + 2] == '-' && p[bl + 3] == '-';
			return 1;
		}
	}
	return 0;
}

/* The first boundary line at or after pos, or len. */
static size_t ms_find(const ms_ctx *c, size_t pos, int nb, int *idx_r, int *close_r)
{
	if (nb == 0)
		return c->len;
	while (pos < c->len) {
		if (ms_is_boundary(c, pos, nb, idx_r, close_r))
			return pos;
		pos = ms_eol(c, pos);
	}
	return c->len;
}

/* Read the header at pos into f; returns where the body starts. The header ends with an
 * empty line, at a boundary line (body then empty) or at the end of the data. */
static size_t ms_header(const ms_ctx *c, size_t pos, mime_fields *f)
{
	int cur = -1, idx, close;

	while (pos < c->len) {
		size_t e, n;
		const char *line = c->d + pos;

		if (ms_is_boundary(c, pos, c->nb, &idx, &close))
			return pos;
		e = ms_eol(c, pos);
		n = e - pos;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0 && (line[0] == '\n' || line[0] == '\r'))
			return e;
		if (line[0] == ' ' || line[0] == '\t') {
			if (cur >= 0)
				tbuf_append(&f->v[cur], line, n);
		} else {
			const char *colon = memchr(line, ':', n);
			size_t nl = colon ? (size_t)(colon - line) : 0;
			cur = -1;
			while (nl > 0 && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
				nl--;
			for (size_t i = 0; colon && i < sizeof(ms_fields) / sizeof(ms_fields[0]); i++) {
				if (strlen(ms_fields[i].name) == nl && strncasecmp(ms_fields[i].name, line, nl) == 0) {
					cur = (int)ms_fields[i].field;
					tbuf_reset(&f->v[cur]);
					tbuf_append(&f->v[cur], colon + 1, n - (size_t)(colon + 1 - line));
					f->present[cur] = 1;
					break;
				}
			}
		}
		pos = e;
	}
	return c->len;
}

/* The body ends before the line break that precedes its boundary line. */
static size_t ms_body_end(const ms_ctx *c, size_t body_off, size_t stop)
{
	if (stop >= c->len)
		return c->len;
	if (stop > body_off && c->d[stop - 1] == '\n')
		stop--;
	if (stop > body_off && c->d[stop - 1] == '\r')
		stop--;
	return stop;
}

static uint32_t ms_lines(const ms_ctx *c, size_t off, size_t len)
{
	const char *p = c->d + off, *end = p + len;
	uint32_t n = 0;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* malloc'ed lower-case copy. */
static char *ms_lower(const char *s, size_t n)
{
	char *r = malloc(n + 1);

	if (r == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		r[i] = (char)tolower((unsigned char)s[i]);
	r[n] = '\0';
	return r;
}

/* The first token of Content-Transfer-Encoding, lower case ("" when absent). */
static char *ms_encoding(const mime_fields *f)
{
	const tbuf *v = &f->v[MF_CTE];
	size_t a = 0, b;

	if (!f->present[MF_CTE])
		return ms_lower("", 0);
	while (a < v->len && (v->data[a] == ' ' || v->data[a] == '\t'))
		a++;
	for (b = a; b < v->len && !strchr(" \t;(", v->data[b]); b++)
		;
	return ms_lower(v->data + a, b - a);
}

/* Keep a subtree inside [.., end]: a part whose header was ended by a boundary line can
 * own the line break that its container's body leaves to that boundary. */
static void ms_clamp(const ms_ctx *c, Tern__MimePart *p, size_t end)
{
	if (p->header_off > end)
		p->header_off = end;
	if (p->header_off + p->header_len > end)
		p->header_len = end - p->header_off;
	p->body_off = p->header_off + p->header_len;
	if (p->body_off + p->body_len > end) {
		p->body_len = end - p->body_off;
		p->body_lines = ms_lines(c, p->body_off, p->body_len);
	}
	for (size_t i = 0; i < p->n_parts; i++)
		ms_clamp(c, p->parts[i], end);
	if (p->message)
		ms_clamp(c, p->message, end);
}

static Tern__MimePart *ms_part_new(void)
{
	Tern__MimePart *p = malloc(sizeof(*p));

	if (p == NULL)
		abort();
	tern__mime_part__init(p);
	return p;
}

static void ms_entity(ms_ctx *c, size_t pos, int depth, int digest_child, int want_env, Tern__MimePart *part,
		      ms_out *out);

/* The parts of a multipart with boundary b whose body starts at body_off. */
static size_t ms_multipart(ms_ctx *c, const tbuf *b, size_t body_off, int depth, int digest, Tern__MimePart *part,
			   tbuf *kid_bs, tbuf *kid_body)
{
	int idx, close, me = c->nb;
	size_t p = body_off, stop;

	c->bnd[me] = b->data;
	c->blen[me] = b->len;
	c->nb++;
	for (;;) {
		size_t s = ms_find(c, p, c->nb, &idx, &close);
		if (s >= c->len || idx != me) {
			stop = s;
			break;
		}
		if (close) {
			c->nb--;
			return ms_find(c, ms_eol(c, s), c->nb, &idx, &close);
		}
		if (c->nparts >= MIME_PARTS_MAX) {
			p = ms_eol(c, s);
			continue;
		}
		Tern__MimePart *kid = ms_part_new();
		ms_out ko = { TBUF_INIT, TBUF_INIT, TBUF_INIT, 0 };
		part->parts = realloc(part->parts, (part->n_parts + 1) * sizeof(*part->parts));
		if (part->parts == NULL)
			abort();
		part->parts[part->n_parts++] = kid;
		ms_entity(c, ms_eol(c, s), depth + 1, digest, 0, kid, &ko);
		tbuf_append(kid_bs, ko.bs.data, ko.bs.len);
		tbuf_append(kid_body, ko.body.data, ko.body.len);
		tbuf_free(&ko.bs);
		tbuf_free(&ko.body);
		p = ko.stop;
	}
	c->nb--;
	return stop;
}

/* One empty text/plain part for a multipart that has none (at the multipart's end). */
static void ms_empty_part(Tern__MimePart *part, tbuf *kid_bs, tbuf *kid_body)
{
	Tern__MimePart *kid = ms_part_new();

	kid->header_off = kid->body_off = part->body_off + part->body_len;
	kid->type = ms_lower("text", 4);
	kid->subtype = ms_lower("plain", 5);
	kid->encoding = ms_lower("", 0);
	if ((part->parts = malloc(sizeof(*part->parts))) == NULL)
		abort();
	part->parts[0] = kid;
	part->n_parts = 1;
	tbuf_append_str(kid_bs, ms_empty_bs);
	tbuf_append_str(kid_body, ms_empty_body);
}

/* Analyse the entity whose header starts at pos into part and out. */
static void ms_entity(ms_ctx *c, size_t pos, int depth, int digest_child, int want_env, Tern__MimePart *part,
		      ms_out *out)
{
	mime_fields *f = calloc(1, sizeof(*f));
	mime_ctype *ct = calloc(1, sizeof(*ct));
	tbuf kid_bs = TBUF_INIT, kid_body = TBUF_INIT, kid_env = TBUF_INIT;
	mime_entity e = { part, f, ct, 0, 0, 0, "text", "plain", &kid_bs, &kid_body, &kid_env };
	size_t body_off, stop;
	int idx, close, room;

	if (f == NULL || ct == NULL)
		abort();
	c->nparts++;
	/* children one level down, plus a possible empty part below them, stay in bounds */
	room = depth + 2 < MIME_DEPTH_MAX && c->nparts < MIME_PARTS_MAX;
	body_off = ms_header(c, pos, f);
	part->header_off = pos;
	part->header_len = body_off - pos;
	part->body_off = body_off;
	part->encoding = ms_encoding(f);
	if (f->present[MF_CONTENT_TYPE])
		mime_ctype_parse(f->v[MF_CONTENT_TYPE].data, f->v[MF_CONTENT_TYPE].len, 1, ct);
	else if (digest_child)
		e.dtype = "message", e.dsubtype = "rfc822";
	if (ct->valid) {
		part->type = ms_lower(ct->type.data, ct->type.len);
		part->subtype = ms_lower(ct->subtype.data, ct->subtype.len);
	} else {
		part->type = ms_lower(e.dtype, strlen(e.dtype));
		part->subtype = ms_lower(e.dsubtype, strlen(e.dsubtype));
	}
	e.multipart = strcmp(part->type, "multipart") == 0;
	e.message = strcmp(part->type, "message") == 0 &&
		    (strcmp(part->subtype, "rfc822") == 0 || strcmp(part->subtype, "global") == 0);
	e.text = strcmp(part->type, "text") == 0;
	if (e.message && !room) {
		/* too deep or too many parts: the enclosed message is opaque bytes */
		e.message = 0;
		mime_ctype_free(ct);
		free(part->type);
		free(part->subtype);
		e.dtype = "application", e.dsubtype = "octet-stream";
		part->type = ms_lower(e.dtype, strlen(e.dtype));
		part->subtype = ms_lower(e.dsubtype, strlen(e.dsubtype));
	}
	const tbuf *b = e.multipart ? mime_ctype_param(ct, "boundary") : NULL;
	if (b && b->len > 0 && room) {
		stop = ms_multipart(c, b, body_off, depth, strcmp(part->subtype, "digest") == 0, part, &kid_bs,
				    &kid_body);
	} else if (e.message) {
		Tern__MimePart *msg = ms_part_new();
		ms_out mo = { TBUF_INIT, TBUF_INIT, TBUF_INIT, 0 };
		part->message = msg;
		ms_entity(c, body_off, depth + 1, 0, 1, msg, &mo);
		kid_bs = mo.bs;
		kid_body = mo.body;
		kid_env = mo.env;
		if ((part->envelope.data = malloc(kid_env.len + 1)) == NULL)
			abort();
		memcpy(part->envelope.data, kid_env.data, kid_env.len);
		part->envelope.len = kid_env.len;
		stop = mo.stop;
	} else {
		stop = ms_find(c, body_off, c->nb, &idx, &close);
	}
	part->body_len = ms_body_end(c, body_off, stop) - body_off;
	part->body_lines = ms_lines(c, body_off, part->body_len);
	for (size_t i = 0; i < part->n_parts; i++)
		ms_clamp(c, part->parts[i], part->body_off + part->body_len);
	if (part->message)
		ms_clamp(c, part->message, part->body_off + part->body_len);
	if (e.multipart && part->n_parts == 0)
		ms_empty_part(part, &kid_bs, &kid_body);
	mime_render_part(&e, 1, &out->bs);
	mime_render_part(&e, 0, &out->body);
	if (want_env)
		mime_envelope_render(f, &out->env);
	out->stop = stop;
	tbuf_free(&kid_bs);
	tbuf_free(&kid_body);
	tbuf_free(&kid_env);
	mime_ctype_free(ct);
	mime_fields_free(f);
	free(ct);
	free(f);
}

/* Public entry: the whole message is one entity with an envelope. */
Tern__MimeInfo *mime_analyze(const void *data, size_t len)
{
	ms_ctx c;
	ms_out o = { TBUF_INIT, TBUF_INIT, TBUF_INIT, 0 };
	Tern__MimeInfo *info = malloc(sizeof(*info));

	if (info == NULL)
		return NULL;
	memset(&c, 0, sizeof(c));
	c.d = data ? data : "";
	c.len = data ? len : 0;
	tern__mime_info__init(info);
	info->version = MIME_ANALYSIS_VERSION;
	info->root = ms_part_new();
	ms_entity(&c, 0, 0, 0, 1, info->root, &o);
	info->envelope.len = o.env.len;
	info->envelope.data = (uint8_t *)tbuf_steal(&o.env);
	info->bodystructure.len = o.bs.len;
	info->bodystructure.data = (uint8_t *)tbuf_steal(&o.bs);
	info->body.len = o.body.len;
	info->body.data = (uint8_t *)tbuf_steal(&o.body);
	return info;
}
