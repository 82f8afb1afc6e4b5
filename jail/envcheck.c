/*
 * envcheck.c - see envcheck.h.
 */
#include "envcheck.h"

#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define ELF_READ_MAX	    (1024 * 1024)
#define TOML_READ_MAX	    (1024 * 1024)
#define RUNTIME_WAIT_MS	    5000
#define STATE_DISK_MIN	    (64ULL * 1024 * 1024) /* FIFOs and lock files only: little is needed */
#define STATE_INODES_MIN    1000
#define CTRD_DEFAULT_SOCKET "/run/containerd/containerd.sock"
#define CTRD_DEFAULT_ROOT   "/var/lib/containerd"
#define CTRD_DEFAULT_CONFIG "/etc/containerd/config.toml"

extern char **environ;

/* ------------------------------------------------------------------ report */

void envcheck_init(struct envcheck *ec, FILE *out)
{
	memset(ec, 0, sizeof *ec);
	ec->out = out;
}

void envcheck_line(struct envcheck *ec, enum envcheck_level lvl, const char *name, const char *fmt,
		   ...)
{
	static const char *const label[] = {"ok", "warn", "FAIL"};
	char detail[ENVCHECK_DETAIL_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	/* one check, one line, whatever a detail quoted from elsewhere holds */
	for (char *p = detail; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	ec->count[lvl]++;
	fprintf(ec->out, "%-4s  %s: %s\n", label[lvl], name, detail);
	fflush(ec->out);
}

int envcheck_finish(struct envcheck *ec)
{
	fprintf(ec->out, "%u ok, %u warn, %u FAIL\n", ec->count[ENVCHECK_OK],
		ec->count[ENVCHECK_WARN], ec->count[ENVCHECK_FAIL]);
	fflush(ec->out);
	return ec->count[ENVCHECK_FAIL] ? 1 : 0;
}

/* ------------------------------------------------------------------ ELF */

static uint64_t rd(const unsigned char *p, int size, bool big_endian)
{
	uint64_t v = 0;
	for (int i = 0; i < size; i++)
		v = (v << 8) | p[big_endian ? i : size - 1 - i];
	return v;
}

int envcheck_elf_parse(const void *data, size_t len, struct envcheck_elf *out, struct err *err)
{
	const unsigned char *p = data;
	memset(out, 0, sizeof *out);
	if (len < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0)
		return err_set(err, ENOEXEC, "not an ELF file");
	bool be;
	if (p[EI_DATA] == ELFDATA2LSB)
		be = false;
	else if (p[EI_DATA] == ELFDATA2MSB)
		be = true;
	else
		return err_set(err, ENOEXEC, "ELF file of unknown byte order %d", p[EI_DATA]);
	uint64_t phoff, phentsize, phnum, minent;
	if (p[EI_CLASS] == ELFCLASS64) {
		if (len < sizeof(Elf64_Ehdr))
			return err_set(err, ENOEXEC, "truncated ELF header");
		out->bits = 64;
		phoff = rd(p + offsetof(Elf64_Ehdr, e_phoff), 8, be);
		phentsize = rd(p + offsetof(Elf64_Ehdr, e_phentsize), 2, be);
		phnum = rd(p + offsetof(Elf64_Ehdr, e_phnum), 2, be);
		minent = sizeof(Elf64_Phdr);
	} else if (p[EI_CLASS] == ELFCLASS32) {
		if (len < sizeof(Elf32_Ehdr))
			return err_set(err, ENOEXEC, "truncated ELF header");
		out->bits = 32;
		phoff = rd(p + offsetof(Elf32_Ehdr, e_phoff), 4, be);
		phentsize = rd(p + offsetof(Elf32_Ehdr, e_phentsize), 2, be);
		phnum = rd(p + offsetof(Elf32_Ehdr, e_phnum), 2, be);
		minent = sizeof(Elf32_Phdr);
	} else {
		return err_set(err, ENOEXEC, "ELF file of unknown class %d", p[EI_CLASS]);
	}
	/* e_type and e_machine sit at the same offsets in both classes */
	out->type = (int)rd(p + offsetof(Elf64_Ehdr, e_type), 2, be);
	out->machine = (int)rd(p + offsetof(Elf64_Ehdr, e_machine), 2, be);
	if (out->type != ET_EXEC && out->type != ET_DYN)
		return err_set(err, ENOEXEC, "ELF file of type %d, not an executable", out->type);
	if (phnum == 0)
		return err_set(err, ENOEXEC, "ELF executable without program headers");
	if (phnum == PN_XNUM || phentsize < minent)
		return err_set(err, ENOEXEC, "unsupported ELF program header table");
	if (phoff > len || phnum * phentsize > len - phoff)
		return err_set(err, ENOEXEC, "ELF program headers beyond the first %zu bytes", len);
	for (uint64_t i = 0; i < phnum; i++) {
		/* p_type is the first 32-bit word of a program header in both classes */
		if (rd(p + phoff + i * phentsize, 4, be) == PT_INTERP)
			out->has_interp = true;
	}
	return 0;
}

int envcheck_elf_file(const char *path, struct envcheck_elf *out, struct err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno, "%s", path);
	cleanup_free unsigned char *buf = malloc(ELF_READ_MAX);
	if (!buf)
		return err_sys(err, ENOMEM, "%s", path);
	size_t len = 0;
	while (len < ELF_READ_MAX) {
		ssize_t r = read(fd, buf + len, ELF_READ_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys(err, errno, "reading %s", path);
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (envcheck_elf_parse(buf, len, out, err) < 0)
		return err_wrap(err, "%s", path);
	return 0;
}

static const char *machine_name(int m, char *buf, size_t n)
{
	switch (m) {
	case EM_X86_64:
		return "x86-64";
	case EM_386:
		return "i386";
	case EM_AARCH64:
		return "aarch64";
	case EM_ARM:
		return "arm";
	case EM_RISCV:
		return "riscv";
	case EM_PPC64:
		return "ppc64";
	case EM_S390:
		return "s390";
	default:
		snprintf(buf, n, "machine %d", m);
		return buf;
	}
}

/* ------------------------------------------------------------------ TLS */

static void utc(time_t t, char *out, size_t n)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm))
		snprintf(out, n, "@%lld", (long long)t);
}

