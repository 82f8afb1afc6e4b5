/* Unit tests for jail/envcheck: the pure parts of `vpl-jail --check` (ELF headers, certificate
 * dates and pairs, cgroup mounts, disk space, containerd's config.toml, the report). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "envcheck.h"

/* ---- ELF ---- */

/* Writes v in size bytes at p, little or big endian. */
static void put(unsigned char *p, int size, uint64_t v, int be)
{
	for (int i = 0; i < size; i++)
		p[be ? size - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

/* A minimal ELF image: header + program headers of the given types (as a linker writes them). */
static size_t make_elf(unsigned char *buf, size_t cap, int bits, int be, int type, int machine,
		       const uint32_t *ptypes, int n)
{
	size_t eh = bits == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t ph = bits == 64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t len = eh + ph * (size_t)n;
	assert_true(len <= cap);
	memset(buf, 0, len);
	memcpy(buf, ELFMAG, SELFMAG);
	buf[EI_CLASS] = bits == 64 ? ELFCLASS64 : ELFCLASS32;
	buf[EI_DATA] = be ? ELFDATA2MSB : ELFDATA2LSB;
	buf[EI_VERSION] = EV_CURRENT;
	put(buf + 16, 2, (uint64_t)type, be);
	put(buf + 18, 2, (uint64_t)machine, be);
	if (bits == 64) {
		put(buf + offsetof(Elf64_Ehdr, e_phoff), 8, eh, be);
		put(buf + offsetof(Elf64_Ehdr, e_phentsize), 2, ph, be);
		put(buf + offsetof(Elf64_Ehdr, e_phnum), 2, (uint64_t)n, be);
	} else {
		put(buf + offsetof(Elf32_Ehdr, e_phoff), 4, eh, be);
		put(buf + offsetof(Elf32_Ehdr, e_phentsize), 2, ph, be);
		put(buf + offsetof(Elf32_Ehdr, e_phnum), 2, (uint64_t)n, be);
	}
	for (int i = 0; i < n; i++)
		put(buf + eh + ph * (size_t)i, 4, ptypes[i], be);
	return len;
}

static void elf_static_and_dynamic(void **state)
{
	(void)state;
	unsigned char buf[1024];
	struct envcheck_elf e;
	struct err err;
	/* static-pie: ET_DYN with PT_DYNAMIC but no PT_INTERP */
	const uint32_t spie[] = {PT_LOAD, PT_LOAD, PT_DYNAMIC, PT_GNU_STACK};
	size_t len = make_elf(buf, sizeof buf, 64, 0, ET_DYN, EM_X86_64, spie, 4);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), 0);
	assert_false(e.has_interp);
	assert_int_equal(e.bits, 64);
	assert_int_equal(e.type, ET_DYN);
	assert_int_equal(e.machine, EM_X86_64);
	/* a PIE linked against libc: PT_INTERP (anywhere in the table) */
	const uint32_t dyn[] = {PT_PHDR, PT_LOAD, PT_INTERP, PT_DYNAMIC};
	len = make_elf(buf, sizeof buf, 64, 0, ET_DYN, EM_X86_64, dyn, 4);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), 0);
	assert_true(e.has_interp);
	/* the last header counts too */
	const uint32_t last[] = {PT_LOAD, PT_INTERP};
	len = make_elf(buf, sizeof buf, 64, 0, ET_EXEC, EM_AARCH64, last, 2);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), 0);
	assert_true(e.has_interp);
	assert_int_equal(e.machine, EM_AARCH64);
	/* 32-bit big-endian static executable */
	const uint32_t st32[] = {PT_LOAD, PT_GNU_STACK};
	len = make_elf(buf, sizeof buf, 32, 1, ET_EXEC, EM_PPC, st32, 2);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), 0);
	assert_false(e.has_interp);
	assert_int_equal(e.bits, 32);
	assert_int_equal(e.machine, EM_PPC);
	/* 32-bit big-endian dynamic */
	const uint32_t dy32[] = {PT_INTERP, PT_LOAD};
	len = make_elf(buf, sizeof buf, 32, 1, ET_EXEC, EM_PPC, dy32, 2);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), 0);
	assert_true(e.has_interp);
}

