#include "registry.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "log.h"

#define SMALL_BODY_MAX (64 * 1024) /* error and token answers */
#define TOKEN_MAX      (16 * 1024)
#define MAX_REDIRECTS  5
#define TOKEN_SLOTS    8
#define USER_AGENT     "vplcell-registry-client/1"
#define ACCEPT_ALL                                                                                 \
	"Accept: " REG_MT_OCI_INDEX ", " REG_MT_OCI_MANIFEST ", " REG_MT_DOCKER_LIST               \
	", " REG_MT_DOCKER_MANIFEST

struct cred {
	char *host, *user, *pass;
	int basic; /* the host asked for Basic: send it up front from now on */
};

struct token {
	char host[256];
	char scope[320];
	char *value;
	time_t expires; /* CLOCK_MONOTONIC seconds */
};

struct reg_client {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *plain_http_hosts, *ca_file;
	struct cred *creds;
	size_t ncreds;
	long connect_timeout_ms, stall_timeout_s;
	char os[32], arch[32], variant[32];
	char platform[100];
	struct token tokens[TOKEN_SLOTS];
};

/* One HTTP exchange: what to send, and what came back. */
struct xfer {
	const char *method; /* GET HEAD POST PUT */
	char url[4096];
	const char *accept, *content_type; /* full header lines or NULL */
	const void *body;		   /* in-memory request body, or ... */
	size_t body_len, body_off;
	reg_source_fn src; /* ... a streamed one of src_size bytes */
	void *src_arg;
	int64_t src_size, sent;
	int src_failed; /* 1 error, 2 ended early */

	long status;
	char www_auth[2048], ctype[128], dcd[80], location[2048];
	int64_t clen;
	struct buf resp; /* body of non-2xx answers, or of 2xx ones without a sink */
	int overflow;

	reg_sink_fn sink; /* 2xx bodies of blob GETs */
	void *sink_arg;
	int sink_failed, too_big, too_long;
	EVP_MD_CTX *md;
	int64_t got, limit, expect;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static time_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void xfer_freep(struct xfer **x)
{
	if (*x) {
		buf_free(&(*x)->resp);
		EVP_MD_CTX_free((*x)->md);
		free(*x);
	}
}
#define cleanup_xfer __attribute__((cleanup(xfer_freep)))

static struct xfer *xfer_new(const char *method, size_t resp_max, struct err *err)
{
	struct xfer *x = calloc(1, sizeof *x);
	if (!x) {
		err_sys(err, ENOMEM, "registry request");
		return NULL;
	}
	x->method = method;
	buf_init(&x->resp, resp_max);
	x->limit = INT64_MAX;
	x->expect = -1;
	return x;
}

static char *dup_or_null(const char *s, int *fail)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*fail = 1;
	return d;
}

static const char *default_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__arm__)
	return "arm";
#elif defined(__i386__)
	return "386";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}

struct reg_client *reg_client_new(const struct reg_opts *o, struct err *err)
{
	static const struct reg_opts none;
	if (!o)
		o = &none;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		err_set(err, EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	struct reg_client *c = calloc(1, sizeof *c);
	if (!c) {
		err_sys(err, ENOMEM, "registry client");
		return NULL;
	}
	int fail = 0;
	c->curl = curl_easy_init();
	c->plain_http_hosts = dup_or_null(o->plain_http_hosts, &fail);
	c->ca_file = dup_or_null(o->ca_file, &fail);
	if (o->ncreds) {
		c->creds = calloc(o->ncreds, sizeof *c->creds);
		fail |= !c->creds;
		for (size_t i = 0; c->creds && i < o->ncreds; i++) {
			const struct reg_cred *r = &o->creds[i];
			const char *h = r->host ? r->host : "";
			/* Docker Hub credentials are often filed under docker.io. */
			if (!strcmp(h, "docker.io") || !strcmp(h, "index.docker.io"))
				h = IMAGE_DOCKER_HUB;
			c->creds[i].host = dup_or_null(h, &fail);
			c->creds[i].user = dup_or_null(r->user ? r->user : "", &fail);
			c->creds[i].pass = dup_or_null(r->pass ? r->pass : "", &fail);
			c->ncreds = i + 1;
		}
	}
	if (!c->curl || fail) {
		reg_client_free(c);
		err_sys(err, ENOMEM, "registry client");
		return NULL;
	}
	c->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
	c->stall_timeout_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 30;
	snprintf(c->os, sizeof c->os, "%s", o->os && *o->os ? o->os : "linux");
	snprintf(c->arch, sizeof c->arch, "%s", o->arch && *o->arch ? o->arch : default_arch());
	snprintf(c->variant, sizeof c->variant, "%s", o->variant ? o->variant : "");
	snprintf(c->platform, sizeof c->platform, "%s/%s%s%s", c->os, c->arch,
		 c->variant[0] ? "/" : "", c->variant);
	return c;
}

void reg_client_free(struct reg_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->plain_http_hosts);
	free(c->ca_file);
	for (size_t i = 0; i < c->ncreds; i++) {
		free(c->creds[i].host);
		free(c->creds[i].user);
		if (c->creds[i].pass)
			OPENSSL_cleanse(c->creds[i].pass, strlen(c->creds[i].pass));
		free(c->creds[i].pass);
	}
	free(c->creds);
	for (size_t i = 0; i < TOKEN_SLOTS; i++) {
		if (c->tokens[i].value)
			OPENSSL_cleanse(c->tokens[i].value, strlen(c->tokens[i].value));
		free(c->tokens[i].value);
	}
	free(c);
}

