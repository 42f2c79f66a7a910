/* ternd.c - the Tern daemon: parse the command line and run (node/ternd_run.c). */
#include <stdlib.h>
#include "mime.h"
#include "ternd_private.h"

int main(int argc, char **argv)
{
	ternd_opts o;
	mime_init();          /* GMime's global state, before any thread starts */
	int rc = ternd_parse_args(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 1;
	return ternd_run(&o);
}
