/* ternd_private.h - the daemon ternd: options and start-up (node/ternd_*.c). */
#ifndef TERN_TERND_PRIVATE_H
#define TERN_TERND_PRIVATE_H
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


/* Lock DATA/ternd.lock (exclusive, non-blocking). -1 with a message in err. */
int ternd_lock(const char *data, int *fd_r, tbuf *err);
void ternd_lock_write_pid(int fd);
/* The node name: given, else stored, else the host name; stored when it changes. */
int ternd_node_name(store *st, const char *given, char *out, size_t n, tbuf *err);
/* First domain and administrator of a new store. */
int ternd_init_store(store *st, const ternd_opts *o, tbuf *err);

#endif
