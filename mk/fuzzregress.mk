# mk/fuzzregress.mk - plain drivers that replay each fuzz target's seed corpus
# and past crashes without libFuzzer: $(BUILD)/tests/fuzzdrv_X is
# tests/fuzz/fuzz_X.c + tests/fuzz/driver_main.c. They are built by `make
# unit` (hence in both build trees) and run by tests/fuzz/regress.sh BUILD.

FUZZDRV_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZDRV_BINS  := $(FUZZDRV_NAMES:%=$(BUILD)/tests/fuzzdrv_%)
UNIT_BINS     += $(FUZZDRV_BINS)

$(FUZZDRV_BINS): $(BUILD)/tests/fuzzdrv_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o \
		$(BUILD)/obj/tests/fuzz/driver_main.o $(BUILD)/libjail.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(EXTRA_LIBS)
