#include "netacl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

static const unsigned char v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Clears every bit of addr (nbytes long) past the first `bits`. */
static void mask_host_bits(unsigned char *addr, size_t nbytes, unsigned bits)
{
	for (size_t i = 0; i < nbytes; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		addr[i] &= (unsigned char)(0xff00u >> bits);
		bits = 0;
	}
}

static bool bits_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	size_t whole = bits / 8;
	if (memcmp(a, b, whole) != 0)
		return false;
	unsigned rest = bits % 8;
	if (rest == 0)
		return true;
	unsigned char m = (unsigned char)(0xff00u >> rest);
	return (a[whole] & m) == (b[whole] & m);
}

static int parse_cidr(struct netacl_entry *e, const char *text, const char *slash, struct err *err)
{
	char addr[NETACL_MAX_TEXT];
	size_t alen = (size_t)(slash - text);
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	const char *b = slash + 1;
	size_t blen = strlen(b);
	if (blen == 0 || blen > 3)
		return err_set(err, EINVAL, "entry '%s': bad prefix length", text);
	unsigned bits = 0;
	for (const char *p = b; *p; p++) {
		if (!is_digit(*p))
			return err_set(err, EINVAL, "entry '%s': bad prefix length", text);
		bits = bits * 10 + (unsigned)(*p - '0');
	}
	if (strchr(addr, ':')) {
		if (inet_pton(AF_INET6, addr, e->addr) != 1)
			return err_set(err, EINVAL, "entry '%s': not an IPv6 address", text);
		if (bits > 128)
			return err_set(err, EINVAL, "entry '%s': IPv6 prefix length above 128",
				       text);
		e->family = AF_INET6;
		if (bits >= 96 && memcmp(e->addr, v4mapped_prefix, 12) == 0) {
			/* Mapped clients are matched as IPv4, so the block must be too. */
			memmove(e->addr, e->addr + 12, 4);
			memset(e->addr + 4, 0, 12);
			e->family = AF_INET;
			bits -= 96;
		}
	} else {
		if (inet_pton(AF_INET, addr, e->addr) != 1)
			return err_set(err, EINVAL, "entry '%s': not an IPv4 address", text);
		if (bits > 32)
			return err_set(err, EINVAL, "entry '%s': IPv4 prefix length above 32",
				       text);
		e->family = AF_INET;
	}
	e->bits = bits;
	mask_host_bits(e->addr, e->family == AF_INET ? 4 : 16, bits);
	e->kind = NETACL_CIDR;
	return 0;
}

/* IPv4-looking prefix: up to four dot-separated groups of 1..3 digits, each
 * at most 255; only the last group may be empty (after a trailing dot). */
static bool valid_ipv4_prefix(const char *t)
{
	int groups = 0;
	const char *p = t;
	for (;;) {
		unsigned v = 0;
		int nd = 0;
		while (is_digit(*p)) {
			if (++nd > 3)
				return false;
			v = v * 10 + (unsigned)(*p++ - '0');
		}
		if (v > 255)
			return false;
		if (nd == 0 && *p != '\0')
			return false; /* leading dot or ".." */
		if (nd > 0)
			groups++;
		if (*p == '\0')
			break;
		/* *p == '.' */
		p++;
		if (groups == 4)
			return false; /* "1.2.3.4." */
	}
	return groups > 0;
}

static int parse_prefix(struct netacl_entry *e, const char *text, struct err *err)
{
	bool has_colon = false, has_dot = false;
	for (const char *p = text; *p; p++) {
		if (*p == ':')
			has_colon = true;
		else if (*p == '.')
			has_dot = true;
		else if (!is_hex(*p))
			return err_set(err, EINVAL,
				       "entry '%s': not an address, address prefix or CIDR block",
				       text);
	}
	if (!has_colon) {
		bool letters = false;
		for (const char *p = text; *p; p++)
			if (*p >= 'a' && *p <= 'f')
				letters = true;
		if (has_dot && (letters || !valid_ipv4_prefix(text)))
			return err_set(err, EINVAL, "entry '%s': not an IPv4 address prefix", text);
		if (!has_dot && strlen(text) > 4)
			return err_set(err, EINVAL, "entry '%s': not an address prefix", text);
	} else if (strlen(text) >= INET6_ADDRSTRLEN) {
		return err_set(err, EINVAL, "entry '%s': longer than an IPv6 address", text);
	}
	e->kind = NETACL_PREFIX;
	e->family = 0;
	e->bits = 0;
	return 0;
}

