/* fuzz_node_smtp.c - the SMTP command framer and parser and the DATA reader of node/smtp,
 * fed in pieces of random size as a socket would deliver them. The first input byte
 * seeds the piece sizes; the rest is the client's byte stream. After a line "DATA" the
 * stream goes to the DATA reader until its end, as in a session. Checks the layers'
 * promises: bounded lines and messages, well-formed parse results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_int.h"

#define FUZZ_LINE_MAX 512
#define FUZZ_DATA_LINE_MAX 1000
#define FUZZ_SIZE_MAX 4096

/* What a handler may rely on, checked on one parsed command. */
static void check_cmd(const smtp_cmd *c)
{
	if ((unsigned)c->verb >= SMTP_VERB_COUNT || c->verb == SMTP_VERB_UNKNOWN || c->arg == NULL)
		abort();
	if (c->verb != SMTP_VERB_MAIL && c->verb != SMTP_VERB_RCPT)
		return;
	const smtp_path *p = &c->path;
	if (strlen(p->addr) > SMTP_ADDR_MAX || strlen(p->local) > SMTP_LOCAL_MAX ||
	    strlen(p->domain) > SMTP_DOMAIN_MAX)
		abort();
	if (p->null && (c->verb == SMTP_VERB_RCPT || p->addr[0] != '\0'))
		abort();
	if (!p->null && !p->postmaster && (p->local[0] == '\0' || p->domain[0] == '\0'))
		abort();
	if (!p->relay_form && strpbrk(p->local, "%!@") != NULL)
		abort();
	if (c->params.envid[0] && !smtp_xtext_valid(c->params.envid, SMTP_XTEXT_MAX))
		abort();
	if ((c->params.notify & DELIVER_NOTIFY_NEVER) && c->params.notify != DELIVER_NOTIFY_NEVER)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	const char *in = (const char *)data + 1;
	size--;
	tern_line_reader lr;
	smtp_data_reader dr;
	int in_data = 0;
	size_t off = 0;

	tern_line_init(&lr, FUZZ_LINE_MAX);
	smtp_data_init(&dr, 0, 0, 0);
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 97;
		if (piece > size - off)
			piece = size - off;
		size_t used = 0;
		if (in_data) {
			int rc = smtp_data_feed(&dr, in + off, piece, &used);
			if (used == 0 || used > piece)
				abort();
			if (dr.msg.len > FUZZ_SIZE_MAX + 2)
				abort();
			if (rc == SMTP_DATA_DONE) {
				const char *v = smtp_data_verdict(&dr);
				if (v == NULL && (dr.has_nul || dr.bare_cr || dr.too_big || dr.too_long))
					abort();
				in_data = 0;
			}
		} else {
			int rc = tern_line_feed(&lr, in + off, piece, &used);
			if (used == 0 || used > piece || lr.line.len > FUZZ_LINE_MAX + 1)
				abort();
			if (rc == TERN_LINE_OK) {
				smtp_cmd cmd;
				const char *reply = NULL;
				if (lr.line.len > FUZZ_LINE_MAX)
					abort();
				if (smtp_parse_command(lr.line.data, lr.line.len, &cmd, &reply) == 0) {
					check_cmd(&cmd);
					if (cmd.verb == SMTP_VERB_DATA) {
						smtp_data_clear(&dr);
						smtp_data_init(&dr, FUZZ_DATA_LINE_MAX, FUZZ_SIZE_MAX, 3);
						in_data = 1;
					}
				} else if (reply == NULL || strlen(reply) < 4 || (reply[0] != '5')) {
					abort();
				}
				tbuf_reset(&lr.line);
			}
		}
		off += used;
	}
	tern_line_clear(&lr);
	smtp_data_clear(&dr);
	return 0;
}
