/* deliver_quota.c - limits around local delivery: the outgoing size limit of an
 * authenticated sender (guide ch. 8: the user's own limit beats the domain's; 0 = none)
 * and the quota warning message (sent when usage reaches the warning percentage of
 * either quota, at most once per interval; the time is kept in Mailbox.quota_warned_at,
 * written by the same append that delivers the warning). */
#include <stdio.h>
#include <string.h>
#include "deliver_int.h"

/* The account of an authenticated sender: "user@domain", or a bare name in the
 * sender's domain. */
static int quota_find_sender(store *st, const char *auth_user, const char *sender, Tern__User **u_r)
{
	char local[65], domain[254], canon[254];

	if (strchr(auth_user, '@'))
		return store_user_find(st, auth_user, u_r);
	if (sender == NULL || tern_split_address(sender, local, sizeof(local), domain, sizeof(domain)) < 0)
		return STORE_ENOTFOUND;
	if (store_domain_resolve(st, domain, canon, sizeof(canon)) != STORE_OK)
		return STORE_ENOTFOUND;
	return store_user_get(st, canon, auth_user, u_r);
}

uint64_t dlv_size_limit(store *st, const char *auth_user, const char *sender)
{
	Tern__User *u = NULL;
	Tern__Domain *dom = NULL;
	uint64_t limit = 0;

	if (auth_user == NULL || auth_user[0] == '\0')
		return 0;
	if (quota_find_sender(st, auth_user, sender, &u) != STORE_OK)
		return 0;
	if (u->size_limit_mode == 1) {
		limit = u->size_limit;
	} else if (u->size_limit_mode == 0 && store_domain_get(st, u->domain, &dom) == STORE_OK) {
		limit = dom->outgoing_size_limit;
		store_free_record(dom);
	}
	store_free_record(u);
	return limit;
}

/* Mark id as having a warning in flight; 0 when it already has one (or the set is full:
 * the warning then waits for a later delivery). */
static int quota_mark(deliverer *d, const uint8_t id[16])
{
	int ok = 1;

	pthread_mutex_lock(&d->warn_mu);
	for (size_t i = 0; i < d->nwarn_inflight && ok; i++)
		if (memcmp(d->warn_inflight[i], id, 16) == 0)
			ok = 0;
	if (ok && d->nwarn_inflight >= DELIVER_WARN_INFLIGHT_MAX)
		ok = 0;
	if (ok)
		memcpy(d->warn_inflight[d->nwarn_inflight++], id, 16);
	pthread_mutex_unlock(&d->warn_mu);
	return ok;
}

void dlv_quota_warn_done(deliverer *d, const uint8_t id[16])
{
	pthread_mutex_lock(&d->warn_mu);
	for (size_t i = 0; i < d->nwarn_inflight; i++) {
		if (memcmp(d->warn_inflight[i], id, 16) == 0) {
			memmove(d->warn_inflight[i], d->warn_inflight[d->nwarn_inflight - 1], 16);
			d->nwarn_inflight--;
			break;
		}
	}
	pthread_mutex_unlock(&d->warn_mu);
}

/* used >= pct% of a set quota (0 = unlimited never reaches it). */
static int quota_reached(uint64_t used, uint64_t quota, int64_t pct)
{
	return quota && used * 100 >= quota * (uint64_t)pct;
}

int dlv_quota_warn_needed(deliverer *d, const uint8_t id[16], int64_t now, dlv_quota_view *v)
{
	Tern__User *u = NULL;
	Tern__Mailbox *mb = NULL;
	int64_t pct = d->conf->delivery_quota_warning_percent;
	int need = 0;

	if (store_user_get_by_id(d->st, id, &u) != STORE_OK)
		return 0;
	if ((u->quota_bytes || u->quota_items) && store_mailbox_get(d->st, id, &mb) == STORE_OK) {
		int64_t last = (int64_t)mb->quota_warned_at;
		need = (quota_reached(mb->bytes, u->quota_bytes, pct) ||
			quota_reached(mb->items, u->quota_items, pct)) &&
		       (last == 0 || now - last >= d->conf->delivery_quota_warning_interval);
		if (need) {
			memset(v, 0, sizeof(*v));
			v->bytes = mb->bytes;
			v->items = mb->items;
			v->quota_bytes = u->quota_bytes;
			v->quota_items = u->quota_items;
			snprintf(v->address, sizeof(v->address), "%s@%s", u->name, u->domain);
			snprintf(v->domain, sizeof(v->domain), "%s", u->domain);
			tern_lower(v->address);
			tern_lower(v->domain);
		}
		store_free_record(mb);
	}
	store_free_record(u);
	return need && quota_mark(d, id);
}

/* Whole percent for the warning text. */
static unsigned quota_percent(uint64_t used, uint64_t quota)
{
	return quota ? (unsigned)(used * 100 / quota) : 0;
}

void dlv_quota_warn_message(tbuf *out, const deliverer *d, const dlv_quota_view *v, int64_t now)
{
	char date[40], idtext[37];
	uint8_t id[16];

	tern_uuid_new(id);
	tern_uuid_str(id, idtext);
	dlv_date(now, date);
	tbuf_appendf(out, "From: Postmaster <postmaster@%s>\r\n", v->domain);
	tbuf_appendf(out, "To: <%s>\r\n", v->address);
	tbuf_append_str(out, "Subject: Your mailbox is almost full\r\n");
	tbuf_appendf(out, "Date: %s\r\n", date);
	tbuf_appendf(out, "Message-ID: <%s@%s>\r\n", idtext, d->hostname);
	tbuf_append_str(out, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
			     "Content-Type: text/plain; charset=us-ascii\r\n"
			     "Content-Transfer-Encoding: 7bit\r\n\r\n");
	tbuf_appendf(out, "Your mailbox %s is almost full.\r\n\r\n", v->address);
	if (v->quota_bytes)
		tbuf_appendf(out, "Storage used: %llu KB of %llu KB (%u%%)\r\n",
			     (unsigned long long)(v->bytes / 1024), (unsigned long long)(v->quota_bytes / 1024),
			     quota_percent(v->bytes, v->quota_bytes));
	if (v->quota_items)
		tbuf_appendf(out, "Messages: %llu of %llu (%u%%)\r\n", (unsigned long long)v->items,
			     (unsigned long long)v->quota_items, quota_percent(v->items, v->quota_items));
	tbuf_append_str(out, "\r\nWhen the mailbox is full, new messages to you are refused and\r\n"
			     "returned to their senders. Please delete messages you no longer\r\n"
			     "need, or ask your administrator for a larger quota.\r\n");
}
