# mk/privsep.mk - the privilege-separation test build, included by the Makefile:
#   $(BUILD)/tests/vpl-jail-probe   vpl-jail with a probe (tests/privsep/probe.c) run in the
#                                   parser right after it drops its privileges: what code
#                                   running there (a compromised parser) can reach. Test only:
#                                   the worker that is installed never contains the probe.

all: $(BUILD)/tests/vpl-jail-probe

$(BUILD)/obj/tests/privsep/main_probe.o: jail/main.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DVPLCELL_TEST_HOOKS -MMD -MP -c -o $@ $<

$(BUILD)/tests/vpl-jail-probe: $(BUILD)/obj/tests/privsep/main_probe.o \
		$(BUILD)/obj/tests/privsep/probe.o $(BUILD)/libimages.a $(BUILD)/libctr.a \
		$(BUILD)/libctdproto.a $(BUILD)/libjail.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) \
	  -Wl,--end-group $(IMG_PKG_LIBS) $(PKG_LIBS) $(CTR_PKG_LIBS) $(EXTRA_LIBS)
