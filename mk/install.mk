# mk/install.mk - `make install` and `make uninstall`, included by the Makefile (docs/install.md).
#
#   make install   [PREFIX=/usr/local] [DESTDIR=] [BUILD=build]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]      (same PREFIX as the install)
#
# What goes where (defaults):
#   $(SBINDIR)/vpl-jail, vpl-proxy                 /usr/local/sbin
#   $(LIBEXECDIR)/vplcell/vplhelper                /usr/local/libexec/vplcell/vplhelper
#   $(CONFDIR)/vpl-jail.conf (0600), vpl-proxy.conf (0640)      /etc/vplcell
#       an existing file is never overwritten: the new sample goes beside it as *.conf.sample.
#       When the helper is not at vpl-jail's built-in HELPER_PATH (/usr/libexec/vplcell/
#       vplhelper), the installed vpl-jail.conf sets HELPER_PATH to where it is.
#   $(UNITDIR)/vpl-jail.service, vpl-proxy.service  /usr/local/lib/systemd/system (in systemd's
#       search path for units of locally installed software; PREFIX=/usr gives
#       /usr/lib/systemd/system). Binary and config paths in the units follow SBINDIR/CONFDIR.
#   $(SYSUSERSDIR)/vplcell.conf                     /usr/local/lib/sysusers.d: the user vplcell
#       of vpl-proxy. A real install (no DESTDIR, as root) also creates that user now
#       (systemd-sysusers, else useradd) and gives group vplcell the proxy's sample config.
#
# uninstall removes the binaries, the helper, the units, the sysusers file and the *.sample
# files; a config file goes only if it is still byte for byte the installed sample (an edited
# one stays, and so does the user vplcell). With DESTDIR it also removes the directories it
# leaves empty inside DESTDIR, so that `install` then `uninstall` leaves nothing there.
# Nothing here runs systemctl: do `systemctl daemon-reload` after either.

PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
LIBEXECDIR  ?= $(PREFIX)/libexec
CONFDIR     ?= /etc/vplcell
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL     ?= install

INSTALL_HELPER  := $(LIBEXECDIR)/vplcell/vplhelper
BUILTIN_HELPER  := /usr/libexec/vplcell/vplhelper
INSTALL_GEN     := $(BUILD)/install-gen
INSTALL_UNITS   := vpl-jail.service vpl-proxy.service
# name:mode of each sample configuration
INSTALL_CONFS   := vpl-jail.conf:0600 vpl-proxy.conf:0640
# every directory install may create, deepest first (uninstall removes the empty ones)
INSTALL_DIRS    := $(SBINDIR) $(LIBEXECDIR)/vplcell $(UNITDIR) $(SYSUSERSDIR) $(CONFDIR)

.PHONY: install uninstall install-gen

# The installed forms of the units and configs, written afresh every time (they depend on the
# variables above, not only on their sources).
install-gen:
	@rm -rf $(INSTALL_GEN) && mkdir -p $(INSTALL_GEN)
	@for u in $(INSTALL_UNITS); do \
	  sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' -e 's| /etc/vplcell/| $(CONFDIR)/|g' \
	    conf/systemd/$$u >$(INSTALL_GEN)/$$u || exit 1; \
	done
	@cp conf/systemd/vplcell.sysusers $(INSTALL_GEN)/vplcell.sysusers
	@cp conf/vpl-proxy.conf $(INSTALL_GEN)/vpl-proxy.conf
	@if [ "$(INSTALL_HELPER)" = "$(BUILTIN_HELPER)" ]; then \
	  cp conf/vpl-jail.conf $(INSTALL_GEN)/vpl-jail.conf; \
	else \
	  sed -e 's|^#HELPER_PATH=.*|HELPER_PATH=$(INSTALL_HELPER)|' \
	    -e 's|^# The static in-container helper (built as build/vplhelper).|&\n# (make install put it in $(LIBEXECDIR)/vplcell.)|' \
	    conf/vpl-jail.conf >$(INSTALL_GEN)/vpl-jail.conf; \
	  grep -q '^HELPER_PATH=$(INSTALL_HELPER)$$' $(INSTALL_GEN)/vpl-jail.conf || { \
	    echo "install: could not set HELPER_PATH in vpl-jail.conf" >&2; exit 1; }; \
	fi

