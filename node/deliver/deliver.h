/* deliver.h - recipient resolution (node/deliver/): aliases, groups, forwarding.
 * Alias rules of the guide (ch. 12.3): patterns with '*' (any run) and '?' (one
 * character); one alias name with several targets delivers to every target; chains are
 * followed, each visited name is flagged, and on reaching a flagged name the chain
 * delivers to the last unflagged one (jwayne -> wayne -> john.wayne -> wayne delivers to
 * john.wayne). Groups expand to their members.
 * Which aliases apply to a name: the first of these classes that matches, all of its
 * matching aliases: (1) aliases whose pattern is exactly the name (even for a user or
 * group: "jwayne -> info" takes jwayne's mail unless "jwayne -> jwayne" is added);
 * (2) else an existing user or group (by any of its addresses) is final - wildcards
 * never capture a mailbox; (3) else wildcard patterns with a literal character
 * ("*sms*", "a*00*", "?ime"); (4) else catch-alls made of '*'/'?' only ("* -> Admin"):
 * the guide's "invalid addresses". A local name that nothing applies to is unknown. */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H
#include <stddef.h>
#include "store.h"

/* 1 when alias pattern (local part, '*' and '?') matches local part `local`. */
int deliver_alias_match(const char *pattern, const char *local);

typedef enum {
	DELIVER_LOCAL_USER,   /* a mailbox of this server: address = user@domain */
	DELIVER_REMOTE,       /* an address outside the local domains */
	DELIVER_PUBLIC,       /* "#public/Folder" */
	DELIVER_UNKNOWN,      /* local domain, no such user, group or alias */
} deliver_kind;

typedef struct deliver_rcpt {
	deliver_kind kind;
	char address[320];    /* final address, lower case (or #public/...) */
} deliver_rcpt;

typedef struct deliver_expansion {
	deliver_rcpt *rcpts;  /* distinct final recipients, in order of discovery */
	size_t n;
	tbuf trace;           /* human-readable steps, one per line ("team -> bob@x (alias)") */
} deliver_expansion;

/* Expand an address through aliases, groups and user forwarding (a forward with
 * keep-copy yields the user and the targets; without, the targets only) to its final
 * recipients. Depth and fan-out are bounded. 0 ok; negative store error. */
int deliver_expand(store *st, const char *address, deliver_expansion *out);
void deliver_expansion_free(deliver_expansion *e);

/* The guide's alias resolution for one local part in a domain, on a list of aliases
 * (store records), for tests and for deliver_expand: fills targets (malloc'd strings) of
 * the aliases that match `local`, following chains within the domain. Exposed so that
 * the unit tests run the guide's examples as a table without a store. */
typedef struct deliver_alias_entry {
	const char *pattern;
	const char *target;
} deliver_alias_entry;
/* is_name(local, ctx) says whether local is a user or group of the domain (chains stop
 * there). Returns the number of results written to out (at most max); each result is a
 * local part or full address, malloc'd. */
size_t deliver_alias_resolve(const deliver_alias_entry *aliases, size_t naliases, const char *local,
			     int (*is_name)(const char *local, void *ctx), void *ctx,
			     char **out, size_t max);

#endif