static void elf_rejects(void **state)
{
	(void)state;
	unsigned char buf[1024];
	struct envcheck_elf e;
	struct err err;
	const uint32_t pt[] = {PT_LOAD, PT_INTERP};
	size_t len = make_elf(buf, sizeof buf, 64, 0, ET_DYN, EM_X86_64, pt, 2);
	/* program headers cut off: refused, never read past len */
	err_clear(&err);
	assert_int_equal(envcheck_elf_parse(buf, len - 1, &e, &err), -1);
	assert_int_equal(err.code, ENOEXEC);
	assert_non_null(strstr(err.msg, "beyond"));
	/* header cut off */
	assert_int_equal(envcheck_elf_parse(buf, 40, &e, &err), -1);
	/* an object file is not an executable */
	len = make_elf(buf, sizeof buf, 64, 0, ET_REL, EM_X86_64, pt, 2);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), -1);
	/* no program headers */
	len = make_elf(buf, sizeof buf, 64, 0, ET_EXEC, EM_X86_64, pt, 0);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), -1);
	/* a huge phoff must not wrap around */
	len = make_elf(buf, sizeof buf, 64, 0, ET_DYN, EM_X86_64, pt, 2);
	put(buf + offsetof(Elf64_Ehdr, e_phoff), 8, UINT64_MAX - 8, 0);
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), -1);
	/* bad class, bad byte order, not ELF at all */
	len = make_elf(buf, sizeof buf, 64, 0, ET_DYN, EM_X86_64, pt, 2);
	buf[EI_CLASS] = 7;
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), -1);
	buf[EI_CLASS] = ELFCLASS64;
	buf[EI_DATA] = 9;
	assert_int_equal(envcheck_elf_parse(buf, len, &e, &err), -1);
	const char *script = "#!/bin/sh\necho hello\n";
	assert_int_equal(envcheck_elf_parse(script, strlen(script), &e, &err), -1);
	assert_non_null(strstr(err.msg, "not an ELF"));
	assert_int_equal(envcheck_elf_parse("", 0, &e, &err), -1);
}

static void elf_files(void **state)
{
	(void)state;
	struct envcheck_elf e;
	struct err err;
	/* this test binary is a dynamically linked PIE */
	assert_int_equal(envcheck_elf_file("/proc/self/exe", &e, &err), 0);
	assert_true(e.has_interp);
	char path[] = "/tmp/vplcell-envcheck-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	err_clear(&err);
	assert_int_equal(envcheck_elf_file(path, &e, &err), -1);
	assert_non_null(strstr(err.msg, path));
	unlink(path);
	assert_int_equal(envcheck_elf_file("/nonexistent/vplhelper", &e, &err), -1);
	assert_int_equal(err.code, ENOENT);
}

/* ---- certificates ---- */

static void cert_verdicts(void **state)
{
	(void)state;
	char d[ENVCHECK_DETAIL_MAX];
	const time_t now = 1700000000; /* 2023-11-14 22:13 UTC */
	const time_t day = 86400;
	/* valid for a year */
	assert_int_equal(envcheck_cert_verdict(now - day, now + 365 * day, now, 14, d, sizeof d),
			 ENVCHECK_OK);
	assert_non_null(strstr(d, "valid until 2024-11-13"));
	assert_non_null(strstr(d, "365 days"));
	/* exactly 14 days left: still ok; one second less: warn */
	assert_int_equal(envcheck_cert_verdict(now - day, now + 14 * day, now, 14, d, sizeof d),
			 ENVCHECK_OK);
	assert_int_equal(envcheck_cert_verdict(now - day, now + 14 * day - 1, now, 14, d, sizeof d),
			 ENVCHECK_WARN);
	assert_non_null(strstr(d, "in 13 days"));
	assert_int_equal(envcheck_cert_verdict(now - day, now + day + 5, now, 14, d, sizeof d),
			 ENVCHECK_WARN);
	assert_non_null(strstr(d, "in 1 day"));
	assert_null(strstr(d, "days"));
	/* expires at this very second, expired yesterday: FAIL */
	assert_int_equal(envcheck_cert_verdict(now - day, now, now, 14, d, sizeof d),
			 ENVCHECK_FAIL);
	assert_non_null(strstr(d, "expired on 2023-11-14 22:13 UTC"));
	assert_int_equal(envcheck_cert_verdict(now - 90 * day, now - day, now, 14, d, sizeof d),
			 ENVCHECK_FAIL);
	/* not valid yet */
	assert_int_equal(envcheck_cert_verdict(now + 60, now + 365 * day, now, 14, d, sizeof d),
			 ENVCHECK_FAIL);
	assert_non_null(strstr(d, "not valid before"));
	/* warn_days 0: only expiry matters */
	assert_int_equal(envcheck_cert_verdict(now - day, now + 1, now, 0, d, sizeof d),
			 ENVCHECK_OK);
}

