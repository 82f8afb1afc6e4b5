/*
 * workers.c - worker set, health polls and DNS refresh (contract in workers.h).
 *
 * State lives in an array of struct worker pointers under one mutex. The health thread is
 * the only one that adds or removes entries and the only one that touches the curl side of
 * an entry (easy handle, answer buffer, polling flag), so it may read those without the
 * lock; everything the event loop reads or writes is under the lock.
 */
#include "workers.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"

#define DEFAULT_DNS_MS	   5000
#define DEFAULT_HEALTH_MS  1000
#define DEFAULT_TIMEOUT_MS 800
#define DEFAULT_GRACE_MS   600000
#define ANSWER_MAX	   16384 /* an `available` answer is ~200 bytes */
#define HOST_MAX	   253
#define URLPATH_MAX	   2048

static const char HEALTH_BODY[] =
    "{\"method\":\"available\",\"params\":{\"maxmemory\":10240},\"id\":\"vplcell-health\"}";

/* What the log says last about a worker, so each change is one line. */
enum said { SAID_NOTHING, SAID_UP, SAID_DOWN };

struct worker {
	struct worker_addr addr;
	char label[WORKER_ADDR_STRLEN];

	/* Under workers.mu. */
	bool in_names;
	long long gone_at; /* ms, when it left the name set */
	bool health_up;	   /* the health verdict */
	bool dp_failed;	   /* workers_failed() since a poll that started later answered */
	unsigned long long dp_fail_seq;
	enum worker_status status;
	enum said said;
	long long load, maxtime, maxfilesize, maxmemory, maxprocesses;
	int inflight_new;  /* deltas since the current/last poll started */
	int inflight_sent; /* deltas from before it: cleared by its good answer */
	int fails;	   /* failed polls in a row */
	char error[160];

	/* Health thread only. */
	CURL *easy;
	bool polling;
	bool too_big;
	unsigned long long poll_seq;
	struct buf answer;
	char errbuf[CURL_ERROR_SIZE];
};

struct name_entry {
	char *host;
	uint16_t port;
	bool literal;
	uint32_t *ips; /* last good resolution */
	size_t nips;
	int last_gai; /* last getaddrinfo result, to log each change once */
};

struct workers {
	pthread_mutex_t mu;
	struct worker **v; /* under mu; only the health thread (or start) changes it */
	size_t n, cap;
	size_t rr;		  /* rotation among ties, under mu */
	unsigned long long seq;	  /* poll sequence, under mu */
	struct name_entry *names; /* health thread only, after start */
	size_t nnames;
	int dns_ms, health_ms, timeout_ms, grace_ms;
	char *urlpath;
	char *auth_header; /* "X-Vplcell-Auth: <secret>", wiped on free */
	struct curl_slist *headers;
	CURLM *multi;
	int npolling; /* health thread only */
	pthread_t thread;
	bool started;
	atomic_bool stop;
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool addr_eq(struct worker_addr a, struct worker_addr b)
{
	return a.ip_be == b.ip_be && a.port == b.port;
}

char *worker_addr_fmt(struct worker_addr a, char out[WORKER_ADDR_STRLEN])
{
	const unsigned char *b = (const unsigned char *)&a.ip_be;
	snprintf(out, WORKER_ADDR_STRLEN, "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3],
		 (unsigned)a.port);
	return out;
}

const char *worker_status_name(enum worker_status s)
{
	switch (s) {
	case WORKER_READY:
		return "ready";
	case WORKER_BUSY:
		return "busy";
	case WORKER_OFFLINE:
		return "offline";
	default:
		return "unknown";
	}
}

/* Callers hold mu. */
static bool worker_up(const struct worker *k)
{
	return k->health_up && !k->dp_failed;
}

static bool worker_pickable(const struct worker *k)
{
	return k->in_names && worker_up(k) && k->status == WORKER_READY;
}

static long long worker_weight(const struct worker *k)
{
	long long v = k->load + k->inflight_new + k->inflight_sent;
	return v < 0 ? 0 : v;
}

static struct worker *find_locked(struct workers *w, struct worker_addr a)
{
	for (size_t i = 0; i < w->n; i++)
		if (addr_eq(w->v[i]->addr, a))
			return w->v[i];
	return NULL;
}

/* ---- configuration ---- */

static int parse_name(const char *s, struct name_entry *e, struct err *err)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return err_set(err, EINVAL, "worker '%s': expected host:port", s);
	size_t hlen = (size_t)(colon - s);
	if (memchr(s, ':', hlen) || s[0] == '[')
		return err_set(err, EINVAL,
			       "worker '%s': IPv6 is not supported (route codes are IPv4)", s);
	if (hlen > HOST_MAX)
		return err_set(err, EINVAL, "worker '%.40s...': host name too long", s);
	for (size_t i = 0; i < hlen; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return err_set(err, EINVAL, "worker '%s': bad character in host", s);
	}
	const char *p = colon + 1;
	long port = 0;
	if (!*p)
		return err_set(err, EINVAL, "worker '%s': missing port", s);
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return err_set(err, EINVAL, "worker '%s': bad port", s);
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return err_set(err, EINVAL, "worker '%s': port must be 1..65535", s);
	e->host = strndup(s, hlen);
	if (!e->host)
		return err_sys(err, ENOMEM, "worker '%s'", s);
	e->port = (uint16_t)port;
	struct in_addr ia;
	if (inet_pton(AF_INET, e->host, &ia) == 1) {
		e->literal = true;
		e->ips = malloc(sizeof *e->ips);
		if (!e->ips)
			return err_sys(err, ENOMEM, "worker '%s'", s);
		e->ips[0] = ia.s_addr;
		e->nips = 1;
	}
	return 0;
}