enum envcheck_level envcheck_cert_verdict(time_t not_before, time_t not_after, time_t now,
					  int warn_days, char *detail, size_t n)
{
	char when[40];
	if (now < not_before) {
		utc(not_before, when, sizeof when);
		snprintf(detail, n, "not valid before %s", when);
		return ENVCHECK_FAIL;
	}
	utc(not_after, when, sizeof when);
	if (now >= not_after) {
		snprintf(detail, n, "expired on %s", when);
		return ENVCHECK_FAIL;
	}
	long long left = (long long)not_after - (long long)now;
	long long days = left / 86400;
	if (left < (long long)warn_days * 86400) {
		snprintf(detail, n, "expires on %s, in %lld day%s", when, days,
			 days == 1 ? "" : "s");
		return ENVCHECK_WARN;
	}
	snprintf(detail, n, "valid until %s (%lld days)", when, days);
	return ENVCHECK_OK;
}

/* OpenSSL's reason for the last error, or "" (and the queue emptied). */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : "unknown error";
}

static int asn1_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

int envcheck_cert_load(const char *cert_file, const char *key_file, struct envcheck_cert *out,
		       struct err *err)
{
	memset(out, 0, sizeof *out);
	if (access(cert_file, R_OK) < 0)
		return err_sys(err, errno, "certificate %s", cert_file);
	if (access(key_file, R_OK) < 0)
		return err_sys(err, errno, "private key %s", key_file);
	ERR_clear_error();
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!c)
		return err_set(err, ENOMEM, "SSL_CTX_new failed");
	int r = 0;
	/* the calls the server makes (tls_files_check), so that ok here means it starts */
	if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
		r = err_set(err, EINVAL, "cannot load certificate %s: %s", cert_file, ssl_reason());
	} else if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL compares the key with the certificate already here */
		unsigned long last = ERR_peek_last_error();
		if (ERR_GET_LIB(last) == ERR_LIB_X509 &&
		    ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			r = err_set(err, EINVAL, "private key %s does not match certificate %s",
				    key_file, cert_file);
		} else {
			r = err_set(err, EINVAL, "cannot load private key %s: %s", key_file,
				    ssl_reason());
		}
	} else if (SSL_CTX_check_private_key(c) != 1) {
		ERR_clear_error();
		r = err_set(err, EINVAL, "private key %s does not match certificate %s", key_file,
			    cert_file);
	} else {
		X509 *x = SSL_CTX_get0_certificate(c);
		if (!x || asn1_time(X509_get0_notBefore(x), &out->not_before) < 0 ||
		    asn1_time(X509_get0_notAfter(x), &out->not_after) < 0) {
			r = err_set(err, EINVAL, "certificate %s: unreadable validity dates",
				    cert_file);
		} else {
			X509_NAME *s = X509_get_subject_name(x);
			if (X509_NAME_get_text_by_NID(s, NID_commonName, out->subject,
						      sizeof out->subject) < 0)
				X509_NAME_oneline(s, out->subject, sizeof out->subject);
		}
	}
	SSL_CTX_free(c);
	ERR_clear_error();
	return r;
}

