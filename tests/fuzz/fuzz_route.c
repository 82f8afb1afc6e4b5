/*
 * fuzz_route.c - libFuzzer property target: route_strip / route_append (proxy/route.c).
 *
 * Keys: A (the current secret), B (a previous one); kA = {A}, kAB = {A, previous B},
 * kB = {B}. The seed corpus holds tickets routed under A and under B, so the fuzzer starts
 * from inputs that pass the tag.
 * Properties (abort() on violation), on the raw input as a routed ticket:
 *  - route_strip never crashes, whatever the bytes and length;
 *  - success only for ROUTE_TICKET_LEN digits, and the ticket it writes is the input's prefix;
 *  - if kA accepts, kAB accepts with the same result, and route_append under kA of the result
 *    gives the input back;
 *  - if kAB accepts, route_append under kA or under kB gives the input back.
 * And on a ticket built from the input (digits = bytes mod 10, address from the bytes):
 *  - route_append then route_strip round-trips under kA and kAB;
 *  - changing one digit (position and delta from the input) is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The seed corpus's valid tickets were routed under these: keep them. */
static const char SECRET_A[] = "fuzz-route-secret-A-0123456789";
static const char SECRET_B[] = "fuzz-route-secret-B-9876543210";

static struct route_key ka, kab, kb;

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	check(route_key_init(&ka, SECRET_A, NULL, NULL) == 0, "key A");
	check(route_key_init(&kab, SECRET_A, SECRET_B, NULL) == 0, "key A+B");
	check(route_key_init(&kb, SECRET_B, NULL, NULL) == 0, "key B");
	return 0;
}

static int all_digits(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

static void raw_input(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char t1[ROUTE_TICKET_DIGITS + 1], t2[ROUTE_TICKET_DIGITS + 1];
	char again[ROUTE_TICKET_LEN + 1];
	uint32_t ip1, ip2;
	uint16_t port1, port2;
	int ok_a = route_strip(&ka, in, size, t1, &ip1, &port1) == 0;
	int ok_ab = route_strip(&kab, in, size, t2, &ip2, &port2) == 0;
	if (ok_a || ok_ab)
		check(size == ROUTE_TICKET_LEN && all_digits(data, size), "accepted only digits");
	if (ok_a) {
		check(ok_ab, "kAB accepts what kA accepts");
		check(!strcmp(t1, t2) && ip1 == ip2 && port1 == port2, "kA and kAB agree");
		check(strlen(t1) == ROUTE_TICKET_DIGITS && !memcmp(t1, in, ROUTE_TICKET_DIGITS),
		      "ticket is the prefix");
		check(route_append(&ka, t1, ROUTE_TICKET_DIGITS, ip1, port1, again, NULL) == 0,
		      "re-append");
		check(!memcmp(again, in, ROUTE_TICKET_LEN), "re-append gives the input back");
	}
	if (ok_ab) {
		check(!memcmp(t2, in, ROUTE_TICKET_DIGITS), "ticket is the prefix (kAB)");
		int back = 0;
		if (route_append(&ka, t2, ROUTE_TICKET_DIGITS, ip2, port2, again, NULL) == 0)
			back |= !memcmp(again, in, ROUTE_TICKET_LEN);
		if (route_append(&kb, t2, ROUTE_TICKET_DIGITS, ip2, port2, again, NULL) == 0)
			back |= !memcmp(again, in, ROUTE_TICKET_LEN);
		check(back, "kAB result re-appends under A or B to the input");
	}
}

static void built_ticket(const uint8_t *data, size_t size)
{
	char t[ROUTE_TICKET_DIGITS + 1], routed[ROUTE_TICKET_LEN + 1];
	char back[ROUTE_TICKET_DIGITS + 1];
	for (size_t i = 0; i < ROUTE_TICKET_DIGITS; i++)
		t[i] = (char)('0' + (i < size ? data[i] % 10 : 0));
	t[ROUTE_TICKET_DIGITS] = '\0';
	uint32_t ip = 0;
	uint16_t port = 0;
	for (size_t i = 0; i < size; i++) {
		ip = ip * 31 + data[i];
		port = (uint16_t)(port * 17 + data[i]);
	}
	check(route_append(&ka, t, ROUTE_TICKET_DIGITS, ip, port, routed, NULL) == 0, "append");
	uint32_t ip2;
	uint16_t port2;
	check(route_strip(&ka, routed, ROUTE_TICKET_LEN, back, &ip2, &port2) == 0 &&
		  !strcmp(back, t) && ip2 == ip && port2 == port,
	      "round trip under kA");
	check(route_strip(&kab, routed, ROUTE_TICKET_LEN, back, &ip2, &port2) == 0 &&
		  !strcmp(back, t) && ip2 == ip && port2 == port,
	      "round trip under kAB");
	size_t pos = size ? data[0] % ROUTE_TICKET_LEN : 0;
	int delta = size > 1 ? 1 + data[1] % 9 : 1;
	routed[pos] = (char)('0' + (routed[pos] - '0' + delta) % 10);
	check(route_strip(&kab, routed, ROUTE_TICKET_LEN, back, &ip2, &port2) == -1,
	      "one changed digit refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	raw_input(data, size);
	built_ticket(data, size);
	return 0;
}
