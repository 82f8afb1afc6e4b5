/*
 * envcheck_ctr.c - see envcheck_ctr.h.
 */
#include "envcheck_ctr.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "config.h"
#include "ctr_client.h"
#include "ctr_ops.h"
#include "envcheck.h"
#include "imageref.h"
#include "log.h"
#include "pull.h"
#include "puller.h"
#include "registry.h"

#define CALL_MS	       5000  /* each containerd call */
#define WAIT_MS	       30000 /* a chain of calls (the image's chainID) */
#define REG_CONNECT_MS 3000
#define REG_TOTAL_MS   10000

/* ------------------------------------------------------------------ registry */

/* Is the local registry spoken to over plain http? As the worker decides (sandbox.c). */
static bool local_plain_http(const struct jail_config *cfg)
{
	const char *lr = cfg->local_registry;
	if (!cfg->registry_plain_http)
		return strncmp(lr, "127.", 4) == 0 || strncmp(lr, "localhost", 9) == 0 ||
		       strncmp(lr, "[::1]", 5) == 0;
	size_t hl = strlen(lr);
	for (const char *p = cfg->registry_plain_http; *p;) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == hl && !strncasecmp(p, lr, n))
			return true;
		p += n;
	}
	return false;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* GET /v2/ of LOCAL_REGISTRY: 200 (open) or 401 (asks for credentials) means a registry answers. */
static bool check_registry(struct envcheck *ec, const struct jail_config *cfg)
{
	char url[512];
	snprintf(url, sizeof url, "%s://%s/v2/", local_plain_http(cfg) ? "http" : "https",
		 cfg->local_registry);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		envcheck_line(ec, ENVCHECK_FAIL, "registry", "libcurl does not initialise");
		return false;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		envcheck_line(ec, ENVCHECK_FAIL, "registry", "out of memory");
		return false;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)REG_CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)REG_TOTAL_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "vplcell-envcheck/1");
	if (cfg->registry_ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->registry_ca_file);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		envcheck_line(ec, ENVCHECK_FAIL, "registry",
			      "LOCAL_REGISTRY %s unreachable (%s): %s; fix: start it (`make image` "
			      "starts scripts/registry.sh), or set LOCAL_REGISTRY (and "
			      "REGISTRY_PLAIN_HTTP / REGISTRY_CA_FILE)",
			      cfg->local_registry, url,
			      errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return false;
	}
	if (status != 200 && status != 401) {
		envcheck_line(ec, ENVCHECK_FAIL, "registry",
			      "%s answers HTTP %ld, not a registry's 200 or 401; fix: point "
			      "LOCAL_REGISTRY at the registry",
			      url, status);
		return false;
	}
	envcheck_line(ec, ENVCHECK_OK, "registry", "%s answers HTTP %ld", url, status);
	return true;
}

/* Can the local registry serve the image? 1 yes (digest filled), 0 no (why in err), -1 error. */
static int registry_has(const struct jail_config *cfg, const struct image_ref *ref, char *digest,
			size_t n, struct err *err)
{
	struct reg_cred *creds = NULL;
	char *credbuf = NULL;
	int ncreds = puller_read_auth(cfg->registry_auth_file, &creds, &credbuf, err);
	if (ncreds < 0)
		return -1;
	struct reg_opts o = {
	    .plain_http_hosts = local_plain_http(cfg) ? cfg->local_registry : "",
	    .ca_file = cfg->registry_ca_file,
	    .creds = creds,
	    .ncreds = (size_t)ncreds,
	    .connect_timeout_ms = REG_CONNECT_MS,
	    .stall_timeout_s = 10,
	};
	struct reg_client *reg = reg_client_new(&o, err);
	int rc = -1;
	if (reg) {
		struct reg_manifest m = {0};
		if (reg_resolve(reg, ref, &m, err) == 0) {
			snprintf(digest, n, "%s", m.digest);
			rc = 1;
		} else if (err && err->code == ENOENT) {
			rc = 0;
		}
		free(m.body);
	}
	reg_client_free(reg);
	free(creds);
	free(credbuf);
	return rc;
}