/* ------------------------------------------------------------------ cgroups */

/* Is word one of the comma-separated tokens of list? */
static bool has_token(const char *list, size_t len, const char *word, char sep)
{
	size_t wl = strlen(word);
	const char *p = list, *end = list + len;
	while (p < end) {
		const char *q = memchr(p, sep, (size_t)(end - p));
		size_t tl = (size_t)((q ? q : end) - p);
		if (tl == wl && memcmp(p, word, wl) == 0)
			return true;
		p += tl + 1;
	}
	return false;
}

/* Splits one mountinfo line into its mount point, fstype and super options (pointers into line,
 * which is modified). -1 on a malformed line. */
static int mountinfo_fields(char *line, char **mp, char **fstype, char **superopts)
{
	char *save = NULL;
	char *f[6];
	int i = 0;
	for (char *t = line; i < 6; t = NULL) {
		if (!(f[i] = strtok_r(t, " ", &save)))
			return -1;
		i++;
	}
	*mp = f[4];
	/* optional fields, then "-" */
	char *t;
	while ((t = strtok_r(NULL, " ", &save)) && strcmp(t, "-") != 0)
		;
	if (!t || !(*fstype = strtok_r(NULL, " ", &save)) || !strtok_r(NULL, " ", &save) ||
	    !(*superopts = strtok_r(NULL, " ", &save)))
		return -1;
	return 0;
}

/* Appends word to the blank-separated list in buf. */
static void append_word(char *buf, size_t n, const char *word)
{
	size_t l = strlen(buf);
	snprintf(buf + l, n - l, "%s%s", l ? " " : "", word);
}

