/* fuzz_lib_conf.c - tern.conf parsing (inih + Tern's setting and listen rules). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	tern_conf conf;
	char *error = NULL;
	if (tern_conf_load_string(&conf, text, 10000, &error) == 0)
		tern_conf_free(&conf);
	free(error);
	free(text);
	return 0;
}
