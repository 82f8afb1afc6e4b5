/*
 * route.h - stateless ticket routing: which worker issued a ticket, carried in the ticket.
 *
 * A worker issues tickets of ROUTE_TICKET_DIGITS random digits (jail/tickets.h). Before a
 * ticket leaves the proxy (RPC answers, the monitor's `run:browser:` message, the VPL_web
 * cookie) the proxy appends a route code naming that worker; when a request comes back with
 * the routed ticket, any proxy holding the same secret strips the code, learns the worker and
 * forwards the original ticket. No state is shared between proxies but the secret.
 *
 *   routed = ticket (39 digits, unchanged) || enc (15 digits) || tag (9 digits)   = 63 chars
 *
 *   addr48 = (IPv4 in host order << 16) | port
 *   mask   = first 8 bytes of HMAC-SHA256(k_mask, ticket), big-endian, mod 10^15
 *   enc    = (addr48 + mask) mod 10^15, zero-padded
 *   tag    = first 8 bytes of HMAC-SHA256(k_tag, ticket || enc), big-endian, mod 10^9
 *
 * Why this shape:
 *  - 63 <= 64: the plugin stores tickets in CHAR(64);
 *  - the ticket comes first and unchanged: the plugin takes the first 8 characters of the
 *    execution ticket as the VNC password, so they must stay the worker's random digits;
 *  - enc is opaque: mask is a fresh pseudo-random pad per ticket (bias of the mod < 2^-14),
 *    so the internal address is not disclosed and two tickets of one worker look unrelated;
 *  - the tag binds the code to its ticket: changing any digit, or moving a code onto another
 *    ticket, is refused except with probability 10^-9 per guess. That is an online guess
 *    against the proxy, which should rate-limit failures (fail2ban) and, as defence in depth,
 *    connect only to a decoded address that is one of its known workers.
 *
 * Only IPv4 worker addresses: 48 bits (address + port) is what fits in 15 digits next to a
 * 9-digit tag within 64 characters. Workers sit on a private network (Docker overlay,
 * Kubernetes pod network), which is IPv4 in every deployment this targets.
 *
 * Keys: k_mask and k_tag are derived from ROUTE_SECRET with HMAC-SHA256 under distinct
 * labels. For rotation, a route_key holds the current secret and optionally the previous
 * one: route_append always uses the current one; route_strip accepts either, so tickets
 * issued just before a rotation (they live minutes) still route.
 *
 * Thread safety: route_key_init/route_key_wipe need exclusive access to the key; route_append
 * and route_strip only read it and may run concurrently on one key. No global state.
 * Routed tickets and secrets are secrets: never log them.
 */
#ifndef VC_ROUTE_H
#define VC_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define ROUTE_TICKET_DIGITS 39 /* the worker's ticket (TICKET_LEN) */
#define ROUTE_ADDR_DIGITS   15 /* 10^15 > 2^48 */
#define ROUTE_TAG_DIGITS    9
#define ROUTE_TICKET_LEN    63	 /* ROUTE_TICKET_DIGITS + ROUTE_ADDR_DIGITS + ROUTE_TAG_DIGITS */
#define ROUTE_SECRET_MIN    16	 /* bytes */
#define ROUTE_SECRET_MAX    4096 /* bytes; only to keep HMAC's int key length honest */
#define ROUTE_KEY_BYTES	    32

struct route_key {
	int count; /* 1, or 2 with the previous secret; 0 after wipe */
	struct {
		unsigned char mask[ROUTE_KEY_BYTES];
		unsigned char tag[ROUTE_KEY_BYTES];
	} k[2]; /* k[0] current, k[1] previous */
};

/*
 * Derives the subkeys of `secret` (NUL-terminated, at least ROUTE_SECRET_MIN bytes) and of
 * `previous` (may be NULL; if given, the same minimum applies). The secrets are not kept; the
 * caller may wipe its copies afterwards. On failure *k is wiped and -1 returned.
 */
int route_key_init(struct route_key *k, const char *secret, const char *previous, struct err *err);

/* Erases the subkeys (OPENSSL_cleanse). Safe on a wiped or failed key. */
void route_key_wipe(struct route_key *k);

/*
 * Writes ticket || route code for the worker at ip_be (network byte order, as in s_addr)
 * and port (host order) to out, NUL-terminated, using the current key.
 * Refused (-1): len != ROUTE_TICKET_DIGITS or a non-digit in ticket, an uninitialised key,
 * an OpenSSL failure. `ticket` need not be NUL-terminated.
 */
int route_append(const struct route_key *k, const char *ticket, size_t len, uint32_t ip_be,
		 uint16_t port, char out[ROUTE_TICKET_LEN + 1], struct err *err);

/*
 * Checks and removes the route code of an untrusted `routed` ticket (need not be
 * NUL-terminated): on success writes the worker's ticket, NUL-terminated, and its address
 * (ip_be network order, port host order) and returns 0. Returns -1, writing nothing useful,
 * if len != ROUTE_TICKET_LEN, any character is not a digit, the tag matches neither the
 * current nor the previous key (constant-time compare), or the decoded address is >= 2^48.
 * No error message: the caller answers every failure the same way (an unknown ticket).
 */
int route_strip(const struct route_key *k, const char *routed, size_t len,
		char ticket[ROUTE_TICKET_DIGITS + 1], uint32_t *ip_be, uint16_t *port);

/*
 * The monitor socket's rewrite (a wsframe_rewrite_fn, see wsframe.h; ctx is a
 * struct route_target): a payload that is exactly `run:browser:` followed by
 * ROUTE_TICKET_DIGITS digits becomes `run:browser:<routed ticket>` (returns 1, new payload
 * in `replacement`); every other payload is kept (returns 0). -1 only if route_append or
 * the append to `replacement` fails.
 */
struct route_target {
	const struct route_key *key;
	uint32_t ip_be; /* the worker this socket is relayed to */
	uint16_t port;
};

int route_rewrite_monitor(void *target, const char *payload, size_t len, struct buf *replacement);

#endif
