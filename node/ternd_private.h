/* ternd_private.h - the daemon ternd: options and start-up (node/ternd_*.c). */
#ifndef TERN_TERND_PRIVATE_H
#define TERN_TERND_PRIVATE_H
#include <pthread.h>
#include "admin.h"

typedef struct ternd_opts {
	const char *config;
	const char *data;
	unsigned port_base;
	const char *node_name;
	int foreground;
	const char *init_domain;
	const char *init_admin;
	const char *init_password_file;
} ternd_opts;

/* Parse argv. 0 ok; 1 when --help/--version was printed (exit 0); -1 on a usage error
 * (message printed). */
int ternd_parse_args(int argc, char **argv, ternd_opts *o);
/* The daemon's whole life after argument parsing; returns the exit code. */
int ternd_run(const ternd_opts *o);


/* ternd_migrate.c: the hooks of the migrate module (node side of DESIGN.md §6). The
 * pointers are set before ternd_migrate_open and outlive the module. */
typedef struct ternd_mig_hooks {
	store *st;
	deliverer *dlv;               /* delivers the reports */
	queue_runner *queue;          /* woken when a frozen mailbox is released */
	const char *hostname;         /* Message-ID of the reports */
	pthread_mutex_t mu;           /* guards queue, live, reports */
	int inited, live;
	int reports;                  /* reports handed to the deliverer, not yet durable */
} ternd_mig_hooks;
/* The report to admin: a complete message (CRLF lines) from postmaster@<admin's domain>
 * with Subject, Date and Message-ID. 0, or -1 when admin is not an address. */
int ternd_mig_message(tbuf *out, const char *hostname, const char *admin, const char *subject,
		      const char *body, int64_t now);
/* migrate_open with the hooks; -1 with err. */
int ternd_migrate_open(ternd_mig_hooks *h, cluster *cl, const tern_conf *conf, migrate **m_r, tbuf *err);
/* Before the queue is freed: released mailboxes no longer wake it. */
void ternd_migrate_quiesce(ternd_mig_hooks *h);
/* After migrate_close, before the deliverer is freed: no more reports, wait for those
 * in flight. */
void ternd_migrate_drain(ternd_mig_hooks *h);

/* Lock DATA/ternd.lock (exclusive, non-blocking). -1 with a message in err. */
int ternd_lock(const char *data, int *fd_r, tbuf *err);
void ternd_lock_write_pid(int fd);
/* The node name: given, else stored, else the host name; stored when it changes. */
int ternd_node_name(store *st, const char *given, char *out, size_t n, tbuf *err);
/* First domain and administrator of a new store. */
int ternd_init_store(store *st, const ternd_opts *o, tbuf *err);

#endif