/* A self-signed EC certificate valid from now+nb to now+na seconds, and its key, as PEM files. */
static void write_pair(const char *cert, const char *key, long nb, long na, const char *cn)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	assert_non_null(pk);
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), nb);
	X509_gmtime_adj(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, pk);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	FILE *f = fopen(cert, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	if (key) {
		f = fopen(key, "w");
		assert_non_null(f);
		PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
		fclose(f);
	}
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void cert_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/vplcell-envcheck-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cert[128], key[128], other[128], junk[128];
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	snprintf(other, sizeof other, "%s/other.pem", dir);
	snprintf(junk, sizeof junk, "%s/junk.pem", dir);
	struct envcheck_cert c;
	struct err err;
	char d[ENVCHECK_DETAIL_MAX];
	time_t now = time(NULL);

	/* a matching pair, valid 5 days: loads, and the verdict is warn */
	write_pair(cert, key, -3600, 5 * 86400, "jail.example.org");
	err_clear(&err);
	assert_int_equal(envcheck_cert_load(cert, key, &c, &err), 0);
	assert_string_equal(c.subject, "jail.example.org");
	assert_true(c.not_after - now > 5 * 86400 - 60 && c.not_after - now <= 5 * 86400 + 60);
	assert_true(now - c.not_before >= 3600 - 60);
	assert_int_equal(envcheck_cert_verdict(c.not_before, c.not_after, now, 14, d, sizeof d),
			 ENVCHECK_WARN);

	/* expired yesterday: still loads (the server would serve it), the verdict FAILs */
	write_pair(cert, key, -30 * 86400, -86400, "old.example.org");
	assert_int_equal(envcheck_cert_load(cert, key, &c, &err), 0);
	assert_int_equal(envcheck_cert_verdict(c.not_before, c.not_after, now, 14, d, sizeof d),
			 ENVCHECK_FAIL);

	/* a key of another certificate */
	write_pair(other, NULL, 0, 86400 * 90, "other");
	err_clear(&err);
	assert_int_equal(envcheck_cert_load(other, key, &c, &err), -1);
	assert_non_null(strstr(err.msg, "does not match"));

	/* not PEM, missing */
	FILE *f = fopen(junk, "w");
	fputs("not a certificate\n", f);
	fclose(f);
	err_clear(&err);
	assert_int_equal(envcheck_cert_load(junk, key, &c, &err), -1);
	assert_non_null(strstr(err.msg, "cannot load certificate"));
	err_clear(&err);
	assert_int_equal(envcheck_cert_load(cert, junk, &c, &err), -1);
	assert_non_null(strstr(err.msg, "cannot load private key"));
	err_clear(&err);
	assert_int_equal(envcheck_cert_load("/nonexistent/cert.pem", key, &c, &err), -1);
	assert_int_equal(err.code, ENOENT);

	unlink(cert);
	unlink(key);
	unlink(other);
	unlink(junk);
	rmdir(dir);
}

/* ---- cgroups ---- */

static const char *mi_v2 = "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
			   "25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 "
			   "- cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

