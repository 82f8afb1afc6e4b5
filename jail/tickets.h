/*
 * tickets.h - unguessable task tickets.
 *
 * A ticket is TICKET_LEN decimal digits drawn from OpenSSL's CSPRNG by
 * rejection sampling (every digit uniform): 39 digits carry 129.5 bits, more
 * than the 128 the protocol wants. Digits because the plugin puts tickets in
 * URL paths, stores them in CHAR(64) and takes the first 8 characters of the
 * execution ticket as the VNC password, so every prefix must be random too.
 * Tickets are secrets: never log them.
 */
#ifndef VC_TICKETS_H
#define VC_TICKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define TICKET_LEN     39
#define TICKET_MAX_LEN 64 /* what a (proxied) ticket may be on the wire */

/* Fills out[0..TICKET_LEN-1] with digits and NUL-terminates. */
int ticket_generate(char out[TICKET_LEN + 1], struct err *err);

/* The reference's format check: 1..TICKET_MAX_LEN ASCII digits. */
bool ticket_format_ok(const char *s, size_t len);

/* A digest of a ticket that says nothing about it (SHA-256, first 16 bytes): what may be
 * kept on disk or sent between processes to recognise a ticket later (ticketlog.h). */
#define TICKET_DIGEST_LEN 16
void ticket_digest(const char *ticket, size_t len, unsigned char out[TICKET_DIGEST_LEN]);

/* Constant-time comparison of a stored ticket with untrusted input. */
bool ticket_equal(const char *stored, const char *given, size_t given_len);

#endif
