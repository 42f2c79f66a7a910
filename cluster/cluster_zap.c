/* cluster_zap.c - the ZAP handler (ZeroMQ authentication, RFC 27) of the master's control
 * port and of every node's bulk port: a REP socket on inproc://zeromq.zap.01 of the
 * context in question, polled by the thread owning it (cluster or bulk thread), with
 * the same rule for both: a CURVE client passes only
 * with the public key of a registered node ("node/<name>" rows, this node excluded),
 * and its User-Id is that node's name, by which the master knows the peer from then on.
 * Refusals go to warning.log (rate-limited). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>
#include "cluster_private.h"

/* The name of the registered node with this key, or NULL. */
static const char *zap_lookup(cluster *cl, const uint8_t *key, size_t n, char *name, size_t nn)
{
	Tern__Node **list = NULL;
	size_t count = 0;
	const char *found = NULL;

	if (n != CL_KEY_LEN || store_node_list(cl->st, &list, &count) != STORE_OK)
		return NULL;
	for (size_t i = 0; i < count; i++)
		if (list[i]->curve_public.len == CL_KEY_LEN && memcmp(list[i]->curve_public.data, key, CL_KEY_LEN) == 0 &&
		    strcasecmp(list[i]->name, cl->name) != 0) {
			snprintf(name, nn, "%s", list[i]->name);
			found = name;
			break;
		}
	store_free_list((void **)list, count);
	return found;
}

/* The control port's ZAP request (cluster thread). */
void cl_master_zap(cluster *cl)
{
	cl_zap_serve(cl, cl->zap, "", &cl->warn_window_ms, &cl->warn_count);
}

/* One ZAP request of either port, answered with the registered-node rule above. */
void cl_zap_serve(cluster *cl, void *sock, const char *what, int64_t *window_ms, int *count)
{
	zmq_msg_t f[8];
	int nf = 0, more = 1;

	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		more = zmq_msg_more(&m);
		if (nf < 8)
			f[nf++] = m;
		else
			zmq_msg_close(&m);
	}
	if (nf < 6) {
		for (int i = 0; i < nf; i++)
			zmq_msg_close(&f[i]);
		return;
	}
	char name[64] = "", addr[128] = "";
	const char *ok = NULL;
	size_t alen = zmq_msg_size(&f[3]) < sizeof(addr) - 1 ? zmq_msg_size(&f[3]) : sizeof(addr) - 1;

	memcpy(addr, zmq_msg_data(&f[3]), alen);
	if (zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 && nf >= 7)
		ok = zap_lookup(cl, zmq_msg_data(&f[6]), zmq_msg_size(&f[6]), name, sizeof(name));
	if (ok == NULL && cl_budget_ok(window_ms, count)) {
		char z85[41] = "?";

		if (nf >= 7 && zmq_msg_size(&f[6]) == CL_KEY_LEN)
			zmq_z85_encode(z85, zmq_msg_data(&f[6]), CL_KEY_LEN);
		tlog(TLOG_WARNING, "cluster: refused a %sconnection from %s: CURVE key %s is not a registered node",
		     what, addr, z85);
	}
	zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	zmq_send(sock, ok ? "200" : "400", 3, ZMQ_SNDMORE);
	zmq_send(sock, ok ? "OK" : "unregistered key", ok ? 2 : 16, ZMQ_SNDMORE);
	zmq_send(sock, name, ok ? strlen(name) : 0, ZMQ_SNDMORE);
	zmq_send(sock, "", 0, 0);
	for (int i = 0; i < nf; i++)
		zmq_msg_close(&f[i]);
}

int cl_node_registered(cluster *cl, const char *name)
{
	Tern__Node *n = NULL;

	if (name == NULL || name[0] == '\0' || store_node_get(cl->st, name, &n) != STORE_OK)
		return 0;
	store_free_record(n);
	return 1;
}
