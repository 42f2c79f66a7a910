/* ternd_private.h - start-up helpers of ternd shared by node/admin/ternd_*.c. */
#ifndef TERN_TERND_PRIVATE_H
#define TERN_TERND_PRIVATE_H
#include "admin.h"

/* Lock DATA/ternd.lock (exclusive, non-blocking). -1 with a message in err. */
int ternd_lock(const char *data, int *fd_r, tbuf *err);
void ternd_lock_write_pid(int fd);
/* The node name: given, else stored, else the host name; stored when it changes. */
int ternd_node_name(store *st, const char *given, char *out, size_t n, tbuf *err);
/* First domain and administrator of a new store. */
int ternd_init_store(store *st, const ternd_opts *o, tbuf *err);

#endif
