/* fuzz_node_imapfetch.c - the FETCH attribute parser of node/imap and the header-section
 * walk behind HEADER.FIELDS. The input is split into IMAP arguments (atoms, quoted
 * strings, lists) as the command parser would hand them over; the first argument is the
 * attribute list, a second list the modifiers. The same bytes are then walked as a
 * header section. Checks: no crash or leak, and a parse error always has a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_imap_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pool p;
	imap_arg top[8];
	const char *s = (const char *)data, *end = s + size;
	imap_fetch *f = NULL;
	const char *err = NULL;

	p.n = p.tn = 0;
	size_t n = split(&p, &s, end, top, 8, 0);
	for (int uid = 0; uid < 2 && n > 0; uid++) {
		int rc = imap_fetch_parse(&top[0], n > 1 ? &top[1] : NULL, uid, &f, &err);
		if (rc == 0) {
			if (f == NULL || (imap_fetch_vanished(f) && !uid))
				abort();
			(void)imap_fetch_sets_seen(f);
			(void)imap_fetch_wants_modseq(f);
			imap_fetch_free(&f);
		} else if (rc != -1 || err == NULL || f != NULL) {
			abort();
		}
	}

	char *names[] = { (char *)"Subject", (char *)"from", (char *)"X" };
	tbuf out = TBUF_INIT;
	char charset[32];
	imap_hdr_filter((const char *)data, size, names, 3, (int)(size & 1), &out);
	if (out.len > size + 2 * size + 2)
		abort();
	imap_hdr_param((const char *)data, size, "Content-Type", "charset", charset, sizeof(charset));
	if (strlen(charset) >= sizeof(charset))
		abort();
	tbuf_free(&out);
	return 0;
}
