/* fuzz_node_vcard.c - the vCard side of node/dav/ on arbitrary bytes, as a PUT body of an
 * address book: dav_vcard_check, then on what passes what an addressbook-query does with
 * the stored object (dav_card_filter_match against a few fixed filters: text-match of
 * every match type and collation, param-filter, is-not-defined, anyof/allof). Checks the
 * promises of dav_cal.h: "valid-address-data" and a reason on refusal, a uid and
 * component "VCARD" on success, the same verdict twice, a match result of 0 or 1. */
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dav_cal.h"

#define CR_OPEN "<CR:filter xmlns:CR=\"urn:ietf:params:xml:ns:carddav\""
static const char *const fuzz_filters_xml[] = {
	(CR_OPEN "><CR:prop-filter name=\"FN\"><CR:text-match>ann</CR:text-match></CR:prop-filter></CR:filter>"),
	(CR_OPEN " test=\"allof\"><CR:prop-filter name=\"EMAIL\"><CR:text-match match-type=\"ends-with\" "
	"collation=\"i;unicode-casemap\">EXAMPLE.ORG</CR:text-match><CR:param-filter name=\"TYPE\">"
	"<CR:text-match match-type=\"equals\">work</CR:text-match></CR:param-filter></CR:prop-filter>"
	"<CR:prop-filter name=\"TEL\"><CR:is-not-defined/></CR:prop-filter></CR:filter>"),
	(CR_OPEN " test=\"anyof\"><CR:prop-filter name=\"N\" test=\"allof\"><CR:text-match "
	"collation=\"i;octet\" match-type=\"starts-with\">M\xc3\xbcller</CR:text-match>"
	"<CR:text-match negate-condition=\"yes\">x</CR:text-match></CR:prop-filter>"
	"<CR:prop-filter name=\"UID\"><CR:text-match match-type=\"equals\">c3</CR:text-match></CR:prop-filter>"
	"</CR:filter>"),
	(CR_OPEN "><CR:prop-filter name=\"NOTE\"><CR:text-match>two; three</CR:text-match></CR:prop-filter>"
	"<CR:prop-filter name=\"X-UNKNOWN\"><CR:param-filter name=\"PREF\"><CR:is-not-defined/>"
	"</CR:param-filter></CR:prop-filter></CR:filter>"),
	(CR_OPEN "/>"),
};
#define FUZZ_NFILTERS (sizeof(fuzz_filters_xml) / sizeof(fuzz_filters_xml[0]))

static dav_card_filter *filters[FUZZ_NFILTERS];

/* Compile the fixed filters once; a filter that does not compile is a broken harness. */
static void fuzz_init(void)
{
	for (size_t i = 0; i < FUZZ_NFILTERS; i++) {
		const char *x = fuzz_filters_xml[i];
		xmlDoc *doc = xmlReadMemory(x, (int)strlen(x), "f.xml", NULL, XML_PARSE_NONET);
		tbuf err = TBUF_INIT;
		if (doc == NULL || dav_card_filter_parse(xmlDocGetRootElement(doc), &filters[i], &err) < 0)
			abort();
		tbuf_free(&err);
		xmlFreeDoc(doc);
	}
}

/* Check once; the result's invariants. */
static int fuzz_check(const char *d, size_t len, Tern__DavObject *o)
{
	const char *prec = NULL;
	tbuf why = TBUF_INIT;
	tern__dav_object__init(o);
	o->uid = NULL;        /* malloc'ed by a success only */
	o->component = NULL;
	int rc = dav_vcard_check(d, len, o, &prec, &why);
	if (rc == 0) {
		if (o->uid == NULL || o->component == NULL || strcmp(o->component, "VCARD") != 0)
			abort();
	} else if (rc != -1 || why.len == 0 || prec == NULL || strcmp(prec, "valid-address-data") != 0) {
		abort();
	}
	tbuf_free(&why);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	Tern__DavObject o, again;

	if (!inited) {
		fuzz_init();
		inited = 1;
	}
	/* as a PUT body: exactly size bytes, no terminator promised by the caller */
	char *d = malloc(size ? size : 1);
	if (d == NULL)
		abort();
	memcpy(d, data, size);
	int rc = fuzz_check(d, size, &o);
	if (fuzz_check(d, size, &again) != rc || (rc == 0 && strcmp(o.uid, again.uid) != 0))
		abort();
	if (rc == 0) {
		/* stored: protobuf-c's bytes, exactly size long */
		Tern__DavObject *s = malloc(sizeof(*s));
		if (s == NULL)
			abort();
		tern__dav_object__init(s);
		s->data.data = (uint8_t *)d;
		s->data.len = size;
		s->uid = o.uid;
		s->component = o.component;
		o.uid = o.component = NULL;
		d = NULL;
		for (size_t i = 0; i < FUZZ_NFILTERS; i++) {
			int m = dav_card_filter_match(filters[i], s);
			if ((m != 0 && m != 1) || dav_card_filter_match(filters[i], s) != m)
				abort();
		}
		/* an empty filter (no prop-filter) matches every valid card */
		if (dav_card_filter_match(filters[FUZZ_NFILTERS - 1], s) != 1)
			abort();
		tern__dav_object__free_unpacked(s, NULL);
	}
	free(o.uid);
	free(o.component);
	free(again.uid);
	free(again.component);
	free(d);
	return 0;
}
