#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "route.h"

static const char SECRET[] = "correct horse battery staple";
static const char OTHER[] = "another secret of enough length";

static void random_ticket(char t[ROUTE_TICKET_DIGITS + 1])
{
	unsigned char r[ROUTE_TICKET_DIGITS];
	assert_int_equal(RAND_bytes(r, sizeof r), 1);
	for (int i = 0; i < ROUTE_TICKET_DIGITS; i++)
		t[i] = (char)('0' + r[i] % 10);
	t[ROUTE_TICKET_DIGITS] = '\0';
}

static uint32_t random_u32(void)
{
	uint32_t v;
	assert_int_equal(RAND_bytes((unsigned char *)&v, sizeof v), 1);
	return v;
}

static void make_key(struct route_key *k, const char *s, const char *prev)
{
	struct err e;
	assert_int_equal(route_key_init(k, s, prev, &e), 0);
}

static void round_trip_random(void **state)
{
	(void)state;
	struct route_key k;
	make_key(&k, SECRET, NULL);
	/* Edge addresses first, then random ones. */
	const uint32_t ips[] = {0, 0xFFFFFFFF, 0x0A000001, 0xC0A80101};
	const uint16_t ports[] = {0, 0xFFFF, 8080, 1};
	for (int i = 0; i < 2000; i++) {
		char t[ROUTE_TICKET_DIGITS + 1], routed[ROUTE_TICKET_LEN + 1];
		char back[ROUTE_TICKET_DIGITS + 1];
		random_ticket(t);
		uint32_t ip = i < 4 ? htonl(ips[i]) : random_u32();
		uint16_t port = i < 4 ? ports[i] : (uint16_t)random_u32();
		struct err e;
		assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, ip, port, routed, &e), 0);
		assert_int_equal(strlen(routed), ROUTE_TICKET_LEN);
		for (int d = 0; d < ROUTE_TICKET_LEN; d++)
			assert_true(routed[d] >= '0' && routed[d] <= '9');
		assert_memory_equal(routed, t, ROUTE_TICKET_DIGITS); /* ticket unchanged */
		uint32_t ip2 = 0;
		uint16_t port2 = 0;
		assert_int_equal(route_strip(&k, routed, ROUTE_TICKET_LEN, back, &ip2, &port2), 0);
		assert_string_equal(back, t);
		assert_int_equal(ip2, ip);
		assert_int_equal(port2, port);
		/* Deterministic: the same inputs give the same code. */
		char again[ROUTE_TICKET_LEN + 1];
		assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, ip, port, again, &e), 0);
		assert_string_equal(again, routed);
	}
	route_key_wipe(&k);
}

static void every_single_digit_change_refused(void **state)
{
	(void)state;
	struct route_key k;
	make_key(&k, SECRET, OTHER);
	for (int round = 0; round < 20; round++) {
		char t[ROUTE_TICKET_DIGITS + 1], routed[ROUTE_TICKET_LEN + 1];
		random_ticket(t);
		assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, random_u32(),
					      (uint16_t)random_u32(), routed, NULL),
				 0);
		for (int pos = 0; pos < ROUTE_TICKET_LEN; pos++) {
			for (int d = 1; d < 10; d++) {
				char bad[ROUTE_TICKET_LEN + 1];
				memcpy(bad, routed, sizeof bad);
				bad[pos] = (char)('0' + (routed[pos] - '0' + d) % 10);
				char back[ROUTE_TICKET_DIGITS + 1];
				uint32_t ip;
				uint16_t port;
				assert_int_equal(
				    route_strip(&k, bad, ROUTE_TICKET_LEN, back, &ip, &port), -1);
			}
		}
	}
	route_key_wipe(&k);
}