const char *reg_client_platform(const struct reg_client *c)
{
	return c->platform;
}

void reg_digest(const void *data, size_t len, char out[72])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static int digest_valid(const char *d)
{
	if (!d || strlen(d) != 71 || strncmp(d, "sha256:", 7))
		return 0;
	for (int i = 7; i < 71; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return 0;
	return 1;
}

static int is_plain(const struct reg_client *c, const char *host)
{
	const char *p = c->plain_http_hosts ? c->plain_http_hosts : "";
	size_t hl = strlen(host);
	while (*p) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == hl && !strncasecmp(p, host, n))
			return 1;
		p += n;
	}
	return 0;
}

static struct cred *cred_for(struct reg_client *c, const char *host)
{
	for (size_t i = 0; i < c->ncreds; i++)
		if (!strcasecmp(c->creds[i].host, host))
			return &c->creds[i];
	return NULL;
}

/* "scheme://host:port" of url, lowercased, into out; -1 if url does not parse. */
static int origin_of(const char *url, char *out, size_t n)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;
	if (u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
	    !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
	    !curl_url_get(u, CURLUPART_HOST, &host, 0) &&
	    !curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
		int len = snprintf(out, n, "%s://%s:%s", scheme, host, port);
		if (len > 0 && (size_t)len < n) {
			for (char *p = out; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			rc = 0;
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static void base_url(const struct reg_client *c, const char *host, char *out, size_t n)
{
	snprintf(out, n, "%s://%s", is_plain(c, host) ? "http" : "https", host);
}

static int same_origin(const struct reg_client *c, const char *url, const char *host)
{
	char a[600], b[600], base[300];
	base_url(c, host, base, sizeof base);
	return origin_of(url, a, sizeof a) == 0 && origin_of(base, b, sizeof b) == 0 &&
	       !strcmp(a, b);
}

/* ---- curl callbacks ---- */

static void copy_header_value(char *dst, size_t n, const char *v, size_t vn)
{
	if (vn >= n)
		vn = n - 1;
	memcpy(dst, v, vn);
	dst[vn] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	size_t ln = n;
	while (ln && (p[ln - 1] == '\r' || p[ln - 1] == '\n'))
		ln--;
	if (ln >= 5 && !memcmp(p, "HTTP/", 5)) {
		/* A new answer (after a 100 Continue): forget the previous one. */
		x->status = 0;
		x->www_auth[0] = x->ctype[0] = x->dcd[0] = x->location[0] = '\0';
		x->clen = -1;
		buf_reset(&x->resp);
		size_t i = 5;
		while (i < ln && p[i] != ' ')
			i++;
		while (i < ln && p[i] == ' ')
			i++;
		long st = 0;
		for (int d = 0; d < 3 && i < ln && isdigit((unsigned char)p[i]); d++, i++)
			st = st * 10 + (p[i] - '0');
		x->status = st;
		return n;
	}
	const char *colon = memchr(p, ':', ln);
	if (!colon)
		return n;
	size_t kn = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vn = ln - kn - 1;
	while (vn && (*v == ' ' || *v == '\t'))
		v++, vn--;
	while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
#define IS(name) (kn == sizeof(name) - 1 && !strncasecmp(p, name, kn))
	if (IS("WWW-Authenticate")) {
		size_t at = strlen(x->www_auth);
		if (at && at + 2 < sizeof x->www_auth) {
			memcpy(x->www_auth + at, ", ", 3);
			at += 2;
		}
		copy_header_value(x->www_auth + at, sizeof x->www_auth - at, v, vn);
	} else if (IS("Content-Type")) {
		const char *semi = memchr(v, ';', vn);
		size_t tn = semi ? (size_t)(semi - v) : vn;
		while (tn && v[tn - 1] == ' ')
			tn--;
		copy_header_value(x->ctype, sizeof x->ctype, v, tn);
		for (char *q = x->ctype; *q; q++)
			*q = (char)tolower((unsigned char)*q);
	} else if (IS("Docker-Content-Digest")) {
		copy_header_value(x->dcd, sizeof x->dcd, v, vn);
	} else if (IS("Location")) {
		if (vn < sizeof x->location)
			copy_header_value(x->location, sizeof x->location, v, vn);
	} else if (IS("Content-Length")) {
		int64_t cl = 0;
		size_t i;
		for (i = 0; i < vn && isdigit((unsigned char)v[i]) && cl < INT64_MAX / 10 - 9; i++)
			cl = cl * 10 + (v[i] - '0');
		x->clen = (i == vn && vn) ? cl : -1;
	}
#undef IS
	return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (x->sink && x->status >= 200 && x->status < 300) {
		if (x->got == 0 && x->clen > x->limit) {
			x->too_big = 1;
			return 0;
		}
		if ((int64_t)n > x->limit - x->got) {
			x->too_big = 1;
			return 0;
		}
		if (x->expect >= 0 && (int64_t)n > x->expect - x->got) {
			x->too_long = 1;
			return 0;
		}
		EVP_DigestUpdate(x->md, p, n);
		x->got += (int64_t)n;
		if (x->sink(x->sink_arg, p, n) < 0) {
			x->sink_failed = 1;
			return 0;
		}
		return n;
	}
	if (buf_append(&x->resp, p, n, NULL) < 0) {
		x->overflow = 1;
		return 0;
	}
	return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (x->src) {
		if (x->sent >= x->src_size)
			return 0;
		size_t want = n;
		if ((int64_t)want > x->src_size - x->sent)
			want = (size_t)(x->src_size - x->sent);
		ssize_t r = x->src(x->src_arg, p, want);
		if (r < 0 || (size_t)r > want) {
			x->src_failed = 1;
			return CURL_READFUNC_ABORT;
		}
		if (r == 0) {
			x->src_failed = 2;
			return CURL_READFUNC_ABORT;
		}
		x->sent += r;
		return (size_t)r;
	}
	size_t left = x->body_len - x->body_off;
	if (n > left)
		n = left;
	if (n)
		memcpy(p, (const char *)x->body + x->body_off, n);
	x->body_off += n;
	return n;
}

/* curl rewinds when it retries a request on a keep-alive connection that turned out dead. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;
	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	if (x->src)
		return off == 0 && x->sent == 0 ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
	if (off < 0 || (size_t)off > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ca_file is added to the default trust store rather than replacing it. */
static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
	const char *ca = arg;
	X509_STORE *st = SSL_CTX_get_cert_store(ssl_ctx);
	return X509_STORE_load_locations(st, ca, NULL) == 1 ? CURLE_OK : CURLE_SSL_CACERT_BADFILE;
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

/* Performs one exchange. Returns -1 with err set on a transport failure that is not one of our
   own aborts (those leave flags in x for the caller); peer names the server in messages. */
static int http_do(struct reg_client *c, struct xfer *x, const char *auth, const char *peer,
		   struct err *err)
{
	CURL *h = c->curl;
	__attribute__((cleanup(slist_freep))) struct curl_slist *hdrs = NULL;
	curl_easy_reset(h); /* keeps the live connections */
	c->errbuf[0] = '\0';
	x->status = 0;
	x->clen = -1;
	x->www_auth[0] = x->ctype[0] = x->dcd[0] = x->location[0] = '\0';
	x->overflow = x->src_failed = 0;
	x->body_off = 0;
	buf_reset(&x->resp);

	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* redirects are ours: see request() */
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (c->ca_file) {
		curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c->ca_file);
	}
	if (!strcmp(x->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(x->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (!strcmp(x->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(x->src ? x->src_size : (int64_t)x->body_len));
	}
	const char *lines[] = {x->accept, x->content_type, auth, "Expect:"};
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
		if (!lines[i])
			continue;
		struct curl_slist *l = curl_slist_append(hdrs, lines[i]);
		if (!l)
			return err_sys(err, ENOMEM, "registry request");
		hdrs = l;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_OK || x->too_big || x->too_long || x->sink_failed || x->src_failed ||
	    x->overflow)
		goto done;
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return err_set(err, EHOSTDOWN, "registry %s unreachable: %s", peer, why);
	case CURLE_OPERATION_TIMEDOUT:
		if (x->status == 0 && !strstr(why, "too slow"))
			return err_set(err, EHOSTDOWN, "registry %s unreachable: %s", peer, why);
		return err_set(err, ETIMEDOUT,
			       "transfer from registry %s stalled (slower than 1 KiB/s for %ld s)",
			       peer, c->stall_timeout_s);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return err_set(err, EPROTO, "TLS with registry %s failed: %s", peer, why);
	default:
		return err_set(err, EIO, "registry %s: %s", peer, why);
	}
done:
	log_debug("registry: %s %s -> %ld", x->method, x->url, x->status);
	return 0;
}

/* ---- authentication ---- */

struct challenge {
	char scheme[16];
	char realm[1024], service[256], scope[320];
};

/* RFC 7235: challenge = scheme [ 1*SP ( token68 / #( token "=" ( token / quoted-string ) ) ) ],
   several challenges separated by commas. Keeps the first Bearer, else the first Basic. */
static int parse_challenge(const char *s, struct challenge *out)
{
	struct challenge cur;
	int have = 0;
	memset(out, 0, sizeof *out);
	memset(&cur, 0, sizeof cur);
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *t = p;
		while (*p && *p != ' ' && *p != '\t' && *p != ',' && *p != '=')
			p++;
		size_t tn = (size_t)(p - t);
		const char *q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '=' && cur.scheme[0]) { /* auth-param of the current challenge */
			q++;
			while (*q == ' ' || *q == '\t')
				q++;
			char val[1024];
			size_t vn = 0;
			if (*q == '"') {
				for (q++; *q && *q != '"'; q++) {
					if (*q == '\\' && q[1])
						q++;
					if (vn + 1 < sizeof val)
						val[vn++] = *q;
				}
				if (*q == '"')
					q++;
			} else {
				while (*q && *q != ',' && *q != ' ' && *q != '\t') {
					if (vn + 1 < sizeof val)
						val[vn++] = *q;
					q++;
				}
			}
			val[vn] = '\0';
			if (tn == 5 && !strncasecmp(t, "realm", 5))
				copy_header_value(cur.realm, sizeof cur.realm, val, vn);
			else if (tn == 7 && !strncasecmp(t, "service", 7))
				copy_header_value(cur.service, sizeof cur.service, val, vn);
			else if (tn == 5 && !strncasecmp(t, "scope", 5))
				copy_header_value(cur.scope, sizeof cur.scope, val, vn);
			p = q;
			continue;
		}
		/* A new challenge: keep the one before if it is the best so far. */
		if (cur.scheme[0] && (!have || (strcasecmp(out->scheme, "Bearer") &&
						!strcasecmp(cur.scheme, "Bearer")))) {
			*out = cur;
			have = 1;
		}
		memset(&cur, 0, sizeof cur);
		if (tn && tn < sizeof cur.scheme) {
			memcpy(cur.scheme, t, tn);
		} else {
			cur.scheme[0] = '?';
		}
		/* A token68 ("Negotiate abc==") reads as a harmless unknown param. */
		p = q;
	}
	if (cur.scheme[0] &&
	    (!have || (strcasecmp(out->scheme, "Bearer") && !strcasecmp(cur.scheme, "Bearer")))) {
		*out = cur;
		have = 1;
	}
	return have && (!strcasecmp(out->scheme, "Bearer") || !strcasecmp(out->scheme, "Basic"))
		   ? 0
		   : -1;
}

static char *basic_header(const struct cred *cr)
{
	size_t ul = strlen(cr->user), pl = strlen(cr->pass);
	if (ul + pl > 2048)
		return NULL;
	char plain[2050];
	memcpy(plain, cr->user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, cr->pass, pl);
	size_t enc = 4 * ((ul + pl + 1 + 2) / 3) + 1;
	char *h = malloc(enc + 32);
	if (h) {
		strcpy(h, "Authorization: Basic ");
		EVP_EncodeBlock((unsigned char *)h + 21, (unsigned char *)plain,
				(int)(ul + pl + 1));
	}
	OPENSSL_cleanse(plain, sizeof plain);
	return h;
}

static void secret_freep(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		free(*p);
	}
}
#define cleanup_secret __attribute__((cleanup(secret_freep)))

