/* smtp_policy.c - the security options of the guide (ch. 12.2) that need memory across
 * sessions: concurrent connections, messages in the sliding hour, unknown recipients and
 * the harvest block, POP3-before-SMTP logins, all per client address; and the relay
 * decision. One table shared by every I/O thread behind a mutex; entries that hold
 * nothing any more are dropped, so the table stays as large as the active clients. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_int.h"

#define POLICY_BUCKETS 1024
#define HOUR_SLOTS 60            /* the sliding hour in one-minute slots */

typedef struct policy_entry {
	struct policy_entry *next;
	char ip[64];
	unsigned conns;
	int64_t slot_minute[HOUR_SLOTS];
	unsigned slot_count[HOUR_SLOTS];
	unsigned unknown;            /* unknown recipients since the last block */
	int64_t unknown_last;        /* when the last one was counted */
	int64_t blocked_until;
	int64_t pop3_at;
} policy_entry;

struct smtp_policy {
	pthread_mutex_t lock;
	policy_entry *buckets[POLICY_BUCKETS];
	unsigned ops;                /* operations since the last sweep */
};

smtp_policy *smtp_policy_new(void)
{
	smtp_policy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void smtp_policy_free(smtp_policy **pp)
{
	smtp_policy *p = *pp;

	if (p == NULL)
		return;
	for (unsigned b = 0; b < POLICY_BUCKETS; b++) {
		policy_entry *e = p->buckets[b];
		while (e != NULL) {
			policy_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
	*pp = NULL;
}

static unsigned ip_hash(const char *ip)
{
	uint32_t h = 2166136261u;          /* FNV-1a */
	for (const unsigned char *s = (const unsigned char *)ip; *s; s++)
		h = (h ^ *s) * 16777619u;
	return h % POLICY_BUCKETS;
}

static unsigned hour_count(const policy_entry *e, int64_t now)
{
	int64_t minute = now / 60;
	unsigned n = 0;

	for (unsigned i = 0; i < HOUR_SLOTS; i++)
		if (e->slot_count[i] && minute - e->slot_minute[i] < HOUR_SLOTS)
			n += e->slot_count[i];
	return n;
}

/* An entry that counts nothing any more can go. Unknown-recipient counts fade after an
 * hour without a new one, so a slow trickle of typos never adds up to a block. */
static int entry_idle(const policy_entry *e, int64_t now)
{
	return e->conns == 0 && e->blocked_until <= now && hour_count(e, now) == 0 &&
	       (e->unknown == 0 || now - e->unknown_last > 3600) && e->pop3_at + 86400 < now;
}

/* Every few thousand operations, drop idle entries (called with the lock held). */
static void sweep(smtp_policy *p, int64_t now)
{
	if (++p->ops < 4096)
		return;
	p->ops = 0;
	for (unsigned b = 0; b < POLICY_BUCKETS; b++) {
		policy_entry **pe = &p->buckets[b];
		while (*pe != NULL) {
			if (entry_idle(*pe, now)) {
				policy_entry *dead = *pe;
				*pe = dead->next;
				free(dead);
			} else {
				pe = &(*pe)->next;
			}
		}
	}
}

/* Find the entry of ip, making it when create is set (lock held). */
static policy_entry *entry_get(smtp_policy *p, const char *ip, int create)
{
	unsigned b = ip_hash(ip);

	for (policy_entry *e = p->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			return e;
	if (!create)
		return NULL;
	policy_entry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		abort();
	snprintf(e->ip, sizeof(e->ip), "%s", ip);
	e->pop3_at = INT64_MIN / 2;
	e->next = p->buckets[b];
	p->buckets[b] = e;
	return e;
}

unsigned smtp_policy_conn_open(smtp_policy *p, const char *ip)
{
	pthread_mutex_lock(&p->lock);
	sweep(p, tern_now());
	policy_entry *e = entry_get(p, ip, 1);
	unsigned n = ++e->conns;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void smtp_policy_conn_close(smtp_policy *p, const char *ip)
{
	pthread_mutex_lock(&p->lock);
	policy_entry *e = entry_get(p, ip, 0);
	if (e != NULL && e->conns > 0)
		e->conns--;
	pthread_mutex_unlock(&p->lock);
}

unsigned smtp_policy_msgs_last_hour(smtp_policy *p, const char *ip, int64_t now)
{
	pthread_mutex_lock(&p->lock);
	policy_entry *e = entry_get(p, ip, 0);
	unsigned n = e ? hour_count(e, now) : 0;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void smtp_policy_msg_accepted(smtp_policy *p, const char *ip, int64_t now)
{
	int64_t minute = now / 60;
	unsigned slot = (unsigned)(minute % HOUR_SLOTS);

	pthread_mutex_lock(&p->lock);
	policy_entry *e = entry_get(p, ip, 1);
	if (e->slot_minute[slot] != minute) {
		e->slot_minute[slot] = minute;
		e->slot_count[slot] = 0;
	}
	e->slot_count[slot]++;
	pthread_mutex_unlock(&p->lock);
}

int smtp_policy_unknown_rcpt(smtp_policy *p, const char *ip, unsigned max, int64_t block_seconds,
			     int64_t now)
{
	int reached = 0;

	if (max == 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	policy_entry *e = entry_get(p, ip, 1);
	if (e->unknown > 0 && now - e->unknown_last > 3600)
		e->unknown = 0;
	e->unknown++;
	e->unknown_last = now;
	if (e->unknown >= max) {
		reached = 1;
		e->unknown = 0;
		e->blocked_until = now + block_seconds;
	}
	pthread_mutex_unlock(&p->lock);
	return reached;
}

int smtp_policy_blocked(smtp_policy *p, const char *ip, int64_t now)
{
	pthread_mutex_lock(&p->lock);
	policy_entry *e = entry_get(p, ip, 0);
	int blocked = e != NULL && e->blocked_until > now;
	pthread_mutex_unlock(&p->lock);
	return blocked;
}

void smtp_policy_pop3_login(smtp_policy *p, const char *ip, int64_t now)
{
	pthread_mutex_lock(&p->lock);
	entry_get(p, ip, 1)->pop3_at = now;
	pthread_mutex_unlock(&p->lock);
}

int smtp_policy_pop3_recent(smtp_policy *p, const char *ip, int64_t window, int64_t now)
{
	pthread_mutex_lock(&p->lock);
	policy_entry *e = entry_get(p, ip, 0);
	int recent = e != NULL && now - e->pop3_at <= window;
	pthread_mutex_unlock(&p->lock);
	return recent;
}

/* The guide's exception: with both the IP group and SMTP authentication enabled, a
 * client whose AUTH failed is not trusted for its address any more. */
int smtp_policy_relay_allowed(const tern_conf *conf, const smtp_relay_facts *f)
{
	if (conf->smtpd_relay_open)
		return 1;
	if (conf->smtpd_relay_auth && f->authenticated)
		return 1;
	if (conf->smtpd_relay_ipgroup && conf->smtpd_relay_ipgroup[0] && f->in_relay_group &&
	    !(conf->smtpd_relay_auth && f->auth_failed))
		return 1;
	if (conf->smtpd_relay_pop3 && f->pop3_recent)
		return 1;
	return 0;
}
