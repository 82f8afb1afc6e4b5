/* Unit tests for jail/images/imageref: parsing, formatting, DOCKER= placement, ALLOWED_IMAGES. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "imageref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DG  "sha256:" D64

static void ok(const char *s, const char *dflt, const char *host, const char *repo, const char *tag,
	       const char *digest)
{
	struct image_ref r;
	struct err e;
	err_clear(&e);
	if (image_ref_parse(s, dflt, &r, &e) != 0)
		fail_msg("'%s' refused: %s", s, e.msg);
	assert_string_equal(r.host, host);
	assert_string_equal(r.repo, repo);
	assert_string_equal(r.tag, tag);
	assert_string_equal(r.digest, digest);
}

static void bad(const char *s, const char *why)
{
	struct image_ref r;
	struct err e;
	err_clear(&e);
	if (image_ref_parse(s, "127.0.0.1:5000", &r, &e) != -1)
		fail_msg("'%s' accepted", s ? s : "(null)");
	assert_int_equal(e.code, EINVAL);
	if (!strstr(e.msg, why))
		fail_msg("message '%s' lacks '%s'", e.msg, why);
}

static void test_parse_ok(void **state)
{
	ok("debian", NULL, "registry-1.docker.io", "library/debian", "latest", "");
	ok("debian:12", NULL, "registry-1.docker.io", "library/debian", "12", "");
	ok("gblin/minivpljava", NULL, "registry-1.docker.io", "gblin/minivpljava", "latest", "");
	ok("docker.io/debian", NULL, "registry-1.docker.io", "library/debian", "latest", "");
	ok("index.docker.io/gblin/x:1", NULL, "registry-1.docker.io", "gblin/x", "1", "");
	ok("foo", "127.0.0.1:5000", "127.0.0.1:5000", "foo", "latest", "");
	ok("foo/bar:v1.2-rc_3", "127.0.0.1:5000", "127.0.0.1:5000", "foo/bar", "v1.2-rc_3", "");
	ok("127.0.0.1:5000/foo", NULL, "127.0.0.1:5000", "foo", "latest", "");
	ok("localhost/foo", NULL, "localhost", "foo", "latest", "");
	ok("localhost:5000/a/b/c:t", NULL, "localhost:5000", "a/b/c", "t", "");
	ok("localhost", NULL, "registry-1.docker.io", "library/localhost", "latest", "");
	ok("localhost:5000", NULL, "registry-1.docker.io", "library/localhost", "5000", "");
	ok("ghcr.io/o/r@" DG, NULL, "ghcr.io", "o/r", "", DG);
	ok("ghcr.io/o/r:t@" DG, NULL, "ghcr.io", "o/r", "t", DG);
	ok("Registry.Example.COM:443/a", NULL, "Registry.Example.COM:443", "a", "latest", "");
	ok("a.b/x__y/z-1/w---v.u_t", NULL, "a.b", "x__y/z-1/w---v.u_t", "latest", "");
	ok("a:_tag", NULL, "registry-1.docker.io", "library/a", "_tag", "");
	ok("debian", "docker.io", "registry-1.docker.io", "library/debian", "latest", "");
}

static void test_parse_bad(void **state)
{
	bad(NULL, "empty");
	bad("", "empty");
	bad("Foo", "lowercase");
	bad("foo/Bar", "lowercase");
	bad("foo bar", "space");
	bad("foo\nbar", "control");
	bad("foo\x01", "control");
	bad("f\xc3\xa9", "non-ASCII");
	bad("foo:", "tag");
	bad("foo:.x", "tag");
	bad("foo:-x", "tag");
	bad("foo:a/b", "host"); /* "foo:a" is read as a host, with an invalid port */
	bad("foo@sha256:abc", "digest");
	bad("foo@sha512:" D64 D64, "digest");
	bad("foo@sha256:" D64 "0", "digest");
	bad("foo@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    "digest");
	bad("foo@" DG "@" DG, "digest");
	bad("foo//bar", "empty path");
	bad("foo/", "empty path");
	bad("/foo", "empty path");
	bad("host.com/", "empty path");
	bad("a..b", "component");
	bad("a._b", "component");
	bad("a___b", "component");
	bad("-a", "component");
	bad("a-", "component");
	bad("_a", "component");
	bad(".a", "component");
	bad("h_st.com/a", "host");
	bad("-h.com/a", "host");
	bad("h-.com/a", "host");
	bad("h..com/a", "host");
	bad("h.com:0/a", "host");
	bad("h.com:65536/a", "host");
	bad("h.com:12x/a", "host");
	bad("h.com:/a", "host");
	bad("[::1]:5000/a", "host");
	bad("http://h.com/a", "host");
	bad("../../etc/passwd", "host");
	bad("a/../b", "component");
	bad("foo?x=1", "component");
	bad("foo%2f", "component");
	bad(":tag", "no repository");
	bad("@" DG, "no repository");
	char longtag[200] = "foo:";
	memset(longtag + 4, 'a', 129);
	bad(longtag, "tag");
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = '\0';
	bad(longname, "longer than 255");
	/* default host is validated too */
	struct image_ref r;
	struct err e;
	assert_int_equal(image_ref_parse("foo", "not a host", &r, &e), -1);
	assert_int_equal(e.code, EINVAL);
	assert_non_null(strstr(e.msg, "default registry"));
	/* a host without '.' nor ':' would read back as a Docker Hub path (fuzz_imageref) */
	assert_int_equal(image_ref_parse("foo", "myreg", &r, &e), -1);
	assert_non_null(strstr(e.msg, "needs a '.'"));
	assert_int_equal(image_ref_parse("foo", "localhost", &r, &e), 0);
	assert_string_equal(r.host, "localhost");
}