static struct token *token_find(struct reg_client *c, const char *host, const char *scope)
{
	time_t now = now_s();
	for (size_t i = 0; i < TOKEN_SLOTS; i++) {
		struct token *t = &c->tokens[i];
		if (t->value && t->expires > now && !strcasecmp(t->host, host) &&
		    !strcmp(t->scope, scope))
			return t;
	}
	return NULL;
}

static void token_store(struct reg_client *c, const char *host, const char *scope, char *value,
			long expires_in)
{
	struct token *slot = &c->tokens[0];
	for (size_t i = 0; i < TOKEN_SLOTS; i++) {
		struct token *t = &c->tokens[i];
		if (!t->value || (!strcasecmp(t->host, host) && !strcmp(t->scope, scope))) {
			slot = t;
			break;
		}
		if (t->expires < slot->expires)
			slot = t;
	}
	if (slot->value) {
		OPENSSL_cleanse(slot->value, strlen(slot->value));
		free(slot->value);
	}
	snprintf(slot->host, sizeof slot->host, "%s", host);
	snprintf(slot->scope, sizeof slot->scope, "%s", scope);
	slot->value = value;
	/* Renew a little early so that a token does not expire between check and use. */
	long margin = expires_in > 20 ? 10 : expires_in / 2;
	slot->expires = now_s() + expires_in - margin;
}

