/* cluster_wire.h - the control-plane frames (proto/cluster.proto): decoding with full
 * validation, and encoding. Internal to cluster/ (and its tests and fuzz target). */
#ifndef TERN_CLUSTER_WIRE_H
#define TERN_CLUSTER_WIRE_H
#include <stddef.h>
#include <stdint.h>
#include "cluster.pb-c.h"
#include "tern.h"

#define CLUSTER_PROTO_VERSION 1
#define CLUSTER_NAME_MAX 63           /* node names: 1..63 chars */
#define CLUSTER_KEY_MAX 4096          /* a replicated config key */
#define CLUSTER_TEXT_MAX 1024         /* Error.message, addresses */
#define CLUSTER_LIST_MAX 100000       /* records/ops/nodes in one frame */

/* 1 when s is a usable node name: 1..63 chars of [A-Za-z0-9._-], no leading, trailing
 * or double dot (the local-part rule). */
int cluster_valid_node_name(const char *s);

/* Decode one frame and check everything the handlers rely on: size <= max_frame, a known
 * body, required fields present, enum values in range, lengths bounded, change records
 * consecutive. 0 with *env_r (free with cluster_frame_free), or -1 with a one-line reason
 * in why. Never crashes on any input. */
int cluster_frame_decode(const void *data, size_t n, size_t max_frame,
			 Tern__Cluster__Envelope **env_r, char *why, size_t whyn);
void cluster_frame_free(Tern__Cluster__Envelope **env);
/* Pack env into out (replacing its contents). */
void cluster_frame_encode(const Tern__Cluster__Envelope *env, tbuf *out);

#endif
