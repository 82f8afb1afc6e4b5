/* Unit tests for jail/netacl: TASK_ONLY_FROM matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "netacl.h"

/* A client address as the server's accept() would give it. */
struct client {
	struct sockaddr_storage ss;
};

static const struct sockaddr *client(struct client *c, const char *text)
{
	memset(c, 0, sizeof *c);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		if (inet_pton(AF_INET6, text, &s6->sin6_addr) != 1)
			fail_msg("bad test address %s", text);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		if (inet_pton(AF_INET, text, &s4->sin_addr) != 1)
			fail_msg("bad test address %s", text);
	}
	return (const struct sockaddr *)&c->ss;
}

static bool allows(const struct netacl *acl, const char *addr)
{
	struct client c;
	return netacl_allows(acl, client(&c, addr));
}

static void parse_ok(struct netacl *acl, const char *spec)
{
	struct err e;
	err_clear(&e);
	if (netacl_parse(acl, spec, &e) != 0)
		fail_msg("'%s' refused: %s", spec, e.msg);
}

static void expect_allow(const char *spec, const char *const *yes, const char *const *no)
{
	struct netacl acl = {0};
	parse_ok(&acl, spec);
	for (; yes && *yes; yes++)
		if (!allows(&acl, *yes))
			fail_msg("'%s' should allow %s", spec, *yes);
	for (; no && *no; no++)
		if (allows(&acl, *no))
			fail_msg("'%s' should deny %s", spec, *no);
	netacl_free(&acl);
}

static void expect_bad(const char *spec, const char *msg_part)
{
	struct netacl acl = {0};
	struct err e;
	err_clear(&e);
	if (netacl_parse(&acl, spec, &e) != -1)
		fail_msg("'%s' accepted", spec);
	assert_int_not_equal(e.code, 0);
	if (!strstr(e.msg, msg_part))
		fail_msg("'%s': message '%s' lacks '%s'", spec, e.msg, msg_part);
	assert_null(acl.entries);
	assert_int_equal(acl.count, 0);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_empty_allows_all(void **state)
{
	static const char *const specs[] = {"", "   ", " \t ", NULL};
	for (size_t i = 0; i < 4; i++) {
		struct netacl acl = {0};
		parse_ok(&acl, specs[i]);
		assert_int_equal(acl.count, 0);
		assert_true(allows(&acl, "1.2.3.4"));
		assert_true(allows(&acl, "2001:db8::1"));
		assert_true(netacl_allows(&acl, NULL));
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		assert_true(netacl_allows(&acl, (const struct sockaddr *)&un));
		netacl_free(&acl);
	}
}

static void test_prefix_legacy(void **state)
{
	expect_allow("10.1.", L("10.1.0.0", "10.1.2.3", "10.1.255.255"),
		     L("10.2.1.1", "110.1.2.3", "10.10.1.1", "1.10.1.2"));
	/* A complete address is a prefix too: that is what existing configs mean. */
	expect_allow("192.168.1.1",
		     L("192.168.1.1", "192.168.1.15", "192.168.1.100", "192.168.1.199"),
		     L("192.168.1.2", "192.168.1.200", "192.168.2.1", "192.168.10.1"));
	/* No dot: the first octet's digits, any length up to three. */
	expect_allow("10", L("10.0.0.1", "100.1.1.1", "101.2.3.4"), L("1.0.0.10", "9.10.0.1"));
	expect_allow("127.0.0.1 10.", L("127.0.0.1", "10.9.9.9"), L("127.0.0.2", "11.0.0.1"));
}

static void test_prefix_ipv6_text(void **state)
{
	expect_allow("2001:DB8:", L("2001:db8::1", "2001:db8:1:2::3"),
		     L("2001:db9::1", "10.0.0.1"));
	expect_allow("fe80", L("fe80::1", "fe80::abcd:1"), L("fe81::1", "::1"));
	expect_allow("::1", L("::1", "::1:2:3", "::12"), L("::2", "1::1"));
	/* inet_ntop writes ::1:2 as "::0.1.0.2": text prefixes are fragile for
	 * IPv6, which is why CIDR exists. */
	expect_allow("::1", NULL, L("::1:2"));
	expect_allow("::0.", L("::1:2"), L("::1"));
}

static void test_prefix_normalised_lowercase(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "FE80:AB");
	assert_int_equal(acl.count, 1);
	assert_string_equal(acl.entries[0].text, "fe80:ab");
	assert_int_equal(acl.entries[0].kind, NETACL_PREFIX);
	netacl_free(&acl);
}