/* The Authorization header to send to host for scope, or NULL (malloc'd). */
static char *auth_for(struct reg_client *c, const char *host, const char *scope)
{
	struct token *t = token_find(c, host, scope);
	if (t) {
		size_t n = strlen(t->value) + 32;
		char *h = malloc(n);
		if (h)
			snprintf(h, n, "Authorization: Bearer %s", t->value);
		return h;
	}
	struct cred *cr = cred_for(c, host);
	if (cr && cr->basic)
		return basic_header(cr);
	return NULL;
}

static int no_creds_msg(struct err *err, int code, const char *host)
{
	return err_set(err, code,
		       "registry %s requires authentication and no credentials are configured for "
		       "it",
		       host);
}

static int fetch_token(struct reg_client *c, const char *host, const char *scope,
		       const struct challenge *ch, struct err *err)
{
	struct cred *cr = cred_for(c, host);
	char origin[600];
	if (strncasecmp(ch->realm, "https://", 8) && strncasecmp(ch->realm, "http://", 7))
		return err_set(err, EBADMSG,
			       "registry %s names a token service that is not http(s)", host);
	if (origin_of(ch->realm, origin, sizeof origin) < 0)
		return err_set(err, EBADMSG, "registry %s names an invalid token service URL",
			       host);
	/* Credentials go over plain http only where the registry itself is spoken to that way. */
	if (!strncmp(origin, "http://", 7) && !is_plain(c, host))
		return err_set(err, EACCES,
			       "registry %s sends its credentials to a plain http token service; "
			       "refused",
			       host);

	cleanup_xfer struct xfer *x = xfer_new("GET", SMALL_BODY_MAX, err);
	if (!x)
		return -1;
	char *esv = curl_easy_escape(c->curl, ch->service, 0);
	char *esc = curl_easy_escape(c->curl, scope, 0);
	char *esc2 = ch->scope[0] && strcmp(ch->scope, scope)
			 ? curl_easy_escape(c->curl, ch->scope, 0)
			 : NULL;
	int n = snprintf(x->url, sizeof x->url, "%s%sservice=%s&scope=%s%s%s", ch->realm,
			 strchr(ch->realm, '?') ? "&" : "?", esv ? esv : "", esc ? esc : "",
			 esc2 ? "&scope=" : "", esc2 ? esc2 : "");
	curl_free(esv);
	curl_free(esc);
	curl_free(esc2);
	if (n < 0 || (size_t)n >= sizeof x->url)
		return err_set(err, EBADMSG, "registry %s: token service URL too long", host);

	cleanup_secret char *auth = cr ? basic_header(cr) : NULL;
	if (http_do(c, x, auth, host, err) < 0)
		return err_wrap(err, "getting a token for registry %s", host);
	if (x->status == 401 || x->status == 403) {
		if (!cr)
			return no_creds_msg(err, EACCES, host);
		return err_set(err, EACCES,
			       "registry %s refused the user name or password (token service "
			       "answered HTTP %ld)",
			       host, x->status);
	}
	if (x->status != 200 || x->overflow)
		return err_set(err, EIO, "token service of registry %s answered HTTP %ld", host,
			       x->status);
	json_auto_t *j = json_loadb(x->resp.data, x->resp.len, 0, NULL);
	json_t *tok = json_object_get(j, "token");
	if (!json_is_string(tok) || !json_string_length(tok))
		tok = json_object_get(j, "access_token");
	if (!json_is_string(tok))
		return err_set(err, EBADMSG, "token service of registry %s sent no token", host);
	const char *tv = json_string_value(tok);
	size_t tl = json_string_length(tok);
	if (tl == 0 || tl > TOKEN_MAX || strlen(tv) != tl)
		return err_set(err, EBADMSG, "token service of registry %s sent an invalid token",
			       host);
	for (size_t i = 0; i < tl; i++)
		if ((unsigned char)tv[i] <= ' ' || (unsigned char)tv[i] >= 0x7f)
			return err_set(err, EBADMSG,
				       "token service of registry %s sent an invalid token", host);
	json_t *ei = json_object_get(j, "expires_in");
	long expires_in = json_is_integer(ei) ? (long)json_integer_value(ei) : 60;
	if (expires_in <= 0)
		expires_in = 60;
	if (expires_in > 86400)
		expires_in = 86400;
	char *value = strdup(tv);
	if (!value)
		return err_sys(err, ENOMEM, "token");
	token_store(c, host, scope, value, expires_in);
	return 0;
}