static void code_moved_to_other_ticket_refused(void **state)
{
	(void)state;
	struct route_key k;
	make_key(&k, SECRET, NULL);
	for (int i = 0; i < 200; i++) {
		char a[ROUTE_TICKET_DIGITS + 1], b[ROUTE_TICKET_DIGITS + 1];
		char ra[ROUTE_TICKET_LEN + 1], rb[ROUTE_TICKET_LEN + 1];
		random_ticket(a);
		random_ticket(b);
		uint32_t ip = random_u32();
		assert_int_equal(route_append(&k, a, ROUTE_TICKET_DIGITS, ip, 9000, ra, NULL), 0);
		assert_int_equal(route_append(&k, b, ROUTE_TICKET_DIGITS, ip, 9000, rb, NULL), 0);
		/* a's ticket with b's code (and b's enc with a's tag). */
		char mix[ROUTE_TICKET_LEN + 1];
		memcpy(mix, ra, ROUTE_TICKET_DIGITS);
		memcpy(mix + ROUTE_TICKET_DIGITS, rb + ROUTE_TICKET_DIGITS,
		       ROUTE_TICKET_LEN - ROUTE_TICKET_DIGITS + 1);
		char back[ROUTE_TICKET_DIGITS + 1];
		uint32_t ip2;
		uint16_t port2;
		assert_int_equal(route_strip(&k, mix, ROUTE_TICKET_LEN, back, &ip2, &port2), -1);
		memcpy(mix, rb, ROUTE_TICKET_DIGITS + ROUTE_ADDR_DIGITS);
		memcpy(mix + ROUTE_TICKET_DIGITS + ROUTE_ADDR_DIGITS,
		       ra + ROUTE_TICKET_DIGITS + ROUTE_ADDR_DIGITS, ROUTE_TAG_DIGITS + 1);
		assert_int_equal(route_strip(&k, mix, ROUTE_TICKET_LEN, back, &ip2, &port2), -1);
	}
	route_key_wipe(&k);
}

static void enc_is_opaque(void **state)
{
	(void)state;
	/* One worker, many tickets: the address part must look unrelated each time. */
	struct route_key k;
	make_key(&k, SECRET, NULL);
	enum { N = 500 };
	static char enc[N][ROUTE_ADDR_DIGITS + 1];
	uint32_t ip = htonl(0x0A000005);
	for (int i = 0; i < N; i++) {
		char t[ROUTE_TICKET_DIGITS + 1], routed[ROUTE_TICKET_LEN + 1];
		random_ticket(t);
		assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, ip, 8080, routed, NULL),
				 0);
		memcpy(enc[i], routed + ROUTE_TICKET_DIGITS, ROUTE_ADDR_DIGITS);
		enc[i][ROUTE_ADDR_DIGITS] = '\0';
		for (int j = 0; j < i; j++)
			assert_string_not_equal(enc[i], enc[j]);
	}
	/* Leading digit roughly uniform (the plain address 0x0A0000051F90 starts with 0). */
	int lead[10] = {0};
	for (int i = 0; i < N; i++)
		lead[enc[i][0] - '0']++;
	for (int d = 0; d < 10; d++)
		assert_true(lead[d] > 15 && lead[d] < 90);
	route_key_wipe(&k);
}

static void different_secret_different_code(void **state)
{
	(void)state;
	struct route_key k1, k2;
	make_key(&k1, SECRET, NULL);
	make_key(&k2, OTHER, NULL);
	char t[ROUTE_TICKET_DIGITS + 1], r1[ROUTE_TICKET_LEN + 1], r2[ROUTE_TICKET_LEN + 1];
	random_ticket(t);
	assert_int_equal(route_append(&k1, t, ROUTE_TICKET_DIGITS, 1, 2, r1, NULL), 0);
	assert_int_equal(route_append(&k2, t, ROUTE_TICKET_DIGITS, 1, 2, r2, NULL), 0);
	assert_string_not_equal(r1, r2);
	char back[ROUTE_TICKET_DIGITS + 1];
	uint32_t ip;
	uint16_t port;
	assert_int_equal(route_strip(&k2, r1, ROUTE_TICKET_LEN, back, &ip, &port), -1);
	assert_int_equal(route_strip(&k1, r2, ROUTE_TICKET_LEN, back, &ip, &port), -1);
	route_key_wipe(&k1);
	route_key_wipe(&k2);
}

