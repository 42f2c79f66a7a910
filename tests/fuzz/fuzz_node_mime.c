/* fuzz_node_mime.c - the MIME analysis of node/mime on arbitrary bytes, as a message
 * delivered or appended. Checks its promises: a result for every input, every part's
 * offsets inside the message and inside its container, body lines matching the slice,
 * bounded depth and part count, output that is deterministic; then part lookup and
 * decoding of every leaf with a small output bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mime.h"

#define FUZZ_DEPTH_MAX 32
#define FUZZ_PARTS_MAX 2000
#define FUZZ_TEXT_MAX 256

static size_t nparts;

/* Offsets, lines and depth of one part and its subtree; leaves are decoded. */
static void check_part(const Tern__MimePart *p, const uint8_t *d, size_t len, size_t lo, size_t hi, int depth)
{
	size_t lines = 0;
	tbuf out = TBUF_INIT;

	if (++nparts > FUZZ_PARTS_MAX + 64 || depth > FUZZ_DEPTH_MAX)
		abort();
	if (hi > len || p->header_off < lo || p->header_off + p->header_len != p->body_off ||
	    p->body_off + p->body_len > hi || p->type == NULL || p->subtype == NULL || p->encoding == NULL)
		abort();
	for (size_t i = 0; i < p->body_len; i++)
		lines += d[p->body_off + i] == '\n';
	if (lines != p->body_lines)
		abort();
	if (p->n_parts == 0 && p->message == NULL) {
		if (mime_decode_text(p, d + p->body_off, p->body_len, "iso-8859-1", FUZZ_TEXT_MAX, &out) != 0 ||
		    out.len > FUZZ_TEXT_MAX)
			abort();
		tbuf_reset(&out);
		(void)mime_decode_transfer(p->encoding, d + p->body_off, p->body_len, &out);
	}
	tbuf_free(&out);
	for (size_t i = 0; i < p->n_parts; i++)
		check_part(p->parts[i], d, len, p->body_off, p->body_off + p->body_len, depth + 1);
	if (p->message)
		check_part(p->message, d, len, p->body_off, p->body_off + p->body_len, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	Tern__MimeInfo *m, *again;
	tbuf hdr = TBUF_INIT;
	static const char *sections[] = { "", "1", "2", "1.1", "1.2.1", "2.1", "3.1.2", "1.1.1.1.1" };

	if (!inited) {
		mime_init();
		inited = 1;
	}
	if ((m = mime_analyze(data, size)) == NULL)
		abort();
	if (m->root == NULL || m->envelope.len == 0 || m->bodystructure.len == 0 || m->body.len == 0 ||
	    m->root->header_off != 0)
		abort();
	nparts = 0;
	check_part(m->root, data, size, 0, size, 1);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const Tern__MimePart *p = mime_find_part(m->root, sections[i]);
		if (p && p->body_off + p->body_len > size)
			abort();
	}
	again = mime_analyze(data, size);
	if (again->bodystructure.len != m->bodystructure.len ||
	    memcmp(again->bodystructure.data, m->bodystructure.data, m->bodystructure.len) != 0 ||
	    again->envelope.len != m->envelope.len ||
	    memcmp(again->envelope.data, m->envelope.data, m->envelope.len) != 0)
		abort();
	mime_decode_header((const char *)data, size > 4096 ? 4096 : size, &hdr);
	tbuf_free(&hdr);
	mime_info_free(&again);
	mime_info_free(&m);
	return 0;
}
