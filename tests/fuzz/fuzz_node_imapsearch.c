/* fuzz_node_imapsearch.c - the SEARCH program parser of node/imap. The input is split
 * into IMAP arguments (atoms, quoted strings, lists) as the command parser would hand
 * them over, 8-bit bytes and all. Checks: no crash, leak or unbounded recursion, and a
 * parse error always has a message. Matching needs a store and is covered by
 * test_node_imap_search. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_imap_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pool p;
	imap_arg top[POOL];
	const char *s = (const char *)data, *end = s + size;
	imap_search *srch = NULL;
	const char *err = NULL;

	p.n = p.tn = 0;
	size_t n = split(&p, &s, end, top, POOL, 0);
	int rc = imap_search_parse(top, n, &srch, &err);
	if (rc == 0) {
		if (srch == NULL)
			abort();
		(void)imap_search_uses_modseq(srch);
		imap_search_free(&srch);
	} else if (rc != -1 || err == NULL || srch != NULL) {
		abort();
	}
	return 0;
}
