/* fuzz_node_pop3.c - the POP3 line framer, command parser and dot-stuffer of node/pop3,
 * fed in pieces of random size as a socket would deliver them. The first input byte
 * seeds the piece sizes; the rest is both the client's byte stream (framed and parsed)
 * and a stored message (stuffed for RETR and TOP). Checks the layers' promises:
 * bounded lines, well-formed parse results, and a stuffed message that unstuffs to the
 * original and never ends early. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pop3_int.h"

#define FUZZ_LINE_MAX 512

/* What a handler may rely on, checked on one parsed command. */
static void check_cmd(const pop3_cmd *c, size_t len)
{
	if ((unsigned)c->verb >= POP3_VERB_COUNT || c->verb == POP3_VERB_UNKNOWN || c->text == NULL)
		abort();
	if (c->verb != POP3_VERB_AUTH && len > POP3_CMD_LINE_MAX)
		abort();
	switch (c->verb) {
	case POP3_VERB_LIST: case POP3_VERB_UIDL:
		if (c->nargs > 1 || (c->nargs == 1 && c->num[0] == 0))
			abort();
		break;
	case POP3_VERB_RETR: case POP3_VERB_DELE:
		if (c->nargs != 1 || c->num[0] == 0)
			abort();
		break;
	case POP3_VERB_TOP:
		if (c->nargs != 2 || c->num[0] == 0)
			abort();
		break;
	case POP3_VERB_USER: case POP3_VERB_PASS:
		if (c->text[0] == '\0')
			abort();
		break;
	default:
		break;
	}
}

/* Stuff data in pieces, then check the wire form against the original. */
static void check_stuff(const char *data, size_t size, uint32_t seed, int top, uint64_t lines)
{
	pop3_stuffer f;
	tbuf out = TBUF_INIT, back = TBUF_INIT;
	size_t off = 0;

	pop3_stuff_init(&f, top, lines);
	while (off < size && !f.done) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 4099;
		if (piece > size - off)
			piece = size - off;
		size_t used = pop3_stuff(&f, data + off, piece, &out);
		if (used > piece || (used < piece && !f.done))
			abort();
		off += used;
	}
	pop3_stuff_end(&f, &out);
	if (out.len < 3 || memcmp(out.data + out.len - 3, ".\r\n", 3) != 0)
		abort();
	/* every line of the body that starts with '.' was stuffed: ".." */
	size_t body = out.len - 3;
	int bol = 1;
	for (size_t i = 0; i < body; i++) {
		if (bol && out.data[i] == '.') {
			if (i + 1 >= body || out.data[i + 1] != '.')
				abort();
			i++;
			tbuf_append_char(&back, '.');
			bol = 0;
			continue;
		}
		tbuf_append_char(&back, out.data[i]);
		bol = out.data[i] == '\n';
	}
	if (body > 0 && out.data[body - 1] != '\n')
		abort();
	/* the whole message comes back (plus a closing CRLF); TOP gives a prefix of it */
	if (!top) {
		int added = size > 0 && data[size - 1] != '\n';
		if (back.len != size + (added ? 2 : 0) || (size > 0 && memcmp(back.data, data, size) != 0))
			abort();
	} else if (back.len > size + 2) {
		abort();
	} else if (back.len > 0 && memcmp(back.data, data, back.len < size ? back.len : size) != 0) {
		abort();
	}
	tbuf_free(&out);
	tbuf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	const char *in = (const char *)data + 1;
	size--;
	tern_line_reader lr;
	size_t off = 0;

	tern_line_init(&lr, FUZZ_LINE_MAX);
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 97;
		if (piece > size - off)
			piece = size - off;
		size_t used = 0;
		int rc = tern_line_feed(&lr, in + off, piece, &used);
		if (used == 0 || used > piece || lr.line.len > FUZZ_LINE_MAX + 1)
			abort();
		if (rc == TERN_LINE_OK) {
			pop3_cmd cmd;
			const char *reply = NULL;
			if (lr.line.len > FUZZ_LINE_MAX)
				abort();
			if (pop3_parse_command(lr.line.data, lr.line.len, &cmd, &reply) == 0)
				check_cmd(&cmd, lr.line.len);
			else if (reply == NULL || strncmp(reply, "-ERR ", 5) != 0)
				abort();
			tbuf_reset(&lr.line);
		}
		off += used;
	}
	tern_line_clear(&lr);
	check_stuff(in, size, seed, 0, 0);
	check_stuff(in, size, seed ^ 0x5bd1e995u, 1, data[0] % 5);
	return 0;
}
