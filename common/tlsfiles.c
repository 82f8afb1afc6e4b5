#include "tlsfiles.h"

#include <errno.h>
#include <openssl/ssl.h>

int tls_files_check(const char *cert, const char *key, struct err *err)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!c)
		return err_set(err, ENOMEM, "SSL_CTX_new failed");
	int r = 0;
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1)
		r = err_set(err, EINVAL, "cannot load certificate %s", cert);
	else if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1)
		r = err_set(err, EINVAL, "cannot load private key %s", key);
	else if (SSL_CTX_check_private_key(c) != 1)
		r = err_set(err, EINVAL, "private key %s does not match certificate %s", key, cert);
	SSL_CTX_free(c);
	return r;
}