enum envcheck_level envcheck_cgroups_verdict(const char *mountinfo, const char *controllers,
					     char *detail, size_t n)
{
	static const char *const need[] = {"memory", "pids", "cpu"};
	char where[3][128] = {"", "", ""};
	bool v2 = false, any = false;
	const char *p = mountinfo ? mountinfo : "";
	while (*p) {
		size_t ll = strcspn(p, "\n");
		char line[4096];
		if (ll < sizeof line) {
			memcpy(line, p, ll);
			line[ll] = '\0';
			char *mp, *fstype, *opts;
			if (mountinfo_fields(line, &mp, &fstype, &opts) == 0) {
				/* a later mount on the same point hides the earlier one */
				if (strcmp(mp, "/sys/fs/cgroup") == 0)
					v2 = strcmp(fstype, "cgroup2") == 0;
				if (strcmp(fstype, "cgroup") == 0) {
					any = true;
					for (int i = 0; i < 3; i++)
						if (has_token(opts, strlen(opts), need[i], ','))
							snprintf(where[i], sizeof where[i], "%s",
								 mp);
				}
			}
		}
		p += ll;
		if (*p)
			p++;
	}
	char missing[64] = "";
	if (v2) {
		if (!controllers) {
			snprintf(detail, n,
				 "cgroup v2 on /sys/fs/cgroup, but its cgroup.controllers is "
				 "unreadable; fix: check the cgroup2 mount (mount | grep cgroup)");
			return ENVCHECK_FAIL;
		}
		/* cgroup.controllers: blank-separated */
		char ctl[1024];
		snprintf(ctl, sizeof ctl, "%s", controllers);
		for (char *c = ctl; *c; c++)
			if (isspace((unsigned char)*c))
				*c = ' ';
		for (int i = 0; i < 3; i++)
			if (!has_token(ctl, strlen(ctl), need[i], ' '))
				append_word(missing, sizeof missing, need[i]);
		if (missing[0]) {
			snprintf(
			    detail, n,
			    "cgroup v2: controller(s) %s not available in /sys/fs/cgroup; fix: "
			    "enable them for the worker's cgroup tree (in a container: run it with "
			    "the host's cgroup namespace, or delegate the controllers)",
			    missing);
			return ENVCHECK_FAIL;
		}
		snprintf(detail, n, "cgroup v2, controllers memory pids cpu available");
		return ENVCHECK_OK;
	}
	if (!any) {
		snprintf(detail, n,
			 "no cgroup file system on /sys/fs/cgroup; fix: mount cgroup2 there (mount "
			 "-t cgroup2 none /sys/fs/cgroup)");
		return ENVCHECK_FAIL;
	}
	for (int i = 0; i < 3; i++)
		if (!where[i][0])
			append_word(missing, sizeof missing, need[i]);
	if (missing[0]) {
		snprintf(
		    detail, n,
		    "cgroup v1: no hierarchy for %s; fix: mount it under /sys/fs/cgroup, or boot "
		    "with cgroup v2 (systemd.unified_cgroup_hierarchy=1)",
		    missing);
		return ENVCHECK_FAIL;
	}
	snprintf(detail, n, "cgroup v1 (memory on %.100s, pids on %.100s, cpu on %.100s)", where[0],
		 where[1], where[2]);
	return ENVCHECK_OK;
}

/* ------------------------------------------------------------------ disk */

static void human(unsigned long long b, char *out, size_t n)
{
	if (b >= 1024ULL * 1024 * 1024)
		snprintf(out, n, "%.1f GiB", (double)b / (1024.0 * 1024 * 1024));
	else
		snprintf(out, n, "%llu MiB", b / (1024 * 1024));
}

enum envcheck_level envcheck_disk_verdict(unsigned long long avail, unsigned long long min,
					  char *detail, size_t n)
{
	char a[32], m[32];
	human(avail, a, sizeof a);
	human(min, m, sizeof m);
	if (avail < min) {
		snprintf(detail, n, "%s free, less than %s", a, m);
		return ENVCHECK_WARN;
	}
	snprintf(detail, n, "%s free", a);
	return ENVCHECK_OK;
}

/* ------------------------------------------------------------------ containerd's config */

/* Copies the TOML string at *p ("..." with \" and \\, or '...') into out; "" if not a string. */
static void toml_string(const char *p, char *out, size_t n)
{
	size_t o = 0;
	out[0] = '\0';
	char q = *p;
	if (q != '"' && q != '\'')
		return;
	for (p++; *p && *p != q && *p != '\n'; p++) {
		if (q == '"' && *p == '\\' && p[1] && p[1] != '\n')
			p++;
		if (o + 1 < n)
			out[o++] = *p;
	}
	out[o] = '\0';
}

