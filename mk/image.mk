# mk/image.mk - `make image`: builds the task images and pushes them to the local registry.
# Included by the Makefile; NOT part of `all` (a cold build downloads from the Debian mirror and
# takes a few minutes; `make check` builds what its tests need through the same cached scripts).
#
#   make image [LOCAL_REGISTRY=HOST:PORT] [REGISTRY_DIR=DIR] [REGISTRY_CREDS=FILE]
#
# 1. credentials: $(REGISTRY_CREDS) (USER:PASSWORD, mode 0600), created with a random password if
#    missing. Workers and the image build are the only holders (docs/images.md).
# 2. if nothing answers on http://$(LOCAL_REGISTRY)/v2/, starts the registry with
#    scripts/registry.sh in $(REGISTRY_DIR) (storage $(REGISTRY_DIR)/data).
# 3. images/minivpl/build.sh and images/minivpl-java/build.sh (cached in /var/cache/vplcell/images
#    by a hash of their definition) and scripts/push-image.sh of each, as
#    $(LOCAL_REGISTRY)/minivpl:latest and $(LOCAL_REGISTRY)/minivpl-java:latest.
# Needs root.

LOCAL_REGISTRY ?= 127.0.0.1:5000
REGISTRY_DIR   ?= /var/lib/vplcell/registry
REGISTRY_CREDS ?= /etc/vplcell/registry.creds
# the registry of scripts/registry.sh speaks plain HTTP (loopback or a private network); set this
# to empty for a TLS registry
REGISTRY_PLAIN_HTTP ?= --plain-http
# images built and pushed by `make image`: DIRECTORY:REPOSITORY (a teacher's image is one more entry)
VPL_IMAGES ?= minivpl:minivpl minivpl-java:minivpl-java

.PHONY: image
image:
	@set -eu; \
	if [ ! -s "$(REGISTRY_CREDS)" ]; then \
		mkdir -p "$$(dirname "$(REGISTRY_CREDS)")"; \
		( umask 077; printf 'vplcell:%s\n' "$$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" \
			>"$(REGISTRY_CREDS)" ); \
		echo "image: created $(REGISTRY_CREDS) (user vplcell, random password)"; \
	fi; \
	chmod 0600 "$(REGISTRY_CREDS)"; \
	code=$$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(LOCAL_REGISTRY)/v2/" || true); \
	if [ "$$code" = 000 ]; then \
		pw=$$(mktemp); trap 'rm -f "$$pw"' EXIT; \
		head -n 1 "$(REGISTRY_CREDS)" | cut -d: -f2- >"$$pw"; \
		scripts/registry.sh start "$(REGISTRY_DIR)" --addr "$(LOCAL_REGISTRY)" \
			--user "$$(head -n 1 "$(REGISTRY_CREDS)" | cut -d: -f1)" --password-file "$$pw"; \
		rm -f "$$pw"; \
	else \
		echo "image: a registry answers on $(LOCAL_REGISTRY) (HTTP $$code); using it"; \
	fi; \
	for i in $(VPL_IMAGES); do \
		d=$${i%%:*}; repo=$${i#*:}; \
		t0=$$(date +%s); \
		tar=$$(images/$$d/build.sh | tail -n 1); \
		[ -s "$$tar" ] || { echo "image: images/$$d/build.sh failed" >&2; exit 1; }; \
		echo "image: $$d: $$tar ($$(( $$(date +%s) - t0 )) s)"; \
		scripts/push-image.sh "$$tar" "$(LOCAL_REGISTRY)/$$repo:latest" \
			--creds-file "$(REGISTRY_CREDS)" $(REGISTRY_PLAIN_HTTP) >/dev/null; \
	done