static int check_urlpath(const char *p, struct err *err)
{
	if (p[0] != '/')
		return err_set(err, EINVAL, "worker URL path must start with '/'");
	if (strlen(p) > URLPATH_MAX)
		return err_set(err, EINVAL, "worker URL path longer than %d bytes", URLPATH_MAX);
	for (const unsigned char *c = (const unsigned char *)p; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f || *c == '?' || *c == '#')
			return err_set(err, EINVAL,
				       "worker URL path: blanks, control or non-ASCII characters, "
				       "'?' and '#' are not allowed");
	return 0;
}

static int check_secret(const char *s, struct err *err)
{
	if (!*s)
		return err_set(err, EINVAL, "worker secret is empty (NULL means none)");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return err_set(err, EINVAL, "worker secret holds control characters");
	return 0;
}

struct workers *workers_new(const struct workers_config *cfg, struct err *err)
{
	if (!cfg || !cfg->names || !cfg->names[0]) {
		err_set(err, EINVAL, "no workers configured");
		return NULL;
	}
	const char *urlpath = cfg->urlpath ? cfg->urlpath : "/";
	if (check_urlpath(urlpath, err) < 0 || (cfg->secret && check_secret(cfg->secret, err) < 0))
		return NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err_set(err, EIO, "curl_global_init failed");
		return NULL;
	}
	struct workers *w = calloc(1, sizeof *w);
	if (!w) {
		curl_global_cleanup();
		err_sys(err, ENOMEM, "workers");
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	atomic_init(&w->stop, false);
	w->dns_ms = cfg->dns_interval_ms > 0 ? cfg->dns_interval_ms : DEFAULT_DNS_MS;
	w->health_ms = cfg->health_interval_ms > 0 ? cfg->health_interval_ms : DEFAULT_HEALTH_MS;
	w->timeout_ms = cfg->health_timeout_ms > 0 ? cfg->health_timeout_ms : DEFAULT_TIMEOUT_MS;
	w->grace_ms = cfg->gone_grace_ms > 0 ? cfg->gone_grace_ms : DEFAULT_GRACE_MS;

	size_t count = 0;
	while (cfg->names[count])
		count++;
	w->names = calloc(count, sizeof *w->names);
	if (!w->names) {
		err_sys(err, ENOMEM, "workers");
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		w->nnames++;
		if (parse_name(cfg->names[i], &w->names[i], err) < 0)
			goto fail;
	}
	w->urlpath = strdup(urlpath);
	if (!w->urlpath) {
		err_sys(err, ENOMEM, "workers");
		goto fail;
	}
	/* No "Expect: 100-continue" round trip: the body is tiny. */
	const char *hdrs[] = {"Content-Type: application/json", "Expect:", NULL};
	if (cfg->secret) {
		if (asprintf(&w->auth_header, "X-Vplcell-Auth: %s", cfg->secret) < 0) {
			w->auth_header = NULL;
			goto nomem;
		}
		hdrs[2] = w->auth_header;
	}
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0] && hdrs[i]; i++) {
		struct curl_slist *h = curl_slist_append(w->headers, hdrs[i]);
		if (!h)
			goto nomem;
		w->headers = h;
	}
	w->multi = curl_multi_init();
	if (!w->multi) {
		err_set(err, EIO, "curl_multi_init failed");
		goto fail;
	}
	return w;