static void rotation(void **state)
{
	(void)state;
	struct route_key old, rotated, later;
	make_key(&old, OTHER, NULL);
	make_key(&rotated, SECRET, OTHER);
	make_key(&later, SECRET, NULL);
	char t[ROUTE_TICKET_DIGITS + 1], r_old[ROUTE_TICKET_LEN + 1], r_new[ROUTE_TICKET_LEN + 1];
	char r_cur[ROUTE_TICKET_LEN + 1], back[ROUTE_TICKET_DIGITS + 1];
	uint32_t ip = htonl(0xAC100002);
	uint32_t ip2;
	uint16_t port2;
	random_ticket(t);
	assert_int_equal(route_append(&old, t, ROUTE_TICKET_DIGITS, ip, 4443, r_old, NULL), 0);
	assert_int_equal(route_append(&rotated, t, ROUTE_TICKET_DIGITS, ip, 4443, r_new, NULL), 0);
	assert_int_equal(route_append(&later, t, ROUTE_TICKET_DIGITS, ip, 4443, r_cur, NULL), 0);
	/* New codes use the current secret. */
	assert_string_equal(r_new, r_cur);
	assert_string_not_equal(r_new, r_old);
	/* Old codes still decode after the rotation, with the right address. */
	assert_int_equal(route_strip(&rotated, r_old, ROUTE_TICKET_LEN, back, &ip2, &port2), 0);
	assert_string_equal(back, t);
	assert_int_equal(ip2, ip);
	assert_int_equal(port2, 4443);
	assert_int_equal(route_strip(&rotated, r_new, ROUTE_TICKET_LEN, back, &ip2, &port2), 0);
	assert_int_equal(ip2, ip);
	/* Once the previous secret is dropped, its codes are refused. */
	assert_int_equal(route_strip(&later, r_old, ROUTE_TICKET_LEN, back, &ip2, &port2), -1);
	route_key_wipe(&old);
	route_key_wipe(&rotated);
	route_key_wipe(&later);
}

static void short_secrets_refused(void **state)
{
	(void)state;
	struct route_key k;
	struct err e;
	assert_int_equal(route_key_init(&k, "0123456789abcde", NULL, &e), -1); /* 15 bytes */
	assert_non_null(strstr(e.msg, "16"));
	assert_int_equal(k.count, 0);
	assert_int_equal(route_key_init(&k, "", NULL, &e), -1);
	assert_int_equal(route_key_init(&k, NULL, NULL, &e), -1);
	assert_int_equal(route_key_init(&k, SECRET, "short", &e), -1);
	assert_int_equal(k.count, 0);
	assert_int_equal(route_key_init(&k, "0123456789abcdef", NULL, &e), 0); /* 16 bytes */
	assert_int_equal(k.count, 1);
	char *huge = malloc(ROUTE_SECRET_MAX + 2);
	memset(huge, 'x', ROUTE_SECRET_MAX + 1);
	huge[ROUTE_SECRET_MAX + 1] = '\0';
	assert_int_equal(route_key_init(&k, huge, NULL, &e), -1);
	free(huge);
	/* A wiped or failed key routes nothing. */
	char t[ROUTE_TICKET_DIGITS + 1], routed[ROUTE_TICKET_LEN + 1];
	random_ticket(t);
	assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, 1, 1, routed, &e), -1);
	route_key_wipe(&k);
}

