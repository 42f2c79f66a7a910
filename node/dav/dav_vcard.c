/* dav_vcard.c - vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) by hand: content lines, the check
 * of an address object resource (RFC 6352 §5.1) and the vCard of a GAL entry. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

static char *dav_strndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		abort();
	return d;
}

/* Parameters "a=b;c=\"d;e\";WORK" of one content line into pr. */
static void dav_vcard_params(const char *p, const char *e, dav_vprop *pr)
{
	while (p < e) {
		const char *q = p;
		int quoted = 0;
		while (q < e && (quoted || *q != ';')) {
			if (*q == '"')
				quoted = !quoted;
			q++;
		}
		const char *eq = memchr(p, '=', (size_t)(q - p));
		dav_vparam *a = realloc(pr->params, (pr->n_params + 1) * sizeof(*a));
		if (!a)
			abort();
		pr->params = a;
		a = &pr->params[pr->n_params++];
		if (eq) {
			a->name = dav_strndup(p, (size_t)(eq - p));
			const char *v = eq + 1, *ve = q;
			if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
				v++;
				ve--;
			}
			a->value = dav_strndup(v, (size_t)(ve - v));
		} else {
			a->name = dav_strndup("TYPE", 4);
			a->value = dav_strndup(p, (size_t)(q - p));
		}
		for (char *c = a->name; *c; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 32);
		p = q < e ? q + 1 : q;
	}
}

/* One unfolded content line "[group.]NAME[;params]:value" appended to vc. */
static int dav_vcard_line(const char *l, size_t n, dav_vcard *vc, tbuf *why)
{
	const char *e = l + n, *p = l;
	while (p < e && (*p == '-' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
			 (*p >= 'a' && *p <= 'z')))
		p++;
	const char *name = l, *dot;
	while ((dot = memchr(name, '.', (size_t)(p - name))) != NULL)   /* drop "item1." */
		name = dot + 1;
	if (p == name || p >= e || (*p != ':' && *p != ';')) {
		tbuf_appendf(why, "bad vCard content line: %.60s", l);
		return -1;
	}
	const char *colon = p;
	int quoted = 0;
	while (colon < e && (quoted || *colon != ':')) {
		if (*colon == '"')
			quoted = !quoted;
		colon++;
	}
	if (colon >= e) {
		tbuf_appendf(why, "vCard content line without a value: %.60s", l);
		return -1;
	}
	dav_vprop *a = realloc(vc->props, (vc->n + 1) * sizeof(*a));
	if (!a)
		abort();
	vc->props = a;
	dav_vprop *pr = &vc->props[vc->n++];
	memset(pr, 0, sizeof(*pr));
	pr->name = dav_strndup(name, (size_t)(p - name));
	for (char *c = pr->name; *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 32);
	if (*p == ';')
		dav_vcard_params(p + 1, colon, pr);
	pr->value = dav_strndup(colon + 1, (size_t)(e - colon - 1));
	return 0;
}

int dav_vcard_parse(const char *data, size_t len, dav_vcard *vc, tbuf *why)
{
	memset(vc, 0, sizeof(*vc));
	if (!data || memchr(data, '\0', len)) {
		tbuf_append_str(why, "NUL byte in vCard data");
		return -1;
	}
	tbuf line = TBUF_INIT;
	const char *p = data, *end = data + len;
	int rc = 0;
	while (p < end && rc == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n && (*p == ' ' || *p == '\t')) {
			tbuf_append(&line, p + 1, n - 1);     /* a folded continuation */
		} else {
			if (line.len)
				rc = dav_vcard_line(line.data, line.len, vc, why);
			tbuf_reset(&line);
			tbuf_append(&line, p, n);
		}
		p = nl ? nl + 1 : end;
	}
	if (rc == 0 && line.len)
		rc = dav_vcard_line(line.data, line.len, vc, why);
	tbuf_free(&line);
	if (rc < 0)
		dav_vcard_clear(vc);
	return rc;
}

void dav_vcard_clear(dav_vcard *vc)
{
	for (size_t i = 0; i < vc->n; i++) {
		for (size_t j = 0; j < vc->props[i].n_params; j++) {
			free(vc->props[i].params[j].name);
			free(vc->props[i].params[j].value);
		}
		free(vc->props[i].params);
		free(vc->props[i].name);
		free(vc->props[i].value);
	}
	free(vc->props);
	vc->props = NULL;
	vc->n = 0;
}

char *dav_vcard_unescape(const char *v)
{
	tbuf b = TBUF_INIT;
	for (const char *p = v; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			tbuf_append_char(&b, *p == 'n' || *p == 'N' ? '\n' : *p);
		} else {
			tbuf_append_char(&b, *p);
		}
	}
	return tbuf_steal(&b);
}