void envcheck_containerd_toml(const char *toml, char *root, size_t rootn, char *address,
			      size_t addressn)
{
	char table[128] = "";
	root[0] = address[0] = '\0';
	for (const char *p = toml; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		const char *s = p;
		while (s < p + ll && (*s == ' ' || *s == '\t'))
			s++;
		if (*s == '[') {
			/* [table] or [[array]]: keep the name without brackets, blanks, quotes */
			size_t t = 0;
			for (const char *c = s; c < p + ll && *c != '#'; c++)
				if (*c != '[' && *c != ']' && *c != ' ' && *c != '\t' &&
				    *c != '"' && t + 1 < sizeof table)
					table[t++] = *c;
			table[t] = '\0';
		} else if (*s != '#' && s < p + ll) {
			size_t kl = 0;
			while (s + kl < p + ll &&
			       (isalnum((unsigned char)s[kl]) || s[kl] == '_' || s[kl] == '-'))
				kl++;
			const char *v = s + kl;
			while (v < p + ll && (*v == ' ' || *v == '\t'))
				v++;
			if (v < p + ll && *v == '=') {
				v++;
				while (v < p + ll && (*v == ' ' || *v == '\t'))
					v++;
				if (!table[0] && kl == 4 && !strncmp(s, "root", 4))
					toml_string(v, root, rootn);
				else if (!strcmp(table, "grpc") && kl == 7 &&
					 !strncmp(s, "address", 7))
					toml_string(v, address, addressn);
			}
		}
		p += ll;
		if (*p)
			p++;
	}
}

/* ------------------------------------------------------------------ host helpers */

/* Reads at most max-1 bytes of path into a NUL-terminated malloc'd string; NULL on error. */
static char *read_text(const char *path, size_t max)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max);
	if (!buf)
		return NULL;
	size_t len = 0;
	while (len + 1 < max) {
		ssize_t r = read(fd, buf + len, max - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return buf;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	return strcmp(a, b) == 0;
}

/* Is pid a containerd whose socket is `socket`? Then its root goes into root. */
static int containerd_of(const char *pid, const char *socket, char *root, size_t n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/proc/%s/comm", pid);
	cleanup_free char *comm = read_text(path, 64);
	if (!comm || strcmp(comm, "containerd\n") != 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
	cleanup_free char *cmd = NULL;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0 || !(cmd = malloc(65536)))
		return 0;
	for (ssize_t r; len < 65535 && (r = read(fd, cmd + len, 65535 - len)) > 0;)
		len += (size_t)r;
	cmd[len] = '\0';
	const char *config = NULL, *address = NULL, *croot = NULL;
	const char *args[512];
	size_t na = 0;
	for (size_t i = 0; i < len && na < 512; i += strlen(cmd + i) + 1)
		args[na++] = cmd + i;
	for (size_t i = 1; i < na; i++) {
		const char *a = args[i], *next = i + 1 < na ? args[i + 1] : NULL;
		const char **slot = NULL;
		if (!strcmp(a, "--config") || !strcmp(a, "-c"))
			slot = &config;
		else if (!strcmp(a, "--address") || !strcmp(a, "-a"))
			slot = &address;
		else if (!strcmp(a, "--root"))
			slot = &croot;
		else if (!strncmp(a, "--config=", 9))
			config = a + 9;
		else if (!strncmp(a, "--address=", 10))
			address = a + 10;
		else if (!strncmp(a, "--root=", 7))
			croot = a + 7;
		if (slot && next) {
			*slot = next;
			i++;
		}
	}
	char cfgpath[PATH_MAX];
	if (!config)
		snprintf(cfgpath, sizeof cfgpath, "%s", CTRD_DEFAULT_CONFIG);
	else if (config[0] == '/')
		snprintf(cfgpath, sizeof cfgpath, "%s", config);
	else /* relative to the daemon's working directory */
		snprintf(cfgpath, sizeof cfgpath, "/proc/%s/cwd/%s", pid, config);
	char troot[PATH_MAX], taddr[PATH_MAX];
	troot[0] = taddr[0] = '\0';
	cleanup_free char *toml = read_text(cfgpath, TOML_READ_MAX);
	if (toml)
		envcheck_containerd_toml(toml, troot, sizeof troot, taddr, sizeof taddr);
	const char *addr = address ? address : taddr[0] ? taddr : CTRD_DEFAULT_SOCKET;
	if (!strncmp(addr, "unix://", 7))
		addr += 7;
	if (!same_file(addr, socket))
		return 0;
	snprintf(root, n, "%s", croot ? croot : troot[0] ? troot : CTRD_DEFAULT_ROOT);
	return 1;
}

int envcheck_containerd_root(const char *socket, char *root, size_t n)
{
	if (!socket || !*socket)
		return 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));)
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
			found = containerd_of(e->d_name, socket, root, n);
	closedir(d);
	return found;
}

