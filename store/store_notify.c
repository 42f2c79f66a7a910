/* store_notify.c - the change notifier: after a batch is durable the commit thread
 * publishes its events, in commit order, to the watchers of the user/folder. A watcher
 * holds a reference per event in flight, so store_watch_remove() is safe at any time:
 * the events still queued for it are dropped when they arrive. */
#include "store_private.h"
#include <stdlib.h>
#include <string.h>

typedef struct watch_post {
	store_watch *w;
	store_event ev;
} watch_post;

static void watch_unref(store_watch *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1)
		free(w);
}

/* Link a new watch (under w_mu, so the commit thread sees it whole). */
static store_watch *watch_add(store *st, const uint8_t user[16], const uint8_t *folder, int moved_only,
			      tern_io *io, void (*fn)(const store_event *ev, void *arg), void *arg)
{
	store_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	memcpy(w->user, user, 16);
	if (folder)
		memcpy(w->folder, folder, 16);
	w->any_folder = folder == NULL;
	w->moved_only = moved_only;
	w->io = io;
	w->fn = fn;
	w->arg = arg;
	atomic_init(&w->refs, 1);
	atomic_init(&w->removed, 0);
	pthread_mutex_lock(&st->w_mu);
	w->next = st->watches;
	st->watches = w;
	pthread_mutex_unlock(&st->w_mu);
	return w;
}

store_watch *store_watch_add(store *st, const uint8_t user[16], const uint8_t *folder, tern_io *io,
			     void (*fn)(const store_event *ev, void *arg), void *arg)
{
	return watch_add(st, user, folder, 0, io, fn, arg);
}

store_watch *store_watch_add_moved(store *st, const uint8_t user[16], tern_io *io,
				   void (*fn)(const store_event *ev, void *arg), void *arg)
{
	return watch_add(st, user, NULL, 1, io, fn, arg);
}

void store_watch_remove(store *st, store_watch **wp)
{
	store_watch *w = *wp;

	if (!w)
		return;
	*wp = NULL;
	pthread_mutex_lock(&st->w_mu);
	for (store_watch **pp = &st->watches; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	atomic_store(&w->removed, 1);
	pthread_mutex_unlock(&st->w_mu);
	watch_unref(w);
}

static void deliver(void *arg)
{
	watch_post *p = arg;

	if (!atomic_load(&p->w->removed))
		p->w->fn(&p->ev, p->w->arg);
	watch_unref(p->w);
	free(p);
}

/* MOVED (the user's mailbox was frozen for a migration) concerns every watch of the
 * user, whatever folder it watches: its sessions close. */
static int watch_matches(const store_watch *w, const store_event *e)
{
	if (memcmp(w->user, e->user, 16) != 0)
		return 0;
	if (e->kind == TERN__CHANGE__KIND__MOVED)
		return 1;
	return !w->moved_only && (w->any_folder || memcmp(w->folder, e->folder, 16) == 0);
}

/* Called by the commit thread, in commit order, once c is durable. A watcher without
 * an I/O thread is called right here. */
void store_notify_publish(store *st, const store_commit *c)
{
	pthread_mutex_lock(&st->w_mu);
	for (size_t i = 0; i < c->nev; i++) {
		for (store_watch *w = st->watches; w; w = w->next) {
			if (!watch_matches(w, &c->ev[i]))
				continue;
			watch_post *p = malloc(sizeof(*p));

			if (!p)
				abort();
			p->w = w;
			p->ev = c->ev[i];
			atomic_fetch_add(&w->refs, 1);
			if (w->io)
				tern_io_post(w->io, deliver, p);
			else
				deliver(p);
		}
	}
	pthread_mutex_unlock(&st->w_mu);
}

void store_notify_free_all(store *st)
{
	pthread_mutex_lock(&st->w_mu);
	while (st->watches) {
		store_watch *w = st->watches;

		st->watches = w->next;
		atomic_store(&w->removed, 1);
		watch_unref(w);
	}
	pthread_mutex_unlock(&st->w_mu);
}
