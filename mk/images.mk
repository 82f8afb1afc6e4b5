# mk/images.mk - image handling, included by the Makefile:
#   $(BUILD)/libimages.a   jail/images/*.c: image references and vplbdx.cfg, the registry client
#                          (libcurl), containerd content store + unpack, archive import (libarchive)
#   $(BUILD)/tests/test_images_*   cmocka tests (tests/images/unit_*.c), run by tests/run-all.sh
#   $(BUILD)/tests/images_*        test tools (tests/images/tool_*.c), driven by tests/images/test_*
# Every binary here links the whole worker library stack (images -> ctr -> protos -> common).

all: images-lib

IMG_PKGS       := libcurl libarchive
IMG_PKG_CFLAGS := $(shell pkg-config --cflags $(IMG_PKGS) 2>/dev/null)
IMG_PKG_LIBS   := $(shell pkg-config --libs $(IMG_PKGS) 2>/dev/null)

IMG_SRCS      := $(wildcard jail/images/*.c)
IMG_OBJS      := $(IMG_SRCS:%.c=$(BUILD)/obj/%.o)
IMG_UNIT_SRCS := $(wildcard tests/images/unit_*.c)
IMG_UNIT_BINS := $(IMG_UNIT_SRCS:tests/images/unit_%.c=$(BUILD)/tests/test_images_%)
IMG_TOOL_SRCS := $(wildcard tests/images/tool_*.c)
IMG_TOOL_BINS := $(IMG_TOOL_SRCS:tests/images/tool_%.c=$(BUILD)/tests/images_%)
IMG_TEST_OBJS := $(IMG_UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(IMG_TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
IMG_LINK      := $(BUILD)/libimages.a $(BUILD)/libctr.a $(BUILD)/libctdproto.a \
	$(BUILD)/libjail.a $(BUILD)/libcommon.a
IMG_LIBS      := $(IMG_PKG_LIBS) $(CTR_PKG_LIBS) $(PKG_LIBS) $(EXTRA_LIBS)

.PHONY: images-lib
images-lib: $(BUILD)/libimages.a $(IMG_TOOL_BINS)

$(IMG_OBJS) $(IMG_TEST_OBJS): EXTRA_CFLAGS += -Ijail/images $(CTR_CFLAGS) $(IMG_PKG_CFLAGS)
$(IMG_OBJS) $(IMG_TEST_OBJS): | $(CTR_GEN)/.stamp

$(BUILD)/libimages.a: $(IMG_OBJS)
	@rm -f $@; ar rcs $@ $^

$(IMG_UNIT_BINS): $(BUILD)/tests/test_images_%: $(BUILD)/obj/tests/images/unit_%.o $(IMG_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< -Wl,--start-group $(IMG_LINK) -Wl,--end-group $(IMG_LIBS) \
	  -lcmocka

$(IMG_TOOL_BINS): $(BUILD)/tests/images_%: $(BUILD)/obj/tests/images/tool_%.o $(IMG_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< -Wl,--start-group $(IMG_LINK) -Wl,--end-group $(IMG_LIBS)

unit: $(IMG_UNIT_BINS)