/* ------------------------------------------------------------------ host checks */

/* RUNTIME as containerd's shim will look it up: a path, or a name in PATH. */
static int find_runtime(const char *name, char *out, size_t n)
{
	if (strchr(name, '/')) {
		snprintf(out, n, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -1;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path; *p;) {
		size_t dl = strcspn(p, ":");
		struct stat st;
		if (dl && snprintf(out, n, "%.*s/%s", (int)dl, p, name) < (int)n &&
		    stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		p += dl;
		if (*p)
			p++;
	}
	return -1;
}

/* Runs `bin --version` (posix_spawn: no fork of this process), up to RUNTIME_WAIT_MS. Fills
 * out with the first line of its output. Returns the wait status, or -1 (err). */
static int run_version(const char *bin, char *out, size_t n, struct err *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys(err, errno, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	char *argv[] = {(char *)bin, "--version", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return err_sys(err, rc, "cannot run %s", bin);
	}
	char buf[1024];
	size_t len = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool timeout = false;
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= RUNTIME_WAIT_MS) {
			timeout = true;
			break;
		}
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		int pr = poll(&pf, 1, (int)(RUNTIME_WAIT_MS - ms));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			timeout = pr == 0;
			break;
		}
		char tmp[512];
		ssize_t r = read(pfd[0], tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t take = (size_t)r < sizeof buf - 1 - len ? (size_t)r : sizeof buf - 1 - len;
		memcpy(buf + len, tmp, take);
		len += take;
	}
	close(pfd[0]);
	if (timeout)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	snprintf(out, n, "%.*s", (int)strcspn(buf, "\n"), buf);
	if (timeout)
		return err_set(err, ETIMEDOUT, "%s --version did not end within %d s", bin,
			       RUNTIME_WAIT_MS / 1000);
	return status;
}

static void check_runtime(struct envcheck *ec, const char *runtime)
{
	char path[PATH_MAX], line[256];
	struct err e;
	err_clear(&e);
	if (find_runtime(runtime, path, sizeof path) < 0) {
		envcheck_line(
		    ec, ENVCHECK_FAIL, "runtime",
		    "RUNTIME %s not found in PATH; fix: apt-get install %s (or set RUNTIME "
		    "to runc)",
		    runtime, strchr(runtime, '/') ? "runc" : runtime);
		return;
	}
	int st = run_version(path, line, sizeof line, &e);
	if (st < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "runtime", "%s; fix: reinstall %s", e.msg,
			      runtime);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "runtime",
			      "%s --version failed (status %d): %s; fix: reinstall %s", path,
			      WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), line, runtime);
	} else {
		envcheck_line(ec, ENVCHECK_OK, "runtime", "%s (%s)", line[0] ? line : runtime,
			      path);
	}
}

static void check_cgroups(struct envcheck *ec)
{
	cleanup_free char *mi = read_text("/proc/self/mountinfo", 1024 * 1024);
	cleanup_free char *ctl = read_text("/sys/fs/cgroup/cgroup.controllers", 4096);
	char detail[ENVCHECK_DETAIL_MAX];
	enum envcheck_level l = envcheck_cgroups_verdict(mi, ctl, detail, sizeof detail);
	envcheck_line(ec, l, "cgroups", "%s", detail);
}