/* The first property named name, or NULL. */
static const dav_vprop *dav_vcard_get(const dav_vcard *vc, const char *name)
{
	for (size_t i = 0; i < vc->n; i++)
		if (strcmp(vc->props[i].name, name) == 0)
			return &vc->props[i];
	return NULL;
}

/* Exactly one BEGIN:VCARD ... END:VCARD with VERSION 3.0 or 4.0, FN and UID. */
static int dav_vcard_rules(const dav_vcard *vc, tbuf *why)
{
	if (vc->n < 2 || strcmp(vc->props[0].name, "BEGIN") != 0 || strcasecmp(vc->props[0].value, "VCARD") != 0 ||
	    strcmp(vc->props[vc->n - 1].name, "END") != 0 || strcasecmp(vc->props[vc->n - 1].value, "VCARD") != 0) {
		tbuf_append_str(why, "not one BEGIN:VCARD ... END:VCARD");
		return -1;
	}
	for (size_t i = 1; i + 1 < vc->n; i++)
		if (strcmp(vc->props[i].name, "BEGIN") == 0 || strcmp(vc->props[i].name, "END") == 0) {
			tbuf_append_str(why, "more than one vCard or a nested component");
			return -1;
		}
	const dav_vprop *v = dav_vcard_get(vc, "VERSION");
	if (!v || (strcmp(v->value, "3.0") != 0 && strcmp(v->value, "4.0") != 0)) {
		tbuf_append_str(why, "VERSION must be 3.0 or 4.0");
		return -1;
	}
	if (!dav_vcard_get(vc, "FN")) {
		tbuf_append_str(why, "FN is missing");
		return -1;
	}
	const dav_vprop *u = dav_vcard_get(vc, "UID");
	if (!u || !*u->value) {
		tbuf_append_str(why, "UID is missing (RFC 6352 §5.1 requires one)");
		return -1;
	}
	return 0;
}

int dav_vcard_check(const char *data, size_t len, Tern__DavObject *o, const char **precondition_r,
		    tbuf *why)
{
	*precondition_r = "valid-address-data";
	dav_vcard vc;
	if (dav_vcard_parse(data, len, &vc, why) < 0)
		return -1;
	if (dav_vcard_rules(&vc, why) < 0) {
		dav_vcard_clear(&vc);
		return -1;
	}
	char *uid = dav_vcard_unescape(dav_vcard_get(&vc, "UID")->value);
	char *comp = strdup("VCARD");
	if (!comp)
		abort();
	o->uid = uid;
	o->component = comp;
	dav_vcard_clear(&vc);
	return 0;
}

/* A text value with , ; \ and newlines escaped. */
static void dav_vcard_escape(tbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == ',' || *s == ';') {
			tbuf_append_char(b, '\\');
			tbuf_append_char(b, *s);
		} else if (*s == '\n') {
			tbuf_append_str(b, "\\n");
		} else if (*s != '\r') {
			tbuf_append_char(b, *s);
		}
	}
}

/* Append "NAME:" + value (escaped when esc) as one folded line. */
static void dav_vcard_put(tbuf *out, const char *name, const char *value, int esc)
{
	tbuf l = TBUF_INIT;
	tbuf_append_str(&l, name);
	tbuf_append_char(&l, ':');
	if (esc)
		dav_vcard_escape(&l, value);
	else
		tbuf_append_str(&l, value);
	dav_ical_line(out, tbuf_cstr(&l));
	tbuf_free(&l);
}

void dav_vcard_from_gal(const char *uid, const char *full_name, const char *address, int is_group,
			tbuf *out)
{
	const char *fn = full_name && *full_name ? full_name : address ? address : "";
	tbuf_append_str(out, "BEGIN:VCARD\r\nVERSION:3.0\r\n");
	dav_vcard_put(out, "UID", uid ? uid : "", 1);
	dav_vcard_put(out, "FN", fn, 1);
	/* N: family;given;;; - the last word of a person's name is taken as the family name */
	tbuf n = TBUF_INIT;
	const char *sp = is_group ? NULL : strrchr(fn, ' ');
	if (sp && sp[1]) {
		dav_vcard_escape(&n, sp + 1);
		tbuf_append_char(&n, ';');
		char *given = dav_strndup(fn, (size_t)(sp - fn));
		dav_vcard_escape(&n, given);
		free(given);
	} else {
		dav_vcard_escape(&n, fn);
		tbuf_append_char(&n, ';');
	}
	tbuf_append_str(&n, ";;;");
	dav_vcard_put(out, "N", tbuf_cstr(&n), 0);
	tbuf_free(&n);
	if (address && *address)
		dav_vcard_put(out, "EMAIL;TYPE=INTERNET", address, 1);
	if (is_group)
		tbuf_append_str(out, "X-ADDRESSBOOKSERVER-KIND:group\r\n");
	tbuf_append_str(out, "END:VCARD\r\n");
}
