# vplcell - build, test and benchmark. `make check` is the one test command.
#
# Objects go under $(BUILD)/ (build/ normally, build-asan/ for the sanitizer
# build) so both trees can coexist and `make check` can run the same tests
# against both.

CC      ?= cc
SAN     ?= 0
PKGS    := libwebsockets jansson libxml-2.0 openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS  ?= -O2 -g
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE $(WARN) -fstack-protector-strong -fPIE -Icommon -Ijail \
	$(PKG_CFLAGS)
BASE_LDFLAGS := -pie -Wl,-z,relro,-z,now

ifeq ($(SAN),1)
BUILD   ?= build-asan
BASE_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BASE_LDFLAGS += -fsanitize=address,undefined
CFLAGS  := -O1 -g
else
BUILD   ?= build
BASE_CFLAGS += -D_FORTIFY_SOURCE=2
endif

ALL_CFLAGS  = $(BASE_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(BASE_LDFLAGS) $(LDFLAGS)

COMMON_SRCS := $(wildcard common/*.c)
JAIL_SRCS   := $(filter-out jail/main.c,$(wildcard jail/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o)
JAIL_OBJS   := $(JAIL_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

-include mk/*.mk

.PHONY: all unit check check-asan check-swarm check-manifests fuzz bench clean format format-check deps install
all: $(BUILD)/vpl-jail

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libcommon.a: $(COMMON_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libjail.a: $(JAIL_OBJS)
	@rm -f $@; ar rcs $@ $^

# The worker links the sandbox (containerd client, mk/ctr.mk) and image handling (mk/images.mk).
$(BUILD)/vpl-jail: $(BUILD)/obj/jail/main.o $(BUILD)/libimages.a $(BUILD)/libctr.a \
		$(BUILD)/libctdproto.a $(BUILD)/libjail.a $(BUILD)/libcommon.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/obj/jail/main.o -Wl,--start-group $(filter %.a,$^) \
	  -Wl,--end-group $(IMG_PKG_LIBS) $(PKG_LIBS) $(CTR_PKG_LIBS) $(EXTRA_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libjail.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS) -lcmocka

unit: $(UNIT_BINS)

deps:
	@scripts/install-deps.sh

# The README's test command: installs what is missing, builds both trees,
# runs every suite against the normal build and the unit/protocol suites
# again under ASan+UBSan, and ends with "N passed, N failed".
check: deps
	$(MAKE) all unit
	$(MAKE) SAN=1 all unit
	tests/run-all.sh

# One part alone: a real single-node Docker Swarm with conf/stack.yml; the Kubernetes
# manifests rendered and schema-checked. Both are part of `make check`.
check-swarm: deps all
	tests/swarm/test_swarm.sh
check-manifests: deps
	tests/k8s/test_manifests.sh

check-asan: deps
	$(MAKE) SAN=1 all unit
	VPL_BUILD=build-asan tests/run-all.sh --asan-only

FUZZ_TIME ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Ijail \
	-Ijail/images -Iproxy $(PKG_CFLAGS)
# FUZZ_IMG_SRCS (mk/fuzzregress.mk): the pure jail/images/ files the image targets fuzz.
build-fuzz/%: tests/fuzz/%.c $(COMMON_SRCS) $(JAIL_SRCS) $(FUZZ_IMG_SRCS) $(FUZZ_PROXY_SRCS)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS)
fuzz: deps $(FUZZ_BINS)
	tests/fuzz/run.sh $(FUZZ_TIME)

# Benchmarks print ratios against a baseline measured in the same run.
bench: all
	python3 bench/body_memory.py
	python3 bench/pull.py
	python3 bench/c_eval.py
	python3 bench/proxy.py
	RUNTIME=crun python3 bench/c_eval.py || echo "crun: not usable on this host (see docs/performance.md)"

# Exam-scale load (issue 9): 50 then 500 students through vpl-proxy over 3 worker hosts
# (network namespaces, real containerd); 6-7 minutes, so not part of `make bench`.
.PHONY: bench-exam
bench-exam: all
	VPL_BUILD=$(BUILD) python3 bench/exam.py

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
