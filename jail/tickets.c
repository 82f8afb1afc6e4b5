#include "tickets.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <errno.h>
#include <string.h>

int ticket_generate(char out[TICKET_LEN + 1], struct err *err)
{
	unsigned char pool[64];
	size_t used = sizeof pool, n = 0;
	while (n < TICKET_LEN) {
		if (used == sizeof pool) {
			if (RAND_bytes(pool, sizeof pool) != 1)
				return err_set(err, EIO, "RAND_bytes failed: %lu", ERR_get_error());
			used = 0;
		}
		unsigned char b = pool[used++];
		if (b >= 250) /* 250 = 25 * 10: keeps every digit equally likely */
			continue;
		out[n++] = (char)('0' + b % 10);
	}
	out[TICKET_LEN] = '\0';
	OPENSSL_cleanse(pool, sizeof pool);
	return 0;
}

bool ticket_format_ok(const char *s, size_t len)
{
	if (len == 0 || len > TICKET_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool ticket_equal(const char *stored, const char *given, size_t given_len)
{
	if (given_len != strlen(stored))
		return false;
	return CRYPTO_memcmp(stored, given, given_len) == 0;
}

void ticket_digest(const char *ticket, size_t len, unsigned char out[TICKET_DIGEST_LEN])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)ticket, len, md);
	memcpy(out, md, TICKET_DIGEST_LEN);
	OPENSSL_cleanse(md, sizeof md);
}