/* Answers a 401 from host: learns how to authenticate for the next attempt. */
static int authenticate(struct reg_client *c, const char *host, const char *scope,
			const char *www_auth, struct err *err)
{
	struct challenge ch;
	if (parse_challenge(www_auth, &ch) < 0)
		return err_set(
		    err, EACCES,
		    "registry %s asks for an authentication method that is not supported", host);
	if (!strcasecmp(ch.scheme, "Basic")) {
		struct cred *cr = cred_for(c, host);
		if (!cr)
			return no_creds_msg(err, EACCES, host);
		if (cr->basic)
			return err_set(err, EACCES, "registry %s refused the user name or password",
				       host);
		cr->basic = 1;
		return 0;
	}
	if (!ch.realm[0])
		return err_set(err, EBADMSG, "registry %s asks for a token but names no realm",
			       host);
	return fetch_token(c, host, scope, &ch, err);
}

/* Sends x to the registry `host`, answering one 401 with authentication and following up to
   MAX_REDIRECTS redirects (GET/HEAD). Authorization is only sent to the registry's own origin. */
static int request(struct reg_client *c, const char *host, const char *scope, struct xfer *x,
		   struct err *err)
{
	int authed = 0, hops = 0;
	for (;;) {
		int own = same_origin(c, x->url, host);
		cleanup_secret char *auth = own ? auth_for(c, host, scope) : NULL;
		if (http_do(c, x, auth, host, err) < 0)
			return -1;
		if (x->status == 401 && own && !authed && !(x->src && x->sent > 0)) {
			if (authenticate(c, host, scope, x->www_auth, err) < 0)
				return -1;
			authed = 1;
			continue;
		}
		int redirect = x->status == 301 || x->status == 302 || x->status == 303 ||
			       x->status == 307 || x->status == 308;
		if (!redirect || !x->location[0] ||
		    (strcmp(x->method, "GET") && strcmp(x->method, "HEAD")))
			return 0;
		if (++hops > MAX_REDIRECTS)
			return err_set(err, EIO, "registry %s: too many redirects", host);
		CURLU *u = curl_url();
		char *next = NULL;
		if (u && !curl_url_set(u, CURLUPART_URL, x->url, 0) &&
		    !curl_url_set(u, CURLUPART_URL, x->location, 0))
			curl_url_get(u, CURLUPART_URL, &next, 0);
		curl_url_cleanup(u);
		int ok = next && strlen(next) < sizeof x->url &&
			 (!strncasecmp(next, "https://", 8) ||
			  (!strncasecmp(next, "http://", 7) && !strncasecmp(x->url, "http://", 7)));
		if (ok)
			strcpy(x->url, next);
		curl_free(next);
		if (!ok)
			return err_set(err, EIO,
				       "registry %s redirected to an invalid or less secure URL",
				       host);
	}
}

/* ---- errors ---- */