static void test_cidr_ipv4(void **state)
{
	expect_allow("10.0.0.0/8", L("10.0.0.0", "10.255.255.255", "10.1.2.3"),
		     L("11.0.0.0", "9.255.255.255", "100.0.0.1"));
	expect_allow("192.168.0.0/23", L("192.168.0.1", "192.168.1.255"),
		     L("192.168.2.0", "192.167.255.255"));
	expect_allow("203.0.113.7/32", L("203.0.113.7"), L("203.0.113.70", "203.0.113.6"));
	expect_allow("0.0.0.0/0", L("0.0.0.0", "1.2.3.4", "255.255.255.255"),
		     L("2001:db8::1", "::1"));
	expect_allow("128.0.0.0/1", L("128.0.0.0", "200.1.1.1"), L("127.255.255.255"));
}

static void test_cidr_host_bits_ignored(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "10.1.2.3/16");
	assert_int_equal(acl.entries[0].kind, NETACL_CIDR);
	assert_int_equal(acl.entries[0].family, AF_INET);
	assert_int_equal(acl.entries[0].bits, 16);
	static const unsigned char net[4] = {10, 1, 0, 0};
	assert_memory_equal(acl.entries[0].addr, net, 4);
	assert_true(allows(&acl, "10.1.200.1"));
	assert_false(allows(&acl, "10.2.2.3"));
	assert_string_equal(acl.entries[0].text, "10.1.2.3/16");
	netacl_free(&acl);
}

static void test_cidr_ipv6(void **state)
{
	expect_allow("::/0", L("::1", "2001:db8::1", "fe80::1", "ffff::"),
		     L("10.0.0.1", "::ffff:10.0.0.1"));
	expect_allow("2001:db8::1/128", L("2001:db8::1"), L("2001:db8::2", "2001:db8::1:0"));
	expect_allow("2001:db8:1:2::/64", L("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"),
		     L("2001:db8:1:3::1", "2001:db8:1::1"));
	expect_allow("2001:DB8::/33", L("2001:db8::1", "2001:db8:7fff::1"),
		     L("2001:db8:8000::1", "2001:db9::"));
	expect_allow("::1/128", L("::1"), L("127.0.0.1", "::2"));
}

static void test_mapped_clients_are_ipv4(void **state)
{
	expect_allow("10.1.", L("::ffff:10.1.2.3"), L("::ffff:10.2.2.3"));
	expect_allow("10.0.0.0/8", L("::ffff:10.1.2.3"), L("::ffff:11.0.0.1"));
	expect_allow("127.0.0.1/32", L("::ffff:127.0.0.1"), L("::ffff:127.0.0.2"));
	/* Not mapped: IPv4-compatible (::a.b.c.d) is a plain IPv6 address. */
	expect_allow("10.0.0.0/8", NULL, L("::10.1.2.3"));
	/* The text prefix sees the IPv4 form, never "::ffff:". */
	expect_allow("::ffff:", NULL, L("::ffff:10.1.2.3"));
}

static void test_mapped_cidr_entries_are_ipv4(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "::ffff:10.0.0.0/104");
	assert_int_equal(acl.entries[0].family, AF_INET);
	assert_int_equal(acl.entries[0].bits, 8);
	assert_true(allows(&acl, "10.1.2.3"));
	assert_true(allows(&acl, "::ffff:10.1.2.3"));
	assert_false(allows(&acl, "11.1.2.3"));
	netacl_free(&acl);

	parse_ok(&acl, "::ffff:0:0/96");
	assert_int_equal(acl.entries[0].family, AF_INET);
	assert_int_equal(acl.entries[0].bits, 0);
	assert_true(allows(&acl, "8.8.8.8"));
	assert_false(allows(&acl, "2001:db8::1"));
	netacl_free(&acl);

	parse_ok(&acl, "::ffff:192.0.2.1/128");
	assert_true(allows(&acl, "192.0.2.1"));
	assert_false(allows(&acl, "192.0.2.2"));
	netacl_free(&acl);
}

