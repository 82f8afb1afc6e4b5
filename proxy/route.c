#include "route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tickets.h"

_Static_assert(ROUTE_TICKET_DIGITS == TICKET_LEN, "the proxy routes the worker's tickets");
_Static_assert(ROUTE_TICKET_LEN <= TICKET_MAX_LEN, "the plugin stores tickets in CHAR(64)");

/* 10^ROUTE_ADDR_DIGITS and 10^ROUTE_TAG_DIGITS */
#define POW10_ADDR UINT64_C(1000000000000000)
#define POW10_TAG  UINT64_C(1000000000)
/* What the tag covers: ticket || enc. */
#define CODED_LEN (ROUTE_TICKET_DIGITS + ROUTE_ADDR_DIGITS)

static const char MONITOR_PREFIX[] = "run:browser:";

/* Labels keep the two subkeys independent even though they share one secret. */
static const char LABEL_MASK[] = "vplcell route v1 mask";
static const char LABEL_TAG[] = "vplcell route v1 tag";

static int hmac(const unsigned char *key, size_t key_len, const void *data, size_t n,
		unsigned char out[ROUTE_KEY_BYTES])
{
	unsigned int out_len = 0;
	if (!HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &out_len) ||
	    out_len != ROUTE_KEY_BYTES)
		return -1;
	return 0;
}