static int http_error(const struct xfer *x, const char *host, const char *what, struct err *err)
{
	char code[64] = "", msg[160] = "";
	json_auto_t *j = x->resp.len ? json_loadb(x->resp.data, x->resp.len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	json_t *jc = json_object_get(e0, "code"), *jm = json_object_get(e0, "message");
	if (json_is_string(jc))
		log_sanitize(code, sizeof code, json_string_value(jc), json_string_length(jc));
	if (json_is_string(jm))
		log_sanitize(msg, sizeof msg, json_string_value(jm),
			     json_string_length(jm) < 120 ? json_string_length(jm) : 120);
	if (x->status == 404 || !strcmp(code, "MANIFEST_UNKNOWN") ||
	    !strcmp(code, "NAME_UNKNOWN") || !strcmp(code, "BLOB_UNKNOWN"))
		return err_set(err, ENOENT, "%s not found in registry %s", what, host);
	if (x->status == 401)
		return err_set(err, EACCES,
			       "registry %s refused access to %s (HTTP 401: check the user name, "
			       "password and permissions)",
			       host, what);
	if (x->status == 403)
		return err_set(err, EACCES, "registry %s denied access to %s (HTTP 403)", host,
			       what);
	if (x->status == 429)
		return err_set(err, EAGAIN, "registry %s is rate limiting requests (HTTP 429)",
			       host);
	if (!strcmp(code, "DIGEST_INVALID") || !strcmp(code, "MANIFEST_INVALID") ||
	    !strcmp(code, "SIZE_INVALID"))
		return err_set(err, EBADMSG, "registry %s rejected %s: %s %s", host, what, code,
			       msg);
	return err_set(err, EIO, "registry %s answered HTTP %ld for %s%s%s%s%s", host, x->status,
		       what, code[0] ? ": " : "", code, msg[0] ? " " : "", msg);
}

static void image_name(const struct image_ref *r, char *out, size_t n)
{
	char s[600];
	if (image_ref_format(r, s, sizeof s) < 0)
		snprintf(s, sizeof s, "%s/%s", r->host, r->repo);
	snprintf(out, n, "image %s", s);
}

static void pull_scope(const struct image_ref *r, char *out, size_t n)
{
	snprintf(out, n, "repository:%s:pull", r->repo);
}

static void push_scope(const struct image_ref *r, char *out, size_t n)
{
	snprintf(out, n, "repository:%s:pull,push", r->repo);
}

/* ---- manifests ---- */

static int known_type(const char *t)
{
	return !strcmp(t, REG_MT_OCI_INDEX) || !strcmp(t, REG_MT_OCI_MANIFEST) ||
	       !strcmp(t, REG_MT_DOCKER_LIST) || !strcmp(t, REG_MT_DOCKER_MANIFEST);
}

static int is_index_type(const char *t)
{
	return !strcmp(t, REG_MT_OCI_INDEX) || !strcmp(t, REG_MT_DOCKER_LIST);
}

/* Decides the media type from Content-Type and the body's own mediaType, which must agree. */
static json_t *check_manifest(const char *ctype, const uint8_t *body, size_t len, char type[128],
			      const char *what, struct err *err)
{
	json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		err_set(err, EBADMSG, "manifest of %s is not a JSON object", what);
		return NULL;
	}
	json_t *sv = json_object_get(j, "schemaVersion");
	if ((json_is_integer(sv) && json_integer_value(sv) == 1) ||
	    !strncmp(ctype, "application/vnd.docker.distribution.manifest.v1", 47)) {
		json_decref(j);
		err_set(err, EBADMSG,
			"%s uses the old schema 1 manifest format, which is not supported: push it "
			"again with a recent docker",
			what);
		return NULL;
	}
	json_t *jm = json_object_get(j, "mediaType");
	const char *mt = json_is_string(jm) ? json_string_value(jm) : "";
	const char *t = NULL;
	if (known_type(ctype))
		t = ctype;
	if (mt[0] && !known_type(mt)) {
		t = NULL; /* reported below */
	} else if (mt[0]) {
		if (t && strcmp(t, mt)) {
			json_decref(j);
			err_set(err, EBADMSG, "manifest of %s says it is %s but was served as %s",
				what, mt, t);
			return NULL;
		}
		t = mt;
	}
	if (!t && !mt[0]) { /* OCI allows mediaType to be absent: infer it */
		if (json_is_array(json_object_get(j, "manifests")))
			t = REG_MT_OCI_INDEX;
		else if (json_is_object(json_object_get(j, "config")) &&
			 json_is_array(json_object_get(j, "layers")))
			t = REG_MT_OCI_MANIFEST;
	}
	if (!t) {
		char q[100];
		const char *shown = mt[0] ? mt : ctype;
		log_sanitize(q, sizeof q, shown, strnlen(shown, 90));
		json_decref(j);
		err_set(err, EBADMSG, "%s has an unsupported manifest type '%s'", what, q);
		return NULL;
	}
	snprintf(type, 128, "%s", t);
	return j;
}

/* GET manifests/<reference>; want = the digest asked for or NULL. On success out owns the body
   and *json (if json) the parsed document. */
static int fetch_manifest(struct reg_client *c, const struct image_ref *ref, const char *reference,
			  const char *want, const char *what, struct reg_manifest *out,
			  json_t **json, struct err *err)
{
	char scope[320];
	pull_scope(ref, scope, sizeof scope);
	cleanup_xfer struct xfer *x = xfer_new("GET", REG_MANIFEST_MAX, err);
	if (!x)
		return -1;
	x->accept = ACCEPT_ALL;
	char base[300];
	base_url(c, ref->host, base, sizeof base);
	snprintf(x->url, sizeof x->url, "%s/v2/%s/manifests/%s", base, ref->repo, reference);
	if (request(c, ref->host, scope, x, err) < 0)
		return -1;
	if (x->status < 200 || x->status >= 300)
		return http_error(x, ref->host, what, err);
	if (x->overflow)
		return err_set(err, EFBIG, "manifest of %s is larger than %d bytes", what,
			       REG_MANIFEST_MAX);
	char d[72];
	reg_digest(x->resp.data, x->resp.len, d);
	if (want && strcmp(d, want))
		return err_set(err, EBADMSG,
			       "manifest of %s does not match its digest (its content is %.19s...)",
			       what, d);
	if (!strncmp(x->dcd, "sha256:", 7) && strcmp(d, x->dcd))
		return err_set(err, EBADMSG,
			       "manifest of %s does not match the Docker-Content-Digest the "
			       "registry sent",
			       what);
	char type[128];
	json_t *j =
	    check_manifest(x->ctype, (const uint8_t *)x->resp.data, x->resp.len, type, what, err);
	if (!j)
		return -1;
	if (json)
		*json = j;
	else
		json_decref(j);
	memset(out, 0, sizeof *out);
	memcpy(out->media_type, type, sizeof out->media_type);
	memcpy(out->digest, d, sizeof out->digest);
	out->len = x->resp.len;
	out->body = (uint8_t *)buf_steal(&x->resp, NULL);
	return 0;
}