static void test_parse_limits(void **state)
{
	char s[300];
	struct image_ref r;
	struct err e;
	/* exactly 255 bytes is fine, on Docker Hub "library/" still fits the 256 field */
	memset(s, 'a', 255);
	s[255] = '\0';
	assert_int_equal(image_ref_parse(s, "h.com", &r, &e), 0);
	assert_int_equal(strlen(r.repo), 255);
	assert_int_equal(image_ref_parse(s, NULL, &r, &e), -1);
	assert_non_null(strstr(e.msg, "too long"));
	/* 128-char tag is the maximum */
	memset(s, 0, sizeof s);
	strcpy(s, "a:");
	memset(s + 2, 'T', 128);
	assert_int_equal(image_ref_parse(s, NULL, &r, &e), 0);
	assert_int_equal(strlen(r.tag), 128);
	/* hostile message content is sanitised */
	assert_int_equal(image_ref_parse("a\x1b[31m", NULL, &r, &e), -1);
	assert_null(strchr(e.msg, '\x1b'));
}

static void test_format(void **state)
{
	struct image_ref r;
	struct err e;
	char out[600];
	assert_int_equal(image_ref_parse("127.0.0.1:5000/foo/bar:1", NULL, &r, &e), 0);
	assert_int_equal(image_ref_format(&r, out, sizeof out), 24);
	assert_string_equal(out, "127.0.0.1:5000/foo/bar:1");
	assert_int_equal(image_ref_parse("h.io/a@" DG, NULL, &r, &e), 0);
	assert_true(image_ref_format(&r, out, sizeof out) > 0);
	assert_string_equal(out, "h.io/a@" DG);
	assert_int_equal(image_ref_parse("h.io/a:t@" DG, NULL, &r, &e), 0);
	image_ref_format(&r, out, sizeof out);
	assert_string_equal(out, "h.io/a:t@" DG);
	assert_int_equal(image_ref_format(&r, out, 10), -1);
	assert_int_equal(image_ref_format(&r, out, strlen("h.io/a:t@" DG)), -1);
	assert_int_equal(image_ref_format(&r, out, strlen("h.io/a:t@" DG) + 1),
			 (int)strlen("h.io/a:t@" DG));
	/* round trip */
	struct image_ref r2;
	assert_int_equal(image_ref_parse(out, NULL, &r2, &e), 0);
	assert_memory_equal(&r, &r2, sizeof r);
}

static void src(const char *name, const char *up, int any, const char *want_local,
		const char *want_up)
{
	struct image_source s;
	struct err e;
	char l[600], u[600] = "";
	err_clear(&e);
	if (image_source_resolve(name, "127.0.0.1:5000", up, any, &s, &e) != 0)
		fail_msg("'%s' refused: %s", name, e.msg);
	image_ref_format(&s.local, l, sizeof l);
	assert_string_equal(l, want_local);
	if (want_up) {
		image_ref_format(&s.upstream, u, sizeof u);
		assert_string_equal(u, want_up);
	} else {
		assert_int_equal(s.upstream.host[0], 0);
	}
}