static void bad_lengths_and_characters_refused(void **state)
{
	(void)state;
	struct route_key k;
	make_key(&k, SECRET, NULL);
	char t[ROUTE_TICKET_DIGITS + 1], routed[ROUTE_TICKET_LEN + 2];
	char back[ROUTE_TICKET_DIGITS + 1];
	uint32_t ip;
	uint16_t port;
	struct err e;
	random_ticket(t);
	assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, 7, 7, routed, NULL), 0);
	/* Lengths 62 and 64 (a digit dropped / added). */
	assert_int_equal(route_strip(&k, routed, ROUTE_TICKET_LEN - 1, back, &ip, &port), -1);
	routed[ROUTE_TICKET_LEN] = '0';
	routed[ROUTE_TICKET_LEN + 1] = '\0';
	assert_int_equal(route_strip(&k, routed, ROUTE_TICKET_LEN + 1, back, &ip, &port), -1);
	assert_int_equal(route_strip(&k, routed, 0, back, &ip, &port), -1);
	assert_int_equal(route_strip(&k, routed, ROUTE_TICKET_LEN, back, &ip, &port), 0);
	/* Non-digits anywhere, including look-alikes that parse as numbers. */
	const char subs[] = {' ', 'a', '+', '-', '/', ':', '\0', '\xb9'};
	for (int pos = 0; pos < ROUTE_TICKET_LEN; pos += 7) {
		for (size_t s = 0; s < sizeof subs; s++) {
			char bad[ROUTE_TICKET_LEN + 1];
			memcpy(bad, routed, ROUTE_TICKET_LEN);
			bad[pos] = subs[s];
			assert_int_equal(route_strip(&k, bad, ROUTE_TICKET_LEN, back, &ip, &port),
					 -1);
		}
	}
	/* Worker tickets of the wrong shape. */
	char out[ROUTE_TICKET_LEN + 1];
	assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS - 1, 7, 7, out, &e), -1);
	assert_int_equal(route_append(&k, routed, ROUTE_TICKET_DIGITS + 1, 7, 7, out, &e), -1);
	t[5] = 'x';
	assert_int_equal(route_append(&k, t, ROUTE_TICKET_DIGITS, 7, 7, out, &e), -1);
	/* An already routed ticket is not routed again. */
	assert_int_equal(route_append(&k, routed, ROUTE_TICKET_LEN, 7, 7, out, &e), -1);
	route_key_wipe(&k);
}

static void monitor_rewrite(void **state)
{
	(void)state;
	struct route_key k;
	make_key(&k, SECRET, NULL);
	struct route_target tg = {.key = &k, .ip_be = htonl(0x0A000102), .port = 8080};
	char t[ROUTE_TICKET_DIGITS + 1];
	random_ticket(t);
	char msg[64];
	int n = snprintf(msg, sizeof msg, "run:browser:%s", t);
	struct buf r;
	buf_init(&r, 8192);
	assert_int_equal(route_rewrite_monitor(&tg, msg, (size_t)n, &r), 1);
	assert_int_equal(r.len, 12 + ROUTE_TICKET_LEN);
	assert_memory_equal(r.data, msg, (size_t)n);
	char back[ROUTE_TICKET_DIGITS + 1];
	uint32_t ip;
	uint16_t port;
	assert_int_equal(route_strip(&k, r.data + 12, ROUTE_TICKET_LEN, back, &ip, &port), 0);
	assert_string_equal(back, t);
	assert_int_equal(ip, tg.ip_be);
	assert_int_equal(port, 8080);
	/* Everything else is kept. */
	const char *keep[] = {"message:running", "run:terminal", "run:vnc:12345678",
			      "run:browser:", "compilation:run:browser:1"};
	for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
		buf_reset(&r);
		assert_int_equal(route_rewrite_monitor(&tg, keep[i], strlen(keep[i]), &r), 0);
	}
	buf_reset(&r);
	assert_int_equal(route_rewrite_monitor(&tg, msg, (size_t)n - 1, &r), 0); /* 38 digits */
	msg[n - 1] = 'x';
	assert_int_equal(route_rewrite_monitor(&tg, msg, (size_t)n, &r), 0);
	char longer[80];
	n = snprintf(longer, sizeof longer, "run:browser:%s0", t);
	assert_int_equal(route_rewrite_monitor(&tg, longer, (size_t)n, &r), 0);
	buf_free(&r);
	route_key_wipe(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip_random),
	    cmocka_unit_test(every_single_digit_change_refused),
	    cmocka_unit_test(code_moved_to_other_ticket_refused),
	    cmocka_unit_test(enc_is_opaque),
	    cmocka_unit_test(different_secret_different_code),
	    cmocka_unit_test(rotation),
	    cmocka_unit_test(short_secrets_refused),
	    cmocka_unit_test(bad_lengths_and_characters_refused),
	    cmocka_unit_test(monitor_rewrite),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