int reg_get_manifest(struct reg_client *c, const struct image_ref *ref, struct reg_manifest *out,
		     struct err *err)
{
	char what[700];
	image_name(ref, what, sizeof what);
	const char *reference = ref->digest[0] ? ref->digest : ref->tag;
	return fetch_manifest(c, ref, reference, ref->digest[0] ? ref->digest : NULL, what, out,
			      NULL, err);
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : "";
}

int reg_resolve(struct reg_client *c, const struct image_ref *ref, struct reg_manifest *out,
		struct err *err)
{
	char what[700];
	image_name(ref, what, sizeof what);
	struct reg_manifest top;
	json_auto_t *j = NULL;
	const char *reference = ref->digest[0] ? ref->digest : ref->tag;
	if (fetch_manifest(c, ref, reference, ref->digest[0] ? ref->digest : NULL, what, &top, &j,
			   err) < 0)
		return -1;
	if (!is_index_type(top.media_type)) {
		*out = top;
		return 0;
	}
	cleanup_free uint8_t *top_body = top.body;

	json_t *list = json_object_get(j, "manifests"), *pick = NULL, *d;
	size_t i;
	char offered[160] = "";
	json_array_foreach(list, i, d)
	{
		json_t *pl = json_object_get(d, "platform");
		const char *mt = jstr(d, "mediaType"), *os = jstr(pl, "os"),
			   *arch = jstr(pl, "architecture"), *var = jstr(pl, "variant");
		if (mt[0] && strcmp(mt, REG_MT_OCI_MANIFEST) && strcmp(mt, REG_MT_DOCKER_MANIFEST))
			continue;
		if (!os[0] || !strcmp(os, "unknown")) /* attestations, not images */
			continue;
		if (!strcmp(os, c->os) && !strcmp(arch, c->arch) &&
		    (c->variant[0] ? !strcmp(var, c->variant) : 1)) {
			/* Without a wanted variant, the first match wins unless a later one has
			 * none. */
			if (!pick ||
			    (jstr(json_object_get(pick, "platform"), "variant")[0] && !var[0]))
				pick = d;
		}
		size_t at = strlen(offered);
		if (at < sizeof offered - 1)
			snprintf(offered + at, sizeof offered - at, "%s%s/%s%s%s", at ? ", " : "",
				 os, arch, var[0] ? "/" : "", var);
	}
	if (!pick) {
		char q[170];
		log_sanitize(q, sizeof q, offered, strlen(offered));
		return err_set(err, ENOTSUP, "%s has no %s version (it offers: %s)", what,
			       c->platform, q[0] ? q : "nothing usable");
	}
	const char *dg = jstr(pick, "digest");
	json_t *js = json_object_get(pick, "size");
	if (!digest_valid(dg))
		return err_set(err, EBADMSG, "index of %s lists an invalid or non-sha256 digest",
			       what);
	if (json_is_integer(js) &&
	    (json_integer_value(js) <= 0 || json_integer_value(js) > REG_MANIFEST_MAX))
		return err_set(err, EFBIG, "index of %s lists a manifest of invalid size", what);

	struct reg_manifest m;
	if (fetch_manifest(c, ref, dg, dg, what, &m, NULL, err) < 0)
		return -1;
	if (is_index_type(m.media_type) ||
	    (json_is_integer(js) && (size_t)json_integer_value(js) != m.len)) {
		free(m.body);
		return err_set(err, EBADMSG,
			       "index of %s points to a nested index or a manifest of another size",
			       what);
	}
	*out = m;
	return 0;
}

/* ---- blobs ---- */

static void blob_name(const struct image_ref *ref, const char *digest, char *out, size_t n)
{
	snprintf(out, n, "blob %.19s... of image %s/%s", digest, ref->host, ref->repo);
}

int reg_get_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		 int64_t size, int64_t max_size, reg_sink_fn sink, void *arg, struct err *err)
{
	char what[600];
	if (!digest_valid(digest))
		return err_set(err, EINVAL, "invalid or non-sha256 blob digest");
	blob_name(ref, digest, what, sizeof what);
	if (max_size > 0 && size > max_size)
		return err_set(err, EFBIG, "%s is %lld bytes, over the limit of %lld", what,
			       (long long)size, (long long)max_size);
	err_clear(err);
	char scope[320], base[300];
	pull_scope(ref, scope, sizeof scope);
	cleanup_xfer struct xfer *x = xfer_new("GET", SMALL_BODY_MAX, err);
	if (!x)
		return -1;
	x->md = EVP_MD_CTX_new();
	if (!x->md || EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)
		return err_set(err, ENOMEM, "sha256 context");
	x->sink = sink;
	x->sink_arg = arg;
	x->limit = max_size > 0 ? max_size : INT64_MAX;
	x->expect = size;
	base_url(c, ref->host, base, sizeof base);
	snprintf(x->url, sizeof x->url, "%s/v2/%s/blobs/%s", base, ref->repo, digest);
	if (request(c, ref->host, scope, x, err) < 0)
		return -1;
	if (x->too_big)
		return err_set(err, EFBIG, "%s is larger than the limit of %lld bytes", what,
			       (long long)max_size);
	if (x->too_long)
		return err_set(err, EBADMSG, "%s is longer than its announced %lld bytes", what,
			       (long long)size);
	if (x->sink_failed) {
		if (err && err->code)
			return -1;
		return err_set(err, EIO, "storing %s failed", what);
	}
	if (x->status < 200 || x->status >= 300)
		return http_error(x, ref->host, what, err);
	if (size >= 0 && x->got != size)
		return err_set(err, EBADMSG, "%s is truncated (%lld of %lld bytes)", what,
			       (long long)x->got, (long long)size);
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_DigestFinal_ex(x->md, md, &mdlen);
	char got[72] = "sha256:";
	for (unsigned i = 0; i < 32; i++)
		snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
	if (strcmp(got, digest))
		return err_set(err, EBADMSG, "%s is corrupt: its content does not match its digest",
			       what);
	return 0;
}

