/* dir_map.h - private to node/directory/: the store writers of the sync (dir_map.c),
 * without threads or directory connections so that unit tests drive them directly. */
#ifndef TERN_DIR_MAP_H
#define TERN_DIR_MAP_H
#include "directory.h"

/* The description a group gets when the sync creates it. Tern__Group.ldap marks a group
 * as mapped: an admin may change the description; groups without the flag are local and
 * never touched - except a group without the flag that still has exactly this
 * description, which the sync wrote before the flag existed (f2bd54b): the sync takes it
 * as mapped and sets the flag on its next write (the upgrade of old stores). */
#define DIR_GROUP_MARK "Mapped from the directory"

/* Write one directory user as the mapped account login@domain: created when enabled
 * with a mailbox, updated when it differs, disabled (never deleted) when the directory
 * says so. 0 written or unchanged, 1 skipped (a local account of that name, a bad name,
 * disabled and not stored), -1 store error (logged to warning.log). Blocking. */
int dir_user_store(store *st, const char *domain, const lm_user *u);
/* Disable every enabled mapped user of domain for which seen(name) is 0. */
int dir_user_disable_unseen(store *st, const char *domain, int (*seen)(const char *login, void *arg),
			    void *arg);
/* Write a directory group with its member addresses (name@domain; sorted in place),
 * with ldap = true (also on a group mapped before the flag, see DIR_GROUP_MARK).
 * 0, 1 skipped (a local group of that name, bad name), -1 error. */
int dir_group_store(store *st, const char *domain, const lm_group *g, char **members, size_t nmembers);
/* Remove the sync's groups of domain for which seen(name) is 0. */
int dir_group_remove_unseen(store *st, const char *domain, int (*seen)(const char *name, void *arg),
			    void *arg);

#endif