nomem:
	err_sys(err, ENOMEM, "workers");
fail:
	workers_free(w);
	return NULL;
}

/* ---- one worker's poll (health thread) ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct worker *k = ud;
	if (buf_append(&k->answer, p, size * n, NULL) < 0) {
		k->too_big = true;
		return 0; /* aborts the transfer */
	}
	return size * n;
}

static struct worker *worker_create(struct workers *w, struct worker_addr a)
{
	struct worker *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->addr = a;
	worker_addr_fmt(a, k->label);
	k->in_names = true;
	buf_init(&k->answer, ANSWER_MAX);
	k->easy = curl_easy_init();
	if (!k->easy) {
		free(k);
		return NULL;
	}
	char url[sizeof "http://" + WORKER_ADDR_STRLEN + URLPATH_MAX];
	if ((size_t)snprintf(url, sizeof url, "http://%s%s", k->label, w->urlpath) >= sizeof url) {
		curl_easy_cleanup(k->easy);
		free(k);
		return NULL;
	}
	CURL *e = k->easy;
	int bad = 0;
	bad |= curl_easy_setopt(e, CURLOPT_URL, url);
	/* As configured: the worker compares the path byte for byte. */
	bad |= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
#else
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, HEALTH_BODY);
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(sizeof HEALTH_BODY - 1));
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "vpl-proxy-health");
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, k);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)w->timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never an http_proxy from the env */
	/* Workers answer "Connection: close"; keeping nothing also means a restarted worker
	 * is never polled over a stale connection. */
	bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	if (bad) {
		curl_easy_cleanup(k->easy);
		free(k);
		return NULL;
	}
	return k;
}

static void worker_destroy(struct workers *w, struct worker *k)
{
	if (k->polling) {
		curl_multi_remove_handle(w->multi, k->easy);
		w->npolling--;
	}
	curl_easy_cleanup(k->easy);
	buf_free(&k->answer);
	free(k);
}

static void poll_start(struct workers *w, struct worker *k)
{
	pthread_mutex_lock(&w->mu);
	k->poll_seq = ++w->seq;
	k->inflight_sent += k->inflight_new;
	k->inflight_new = 0;
	pthread_mutex_unlock(&w->mu);
	buf_reset(&k->answer);
	k->too_big = false;
	k->errbuf[0] = '\0';
	CURLMcode mc = curl_multi_add_handle(w->multi, k->easy);
	if (mc != CURLM_OK) {
		log_err("worker %s: cannot start health poll: %s", k->label,
			curl_multi_strerror(mc));
		return;
	}
	k->polling = true;
	w->npolling++;
}

struct answer {
	enum worker_status status;
	long long load, maxtime, maxfilesize, maxmemory, maxprocesses;
};

static long long member_int(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	long long x = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
	return x < 0 ? 0 : x;
}