static void test_several_entries_and_blanks(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "  10.0.0.0/8\t192.168.1.  2001:db8::/32 \t");
	assert_int_equal(acl.count, 3);
	assert_int_equal(acl.entries[0].kind, NETACL_CIDR);
	assert_int_equal(acl.entries[1].kind, NETACL_PREFIX);
	assert_int_equal(acl.entries[2].kind, NETACL_CIDR);
	assert_true(allows(&acl, "10.9.8.7"));
	assert_true(allows(&acl, "192.168.1.77"));
	assert_true(allows(&acl, "2001:db8:ffff::1"));
	assert_false(allows(&acl, "192.168.2.77"));
	assert_false(allows(&acl, "2001:db9::1"));
	netacl_free(&acl);
}

static void test_other_families_denied(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "0.0.0.0/0 ::/0");
	struct sockaddr_un un;
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	assert_false(netacl_allows(&acl, (const struct sockaddr *)&un));
	assert_false(netacl_allows(&acl, NULL));
	assert_true(allows(&acl, "1.1.1.1"));
	netacl_free(&acl);
}

static void test_bad_entries(void **state)
{
	expect_bad("example.com", "entry 'example.com'");
	expect_bad("localhost", "not an address");
	expect_bad("10.0.0.0/33", "above 32");
	expect_bad("::/129", "above 128");
	expect_bad("10.0.0.0/", "bad prefix length");
	expect_bad("10.0.0.0/1234", "bad prefix length");
	expect_bad("10.0.0.0/-1", "bad prefix length");
	expect_bad("10.0.0.0/8a", "bad prefix length");
	expect_bad("10.0.0.0/8/8", "bad prefix length");
	expect_bad("/8", "not an IPv4 address");
	expect_bad("10.0.0/8", "not an IPv4 address");
	expect_bad("300.0.0.0/8", "not an IPv4 address");
	expect_bad("2001:db8::g/32", "not an IPv6 address");
	expect_bad("1.2.3.4.5", "not an IPv4 address prefix");
	expect_bad("1.2.3.4.", "not an IPv4 address prefix");
	expect_bad("256.", "not an IPv4 address prefix");
	expect_bad("10..1", "not an IPv4 address prefix");
	expect_bad(".10", "not an IPv4 address prefix");
	expect_bad("1000.", "not an IPv4 address prefix");
	expect_bad("10.a.", "not an IPv4 address prefix");
	expect_bad("10.1.,10.2.", "not an address");
	expect_bad("12345", "not an address prefix");
	expect_bad("*", "not an address");
	expect_bad("10.1. bad!", "entry 'bad!'");
	expect_bad("1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111",
		   "too long");
	expect_bad("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa",
		   "longer than an IPv6 address");
}

static void test_failure_keeps_previous_list(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "10.");
	struct err e;
	assert_int_equal(netacl_parse(&acl, "11. nonsense", &e), -1);
	assert_int_equal(acl.count, 1);
	assert_true(allows(&acl, "10.0.0.1"));
	assert_false(allows(&acl, "11.0.0.1"));
	/* a successful parse replaces the list */
	parse_ok(&acl, "11.");
	assert_false(allows(&acl, "10.0.0.1"));
	assert_true(allows(&acl, "11.0.0.1"));
	parse_ok(&acl, "");
	assert_int_equal(acl.count, 0);
	assert_true(allows(&acl, "10.0.0.1"));
	netacl_free(&acl);
}

static void test_free_twice_and_null_spec(void **state)
{
	struct netacl acl = {0};
	parse_ok(&acl, "10.");
	netacl_free(&acl);
	assert_null(acl.entries);
	assert_int_equal(acl.count, 0);
	netacl_free(&acl);
	assert_int_equal(netacl_parse(&acl, NULL, NULL), 0);
	assert_int_equal(acl.count, 0);
}