static void check_helper(struct envcheck *ec, const char *helper)
{
	struct stat st;
	struct err e;
	err_clear(&e);
	if (stat(helper, &st) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "helper",
			      "HELPER_PATH %s: %s; fix: make install (it installs the helper), or "
			      "point HELPER_PATH at build/vplhelper",
			      helper, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		envcheck_line(
		    ec, ENVCHECK_FAIL, "helper",
		    "HELPER_PATH %s is not a regular file; fix: point it at the vplhelper "
		    "binary",
		    helper);
		return;
	}
	if (access(helper, X_OK) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "helper",
			      "HELPER_PATH %s is not executable; fix: chmod 755 %s", helper,
			      helper);
		return;
	}
	struct envcheck_elf elf, self;
	if (envcheck_elf_file(helper, &elf, &e) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "helper",
			      "HELPER_PATH %s; fix: point it at the vplhelper binary", e.msg);
		return;
	}
	if (elf.has_interp) {
		envcheck_line(
		    ec, ENVCHECK_FAIL, "helper",
		    "HELPER_PATH %s is dynamically linked: it runs inside images that may "
		    "lack its libraries; fix: use the static build/vplhelper (make)",
		    helper);
		return;
	}
	char m1[32], m2[32];
	if (envcheck_elf_file("/proc/self/exe", &self, &e) == 0 && self.machine != elf.machine) {
		envcheck_line(
		    ec, ENVCHECK_FAIL, "helper",
		    "HELPER_PATH %s is built for %s, this host is %s; fix: rebuild it here", helper,
		    machine_name(elf.machine, m1, sizeof m1),
		    machine_name(self.machine, m2, sizeof m2));
		return;
	}
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		envcheck_line(
		    ec, ENVCHECK_WARN, "helper",
		    "HELPER_PATH %s is writable by someone else than root (it runs in every "
		    "task); fix: chown root:root %s && chmod 755 %s",
		    helper, helper, helper);
		return;
	}
	envcheck_line(ec, ENVCHECK_OK, "helper", "%s: static ELF %s, %lld KiB", helper,
		      machine_name(elf.machine, m1, sizeof m1), (long long)st.st_size / 1024);
}

/* The directory whose file system STATE_DIR is (or will be) on. */
static void existing_dir(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", path);
	struct stat st;
	while (stat(out, &st) < 0) {
		char *slash = strrchr(out, '/');
		if (!slash || slash == out) {
			snprintf(out, n, "/");
			return;
		}
		*slash = '\0';
	}
}

static void check_state_dir(struct envcheck *ec, const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			envcheck_line(ec, ENVCHECK_FAIL, "state dir",
				      "STATE_DIR %s is not a directory; fix: remove it or set "
				      "STATE_DIR elsewhere",
				      dir);
			return;
		}
		/* the worker makes FIFOs there: try one */
		char probe[PATH_MAX];
		snprintf(probe, sizeof probe, "%s/.vpl-envcheck-%d", dir, (int)getpid());
		if (mkfifo(probe, 0600) < 0) {
			envcheck_line(ec, ENVCHECK_FAIL, "state dir",
				      "cannot create a FIFO in STATE_DIR %s: %s; fix: run as root, "
				      "on a file system that has FIFOs (tmpfs: /run/vplcell)",
				      dir, strerror(errno));
			return;
		}
		unlink(probe);
		if (st.st_mode & (S_IWGRP | S_IWOTH)) {
			envcheck_line(
			    ec, ENVCHECK_WARN, "state dir",
			    "STATE_DIR %s is writable by group or others; fix: chmod 755 %s", dir,
			    dir);
			return;
		}
		envcheck_line(ec, ENVCHECK_OK, "state dir", "%s: writable, FIFOs work", dir);
		return;
	}
	if (errno != ENOENT) {
		envcheck_line(ec, ENVCHECK_FAIL, "state dir", "STATE_DIR %s: %s", dir,
			      strerror(errno));
		return;
	}
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	if (stat(parent, &st) == 0 && S_ISDIR(st.st_mode) && access(parent, W_OK) == 0)
		envcheck_line(ec, ENVCHECK_OK, "state dir", "%s: absent, the worker creates it",
			      dir);
	else
		envcheck_line(ec, ENVCHECK_FAIL, "state dir",
			      "STATE_DIR %s is absent and %s is not a writable directory; fix: "
			      "mkdir -p %s (systemd: RuntimeDirectory=vplcell does it)",
			      dir, parent, dir);
}