/* First 8 bytes of HMAC(key, data) as a big-endian integer. */
static int hmac_u64(const unsigned char key[ROUTE_KEY_BYTES], const void *data, size_t n,
		    uint64_t *v)
{
	unsigned char md[ROUTE_KEY_BYTES];
	if (hmac(key, ROUTE_KEY_BYTES, data, n, md) < 0)
		return -1;
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | md[i];
	OPENSSL_cleanse(md, sizeof md);
	*v = x;
	return 0;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int derive(const char *secret, const char *which, unsigned char mask[ROUTE_KEY_BYTES],
		  unsigned char tag[ROUTE_KEY_BYTES], struct err *err)
{
	size_t n = strlen(secret);
	if (n < ROUTE_SECRET_MIN)
		return err_set(err, EINVAL, "%s route secret is %zu bytes; at least %d required",
			       which, n, ROUTE_SECRET_MIN);
	if (n > ROUTE_SECRET_MAX)
		return err_set(err, EINVAL, "%s route secret is longer than %d bytes", which,
			       ROUTE_SECRET_MAX);
	const unsigned char *s = (const unsigned char *)secret;
	if (hmac(s, n, LABEL_MASK, sizeof LABEL_MASK - 1, mask) < 0 ||
	    hmac(s, n, LABEL_TAG, sizeof LABEL_TAG - 1, tag) < 0)
		return err_set(err, EIO, "deriving route keys: HMAC-SHA256 failed");
	return 0;
}

void route_key_wipe(struct route_key *k)
{
	OPENSSL_cleanse(k, sizeof *k);
}

int route_key_init(struct route_key *k, const char *secret, const char *previous, struct err *err)
{
	route_key_wipe(k);
	if (!secret)
		return err_set(err, EINVAL, "no route secret");
	if (derive(secret, "current", k->k[0].mask, k->k[0].tag, err) < 0 ||
	    (previous && derive(previous, "previous", k->k[1].mask, k->k[1].tag, err) < 0)) {
		route_key_wipe(k);
		return -1;
	}
	k->count = previous ? 2 : 1;
	return 0;
}

/* The pad hiding the address in the code of this ticket, < 10^15. */
static int addr_mask(const unsigned char key[ROUTE_KEY_BYTES], const char *ticket, uint64_t *mask)
{
	if (hmac_u64(key, ticket, ROUTE_TICKET_DIGITS, mask) < 0)
		return -1;
	*mask %= POW10_ADDR;
	return 0;
}

/* The 9 tag digits of ticket || enc under one key. */
static int make_tag(const unsigned char key[ROUTE_KEY_BYTES], const char coded[CODED_LEN],
		    char tag[ROUTE_TAG_DIGITS + 1])
{
	uint64_t t;
	if (hmac_u64(key, coded, CODED_LEN, &t) < 0)
		return -1;
	snprintf(tag, ROUTE_TAG_DIGITS + 1, "%09" PRIu64, t % POW10_TAG);
	return 0;
}

int route_append(const struct route_key *k, const char *ticket, size_t len, uint32_t ip_be,
		 uint16_t port, char out[ROUTE_TICKET_LEN + 1], struct err *err)
{
	if (k->count < 1)
		return err_set(err, EINVAL, "route key not initialised");
	if (len != ROUTE_TICKET_DIGITS || !all_digits(ticket, len))
		return err_set(err, EINVAL, "worker ticket is not %d digits", ROUTE_TICKET_DIGITS);
	uint64_t mask;
	if (addr_mask(k->k[0].mask, ticket, &mask) < 0)
		return err_set(err, EIO, "route mask: HMAC-SHA256 failed");
	uint64_t addr48 = (uint64_t)ntohl(ip_be) << 16 | port;
	/* addr48 < 2^48 and mask < 10^15: the sum cannot overflow. */
	uint64_t enc = (addr48 + mask) % POW10_ADDR;

	char coded[CODED_LEN + 1];
	memcpy(coded, ticket, ROUTE_TICKET_DIGITS);
	snprintf(coded + ROUTE_TICKET_DIGITS, ROUTE_ADDR_DIGITS + 1, "%015" PRIu64, enc);
	char tag[ROUTE_TAG_DIGITS + 1];
	if (make_tag(k->k[0].tag, coded, tag) < 0)
		return err_set(err, EIO, "route tag: HMAC-SHA256 failed");
	memcpy(out, coded, CODED_LEN);
	memcpy(out + CODED_LEN, tag, ROUTE_TAG_DIGITS + 1);
	return 0;
}

int route_strip(const struct route_key *k, const char *routed, size_t len,
		char ticket[ROUTE_TICKET_DIGITS + 1], uint32_t *ip_be, uint16_t *port)
{
	if (len != ROUTE_TICKET_LEN || !all_digits(routed, len))
		return -1;
	const char *given_tag = routed + CODED_LEN;
	for (int i = 0; i < k->count && i < 2; i++) {
		char tag[ROUTE_TAG_DIGITS + 1];
		if (make_tag(k->k[i].tag, routed, tag) < 0)
			return -1;
		if (CRYPTO_memcmp(tag, given_tag, ROUTE_TAG_DIGITS) != 0)
			continue;
		uint64_t mask, enc = 0;
		if (addr_mask(k->k[i].mask, routed, &mask) < 0)
			return -1;
		for (int d = 0; d < ROUTE_ADDR_DIGITS; d++)
			enc = enc * 10 + (uint64_t)(routed[ROUTE_TICKET_DIGITS + d] - '0');
		uint64_t addr48 = (enc + POW10_ADDR - mask) % POW10_ADDR;
		/* Only a holder of the key makes a valid tag, and it never encodes this. */
		if (addr48 >> 48)
			return -1;
		memcpy(ticket, routed, ROUTE_TICKET_DIGITS);
		ticket[ROUTE_TICKET_DIGITS] = '\0';
		*ip_be = htonl((uint32_t)(addr48 >> 16));
		*port = (uint16_t)(addr48 & 0xFFFF);
		return 0;
	}
	return -1;
}

int route_rewrite_monitor(void *target, const char *payload, size_t len, struct buf *replacement)
{
	const struct route_target *t = target;
	const size_t plen = sizeof MONITOR_PREFIX - 1;
	if (len != plen + ROUTE_TICKET_DIGITS || memcmp(payload, MONITOR_PREFIX, plen) != 0 ||
	    !all_digits(payload + plen, ROUTE_TICKET_DIGITS))
		return 0;
	char routed[ROUTE_TICKET_LEN + 1];
	if (route_append(t->key, payload + plen, ROUTE_TICKET_DIGITS, t->ip_be, t->port, routed,
			 NULL) < 0)
		return -1;
	if (buf_append(replacement, MONITOR_PREFIX, plen, NULL) < 0 ||
	    buf_append(replacement, routed, ROUTE_TICKET_LEN, NULL) < 0)
		return -1;
	return 1;
}
