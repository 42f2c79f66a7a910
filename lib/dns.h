/* dns.h - asynchronous DNS with c-ares on an I/O thread's event base (MX, A/AAAA, TXT).
 * The resolver may be set ("host:port") so that tests point it at their own server. */
#ifndef TERN_DNS_H
#define TERN_DNS_H
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
typedef struct tern_dns tern_dns;

typedef enum { TERN_DNS_OK = 0, TERN_DNS_NOTFOUND = 1, TERN_DNS_TEMPFAIL = 2 } tern_dns_status;

typedef struct tern_mx {
	unsigned preference;
	char host[256];
} tern_mx;

/* resolver: "" for the system's, or "HOST:PORT" / "HOST". */
tern_dns *tern_dns_new(struct event_base *base, const char *resolver, int timeout_seconds,
		       char **error_r);
void tern_dns_free(tern_dns **dns);
/* MX records sorted by preference (ties in random order, as RFC 5321 asks). */
void tern_dns_mx(tern_dns *dns, const char *domain,
		 void (*cb)(tern_dns_status st, const tern_mx *mx, size_t n, void *arg), void *arg);
/* A and AAAA addresses of host. */
void tern_dns_addr(tern_dns *dns, const char *host,
		   void (*cb)(tern_dns_status st, const struct sockaddr_storage *a, size_t n, void *arg),
		   void *arg);
/* TXT records, each joined from its strings. */
void tern_dns_txt(tern_dns *dns, const char *name,
		  void (*cb)(tern_dns_status st, char **txt, size_t n, void *arg), void *arg);

#endif