static void check_disk(struct envcheck *ec, const char *name, const char *path,
		       unsigned long long min, bool inodes)
{
	char where[PATH_MAX], detail[ENVCHECK_DETAIL_MAX];
	existing_dir(path, where, sizeof where);
	struct statvfs vfs;
	if (statvfs(where, &vfs) < 0) {
		envcheck_line(ec, ENVCHECK_WARN, name, "statvfs %s: %s", where, strerror(errno));
		return;
	}
	unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	enum envcheck_level l = envcheck_disk_verdict(avail, min, detail, sizeof detail);
	if (l == ENVCHECK_OK && inodes && vfs.f_files && vfs.f_favail < STATE_INODES_MIN) {
		envcheck_line(ec, ENVCHECK_WARN, name, "%s: only %llu inodes free; fix: free some",
			      path, (unsigned long long)vfs.f_favail);
		return;
	}
	envcheck_line(ec, l, name, "%s: %s%s", path, detail,
		      l == ENVCHECK_OK ? "" : "; fix: free space there");
}

static void check_tls(struct envcheck *ec, const struct jail_config *cfg)
{
	if (!cfg->secure_port) {
		envcheck_line(ec, ENVCHECK_OK, "tls", "SECURE_PORT is 0: no certificate needed");
		return;
	}
	struct envcheck_cert c;
	struct err e;
	err_clear(&e);
	if (envcheck_cert_load(cfg->ssl_cert_file, cfg->ssl_key_file, &c, &e) < 0) {
		envcheck_line(ec, ENVCHECK_FAIL, "tls",
			      "%s; fix: set SSL_CERT_FILE and SSL_KEY_FILE to a matching PEM pair "
			      "(scripts/deploy.sh makes a self-signed one)",
			      e.msg);
		return;
	}
	char detail[ENVCHECK_DETAIL_MAX];
	enum envcheck_level l = envcheck_cert_verdict(
	    c.not_before, c.not_after, time(NULL), ENVCHECK_CERT_WARN_DAYS, detail, sizeof detail);
	envcheck_line(ec, l, "tls", "%s (%s): %s%s", cfg->ssl_cert_file, c.subject, detail,
		      l == ENVCHECK_OK ? ""
				       : "; fix: renew it (certbot renew), then reload (SIGHUP)");
}

void envcheck_host(struct envcheck *ec, const struct jail_config *cfg)
{
	if (geteuid() != 0)
		envcheck_line(
		    ec, ENVCHECK_WARN, "privileges",
		    "running as uid %d: the worker runs as root (containerd's socket, "
		    "cgroups, FIFOs), so checks below may fail here only; fix: run --check "
		    "as root",
		    (int)geteuid());
	else
		envcheck_line(ec, ENVCHECK_OK, "privileges", "root");
	check_runtime(ec, cfg->runtime);
	check_cgroups(ec);
	check_helper(ec, cfg->helper_path);
	check_state_dir(ec, cfg->state_dir);
	check_disk(ec, "disk (state dir)", cfg->state_dir, STATE_DISK_MIN, true);
	char root[PATH_MAX];
	if (envcheck_containerd_root(cfg->containerd_socket, root, sizeof root))
		check_disk(ec, "disk (containerd root)", root, ENVCHECK_DISK_MIN, false);
	check_tls(ec, cfg);
}
