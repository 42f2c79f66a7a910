/* fuzz_node_imapparse.c - the IMAP command parser of node/imap, fed in pieces of random
 * size as a socket would deliver them. The first input byte seeds the piece sizes; the
 * rest is the client's byte stream. Checks the parser's promises: every call makes
 * progress, results are well-formed trees within the limits, and an error carries a
 * message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap_int.h"

static const imap_limits LIM = { 1024, 4096, 8192, 8, 200 };

/* Walk the tree: depth, counts and NUL termination as promised. */
static size_t check_arg(const imap_arg *a, unsigned depth)
{
	size_t n = 1;
	if (depth > LIM.depth_max)
		abort();
	switch (a->type) {
	case IMAP_ARG_ATOM:
		if (a->str == NULL || a->len == 0 || a->str[a->len] != '\0' || strlen(a->str) != a->len)
			abort();
		break;
	case IMAP_ARG_STRING:
		if (a->str == NULL || a->str[a->len] != '\0' || a->len > LIM.append_max)
			abort();
		break;
	case IMAP_ARG_LIST:
		for (size_t i = 0; i < a->nlist; i++)
			n += check_arg(&a->list[i], depth + 1);
		break;
	case IMAP_ARG_NIL:
		break;
	default:
		abort();
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	const char *in = (const char *)data + 1;
	size_t off = 0;
	imap_parser p;

	size--;
	imap_parser_init(&p, &LIM);
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 97, used = 0;
		if (piece > size - off)
			piece = size - off;
		int rc = imap_parser_feed(&p, in + off, piece, &used);
		if (used > piece || (used == 0 && rc == IMAP_PARSE_MORE))
			abort();
		off += used;
		if (rc == IMAP_PARSE_DONE) {
			size_t n = 0;
			if (p.cmd.tag == NULL || p.cmd.tag[0] == '\0' || p.cmd.name == NULL || p.cmd.name[0] == '\0')
				abort();
			for (size_t i = 0; i < p.cmd.nargs; i++)
				n += check_arg(&p.cmd.args[i], 0);
			if (n > LIM.args_max)
				abort();
			imap_parser_reset(&p);
		} else if (rc == IMAP_PARSE_BAD || rc == IMAP_PARSE_FATAL) {
			if (p.error == NULL)
				abort();
			imap_parser_reset(&p);
			if (rc == IMAP_PARSE_FATAL)
				break;
		}
		if (p.tok.len > LIM.line_max + 32)
			abort();
	}
	imap_parser_free(&p);
	return 0;
}