/* this build host's layout: v1 hierarchies plus an empty unified one (hybrid) */
static const char *mi_hybrid =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void cgroups(void **state)
{
	(void)state;
	char d[ENVCHECK_DETAIL_MAX];
	assert_int_equal(envcheck_cgroups_verdict(mi_v2, "cpuset cpu io memory hugetlb pids rdma\n",
						  d, sizeof d),
			 ENVCHECK_OK);
	assert_non_null(strstr(d, "cgroup v2"));
	/* v2 without pids (a container given only some controllers) */
	assert_int_equal(envcheck_cgroups_verdict(mi_v2, "cpuset cpu io memory\n", d, sizeof d),
			 ENVCHECK_FAIL);
	assert_non_null(strstr(d, "pids"));
	assert_null(strstr(d, "memory "));
	/* "cpuset" is not "cpu" */
	assert_int_equal(envcheck_cgroups_verdict(mi_v2, "cpuset memory pids", d, sizeof d),
			 ENVCHECK_FAIL);
	assert_non_null(strstr(d, "cpu"));
	assert_int_equal(envcheck_cgroups_verdict(mi_v2, NULL, d, sizeof d), ENVCHECK_FAIL);
	assert_int_equal(envcheck_cgroups_verdict(mi_v2, "", d, sizeof d), ENVCHECK_FAIL);

	/* hybrid: v1 decides, the controllers of the empty unified tree do not matter */
	assert_int_equal(envcheck_cgroups_verdict(mi_hybrid, NULL, d, sizeof d), ENVCHECK_OK);
	assert_non_null(strstr(d, "cgroup v1"));
	assert_non_null(strstr(d, "cpu on /sys/fs/cgroup/cpu,cpuacct"));
	assert_non_null(strstr(d, "pids on /sys/fs/cgroup/pids"));

	/* v1 without a pids hierarchy */
	char nopids[2048];
	snprintf(nopids, sizeof nopids, "%s", mi_hybrid);
	char *l = strstr(nopids, "39 31");
	memset(l, '#', strcspn(l, "\n")); /* a line that does not parse is ignored */
	assert_int_equal(envcheck_cgroups_verdict(nopids, NULL, d, sizeof d), ENVCHECK_FAIL);
	assert_non_null(strstr(d, "no hierarchy for pids"));

	/* a cgroup2 mounted over the tmpfs later wins */
	char over[2048];
	snprintf(over, sizeof over,
		 "%s90 31 0:50 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", mi_hybrid);
	assert_int_equal(envcheck_cgroups_verdict(over, "memory pids cpu", d, sizeof d),
			 ENVCHECK_OK);
	assert_non_null(strstr(d, "cgroup v2"));

	/* nothing mounted */
	assert_int_equal(
	    envcheck_cgroups_verdict("22 1 0:21 / /sys rw - sysfs sysfs rw\n", NULL, d, sizeof d),
	    ENVCHECK_FAIL);
	assert_int_equal(envcheck_cgroups_verdict(NULL, NULL, d, sizeof d), ENVCHECK_FAIL);
	assert_int_equal(envcheck_cgroups_verdict("garbage\n\n- - -\n", NULL, d, sizeof d),
			 ENVCHECK_FAIL);
}

/* ---- disk ---- */

static void disk(void **state)
{
	(void)state;
	char d[ENVCHECK_DETAIL_MAX];
	const unsigned long long gib = 1024ULL * 1024 * 1024;
	assert_int_equal(envcheck_disk_verdict(10 * gib, ENVCHECK_DISK_MIN, d, sizeof d),
			 ENVCHECK_OK);
	assert_string_equal(d, "10.0 GiB free");
	assert_int_equal(envcheck_disk_verdict(2 * gib, ENVCHECK_DISK_MIN, d, sizeof d),
			 ENVCHECK_OK);
	assert_int_equal(envcheck_disk_verdict(2 * gib - 1, ENVCHECK_DISK_MIN, d, sizeof d),
			 ENVCHECK_WARN);
	assert_int_equal(
	    envcheck_disk_verdict(300ULL * 1024 * 1024, ENVCHECK_DISK_MIN, d, sizeof d),
	    ENVCHECK_WARN);
	assert_string_equal(d, "300 MiB free, less than 2.0 GiB");
	assert_int_equal(envcheck_disk_verdict(0, ENVCHECK_DISK_MIN, d, sizeof d), ENVCHECK_WARN);
}