/* ------------------------------------------------------------------ containerd */

/* The answer of one asynchronous call, waited for on this thread. */
struct answer {
	bool done;
	int code;
	char details[512];
	char value[256];
};

static void on_answer(void *arg, const struct ctr_status *st, const char *value)
{
	struct answer *a = arg;
	a->done = true;
	a->code = st->code;
	snprintf(a->details, sizeof a->details, "%s", st->details);
	snprintf(a->value, sizeof a->value, "%s", value ? value : "");
}

/* Runs the client's callbacks until a is answered or ms pass. The answer (or CANCELLED, from
 * ctr_client_free) may still come later: a must outlive the client. */
static void wait_answer(struct ctr_client *c, struct answer *a, int ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!a->done) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= ms)
			break;
		struct pollfd pf = {.fd = ctr_client_fd(c), .events = POLLIN};
		if (poll(&pf, 1, (int)(ms - spent)) < 0 && errno != EINTR)
			break;
		ctr_client_dispatch(c);
	}
	if (!a->done) {
		a->code = CTR_DEADLINE_EXCEEDED;
		snprintf(a->details, sizeof a->details, "no answer within %d ms", ms);
	}
}

static void check_image(struct envcheck *ec, const struct jail_config *cfg, const char *cfg_path,
			struct ctr_client *c, bool registry_ok, struct answer *a)
{
	struct image_ref ref;
	char name[320];
	struct err e;
	err_clear(&e);
	if (image_ref_parse(cfg->default_image, cfg->local_registry, &ref, &e) < 0 ||
	    image_ref_format(&ref, name, sizeof name) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "image", "DEFAULT_IMAGE: %s", e.msg);
		return;
	}
	struct err ce;
	err_clear(&ce);
	if (ctr_image_chain_id(c, name, CTR_SNAPSHOTTER_DEFAULT, CALL_MS, on_answer, a, &ce) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "image", "looking up %s: %s", name, ce.msg);
		return;
	}
	wait_answer(c, a, WAIT_MS);
	if (a->code == CTR_OK) {
		envcheck_line(ec, ENVCHECK_OK, "image", "DEFAULT_IMAGE %s present, unpacked (%s)",
			      name, CTR_SNAPSHOTTER_DEFAULT);
		return;
	}
	if (a->code != CTR_NOT_FOUND) {
		envcheck_line(ec, ENVCHECK_FAIL, "image", "looking up %s: %s: %s", name,
			      ctr_code_name(a->code), a->details);
		return;
	}
	char digest[80];
	int in_ctrd = image_target(c, name, digest, &e);
	if (in_ctrd == 1) {
		envcheck_line(ec, ENVCHECK_WARN, "image",
			      "DEFAULT_IMAGE %s is in containerd but not unpacked for %s; fix: "
			      "vpl-jail -f %s image pull %s",
			      name, CTR_SNAPSHOTTER_DEFAULT, cfg_path, cfg->default_image);
		return;
	}
	if (in_ctrd < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "image", "%s", e.msg);
		return;
	}
	char fix[384];
	snprintf(fix, sizeof fix,
		 "fix: `make image` builds minivpl and pushes it to the local registry, or "
		 "`vpl-jail -f %s image import IMAGE.tar %s`",
		 cfg_path, cfg->default_image);
	if (!registry_ok) {
		envcheck_line(
		    ec, ENVCHECK_FAIL, "image",
		    "DEFAULT_IMAGE %s is not in containerd (namespace %s) and the registry "
		    "is unreachable; %s",
		    name, cfg->containerd_namespace, fix);
		return;
	}
	err_clear(&e);
	int in_reg = registry_has(cfg, &ref, digest, sizeof digest, &e);
	if (in_reg == 1)
		envcheck_line(
		    ec, ENVCHECK_WARN, "image",
		    "DEFAULT_IMAGE %s is not in containerd yet; the registry has it (%s): "
		    "the first task waits for the pull; fix: vpl-jail -f %s image pull %s",
		    name, digest, cfg_path, cfg->default_image);
	else
		envcheck_line(ec, ENVCHECK_FAIL, "image",
			      "DEFAULT_IMAGE %s is neither in containerd (namespace %s) nor "
			      "pullable: %s; %s",
			      name, cfg->containerd_namespace, e.msg[0] ? e.msg : "not found", fix);
}

