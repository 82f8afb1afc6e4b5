# mk/ctr.mk - containerd gRPC client (grpc core + protobuf-c), included by the Makefile.
#
# Where the .proto files come from (nothing generated or vendored is committed):
#   By default, the "light" route: `apt-get download` of Debian's
#   golang-github-containerd-containerd-dev (containerd's own protos, same source version as the
#   daemon package) and golang-github-gogo-protobuf-dev (gogoproto/gogo.proto), `dpkg-deb -x` into
#   a temp dir, and only the .proto files we need are kept in
#   /var/cache/vplcell/protos/<containerd-dev version>/ (about 250 kB). This avoids installing the
#   ~114 Go -dev packages the -dev package depends on. google/protobuf/*.proto come from
#   libprotobuf-dev (/usr/include). apt-get download needs `apt-get update` to have run once.
#   Alternative: `apt-get install golang-github-containerd-containerd-dev` and build with
#   `make CTR_GOSRC=/usr/share/gocode/src` (then nothing is downloaded).
# Build tools/libraries (installed by scripts/install-deps.sh, not here):
#   protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libgrpc-dev pkg-config
# Generated C goes to $(BUILD)/gen, compiled into $(BUILD)/libctdproto.a with our hardening and
# sanitizer flags but without -Werror (not our code). Our code (jail/sandbox/*.c) keeps -Werror.

# First rule of this file, so that `all` stays the default goal of the Makefile.
all: ctr

CTR_PKGS       := grpc libprotobuf-c
CTR_PKG_CFLAGS := $(shell pkg-config --cflags $(CTR_PKGS) 2>/dev/null)
CTR_PKG_LIBS   := $(shell pkg-config --libs $(CTR_PKGS) 2>/dev/null) -lpthread

CTR_PROTO_CACHE_ROOT := /var/cache/vplcell/protos
ifeq ($(origin CTR_GOSRC),undefined)
# Key of the cache: the version of the installed containerd (same Debian source package as the
# -dev package, so the protos match the daemon); else the newest version already cached; else
# the candidate version apt knows (apt-cache is slow, so it is the last resort).
CTR_PROTO_VER := $(subst :,_,$(shell dpkg-query -W -f='$${Version}' containerd 2>/dev/null))
ifeq ($(CTR_PROTO_VER),)
CTR_PROTO_VER := $(shell ls -1 $(CTR_PROTO_CACHE_ROOT) 2>/dev/null | grep -v '\.tmp$$' | grep -- '-2$$' | sed 's/-2$$//' | sort -V | tail -n 1)
endif
ifeq ($(CTR_PROTO_VER),)
CTR_PROTO_VER := $(subst :,_,$(shell apt-cache policy golang-github-containerd-containerd-dev \
	2>/dev/null | awk '/Candidate:/ && $$2 != "(none)" {print $$2}'))
endif
ifeq ($(CTR_PROTO_VER),)
CTR_PROTO_STAMP := ctr-no-proto-version
else
# The -2 suffix names the set of protos kept; bump it when CTR_PROTOS gains a fetched file.
CTR_GOSRC       := $(CTR_PROTO_CACHE_ROOT)/$(CTR_PROTO_VER)-2
CTR_PROTO_STAMP := $(CTR_GOSRC)/.complete
endif
else
CTR_PROTO_STAMP :=
endif

CTR_CTD   := github.com/containerd/containerd
CTR_PROTO_I := -I$(CTR_GOSRC) -I$(CTR_GOSRC)/github.com/gogo/protobuf -I/usr/include
# Virtual proto names (resolved through the -I list above).
CTR_PROTOS := \
	$(CTR_CTD)/api/services/version/v1/version.proto \
	$(CTR_CTD)/api/services/containers/v1/containers.proto \
	$(CTR_CTD)/api/services/tasks/v1/tasks.proto \
	$(CTR_CTD)/api/services/images/v1/images.proto \
	$(CTR_CTD)/api/services/content/v1/content.proto \
	$(CTR_CTD)/api/services/snapshots/v1/snapshots.proto \
	$(CTR_CTD)/api/services/leases/v1/leases.proto \
	$(CTR_CTD)/api/services/diff/v1/diff.proto \
	$(CTR_CTD)/api/services/events/v1/events.proto \
	$(CTR_CTD)/api/events/task.proto \
	$(CTR_CTD)/api/types/mount.proto \
	$(CTR_CTD)/api/types/descriptor.proto \
	$(CTR_CTD)/api/types/platform.proto \
	$(CTR_CTD)/api/types/metrics.proto \
	$(CTR_CTD)/api/types/task/task.proto \
	$(CTR_CTD)/runtime/v2/runc/options/oci.proto \
	$(CTR_CTD)/protobuf/plugin/fieldpath.proto \
	gogoproto/gogo.proto \
	google/protobuf/empty.proto \
	google/protobuf/any.proto \
	google/protobuf/timestamp.proto \
	google/protobuf/field_mask.proto \
	google/protobuf/descriptor.proto
