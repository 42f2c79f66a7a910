/* fuzz_lib_util.c - the name, address, glob and IP-item parsers of lib/util.c.
 * The input is split at the first NUL or newline into a pattern and a text. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *a = malloc(size + 1);
	if (a == NULL)
		return 0;
	memcpy(a, data, size);
	a[size] = '\0';
	char *b = strchr(a, '\n');
	if (b != NULL)
		*b++ = '\0';
	else
		b = a + strlen(a);
	(void)tern_valid_domain(a);
	(void)tern_valid_localpart(a);
	(void)tern_valid_alias_pattern(a);
	(void)tern_valid_address(a);
	char local[128], domain[300];
	(void)tern_split_address(a, local, sizeof(local), domain, sizeof(domain));
	(void)tern_glob_match(a, b);
	tern_ipitem item;
	if (tern_ipitem_parse(a, &item) == 0) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
		sin6.sin6_addr.s6_addr[15] = 1;
		(void)tern_ipitem_match(&item, (struct sockaddr *)&sin);
		(void)tern_ipitem_match(&item, (struct sockaddr *)&sin6);
	}
	uint8_t id[16];
	(void)tern_uuid_parse(a, id);
	free(a);
	return 0;
}
