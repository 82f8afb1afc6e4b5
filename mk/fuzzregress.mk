# mk/fuzzregress.mk - plain drivers that replay each fuzz target's seed corpus
# and past crashes without libFuzzer: $(BUILD)/tests/fuzzdrv_X is
# tests/fuzz/fuzz_X.c + tests/fuzz/driver_main.c. They are built by `make
# unit` (hence in both build trees) and run by tests/fuzz/regress.sh BUILD.
#
# FUZZ_IMG_SRCS: the pure parts of jail/images/ (no containerd, curl nor libarchive) that the
# image targets fuzz; linked into every driver here and every build-fuzz/fuzz_X (Makefile).

FUZZ_IMG_SRCS := jail/images/vplbdx.c jail/images/imageref.c jail/images/manifest.c \
	jail/images/imagepasswd.c
# The pure parts of proxy/ that the proxy targets fuzz (present ones only: the list names
# modules, not every file of proxy/).
FUZZ_PROXY_SRCS := $(wildcard proxy/route.c proxy/wsframe.c proxy/httphead.c)
FUZZDRV_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZDRV_BINS  := $(FUZZDRV_NAMES:%=$(BUILD)/tests/fuzzdrv_%)
UNIT_BINS     += $(FUZZDRV_BINS)

$(FUZZDRV_BINS): $(BUILD)/tests/fuzzdrv_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o \
		$(BUILD)/obj/tests/fuzz/driver_main.o $(FUZZ_IMG_SRCS:%.c=$(BUILD)/obj/%.o) \
		$(FUZZ_PROXY_SRCS:%.c=$(BUILD)/obj/%.o) \
		$(BUILD)/libjail.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS)

$(BUILD)/obj/tests/fuzz/%.o: EXTRA_CFLAGS += -Ijail/images -Iproxy