/* Reads an `available` answer; -1 with a reason in why. */
static int parse_answer(const struct buf *b, struct answer *a, char *why, size_t whysz)
{
	json_error_t je;
	json_t *root = json_loadb(b->data, b->len, 0, &je);
	if (!root) {
		snprintf(why, whysz, "bad JSON answer (%.100s)", je.text);
		return -1;
	}
	int rc = -1;
	json_t *res = json_object_get(root, "result");
	json_t *st = json_is_object(res) ? json_object_get(res, "status") : NULL;
	const char *s = json_is_string(st) ? json_string_value(st) : NULL;
	if (!json_is_object(res)) {
		snprintf(why, whysz, json_object_get(root, "error") ? "error answer" : "no result");
	} else if (!s) {
		snprintf(why, whysz, "no status in answer");
	} else {
		rc = 0;
		if (strcmp(s, "ready") == 0)
			a->status = WORKER_READY;
		else if (strcmp(s, "busy") == 0)
			a->status = WORKER_BUSY;
		else if (strcmp(s, "offline") == 0)
			a->status = WORKER_OFFLINE;
		else
			rc = -1;
		if (rc < 0)
			snprintf(why, whysz, "unknown status in answer");
		a->load = member_int(res, "load");
		a->maxtime = member_int(res, "maxtime");
		a->maxfilesize = member_int(res, "maxfilesize");
		a->maxmemory = member_int(res, "maxmemory");
		a->maxprocesses = member_int(res, "maxprocesses");
	}
	json_decref(root);
	return rc;
}

/* A finished poll: judge it, update the state, retry a first failure at once. */
static void poll_done(struct workers *w, struct worker *k, CURLcode cc)
{
	curl_multi_remove_handle(w->multi, k->easy);
	k->polling = false;
	w->npolling--;

	char why[sizeof k->error] = "";
	struct answer a = {0};
	long http = 0;
	if (cc != CURLE_OK) {
		/* errbuf names host and port, not the path; make sure, the path is a secret */
		bool path_in_msg = strlen(w->urlpath) > 1 && strstr(k->errbuf, w->urlpath);
		if (k->too_big)
			snprintf(why, sizeof why, "answer larger than %d bytes", ANSWER_MAX);
		else if (k->errbuf[0] && !path_in_msg)
			snprintf(why, sizeof why, "%.*s", (int)sizeof why - 1, k->errbuf);
		else
			snprintf(why, sizeof why, "%s", curl_easy_strerror(cc));
	} else if (curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &http) != CURLE_OK ||
		   http != 200) {
		snprintf(why, sizeof why, "HTTP status %ld", http);
	} else {
		parse_answer(&k->answer, &a, why, sizeof why);
	}

	bool retry = false;
	enum { SAY_NONE, SAY_UP, SAY_BACK, SAY_STATUS, SAY_DOWN } say = SAY_NONE;
	pthread_mutex_lock(&w->mu);
	if (!why[0]) {
		enum worker_status before = k->status;
		k->fails = 0;
		k->error[0] = '\0';
		k->health_up = true;
		k->status = a.status;
		k->load = a.load;
		k->maxtime = a.maxtime;
		k->maxfilesize = a.maxfilesize;
		k->maxmemory = a.maxmemory;
		k->maxprocesses = a.maxprocesses;
		k->inflight_sent = 0; /* this answer's load counts them */
		bool back = k->dp_failed && k->poll_seq > k->dp_fail_seq;
		if (back)
			k->dp_failed = false;
		if (k->said != SAID_UP)
			say = SAY_UP;
		else if (back)
			say = SAY_BACK;
		else if (before != k->status)
			say = SAY_STATUS;
		k->said = SAID_UP;
	} else {
		k->fails++;
		snprintf(k->error, sizeof k->error, "%s", why);
		if (k->fails == 1) {
			retry = true;
		} else {
			k->health_up = false;
			if (k->said != SAID_DOWN)
				say = SAY_DOWN;
			k->said = SAID_DOWN;
		}
	}
	pthread_mutex_unlock(&w->mu);
	/* Logged outside the lock (stderr may block), from values only this thread writes. */
	const char *st = worker_status_name(a.status);
	switch (say) {
	case SAY_UP:
		log_info("worker %s up: %s, load %lld", k->label, st, a.load);
		break;
	case SAY_BACK:
		log_info("worker %s answers again: back in rotation", k->label);
		break;
	case SAY_STATUS:
		log_info("worker %s now %s", k->label, st);
		break;
	case SAY_DOWN:
		log_warn("worker %s down: %s", k->label, why);
		break;
	case SAY_NONE:
		break;
	}
	if (retry)
		poll_start(w, k);
}

