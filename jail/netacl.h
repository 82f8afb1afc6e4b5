/*
 * netacl.h - the TASK_ONLY_FROM client address filter.
 *
 * Contract:
 *  - A spec is a list of entries separated by spaces or tabs. An empty (or
 *    NULL, or all-blank) spec means "allow every client".
 *  - An entry with a '/' is a CIDR block, "a.b.c.d/n" (n 0..32) or
 *    "xxxx::/n" (n 0..128); host bits below the prefix length are ignored
 *    ("10.1.2.3/16" is 10.1.0.0/16). An IPv6 block inside ::ffff:0:0/96 with
 *    n >= 96 is stored as the IPv4 block it denotes. IPv4 blocks match IPv4
 *    clients, IPv6 blocks match IPv6 clients.
 *  - An entry without '/' is a plain string prefix of the client's address
 *    text, as in vpl-jail-system: "10.1." matches 10.1.x.y, and a complete
 *    address is a prefix too: "192.168.1.1" also matches 192.168.1.15 and
 *    192.168.1.100..199. This is deliberate: it is what existing configs
 *    mean. Write "a.b.c.d/32" (or "x::y/128") for one exact address. The
 *    text compared is inet_ntop()'s form: dotted decimal for IPv4, lowercase
 *    zero-compressed hex for IPv6 (prefer CIDR for IPv6, whose text form is
 *    not unique to the eye). Prefix entries are lowercased and must look
 *    like the start of an address: IPv4 ones (digits and dots) are at most
 *    four groups of 0..255 with no empty inner group; entries with ':' use
 *    only hex digits, ':' and '.'.
 *  - A client connected over IPv6 with an IPv4-mapped address
 *    (::ffff:a.b.c.d) is matched as the IPv4 address a.b.c.d.
 *  - Ownership: struct netacl owns its entry array. Zero-initialise it
 *    (`struct netacl acl = {0};`) before the first netacl_parse(); netacl_parse()
 *    replaces the previous list only on success (on failure the acl is left
 *    unchanged); netacl_free() releases it and leaves an empty list, and may
 *    be called again.
 */
#ifndef VC_NETACL_H
#define VC_NETACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "err.h"

#define NETACL_MAX_ENTRIES 4096
#define NETACL_MAX_TEXT	   64 /* longest entry, as written, plus NUL */

enum netacl_kind {
	NETACL_PREFIX, /* legacy string prefix of the address text */
	NETACL_CIDR,   /* address block */
};

struct netacl_entry {
	enum netacl_kind kind;
	int family;		    /* NETACL_CIDR: AF_INET or AF_INET6 */
	unsigned char addr[16];	    /* NETACL_CIDR: network, host bits cleared */
	unsigned bits;		    /* NETACL_CIDR: prefix length */
	char text[NETACL_MAX_TEXT]; /* the entry as written (prefixes lowercased) */
};

struct netacl {
	struct netacl_entry *entries; /* owned */
	size_t count;		      /* 0 = allow all */
};

int netacl_parse(struct netacl *acl, const char *spec, struct err *err);
bool netacl_allows(const struct netacl *acl, const struct sockaddr *sa);
void netacl_free(struct netacl *acl);

/* The last entry of an X-Forwarded-For value (the one the nearest proxy wrote: earlier ones
 * are whatever the client claimed) as an address; value need not be NUL-terminated.
 * Returns 0 with *out filled (port 0), or -1 when that entry is not an IP literal. */
int netacl_forwarded_for(const char *value, size_t len, struct sockaddr_storage *out);

/* Appends the entries, space-separated, as written (nothing for "allow all"). */
int netacl_format(const struct netacl *acl, struct buf *out, struct err *err);

#endif