# The subset that has to be fetched (the rest is in libprotobuf-dev).
CTR_FETCH_PROTOS := $(filter $(CTR_CTD)/%,$(CTR_PROTOS))

CTR_GEN       := $(BUILD)/gen
CTR_GEN_SRCS  := $(CTR_PROTOS:%.proto=$(CTR_GEN)/%.pb-c.c)
CTR_GEN_OBJS  := $(CTR_PROTOS:%.proto=$(BUILD)/obj/gen/%.pb-c.o)
CTR_SRCS      := $(wildcard jail/sandbox/*.c)
CTR_OBJS      := $(CTR_SRCS:%.c=$(BUILD)/obj/%.o)
CTR_TEST_OBJS := $(BUILD)/obj/tests/sandbox/ctr_smoke.o
CTR_CFLAGS    := -I$(CTR_GEN) -Ijail/sandbox -Ijail/images $(CTR_PKG_CFLAGS)

.PHONY: ctr ctr-check-tools ctr-no-proto-version
ctr: $(BUILD)/libctdproto.a $(BUILD)/libctr.a $(BUILD)/tests/ctr_smoke

ctr-check-tools:
	@command -v protoc-c >/dev/null && pkg-config --exists $(CTR_PKGS) || { \
	  echo "ctr: missing protoc-c or grpc/libprotobuf-c dev files; install:" \
	       "protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libgrpc-dev" >&2; exit 1; }

ctr-no-proto-version:
	@echo "ctr: no version of golang-github-containerd-containerd-dev known: run apt-get update" >&2
	@exit 1

# Fetch the protos (light route). Version-keyed, so it runs once per containerd-dev version.
$(CTR_PROTO_CACHE_ROOT)/%-2/.complete:
	@echo "  FETCH   containerd protos $* -> $(@D)"
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  apt-get download -qq "golang-github-containerd-containerd-dev=$(subst _,:,$*)" \
	    golang-github-gogo-protobuf-dev >/dev/null 2>apt.log || { \
	    echo "ctr: version $* not downloadable, taking the candidate" >&2; \
	    apt-get download -qq golang-github-containerd-containerd-dev \
	      golang-github-gogo-protobuf-dev >/dev/null 2>apt.log; } || { cat apt.log >&2; exit 1; }; \
	  for d in *.deb; do dpkg-deb -x "$$d" x; done; \
	  src=x/usr/share/gocode/src; rm -rf "$(@D).tmp"; \
	  for f in $(CTR_FETCH_PROTOS) github.com/gogo/protobuf/gogoproto/gogo.proto; do \
	    install -D -m 644 "$$src/$$f" "$(@D).tmp/$$f"; done; \
	  rm -rf "$(@D)"; mv "$(@D).tmp" "$(@D)"; touch "$@"

$(CTR_GEN)/.stamp: $(CTR_PROTO_STAMP) mk/ctr.mk | ctr-check-tools
	@echo "  PROTOC  $(CTR_GEN)"
	@rm -rf $(CTR_GEN); mkdir -p $(CTR_GEN)
	@protoc-c $(CTR_PROTO_I) --c_out=$(CTR_GEN) $(CTR_PROTOS) 2>$(CTR_GEN)/protoc.log || \
	  { cat $(CTR_GEN)/protoc.log >&2; exit 1; }
	@touch $@

$(CTR_GEN_SRCS): $(CTR_GEN)/.stamp ;

# Generated code: same hardening/sanitizer flags, warnings on but not fatal.
$(BUILD)/obj/gen/%.o: $(CTR_GEN)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(ALL_CFLAGS)) -Wno-unused-parameter -I$(CTR_GEN) \
	  $(CTR_PKG_CFLAGS) -c -o $@ $<

$(BUILD)/libctdproto.a: $(CTR_GEN_OBJS)
	@rm -f $@; ar rcs $@ $^

# Our code: the Makefile's generic rule, plus the generated headers and grpc flags.
$(CTR_OBJS) $(CTR_TEST_OBJS): EXTRA_CFLAGS += $(CTR_CFLAGS)
$(CTR_OBJS) $(CTR_TEST_OBJS): | $(CTR_GEN)/.stamp

$(BUILD)/libctr.a: $(CTR_OBJS)
	@rm -f $@; ar rcs $@ $^

# libctr and libimages call each other (the sandbox asks the puller for images, the puller
# uses the client): linked as a group.
$(BUILD)/tests/ctr_smoke: $(CTR_TEST_OBJS) $(BUILD)/libctr.a $(BUILD)/libimages.a \
		$(BUILD)/libctdproto.a $(BUILD)/libjail.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(CTR_TEST_OBJS) -Wl,--start-group $(filter %.a,$^) \
	  -Wl,--end-group $(IMG_PKG_LIBS) $(CTR_PKG_LIBS) $(PKG_LIBS) $(EXTRA_LIBS)
