/* deliver_int.h - private to node/deliver/: the alias walk with a trace, shared by
 * deliver_alias.c (which implements it) and deliver_expand.c. */
#ifndef TERN_DELIVER_INT_H
#define TERN_DELIVER_INT_H
#include "deliver.h"

/* Longest chain followed (aliases, groups, forwards) and most final recipients. */
#define DELIVER_DEPTH_MAX 16
#define DELIVER_FANOUT_MAX 1000

/* deliver_alias_resolve(), also writing one line per alias step to trace (when not
 * NULL), names shown as name@domain. *truncated_r (when not NULL) is set to 1 when
 * results were dropped because out was full or a bound was reached. */
size_t deliver_alias_resolve_traced(const deliver_alias_entry *aliases, size_t naliases,
				    const char *local, int (*is_name)(const char *local, void *ctx),
				    void *ctx, char **out, size_t max, const char *domain,
				    tbuf *trace, int *truncated_r);

#endif
