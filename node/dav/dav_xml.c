/* dav_xml.c - the XML of DAV: a safe reader (libxml2 without entities, DTDs or the
 * network; any DOCTYPE refused) and a small escaping writer for 207 bodies. */
#include <libxml/parser.h>
#include <libxml/xmlsave.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dav_private.h"

static const struct {
	const char *ns, *prefix;
} dav_prefixes[] = {
	{ DAV_NS, "d" }, { DAV_NS_CAL, "c" }, { DAV_NS_CARD, "cr" }, { DAV_NS_CS, "cs" }, { DAV_NS_APPLE, "ical" },
	{ DAV_NS_TERN, "t" },
};

const char *dav_ns_prefix(const char *ns)
{
	for (size_t i = 0; i < sizeof(dav_prefixes) / sizeof(dav_prefixes[0]); i++)
		if (strcmp(ns, dav_prefixes[i].ns) == 0)
			return dav_prefixes[i].prefix;
	return NULL;
}

/* 1 when the prolog (before the root element) holds a DOCTYPE or any other "<!"
 * declaration. The parser never expands entities (no XML_PARSE_NOENT) nor loads DTDs,
 * and such documents are refused before parsing, so neither entity expansion (billion
 * laughs) nor external entities can happen. */
static int has_doctype(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n' || (unsigned char)p[i] >= 0x80) {
			i++;   /* white space and a UTF-8 byte order mark */
			continue;
		}
		if (n - i >= 2 && memcmp(p + i, "<?", 2) == 0) {
			const char *e = memmem(p + i, n - i, "?>", 2);
			if (e == NULL)
				return 0;
			i = (size_t)(e - p) + 2;
			continue;
		}
		if (n - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
			const char *e = memmem(p + i + 4, n - i - 4, "-->", 3);
			if (e == NULL)
				return 0;
			i = (size_t)(e - p) + 3;
			continue;
		}
		return n - i >= 2 && memcmp(p + i, "<!", 2) == 0;
	}
	return 0;
}

xmlDoc *dav_xml_parse(dav_req *r)
{
	const tbuf *b = &r->req->body;
	if (b->len == 0) {
		dav_error(r, 400, "an XML request body is required");
		return NULL;
	}
	if (b->len > INT32_MAX) {
		dav_error(r, 413, "request body too large");
		return NULL;
	}
	if (has_doctype(b->data, b->len)) {
		dav_error(r, 400, "XML with a DOCTYPE (DTD, entities) is refused");
		return NULL;
	}
	xmlDoc *doc = xmlReadMemory(b->data, (int)b->len, "request.xml", NULL,
				    XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
		xmlFreeDoc(doc);
		dav_error(r, 400, "malformed XML request body");
		return NULL;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		xmlFreeDoc(doc);
		dav_error(r, 400, "XML with a DOCTYPE (DTD, entities) is refused");
		return NULL;
	}
	return doc;
}

int dav_el_is(const xmlNode *node, const char *ns, const char *name)
{
	return node != NULL && node->type == XML_ELEMENT_NODE && node->ns != NULL && node->ns->href != NULL &&
	       strcmp((const char *)node->ns->href, ns) == 0 && strcmp((const char *)node->name, name) == 0;
}

xmlNode *dav_xml_child(const xmlNode *node, const char *ns, const char *name)
{
	for (xmlNode *c = node ? node->children : NULL; c != NULL; c = c->next)
		if (dav_el_is(c, ns, name))
			return c;
	return NULL;
}

char *dav_xml_text(const xmlNode *node)
{
	xmlChar *t = xmlNodeGetContent(node);
	char *s = strdup(t ? (const char *)t : "");
	xmlFree(t);
	if (s == NULL)
		abort();
	return s;
}

void dav_xml_esc(tbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '<': tbuf_append_str(b, "&lt;"); break;
		case '>': tbuf_append_str(b, "&gt;"); break;
		case '&': tbuf_append_str(b, "&amp;"); break;
		case '"': tbuf_append_str(b, "&quot;"); break;
		case '\'': tbuf_append_str(b, "&apos;"); break;
		case '\r': tbuf_append_str(b, "&#13;"); break;
		default:
			/* XML 1.0 has no place for other control characters */
			if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
				break;
			tbuf_append_char(b, s[i]);
		}
	}
}

void dav_href_seg(tbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~@:+,;=!$'()*", *p) != NULL) {
			tbuf_append_char(b, (char)*p);
		} else {
			tbuf_append_char(b, '%');
			tbuf_append_char(b, hex[*p >> 4]);
			tbuf_append_char(b, hex[*p & 15]);
		}
	}
}

void dav_ms_begin(tbuf *b)
{
	tbuf_append_str(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus");
	for (size_t i = 0; i < sizeof(dav_prefixes) / sizeof(dav_prefixes[0]); i++)
		tbuf_appendf(b, " xmlns:%s=\"%s\"", dav_prefixes[i].prefix, dav_prefixes[i].ns);
	tbuf_append_str(b, ">\n");
}

void dav_ms_end(tbuf *b)
{
	tbuf_append_str(b, "</d:multistatus>\n");
}

static void xml_tag(tbuf *b, const char *ns, const char *name, const char *pre, const char *post)
{
	const char *p = dav_ns_prefix(ns);
	tbuf_append_str(b, pre);
	if (p != NULL) {
		tbuf_appendf(b, "%s:", p);
		dav_xml_esc(b, name, strlen(name));
	} else if (*pre == '<' && pre[1] != '/') {
		tbuf_append_str(b, "x:");
		dav_xml_esc(b, name, strlen(name));
		tbuf_append_str(b, " xmlns:x=\"");
		dav_xml_esc(b, ns, strlen(ns));
		tbuf_append_char(b, '"');
	} else {
		tbuf_append_str(b, "x:");
		dav_xml_esc(b, name, strlen(name));
	}
	tbuf_append_str(b, post);
}

void dav_xml_open(tbuf *b, const char *ns, const char *name)
{
	xml_tag(b, ns, name, "<", ">");
}

void dav_xml_close(tbuf *b, const char *ns, const char *name)
{
	xml_tag(b, ns, name, "</", ">");
}

void dav_xml_empty(tbuf *b, const char *ns, const char *name)
{
	xml_tag(b, ns, name, "<", "/>");
}

int dav_xml_dump(const xmlNode *node, tbuf *out)
{
	xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
	if (doc == NULL)
		return -1;
	/* the copy declares on itself every namespace it uses from its old ancestors */
	xmlNode *copy = xmlDocCopyNode((xmlNode *)node, doc, 1);
	if (copy == NULL) {
		xmlFreeDoc(doc);
		return -1;
	}
	xmlDocSetRootElement(doc, copy);
	xmlBuffer *buf = xmlBufferCreate();
	int rc = -1;
	if (buf != NULL && xmlNodeDump(buf, doc, copy, 0, 0) >= 0) {
		tbuf_append(out, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
		rc = 0;
	}
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return rc;
}

void dav_status_line(tbuf *b, int status)
{
	const char *t = status == 424 ? "Failed Dependency" : status == 507 ? "Insufficient Storage"
										 : http_status_text(status);
	tbuf_appendf(b, "HTTP/1.1 %d %s", status, t);
}

void dav_reply_xml(dav_req *r, int status, tbuf *xml)
{
	tbuf_free(&r->body);
	r->body = *xml;
	tbuf_init(xml);
	r->status = status;
	r->ctype = "application/xml; charset=utf-8";
}