static int head_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		     const char *scope, struct err *err)
{
	char what[600], base[300];
	blob_name(ref, digest, what, sizeof what);
	cleanup_xfer struct xfer *x = xfer_new("HEAD", SMALL_BODY_MAX, err);
	if (!x)
		return -1;
	base_url(c, ref->host, base, sizeof base);
	snprintf(x->url, sizeof x->url, "%s/v2/%s/blobs/%s", base, ref->repo, digest);
	if (request(c, ref->host, scope, x, err) < 0)
		return -1;
	if (x->status >= 200 && x->status < 300)
		return 1;
	if (x->status == 404)
		return 0;
	return http_error(x, ref->host, what, err);
}

int reg_has_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		 struct err *err)
{
	char scope[320];
	if (!digest_valid(digest))
		return err_set(err, EINVAL, "invalid or non-sha256 blob digest");
	pull_scope(ref, scope, sizeof scope);
	return head_blob(c, ref, digest, scope, err);
}

int reg_put_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		 int64_t size, reg_source_fn src, void *arg, struct err *err)
{
	char what[600], scope[320], base[300];
	if (!digest_valid(digest))
		return err_set(err, EINVAL, "invalid or non-sha256 blob digest");
	if (size < 0)
		return err_set(err, EINVAL, "blob size unknown");
	blob_name(ref, digest, what, sizeof what);
	push_scope(ref, scope, sizeof scope);
	int has = head_blob(c, ref, digest, scope, err);
	if (has != 0)
		return has < 0 ? -1 : 0;

	cleanup_xfer struct xfer *x = xfer_new("POST", SMALL_BODY_MAX, err);
	if (!x)
		return -1;
	base_url(c, ref->host, base, sizeof base);
	snprintf(x->url, sizeof x->url, "%s/v2/%s/blobs/uploads/", base, ref->repo);
	if (request(c, ref->host, scope, x, err) < 0)
		return -1;
	if (x->status != 202)
		return http_error(x, ref->host, what, err);
	if (!x->location[0])
		return err_set(err, EBADMSG, "registry %s started an upload without a Location",
			       ref->host);

	/* The upload URL may be relative and may already carry a query. */
	CURLU *u = curl_url();
	char *loc = NULL;
	if (u && !curl_url_set(u, CURLUPART_URL, x->url, 0) &&
	    !curl_url_set(u, CURLUPART_URL, x->location, 0))
		curl_url_get(u, CURLUPART_URL, &loc, 0);
	curl_url_cleanup(u);
	int n = loc ? snprintf(x->url, sizeof x->url, "%s%sdigest=%s", loc,
			       strchr(loc, '?') ? "&" : "?", digest)
		    : -1;
	curl_free(loc);
	if (n < 0 || (size_t)n >= sizeof x->url)
		return err_set(err, EBADMSG, "registry %s sent an invalid upload Location",
			       ref->host);
	x->method = "PUT";
	x->content_type = "Content-Type: application/octet-stream";
	x->src = src;
	x->src_arg = arg;
	x->src_size = size;
	x->sent = 0;
	if (request(c, ref->host, scope, x, err) < 0)
		return -1;
	if (x->src_failed == 1)
		return err_set(err, EIO, "reading %s for upload failed", what);
	if (x->src_failed == 2)
		return err_set(err, EIO, "%s ended after %lld of %lld bytes", what,
			       (long long)x->sent, (long long)size);
	if (x->status != 201)
		return http_error(x, ref->host, what, err);
	return 0;
}

int reg_put_manifest(struct reg_client *c, const struct image_ref *ref, const char *media_type,
		     const void *body, size_t len, struct err *err)
{
	char what[700], scope[320], base[300], ct[200];
	image_name(ref, what, sizeof what);
	if (len > REG_MANIFEST_MAX)
		return err_set(err, EFBIG, "manifest for %s is larger than %d bytes", what,
			       REG_MANIFEST_MAX);
	size_t ml = media_type ? strlen(media_type) : 0;
	if (!ml || ml > 127 || strcspn(media_type, "\r\n") != ml)
		return err_set(err, EINVAL, "invalid manifest media type");
	push_scope(ref, scope, sizeof scope);
	cleanup_xfer struct xfer *x = xfer_new("PUT", SMALL_BODY_MAX, err);
	if (!x)
		return -1;
	snprintf(ct, sizeof ct, "Content-Type: %s", media_type);
	x->content_type = ct;
	x->body = body;
	x->body_len = len;
	base_url(c, ref->host, base, sizeof base);
	snprintf(x->url, sizeof x->url, "%s/v2/%s/manifests/%s", base, ref->repo,
		 ref->tag[0] ? ref->tag : ref->digest);
	if (request(c, ref->host, scope, x, err) < 0)
		return -1;
	if (x->status != 201)
		return http_error(x, ref->host, what, err);
	return 0;
}