/* ---- containerd's config.toml ---- */

static void containerd_toml(void **state)
{
	(void)state;
	char root[256], addr[256];
	/* the private test instance's file (scripts/containerd-test.sh) */
	envcheck_containerd_toml("version = 2\n"
				 "root = \"/tmp/x/root\"\n"
				 "state = \"/tmp/x/state\"\n"
				 "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
				 "[grpc]\n"
				 "  address = \"/tmp/x/ctd.sock\"\n"
				 "[ttrpc]\n"
				 "  address = \"/tmp/x/ctd.sock.ttrpc\"\n"
				 "[debug]\n"
				 "  level = \"info\"\n",
				 root, sizeof root, addr, sizeof addr);
	assert_string_equal(root, "/tmp/x/root");
	assert_string_equal(addr, "/tmp/x/ctd.sock");

	/* Debian's default file sets neither: both empty (the caller takes the defaults) */
	envcheck_containerd_toml("# containerd config\n#root = \"/var/lib/containerd\"\n"
				 "[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n"
				 "    root = \"/not/this\"\n",
				 root, sizeof root, addr, sizeof addr);
	assert_string_equal(root, "");
	assert_string_equal(addr, "");

	/* literal strings, comments after values, blanks, [grpc] keys after another table,
	 * a dotted table that merely starts with grpc, rootless look-alike keys */
	envcheck_containerd_toml("rootless = true\n"
				 "  root='/srv/ctd'  # on the big disk\n"
				 "[grpc.tcp]\n address = \"0.0.0.0:1\"\n"
				 "[ \"grpc\" ]\n"
				 "\tmax_recv_message_size = 16777216\n"
				 "\taddress=\"/run/c\\\"d.sock\" # quoted quote\n",
				 root, sizeof root, addr, sizeof addr);
	assert_string_equal(root, "/srv/ctd");
	assert_string_equal(addr, "/run/c\"d.sock");

	/* truncation never overflows */
	char small[5];
	envcheck_containerd_toml("root = \"/a/long/path\"\n", small, sizeof small, addr,
				 sizeof addr);
	assert_string_equal(small, "/a/l");
	envcheck_containerd_toml("", root, sizeof root, addr, sizeof addr);
	assert_string_equal(root, "");
	envcheck_containerd_toml("root = \"unterminated\n[grpc]\naddress = 5\n", root, sizeof root,
				 addr, sizeof addr);
	assert_string_equal(root, "unterminated");
	assert_string_equal(addr, "");
}

/* ---- the report ---- */

static void report(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	struct envcheck ec;
	envcheck_init(&ec, f);
	envcheck_line(&ec, ENVCHECK_OK, "runtime", "runc %d", 1);
	envcheck_line(&ec, ENVCHECK_WARN, "tls", "expires soon\nsecond line");
	assert_int_equal(envcheck_finish(&ec), 0);
	envcheck_line(&ec, ENVCHECK_FAIL, "containerd", "down; fix: start it");
	assert_int_equal(envcheck_finish(&ec), 1);
	fclose(f);
	assert_string_equal(text, "ok    runtime: runc 1\n"
				  "warn  tls: expires soon second line\n"
				  "1 ok, 1 warn, 0 FAIL\n"
				  "FAIL  containerd: down; fix: start it\n"
				  "1 ok, 1 warn, 1 FAIL\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(elf_static_and_dynamic),
	    cmocka_unit_test(elf_rejects),
	    cmocka_unit_test(elf_files),
	    cmocka_unit_test(cert_verdicts),
	    cmocka_unit_test(cert_files),
	    cmocka_unit_test(cgroups),
	    cmocka_unit_test(disk),
	    cmocka_unit_test(containerd_toml),
	    cmocka_unit_test(report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
