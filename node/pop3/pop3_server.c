/* pop3_server.c - the POP3 server object: its environment, the connection handlers of
 * the two services, the maildrops in use and the figures for ternctl stats. */
#include <stdlib.h>
#include <string.h>
#include "pop3_int.h"

/* A maildrop held by a session in TRANSACTION (few at a time: a list will do). */
struct pop3_inuse {
	uint8_t user[16];
	pop3_inuse *next;
};

/* Both services share one handler set; only the session tells them apart. */
pop3_server *pop3_server_new(const pop3_env *env)
{
	if (env == NULL || env->st == NULL || env->conf == NULL)
		return NULL;
	pop3_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->env = *env;
	snprintf(s->hostname, sizeof(s->hostname), "%s",
		 env->hostname && env->hostname[0] ? env->hostname : tern_conf_hostname(env->conf));
	s->env.hostname = s->hostname;
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < 2; i++) {
		tern_service_handler *h = &s->handlers[i];
		h->on_open = pop3_session_open;
		h->on_read = pop3_session_on_read;
		h->on_close = pop3_session_on_close;
		h->on_drain = pop3_session_on_drain;
		h->on_timeout = pop3_session_on_timeout;
		h->ctx = s;
		h->idle_timeout = (int)env->conf->pop3_timeout;
	}
	return s;
}

/* The handler of one of the two POP3 services. */
const tern_service_handler *pop3_server_handler(pop3_server *s, tern_service_id svc)
{
	switch (svc) {
	case TERN_SVC_pop3:
		return &s->handlers[0];
	case TERN_SVC_pop3s:
		return &s->handlers[1];
	default:
		return NULL;
	}
}

/* After the server has stopped: no session holds a maildrop any more. */
void pop3_server_free(pop3_server **sp)
{
	pop3_server *s = *sp;

	if (s == NULL)
		return;
	while (s->inuse != NULL) {
		pop3_inuse *next = s->inuse->next;
		free(s->inuse);
		s->inuse = next;
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

/* Figures are bumped from every I/O thread. */
void pop3_server_count(pop3_server *srv, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&srv->lock);
	*field += n;
	pthread_mutex_unlock(&srv->lock);
}

/* A consistent copy of the figures. */
void pop3_server_stats(pop3_server *s, pop3_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

/* Held from login to the end of UPDATE (or the session). */
int pop3_server_lock_user(pop3_server *srv, const uint8_t user[16])
{
	int rc = 0;

	pthread_mutex_lock(&srv->lock);
	for (pop3_inuse *u = srv->inuse; u != NULL && rc == 0; u = u->next)
		if (memcmp(u->user, user, 16) == 0)
			rc = -1;
	if (rc == 0) {
		pop3_inuse *u = calloc(1, sizeof(*u));
		if (u == NULL) {
			rc = -1;
		} else {
			memcpy(u->user, user, 16);
			u->next = srv->inuse;
			srv->inuse = u;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

/* Release a hold taken by pop3_server_lock_user. */
void pop3_server_unlock_user(pop3_server *srv, const uint8_t user[16])
{
	pthread_mutex_lock(&srv->lock);
	for (pop3_inuse **pp = &srv->inuse; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->user, user, 16) == 0) {
			pop3_inuse *u = *pp;
			*pp = u->next;
			free(u);
			break;
		}
	pthread_mutex_unlock(&srv->lock);
}
