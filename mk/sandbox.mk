# mk/sandbox.mk - task-container pieces, included by the Makefile:
#   $(BUILD)/vplhelper      the static in-container helper (jail/helper/vplhelper.c)
#   $(BUILD)/libsandbox.a   OCI spec + seccomp profile + file stream + task uids (jail/sandbox/{oci_spec,
#                           seccomp,filestream,uidpool}.c; jansson)
#   $(BUILD)/tests/test_sandbox_*   cmocka tests (tests/sandbox/unit_*.c), run by tests/run-all.sh
#
# The helper runs inside teachers' images, so it is linked statically (static-pie: ASLR kept)
# against libc only, with the project's warnings, -Werror and hardening. It is never built with
# sanitizers, not even under SAN=1: ASan/UBSan runtimes cannot be linked into a static binary.
# mk/ctr.mk's jail/sandbox/*.c wildcard also puts these objects into libctr.a; that is harmless
# (an archive member is linked once, whichever archive provides it first).

all: sandbox

SANDBOX_SRCS      := jail/sandbox/oci_spec.c jail/sandbox/seccomp.c jail/sandbox/filestream.c \
	jail/sandbox/uidpool.c
SANDBOX_OBJS      := $(SANDBOX_SRCS:%.c=$(BUILD)/obj/%.o)
SANDBOX_TEST_SRCS := $(wildcard tests/sandbox/unit_*.c)
SANDBOX_TEST_OBJS := $(SANDBOX_TEST_SRCS:%.c=$(BUILD)/obj/%.o)
SANDBOX_TEST_BINS := $(SANDBOX_TEST_SRCS:tests/sandbox/unit_%.c=$(BUILD)/tests/test_sandbox_%)

HELPER_SRCS   := jail/helper/vplhelper.c jail/helper/runner.c jail/sandbox/filestream.c common/err.c
HELPER_CFLAGS := -std=c17 -D_GNU_SOURCE $(WARN) -O2 -g -D_FORTIFY_SOURCE=2 \
	-fstack-protector-strong -fstack-clash-protection -fPIE -Icommon -Ijail/sandbox -Ijail/helper
HELPER_LDFLAGS := -static-pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack

.PHONY: sandbox
sandbox: $(BUILD)/vplhelper $(BUILD)/libsandbox.a

# One compiler call for the three files: they are small, and separate objects would have to
# live apart from the sanitized objects of the same sources.
$(BUILD)/vplhelper: $(HELPER_SRCS) jail/sandbox/filestream.h jail/helper/runner.h common/err.h mk/sandbox.mk
	@mkdir -p $(dir $@)
	$(CC) $(HELPER_CFLAGS) $(HELPER_LDFLAGS) -o $@ $(HELPER_SRCS)

$(SANDBOX_OBJS) $(SANDBOX_TEST_OBJS): EXTRA_CFLAGS += -Ijail/sandbox

$(BUILD)/libsandbox.a: $(SANDBOX_OBJS)
	@rm -f $@; ar rcs $@ $^

# The helper test execs $(BUILD)/vplhelper, so every test binary waits for it (order-only:
# it is not linked in).
$(SANDBOX_TEST_BINS): $(BUILD)/tests/test_sandbox_%: $(BUILD)/obj/tests/sandbox/unit_%.o \
		$(BUILD)/libsandbox.a $(BUILD)/libcommon.a | $(BUILD)/vplhelper
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(PKG_LIBS) $(EXTRA_LIBS) -lcmocka

unit: $(SANDBOX_TEST_BINS)
