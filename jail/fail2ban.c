#include "fail2ban.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	uint8_t addr[16];
	bool used;
	uint32_t requests, errors;
};

struct f2b {
	int level;
	int64_t window_start;
	uint64_t seed;
	struct slot slots[F2B_SLOTS];
};

struct f2b *f2b_new(int level)
{
	struct f2b *f = calloc(1, sizeof *f);
	if (f) {
		f->level = level;
		f->window_start = -1;
		f->seed = (uint64_t)(uintptr_t)f ^ 0x9e3779b97f4a7c15ull;
	}
	return f;
}

void f2b_free(struct f2b *f)
{
	free(f);
}

/* IPv4 and IPv4-mapped IPv6 share one key, so a client is one client. */
static bool key_of(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static struct slot *lookup(struct f2b *f, const struct sockaddr *sa, int64_t now, bool create)
{
	if (f->window_start < 0 || now - f->window_start >= F2B_WINDOW_MS) {
		memset(f->slots, 0, sizeof f->slots);
		f->window_start = now;
	}
	uint8_t key[16];
	if (!key_of(sa, key))
		return NULL;
	uint64_t h = f->seed;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	for (unsigned probe = 0; probe < F2B_SLOTS; probe++) {
		struct slot *s = &f->slots[(h + probe) % F2B_SLOTS];
		if (s->used && memcmp(s->addr, key, 16) == 0)
			return s;
		if (!s->used) {
			if (!create)
				return NULL;
			s->used = true;
			memcpy(s->addr, key, 16);
			return s;
		}
	}
	return NULL;
}

bool f2b_allows(struct f2b *f, const struct sockaddr *sa, int64_t now_ms)
{
	if (!f || f->level <= 0)
		return true;
	struct slot *s = lookup(f, sa, now_ms, false);
	if (!s)
		return true;
	return !(s->errors > 20u * (unsigned)f->level && s->errors > s->requests / 2);
}

void f2b_note(struct f2b *f, const struct sockaddr *sa, bool error, int64_t now_ms)
{
	if (!f || f->level <= 0)
		return;
	struct slot *s = lookup(f, sa, now_ms, true);
	if (!s)
		return;
	s->requests++;
	if (error)
		s->errors++;
}
