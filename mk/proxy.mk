# mk/proxy.mk - vpl-proxy, included by the Makefile:
#   $(BUILD)/vpl-proxy            the TLS front door (proxy/main.c + libproxy.a)
#   $(BUILD)/libproxy.a           every other proxy/*.c
#   $(BUILD)/tests/test_proxy_*   cmocka tests (tests/proxy/unit_*.c), run by tests/run-all.sh
#
# The proxy links libjail.a for the edge policy it shares with the worker (netacl, fail2ban,
# http replies) and libcurl for its health checks; it never links the containerd client.

all: $(BUILD)/vpl-proxy

PROXY_SRCS      := $(filter-out proxy/main.c,$(wildcard proxy/*.c))
PROXY_OBJS      := $(PROXY_SRCS:%.c=$(BUILD)/obj/%.o)
PROXY_PKG_LIBS  := $(shell pkg-config --libs libcurl 2>/dev/null) -lpthread
PROXY_TEST_SRCS := $(wildcard tests/proxy/unit_*.c)
PROXY_TEST_OBJS := $(PROXY_TEST_SRCS:%.c=$(BUILD)/obj/%.o)
PROXY_TEST_BINS := $(PROXY_TEST_SRCS:tests/proxy/unit_%.c=$(BUILD)/tests/test_proxy_%)

$(PROXY_OBJS) $(PROXY_TEST_OBJS) $(BUILD)/obj/proxy/main.o: EXTRA_CFLAGS += -Iproxy

$(BUILD)/libproxy.a: $(PROXY_OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/vpl-proxy: $(BUILD)/obj/proxy/main.o $(BUILD)/libproxy.a $(BUILD)/libjail.a \
		$(BUILD)/libcommon.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PROXY_PKG_LIBS) $(PKG_LIBS) $(EXTRA_LIBS)

$(PROXY_TEST_BINS): $(BUILD)/tests/test_proxy_%: $(BUILD)/obj/tests/proxy/unit_%.o \
		$(BUILD)/libproxy.a $(BUILD)/libjail.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PROXY_PKG_LIBS) $(PKG_LIBS) $(EXTRA_LIBS) -lcmocka

unit: $(PROXY_TEST_BINS)
