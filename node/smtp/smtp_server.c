/* smtp_server.c - the SMTP server object: its environment, the connection handlers of
 * the three services, the shared per-address policy and the figures for ternctl stats. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_int.h"

smtp_server *smtp_server_new(const smtp_env *env)
{
	if (env == NULL || env->st == NULL || env->conf == NULL || env->deliverer == NULL)
		return NULL;
	smtp_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->env = *env;
	snprintf(s->hostname, sizeof(s->hostname), "%s",
		 env->hostname && env->hostname[0] ? env->hostname : tern_conf_hostname(env->conf));
	s->env.hostname = s->hostname;
	s->policy = smtp_policy_new();
	if (s->policy == NULL) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < 3; i++) {
		tern_service_handler *h = &s->handlers[i];
		h->on_open = smtp_session_open;
		h->on_read = smtp_session_on_read;
		h->on_close = smtp_session_on_close;
		h->on_drain = smtp_session_on_drain;
		h->on_timeout = smtp_session_on_timeout;
		h->ctx = s;
		h->idle_timeout = (int)env->conf->smtpd_command_timeout;
	}
	return s;
}

const tern_service_handler *smtp_server_handler(smtp_server *s, tern_service_id svc)
{
	switch (svc) {
	case TERN_SVC_smtp:
		return &s->handlers[0];
	case TERN_SVC_smtps:
		return &s->handlers[1];
	case TERN_SVC_submission:
		return &s->handlers[2];
	default:
		return NULL;
	}
}

void smtp_server_free(smtp_server **sp)
{
	smtp_server *s = *sp;

	if (s == NULL)
		return;
	smtp_policy_free(&s->policy);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

void smtp_server_count(smtp_server *srv, uint64_t *field)
{
	pthread_mutex_lock(&srv->lock);
	(*field)++;
	pthread_mutex_unlock(&srv->lock);
}

void smtp_server_stats(smtp_server *s, smtp_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

void smtp_pop3_login(smtp_server *s, const struct sockaddr *addr)
{
	char ip[64];
	const void *a = NULL;

	if (addr->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)addr)->sin_addr;
	else if (addr->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
	if (a == NULL || inet_ntop(addr->sa_family, a, ip, sizeof(ip)) == NULL)
		return;
	smtp_policy_pop3_login(s->policy, ip, tern_now());
}