static int parse_entry(struct netacl_entry *e, const char *start, size_t len, struct err *err)
{
	memset(e, 0, sizeof *e);
	if (len >= NETACL_MAX_TEXT)
		return err_set(err, EINVAL, "entry '%.20s...' is too long", start);
	memcpy(e->text, start, len);
	e->text[len] = '\0';
	const char *slash = strchr(e->text, '/');
	if (slash)
		return parse_cidr(e, e->text, slash, err);
	for (char *p = e->text; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return parse_prefix(e, e->text, err);
}

int netacl_parse(struct netacl *acl, const char *spec, struct err *err)
{
	if (!spec)
		spec = "";
	size_t n = 0;
	for (const char *p = spec; *p;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		n++;
		while (*p && !is_blank(*p))
			p++;
	}
	if (n > NETACL_MAX_ENTRIES)
		return err_set(err, E2BIG, "more than %d entries", NETACL_MAX_ENTRIES);
	struct netacl_entry *entries = NULL;
	if (n) {
		entries = calloc(n, sizeof *entries);
		if (!entries)
			return err_sys(err, ENOMEM, "allocating %zu entries", n);
	}
	size_t i = 0;
	for (const char *p = spec; *p;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && !is_blank(*p))
			p++;
		if (parse_entry(&entries[i], start, (size_t)(p - start), err) < 0) {
			free(entries);
			return -1;
		}
		i++;
	}
	free(acl->entries);
	acl->entries = entries;
	acl->count = n;
	return 0;
}

bool netacl_allows(const struct netacl *acl, const struct sockaddr *sa)
{
	if (acl->count == 0)
		return true;
	if (!sa)
		return false;
	int family;
	unsigned char addr[16];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		family = AF_INET;
		memcpy(addr, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(addr, &sin6->sin6_addr, 16);
		if (memcmp(addr, v4mapped_prefix, 12) == 0) {
			family = AF_INET;
			memmove(addr, addr + 12, 4);
		} else {
			family = AF_INET6;
		}
	} else {
		return false;
	}
	char text[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, addr, text, sizeof text))
		return false;
	for (size_t i = 0; i < acl->count; i++) {
		const struct netacl_entry *e = &acl->entries[i];
		if (e->kind == NETACL_PREFIX) {
			if (strncmp(text, e->text, strlen(e->text)) == 0)
				return true;
		} else if (e->family == family && bits_match(addr, e->addr, e->bits)) {
			return true;
		}
	}
	return false;
}

void netacl_free(struct netacl *acl)
{
	free(acl->entries);
	acl->entries = NULL;
	acl->count = 0;
}

int netacl_format(const struct netacl *acl, struct buf *out, struct err *err)
{
	for (size_t i = 0; i < acl->count; i++) {
		if (i && buf_puts(out, " ", err) < 0)
			return -1;
		if (buf_puts(out, acl->entries[i].text, err) < 0)
			return -1;
	}
	return 0;
}

int netacl_forwarded_for(const char *value, size_t len, struct sockaddr_storage *out)
{
	const char *end = value + len, *last = value;
	for (const char *c = value; c < end; c++)
		if (*c == ',')
			last = c + 1;
	while (last < end && (*last == ' ' || *last == '\t'))
		last++;
	size_t n = (size_t)(end - last);
	while (n && (last[n - 1] == ' ' || last[n - 1] == '\t'))
		n--;
	char ip[INET6_ADDRSTRLEN];
	if (n == 0 || n >= sizeof ip)
		return -1;
	memcpy(ip, last, n);
	ip[n] = '\0';
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
		v6->sin6_family = AF_INET6;
	else
		return -1;
	*out = ss;
	return 0;
}