static void test_source(void **state)
{
	/* no host */
	src("foo", NULL, 0, "127.0.0.1:5000/foo:latest", NULL);
	src("foo", "", 1, "127.0.0.1:5000/foo:latest", NULL);
	src("foo", "docker.io", 0, "127.0.0.1:5000/foo:latest",
	    "registry-1.docker.io/library/foo:latest");
	src("gblin/minivpl:2", "docker.io", 0, "127.0.0.1:5000/gblin/minivpl:2",
	    "registry-1.docker.io/gblin/minivpl:2");
	src("a/b", "mirror.example.org:8443", 0, "127.0.0.1:5000/a/b:latest",
	    "mirror.example.org:8443/a/b:latest");
	src("foo@" DG, "docker.io", 0, "127.0.0.1:5000/foo@" DG,
	    "registry-1.docker.io/library/foo@" DG);
	/* the local registry itself */
	src("127.0.0.1:5000/foo:1", "docker.io", 1, "127.0.0.1:5000/foo:1", NULL);
	/* other hosts */
	src("ghcr.io/o/r:1", "docker.io", 1, "127.0.0.1:5000/ghcr.io/o/r:1", "ghcr.io/o/r:1");
	src("ghcr.io/o/r:1", "docker.io", 0, "127.0.0.1:5000/ghcr.io/o/r:1", NULL);
	src("Reg.Example.com:5001/x", NULL, 1, "127.0.0.1:5000/reg.example.com_5001/x:latest",
	    "Reg.Example.com:5001/x:latest");
	src("docker.io/debian", NULL, 1,
	    "127.0.0.1:5000/registry-1.docker.io/library/debian:latest",
	    "registry-1.docker.io/library/debian:latest");
	src("localhost/x", NULL, 1, "127.0.0.1:5000/localhost/x:latest", "localhost/x:latest");
	src("localhost:5000/x", NULL, 1, "127.0.0.1:5000/localhost_5000/x:latest",
	    "localhost:5000/x:latest");
	src("h.io/a@" DG, NULL, 1, "127.0.0.1:5000/h.io/a@" DG, "h.io/a@" DG);
}

static void test_source_bad(void **state)
{
	struct image_source s;
	struct err e;
	assert_int_equal(image_source_resolve("foo", NULL, NULL, 0, &s, &e), -1);
	assert_int_equal(e.code, EINVAL);
	assert_int_equal(image_source_resolve("foo", "", NULL, 0, &s, &e), -1);
	assert_int_equal(image_source_resolve("foo", "http://x", NULL, 0, &s, &e), -1);
	assert_non_null(strstr(e.msg, "local registry"));
	assert_int_equal(image_source_resolve("foo", "127.0.0.1:5000", "bad host!", 0, &s, &e), -1);
	assert_non_null(strstr(e.msg, "upstream registry"));
	assert_int_equal(image_source_resolve("Foo", "127.0.0.1:5000", NULL, 0, &s, &e), -1);
	/* copying a long name from another host would overflow the 255 limit */
	char name[300] = "some.long.registry.example.com/";
	size_t n = strlen(name);
	memset(name + n, 'a', 255 - n);
	name[255] = '\0';
	assert_int_equal(image_source_resolve(name, "127.0.0.1:5000", NULL, 1, &s, &e), -1);
	assert_non_null(strstr(e.msg, "too long"));
	assert_int_equal(s.local.host[0], 0);
}

static void test_allowed(void **state)
{
	struct image_ref l;
	struct err e;
	assert_int_equal(image_ref_parse("127.0.0.1:5000/ghcr.io/o/r:1", NULL, &l, &e), 0);
	assert_int_equal(image_allowed(NULL, "ghcr.io/o/r:1", &l), 1);
	assert_int_equal(image_allowed("", "ghcr.io/o/r:1", &l), 1);
	assert_int_equal(image_allowed(" , ,\t", "ghcr.io/o/r:1", &l), 1);
	assert_int_equal(image_allowed("ghcr.io/*", "ghcr.io/o/r:1", &l), 1);
	assert_int_equal(image_allowed("docker.io/*", "ghcr.io/o/r:1", &l), 0);
	assert_int_equal(image_allowed("docker.io/*, ghcr.io/o/*", "ghcr.io/o/r:1", &l), 1);
	assert_int_equal(image_allowed("docker.io/* 127.0.0.1:5000/ghcr.io/*", "x", &l), 1);
	assert_int_equal(image_allowed("127.0.0.1:5000/*", "x", &l), 1);
	assert_int_equal(image_allowed("ghcr.io/o/r", "ghcr.io/o/r:1", &l), 0);
	assert_int_equal(image_allowed("ghcr.io/o/r:[0-9]", "ghcr.io/o/r:1", &l), 1);
	assert_int_equal(image_allowed("*", NULL, &l), 1);
	char big[2000];
	memset(big, '*', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(image_allowed(big, "x", &l), 0); /* over-long pattern never matches */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),	 cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_parse_limits), cmocka_unit_test(test_format),
	    cmocka_unit_test(test_source),	 cmocka_unit_test(test_source_bad),
	    cmocka_unit_test(test_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
