/* admin.h - the admin JSON API of node/admin/API.md as an HTTP handler, and the start-up
 * helpers of ternd (node/admin/ternd_*.c). The one public header of node/admin/. */
#ifndef TERN_ADMIN_H
#define TERN_ADMIN_H
#include <stdint.h>
#include "auth.h"
#include "auth_gssapi.h"
#include "cluster.h"
#include "deliver.h"
#include "http.h"
#include "imap.h"
#include "migrate.h"
#include "pop3.h"
#include "queue.h"
#include "smtp.h"
#include "store.h"

/* What the API serves from; every pointer outlives the admin object. */
typedef struct admin_env {
	store *st;
	tern_server *srv;
	const tern_conf *conf;
	tern_pool *auth_pool;       /* password checks and hashing */
	auth_lockout *lockout;
	const char *data_dir;
	const char *node_name;
	int64_t started;            /* unix seconds */
	/* 1 for services whose listeners are bound (status "served"). */
	int served[TERN_SVC_COUNT];
	/* The mail services, for stats and queue operations (set before requests arrive). */
	deliverer *dlv;
	smtp_server *smtp;
	queue_runner *queue;
	/* SPNEGO ("Authorization: Negotiate") for remote admins; NULL = Basic only. */
	const auth_gssapi_conf *gssapi;
	/* The distributed domain's control plane; NULL = no cluster (the API answers as a
	 * standalone node and refuses the cluster operations). */
	cluster *cl;
	/* Live mailbox migration to this node ("migrate here"); NULL = not running (the
	 * migrations endpoints answer 503). */
	migrate *mig;
} admin_env;

typedef struct admin admin;

admin *admin_new(const admin_env *env);
void admin_free(admin **a);
/* The http_handler_fn of the admin API; ctx is the admin object. */
void admin_handle(http_request *req, void *ctx);

#endif