static void collect_done(struct workers *w)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(w->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct worker *k = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&k);
		CURLcode cc = m->data.result; /* m is invalid once the handle is removed */
		if (k)
			poll_done(w, k, cc);
	}
}

/* ---- the name set (health thread, or workers_start before it) ---- */

static void resolve_name(struct name_entry *e)
{
	if (e->literal)
		return;
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(e->host, NULL, &hints, &res);
	bool none = rc == EAI_NONAME
#ifdef EAI_NODATA
		    || rc == EAI_NODATA
#endif
	    ;
	if (rc != e->last_gai) {
		if (rc == 0 && e->last_gai != 0)
			log_info("workers: %s resolves again", e->host);
		else if (none)
			log_warn("workers: %s has no IPv4 address: no workers from it", e->host);
		else if (rc != 0)
			log_warn("workers: cannot resolve %s: %s (keeping its last %zu addresses)",
				 e->host, gai_strerror(rc), e->nips);
		e->last_gai = rc;
	}
	if (rc != 0 && !none)
		return; /* a resolver hiccup must not empty the set */
	size_t count = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		count++;
	uint32_t *ips = count ? calloc(count, sizeof *ips) : NULL;
	if (count && !ips) {
		freeaddrinfo(res);
		return;
	}
	size_t n = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		uint32_t ip = ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = ips[i] == ip;
		if (!dup)
			ips[n++] = ip;
	}
	if (res)
		freeaddrinfo(res);
	free(e->ips);
	e->ips = ips;
	e->nips = n;
}

static bool in_name_set(const struct workers *w, struct worker_addr a)
{
	for (size_t i = 0; i < w->nnames; i++)
		for (size_t j = 0; j < w->names[i].nips; j++)
			if (w->names[i].port == a.port && w->names[i].ips[j] == a.ip_be)
				return true;
	return false;
}

static int append_locked(struct workers *w, struct worker *k)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		struct worker **v = realloc(w->v, cap * sizeof *v);
		if (!v)
			return -1;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = k;
	return 0;
}

/* Re-resolves every name and merges the result; returns how many workers were added. */
static int refresh_names(struct workers *w)
{
	for (size_t i = 0; i < w->nnames; i++)
		resolve_name(&w->names[i]);
	long long now = mono_ms();
	int added = 0;

	/* Only this thread changes the array and in_names: read them without the lock, take
	 * it to write, log after. */
	for (size_t i = 0; i < w->n; i++) {
		struct worker *k = w->v[i];
		bool in = in_name_set(w, k->addr);
		if (in == k->in_names)
			continue;
		pthread_mutex_lock(&w->mu);
		k->in_names = in;
		k->gone_at = now;
		pthread_mutex_unlock(&w->mu);
		if (in)
			log_info("worker %s is back in DNS", k->label);
		else
			log_info("worker %s gone from DNS: not picked, kept while it answers "
				 "(at most %d s)",
				 k->label, w->grace_ms / 1000);
	}

	/* New addresses: only this thread adds, so looking up without the lock is safe. */
	for (size_t i = 0; i < w->nnames; i++) {
		struct name_entry *e = &w->names[i];
		for (size_t j = 0; j < e->nips; j++) {
			struct worker_addr a = {.ip_be = e->ips[j], .port = e->port};
			if (find_locked(w, a))
				continue;
			struct worker *k = worker_create(w, a);
			pthread_mutex_lock(&w->mu);
			int rc = k ? append_locked(w, k) : -1;
			pthread_mutex_unlock(&w->mu);
			if (rc < 0) {
				char s[WORKER_ADDR_STRLEN];
				log_err("worker %s: out of memory, retrying at the next DNS round",
					worker_addr_fmt(a, s));
				if (k)
					worker_destroy(w, k);
				continue;
			}
			log_info("worker %s added (from %s)", k->label, e->host);
			added++;
		}
	}
	return added;
}