install: $(BUILD)/vpl-jail $(BUILD)/vpl-proxy $(BUILD)/vplhelper install-gen
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR)/vplcell \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(CONFDIR)
	$(INSTALL) -m 0755 $(BUILD)/vpl-jail $(BUILD)/vpl-proxy $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0755 $(BUILD)/vplhelper $(DESTDIR)$(INSTALL_HELPER)
	$(INSTALL) -m 0644 $(addprefix $(INSTALL_GEN)/,$(INSTALL_UNITS)) $(DESTDIR)$(UNITDIR)/
	$(INSTALL) -m 0644 $(INSTALL_GEN)/vplcell.sysusers $(DESTDIR)$(SYSUSERSDIR)/vplcell.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! getent passwd vplcell >/dev/null; then \
	  if command -v systemd-sysusers >/dev/null; then \
	    systemd-sysusers $(SYSUSERSDIR)/vplcell.conf; \
	  else \
	    useradd --system --no-create-home --home-dir /nonexistent \
	      --shell /usr/sbin/nologin vplcell; \
	  fi && echo "install: created the user vplcell (vpl-proxy runs as it)"; \
	fi
	@set -e; for c in $(INSTALL_CONFS); do \
	  f=$${c%%:*}; m=$${c#*:}; dst=$(DESTDIR)$(CONFDIR)/$$f; \
	  if [ -e "$$dst" ]; then \
	    if cmp -s $(INSTALL_GEN)/$$f "$$dst"; then continue; fi; \
	    dst=$$dst.sample; \
	    echo "install: $(CONFDIR)/$$f exists, kept; the new sample is $$f.sample"; \
	  fi; \
	  echo "$(INSTALL) -m $$m $(INSTALL_GEN)/$$f $$dst"; \
	  $(INSTALL) -m $$m $(INSTALL_GEN)/$$f "$$dst"; \
	  if [ -z "$(DESTDIR)" ] && [ "$$f" = vpl-proxy.conf ] && getent group vplcell >/dev/null; then \
	    chgrp vplcell "$$dst"; \
	  fi; \
	done
	@echo "install: done; then: systemctl daemon-reload; vpl-jail -f $(CONFDIR)/vpl-jail.conf --check"

uninstall: install-gen
	rm -f $(DESTDIR)$(SBINDIR)/vpl-jail $(DESTDIR)$(SBINDIR)/vpl-proxy \
	  $(DESTDIR)$(INSTALL_HELPER) $(addprefix $(DESTDIR)$(UNITDIR)/,$(INSTALL_UNITS)) \
	  $(DESTDIR)$(SYSUSERSDIR)/vplcell.conf
	@for c in $(INSTALL_CONFS); do \
	  f=$${c%%:*}; dst=$(DESTDIR)$(CONFDIR)/$$f; \
	  rm -f "$$dst.sample"; \
	  if [ -e "$$dst" ]; then \
	    if cmp -s $(INSTALL_GEN)/$$f "$$dst"; then rm -f "$$dst"; \
	    else echo "uninstall: $(CONFDIR)/$$f was changed: kept"; fi; \
	  fi; \
	done
	@for d in $(INSTALL_DIRS); do \
	  if [ -n "$(DESTDIR)" ]; then \
	    top=$$(cd "$(DESTDIR)" && pwd) || exit 1; p=$$top$$d; \
	    while [ "$$p" != "$$top" ] && [ "$$p" != / ] && rmdir "$$p" 2>/dev/null; do \
	      p=$$(dirname "$$p"); \
	    done; \
	  else \
	    case $$d in */vplcell) rmdir "$$d" 2>/dev/null || true ;; esac; \
	  fi; \
	done
	@rm -rf $(INSTALL_GEN)