static void test_too_many_entries(void **state)
{
	size_t n = NETACL_MAX_ENTRIES + 1;
	char *spec = malloc(n * 3 + 1);
	assert_non_null(spec);
	for (size_t i = 0; i < n; i++)
		memcpy(spec + i * 3, "10 ", 3);
	spec[n * 3] = '\0';
	struct netacl acl = {0};
	struct err e;
	assert_int_equal(netacl_parse(&acl, spec, &e), -1);
	assert_int_equal(e.code, E2BIG);
	spec[(n - 1) * 3] = '\0';
	parse_ok(&acl, spec);
	assert_int_equal(acl.count, NETACL_MAX_ENTRIES);
	netacl_free(&acl);
	free(spec);
}

static void test_format(void **state)
{
	struct netacl acl = {0};
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(netacl_format(&acl, &b, NULL), 0);
	assert_int_equal(b.len, 0);
	parse_ok(&acl, "\t10.1.  2001:DB8::/32 192.168.0.0/16 ");
	assert_int_equal(netacl_format(&acl, &b, NULL), 0);
	assert_string_equal(b.data, "10.1. 2001:DB8::/32 192.168.0.0/16");
	/* the formatted list parses back to the same list */
	struct netacl again = {0};
	parse_ok(&again, b.data);
	assert_int_equal(again.count, 3);
	assert_true(allows(&again, "2001:db8::5"));
	netacl_free(&again);
	/* a capped buffer reports the overflow */
	struct buf small;
	buf_init(&small, 4);
	struct err e;
	assert_int_equal(netacl_format(&acl, &small, &e), -1);
	assert_int_equal(e.code, E2BIG);
	buf_free(&small);
	buf_free(&b);
	netacl_free(&acl);
}

static void test_forwarded_for(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char text[64];
	static const struct {
		const char *v, *want;
	} ok[] = {
	    {"10.9.9.9", "10.9.9.9"},
	    {"192.0.2.1, 10.9.9.9", "10.9.9.9"},
	    {"192.0.2.1,10.9.9.9  ", "10.9.9.9"},
	    {"spoofed, 2001:db8::7", "2001:db8::7"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		memset(&ss, 0xab, sizeof ss);
		assert_int_equal(netacl_forwarded_for(ok[i].v, strlen(ok[i].v), &ss), 0);
		const void *a = ss.ss_family == AF_INET
				    ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
				    : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		assert_non_null(inet_ntop(ss.ss_family, a, text, sizeof text));
		assert_string_equal(text, ok[i].want);
	}
	/* Only the last entry counts: a good earlier one never rescues a bad last one. */
	static const char *const bad[] = {
	    "", " ", "10.9.9.9, ", "10.9.9.9, host.example", "10.9.9.9, 10.1.1.1:80", "x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(netacl_forwarded_for(bad[i], strlen(bad[i]), &ss), -1);
	/* Not NUL-terminated: the length bounds it. */
	assert_int_equal(netacl_forwarded_for("10.0.0.1, 10.0.0.2XYZ", 18, &ss), 0);
	assert_non_null(
	    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text));
	assert_string_equal(text, "10.0.0.2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_allows_all),
	    cmocka_unit_test(test_prefix_legacy),
	    cmocka_unit_test(test_prefix_ipv6_text),
	    cmocka_unit_test(test_prefix_normalised_lowercase),
	    cmocka_unit_test(test_cidr_ipv4),
	    cmocka_unit_test(test_cidr_host_bits_ignored),
	    cmocka_unit_test(test_cidr_ipv6),
	    cmocka_unit_test(test_mapped_clients_are_ipv4),
	    cmocka_unit_test(test_mapped_cidr_entries_are_ipv4),
	    cmocka_unit_test(test_several_entries_and_blanks),
	    cmocka_unit_test(test_other_families_denied),
	    cmocka_unit_test(test_bad_entries),
	    cmocka_unit_test(test_failure_keeps_previous_list),
	    cmocka_unit_test(test_free_twice_and_null_spec),
	    cmocka_unit_test(test_too_many_entries),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_forwarded_for),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