/* Drops the workers gone from DNS that are down or past their grace. */
static void reap_gone(struct workers *w, long long now)
{
	struct worker *drop[16];
	size_t ndrop = 0;
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n && ndrop < sizeof drop / sizeof drop[0];) {
		struct worker *k = w->v[i];
		bool past = now - k->gone_at >= w->grace_ms;
		if (!k->in_names && (!k->health_up || past)) {
			drop[ndrop++] = k;
			w->v[i] = w->v[--w->n];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < ndrop; i++) {
		/* health_up is only written by this thread: safe to read unlocked */
		log_info("worker %s dropped: gone from DNS and %s", drop[i]->label,
			 drop[i]->health_up ? "its grace time is over" : "not answering");
		worker_destroy(w, drop[i]);
	}
}

/* ---- the health thread ---- */

static void start_round(struct workers *w)
{
	/* Only this thread changes the array: no lock needed to walk it. */
	for (size_t i = 0; i < w->n; i++)
		if (!w->v[i]->polling)
			poll_start(w, w->v[i]);
}

static void *health_main(void *arg)
{
	struct workers *w = arg;
	long long next_round = mono_ms();
	long long next_dns = next_round + w->dns_ms;
	while (!atomic_load(&w->stop)) {
		long long now = mono_ms();
		bool dns_due = now >= next_dns;
		/* Resolve only with no poll in flight, and hold new rounds until then: a blocking
		 * lookup during a transfer would eat its timeout and fake a failure. */
		if (dns_due && w->npolling == 0) {
			if (refresh_names(w) > 0)
				next_round = now; /* poll newcomers now */
			now = mono_ms();
			next_dns = now + w->dns_ms;
			dns_due = false;
		}
		if (!dns_due && now >= next_round) {
			start_round(w);
			next_round += w->health_ms;
			if (next_round <= now)
				next_round = now + w->health_ms;
		}
		int running;
		curl_multi_perform(w->multi, &running);
		collect_done(w);
		reap_gone(w, now);

		long long wake =
		    dns_due ? now + 1000 : (next_round < next_dns ? next_round : next_dns);
		long long wait = wake - mono_ms();
		if (wait < 0)
			wait = 0;
		if (wait > 1000)
			wait = 1000;
		/* Returns early on socket activity, curl's own timers or curl_multi_wakeup(). */
		curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
	}
	return NULL;
}