static void check_containerd(struct envcheck *ec, const struct jail_config *cfg,
			     const char *cfg_path, bool registry_ok)
{
	const char *sock = cfg->containerd_socket;
	if (!sock) {
		envcheck_line(ec, ENVCHECK_FAIL, "containerd",
			      "CONTAINERD_SOCKET is empty: tasks would not run; fix: set it "
			      "(/run/containerd/containerd.sock)");
		return;
	}
	struct stat st;
	int src = stat(sock, &st);
	if (src < 0 || !S_ISSOCK(st.st_mode)) {
		envcheck_line(ec, ENVCHECK_FAIL, "containerd",
			      "CONTAINERD_SOCKET %s: %s; fix: start containerd (systemctl start "
			      "containerd), or set CONTAINERD_SOCKET to its socket",
			      sock, src < 0 ? strerror(errno) : "not a socket");
		return;
	}
	struct err e;
	err_clear(&e);
	struct ctr_client *c = ctr_client_new(sock, cfg->containerd_namespace, NULL, &e);
	if (!c) {
		envcheck_line(ec, ENVCHECK_FAIL, "containerd", "%s", e.msg);
		return;
	}
	/* answers live until the client is freed (a late callback writes into them) */
	struct answer ver = {.code = CTR_UNKNOWN}, img = {.code = CTR_UNKNOWN};
	if (ctr_version(c, CALL_MS, on_answer, &ver, &e) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "containerd", "%s", e.msg);
	} else {
		wait_answer(c, &ver, CALL_MS + 1000);
		/* ver.value is "VERSION REVISION" */
		size_t vl = strcspn(ver.value, " ");
		const char *rev = ver.value[vl] ? ver.value + vl + 1 : "?";
		if (ver.code != CTR_OK)
			envcheck_line(ec, ENVCHECK_FAIL, "containerd",
				      "%s: %s: %s; fix: start containerd, check its log "
				      "(journalctl -u containerd), run --check as root",
				      sock, ctr_code_name(ver.code), ver.details);
		else
			envcheck_line(ec, ENVCHECK_OK, "containerd",
				      "version %.*s (revision %s) at %s, namespace %s", (int)vl,
				      ver.value, rev, sock, cfg->containerd_namespace);
	}
	if (ver.code == CTR_OK)
		check_image(ec, cfg, cfg_path, c, registry_ok, &img);
	ctr_client_free(c);
}

/* ------------------------------------------------------------------ driver */

int envcheck_main(const char *config_path, FILE *out)
{
	/* the configuration's own warnings still reach stderr; nothing else of the log */
	log_open("vpl-jail", 0, LOG_LVL_WARN);
	struct envcheck ec;
	envcheck_init(&ec, out);
	struct jail_config cfg;
	memset(&cfg, 0, sizeof cfg);
	struct err e;
	err_clear(&e);
	if (jail_config_load(&cfg, config_path, &e) < 0) {
		envcheck_line(&ec, ENVCHECK_FAIL, "configuration",
			      "%s; fix: correct it (vpl-jail -t -f %s prints the effective values)",
			      e.msg, config_path);
		return envcheck_finish(&ec);
	}
	envcheck_line(&ec, ENVCHECK_OK, "configuration", "%s", config_path);
	envcheck_host(&ec, &cfg); /* spawns the runtime: before any grpc client */
	bool registry_ok = check_registry(&ec, &cfg);
	check_containerd(&ec, &cfg, config_path, registry_ok);
	jail_config_free(&cfg);
	return envcheck_finish(&ec);
}
