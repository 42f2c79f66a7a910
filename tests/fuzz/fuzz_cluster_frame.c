/* fuzz_cluster_frame.c - control-plane frames (cluster/cluster_wire.c): every input is
 * either refused with a reason or decoded into an envelope that passes validation; a
 * decoded envelope packs again, and when the packed form decodes (protobuf-c keeps odd
 * unknown fields, e.g. field number 0, that it then refuses) it is the same message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cluster_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Tern__Cluster__Envelope *e = NULL;
	char why[160];

	if (cluster_frame_decode(data, size, 65536, &e, why, sizeof(why)) == 0) {
		tbuf out = TBUF_INIT;

		cluster_frame_encode(e, &out);
		Tern__Cluster__Envelope *again = NULL;
		if (cluster_frame_decode(out.data, out.len, 1 << 20, &again, why, sizeof(why)) == 0 &&
		    (again->body_case != e->body_case || again->id != e->id))
			abort();
		cluster_frame_free(&again);
		tbuf_free(&out);
		cluster_frame_free(&e);
	} else if (e != NULL || why[0] == '\0') {
		abort();
	}
	return 0;
}