int workers_start(struct workers *w, struct err *err)
{
	if (w->started)
		return err_set(err, EINVAL, "workers already started");
	refresh_names(w);
	/* The health thread takes no signals: they belong to the event loop's thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&w->thread, NULL, health_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return err_sys(err, rc, "starting the health thread");
	w->started = true;
	return 0;
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	if (w->started) {
		atomic_store(&w->stop, true);
		curl_multi_wakeup(w->multi);
		pthread_join(w->thread, NULL);
	}
	for (size_t i = 0; i < w->n; i++)
		worker_destroy(w, w->v[i]);
	free(w->v);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	curl_slist_free_all(w->headers);
	if (w->auth_header) {
		explicit_bzero(w->auth_header, strlen(w->auth_header));
		free(w->auth_header);
	}
	for (size_t i = 0; i < w->nnames; i++) {
		free(w->names[i].host);
		free(w->names[i].ips);
	}
	free(w->names);
	free(w->urlpath);
	pthread_mutex_destroy(&w->mu);
	free(w);
	curl_global_cleanup();
}

/* ---- event-loop side ---- */

int workers_pick(struct workers *w, const struct worker_addr *exclude, size_t nexclude,
		 struct worker_addr *out)
{
	int rc = -1;
	pthread_mutex_lock(&w->mu);
	size_t best = 0;
	long long best_weight = 0;
	for (size_t i = 0; i < w->n; i++) {
		size_t idx = (w->rr + i) % w->n;
		struct worker *k = w->v[idx];
		if (!worker_pickable(k))
			continue;
		bool excluded = false;
		for (size_t j = 0; j < nexclude && !excluded; j++)
			excluded = addr_eq(exclude[j], k->addr);
		if (excluded)
			continue;
		long long wt = worker_weight(k);
		if (rc < 0 || wt < best_weight) {
			rc = 0;
			best = idx;
			best_weight = wt;
		}
	}
	if (rc == 0) {
		*out = w->v[best]->addr;
		w->rr = best + 1; /* the next tie goes to the one after it */
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

bool workers_known(struct workers *w, struct worker_addr a)
{
	pthread_mutex_lock(&w->mu);
	bool known = find_locked(w, a) != NULL;
	pthread_mutex_unlock(&w->mu);
	return known;
}

bool workers_up(struct workers *w, struct worker_addr a)
{
	pthread_mutex_lock(&w->mu);
	const struct worker *k = find_locked(w, a);
	bool up = k && worker_up(k);
	pthread_mutex_unlock(&w->mu);
	return up;
}

void workers_inflight(struct workers *w, struct worker_addr a, int delta)
{
	pthread_mutex_lock(&w->mu);
	struct worker *k = find_locked(w, a);
	if (k)
		k->inflight_new += delta;
	pthread_mutex_unlock(&w->mu);
}

void workers_failed(struct workers *w, struct worker_addr a)
{
	bool say = false;
	pthread_mutex_lock(&w->mu);
	struct worker *k = find_locked(w, a);
	if (k) {
		say = !k->dp_failed && k->health_up;
		k->dp_failed = true;
		k->dp_fail_seq = w->seq; /* only a poll started after this one clears it */
	}
	pthread_mutex_unlock(&w->mu);
	if (say) {
		char s[WORKER_ADDR_STRLEN];
		log_warn("worker %s failed on the data path: out of rotation until a health poll "
			 "answers",
			 worker_addr_fmt(a, s));
	}
}

void workers_summary(struct workers *w, struct workers_summary *s)
{
	memset(s, 0, sizeof *s);
	const struct worker *lim_ready = NULL, *lim_up = NULL;
	pthread_mutex_lock(&w->mu);
	s->total = (int)w->n;
	for (size_t i = 0; i < w->n; i++) {
		const struct worker *k = w->v[i];
		if (!worker_up(k))
			continue;
		s->up++;
		s->load += worker_weight(k);
		if (k->status == WORKER_BUSY)
			s->busy++;
		else if (k->status == WORKER_OFFLINE)
			s->offline++;
		if (!lim_up || k->maxmemory > lim_up->maxmemory)
			lim_up = k;
		if (worker_pickable(k)) {
			s->ready++;
			if (!lim_ready || k->maxmemory > lim_ready->maxmemory)
				lim_ready = k;
		}
	}
	const struct worker *lim = lim_ready ? lim_ready : lim_up;
	if (lim) {
		s->maxtime = lim->maxtime;
		s->maxfilesize = lim->maxfilesize;
		s->maxmemory = lim->maxmemory;
		s->maxprocesses = lim->maxprocesses;
	}
	pthread_mutex_unlock(&w->mu);
}

size_t workers_list(struct workers *w, struct worker_info *out, size_t max)
{
	pthread_mutex_lock(&w->mu);
	size_t n = w->n;
	for (size_t i = 0; i < n && i < max; i++) {
		const struct worker *k = w->v[i];
		struct worker_info *o = &out[i];
		o->addr = k->addr;
		o->up = worker_up(k);
		o->in_names = k->in_names;
		o->status = k->status;
		o->load = k->load;
		o->inflight = k->inflight_new + k->inflight_sent;
		o->maxmemory = k->maxmemory;
		snprintf(o->error, sizeof o->error, "%s", k->error);
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}
