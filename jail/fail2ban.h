/*
 * fail2ban.h - the reference's FAIL2BAN: per-client-address counters of
 * requests and errors over a 5-minute window; while a client has more than
 * 20 x FAIL2BAN errors and more errors than half its requests, its new
 * connections are refused (closed at accept).
 *
 * Bounded memory: at most F2B_SLOTS addresses are tracked per window; when
 * the table is full, new addresses are not tracked (and so not banned) until
 * the window rolls over. All counters reset every window, as the reference.
 */
#ifndef VC_FAIL2BAN_H
#define VC_FAIL2BAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define F2B_SLOTS     4096
#define F2B_WINDOW_MS (5 * 60 * 1000)

struct f2b;

struct f2b *f2b_new(int level);
void f2b_free(struct f2b *f);
/* false = refuse this connection. level 0 always allows. */
bool f2b_allows(struct f2b *f, const struct sockaddr *sa, int64_t now_ms);
void f2b_note(struct f2b *f, const struct sockaddr *sa, bool error, int64_t now_ms);

#endif
