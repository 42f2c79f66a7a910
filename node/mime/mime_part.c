/* mime_part.c - GMime start-up, the life of a MimeInfo built by mime_analyze() and the
 * lookup of IMAP section part numbers (RFC 3501 §6.4.5). */
#include <gmime/gmime.h>
#include <stdlib.h>
#include "mime_int.h"

/* GMime keeps global tables (charsets, iconv cache): set up once, before threads. */
void mime_init(void)
{
	g_mime_init();
}

void mime_shutdown(void)
{
	g_mime_shutdown();
}

/* Parts are built by mime_scan.c with malloc'ed strings and arrays, never by
 * protobuf-c's unpacker, so they are freed here field by field. */
static void mime_part_free(Tern__MimePart *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_parts; i++)
		mime_part_free(p->parts[i]);
	free(p->parts);
	mime_part_free(p->message);
	free(p->type);
	free(p->subtype);
	free(p->encoding);
	free(p->envelope.data);
	free(p);
}

void mime_info_free(Tern__MimeInfo **info)
{
	Tern__MimeInfo *m = *info;

	if (m == NULL)
		return;
	*info = NULL;
	mime_part_free(m->root);
	free(m->envelope.data);
	free(m->bodystructure.data);
	free(m->body.data);
	free(m);
}

/* Walk "1.2.3": a number selects a child of a multipart, and "1" of a single part is
 * the part itself; a number after a message/rfc822 part applies to its enclosed
 * message. Anything that is not digits and dots, 0 or a missing part gives NULL. */
const Tern__MimePart *mime_find_part(const Tern__MimePart *root, const char *section)
{
	const Tern__MimePart *cur = root;
	const char *p = section;
	int first = 1;

	if (root == NULL || section == NULL)
		return NULL;
	while (*p) {
		unsigned long n = 0;
		if (*p < '0' || *p > '9')
			return NULL;
		for (; *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (unsigned long)(*p - '0');
			if (n > MIME_PARTS_MAX)
				return NULL;
		}
		if (*p == '.' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return NULL;
		if (n == 0)
			return NULL;
		if (!first && cur->message)
			cur = cur->message;
		first = 0;
		if (cur->n_parts > 0) {
			if (n > cur->n_parts)
				return NULL;
			cur = cur->parts[n - 1];
		} else if (n != 1) {
			return NULL;
		}
	}
	return cur;
}
