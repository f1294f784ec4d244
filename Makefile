# vmscreen - build, test, demo.  Plain GNU make; see README.md.
#
#   make          build vmscreen and vmscreend
#   make demo     render sample voicemails and screen them
#   make check    build and run every test (also under ASan+UBSan)
#   make bench    speed and detection figures
#   make install  PREFIX=/usr/local DESTDIR=

PREFIX    ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR   ?=
CC        ?= cc
CXX       ?= c++
PKGS      := pocketsphinx sphinxbase sndfile samplerate jansson libconfig libcurl libcrypto fasttext flac libmicrohttpd libsodium hiredis zlib libmagic
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SYSTEMD_LIBS := $(shell pkg-config --libs libsystemd 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE $(WARN) -Iinclude -Isrc $(PKG_CFLAGS) \
	-DVMS_DATADIR='"$(PREFIX)/share/vmscreen"' -DVMS_SYSCONFDIR='"$(SYSCONFDIR)/vmscreen"' \
	-DVMS_TEST_TOP='"$(CURDIR)"' -DVMS_TEST_MODELS='"$(CURDIR)/models"'
OPT       ?= -O2 -g
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# BUILD selects the flavour: build/rel (default) or build/asan.
BUILD     ?= build/rel
FLAVOUR_CFLAGS := $(if $(findstring asan,$(BUILD)),$(SAN_FLAGS),$(OPT))
CFLAGS_ALL := $(BASE_CFLAGS) $(FLAVOUR_CFLAGS) $(CFLAGS)
SAN_LD    := -fsanitize=address,undefined
LDFLAGS_ALL := $(if $(findstring asan,$(BUILD)),$(SAN_LD)) $(LDFLAGS)
LIBS_ALL  := $(PKG_LIBS) $(SYSTEMD_LIBS) -lstdc++ -lpthread -lm
# The one C++ file: fastText's C interface (src/core/classifier.cc).
CXXFLAGS_ALL := -std=c++17 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Isrc $(FLAVOUR_CFLAGS) $(CXXFLAGS)

LEARNED_MODEL := models/phrasing.ftz
AGENT_LM  := models/agent.lm.bin
PHONE_MLLR := models/phone.mllr
CORE_SRC  := $(wildcard src/core/*.c) $(wildcard src/core/*.cc)
OPS_SRC   := $(wildcard src/conf/*.c src/spool/*.c src/alert/*.c src/review/*.c)
CLI_SRC   := $(wildcard src/cli/*.c)
DAEMON_SRC := $(wildcard daemon/*.c)
TEST_SRC  := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.cc,$(BUILD)/%.o,$(patsubst %.c,$(BUILD)/%.o,$(1)))
CORE_LIB  := $(BUILD)/libvmscreen-core.a
OPS_LIB   := $(BUILD)/libvmscreen-ops.a
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# issue 4: driver for tests/integration/test_webhooks.py (built with the tests, not run as one)
TEST_BINS += $(BUILD)/tests/tools/alert_driver

.PHONY: format-check
.PHONY: all deps demo check check-unit check-integration check-asan bench fuzz install clean format valgrind
all: $(BUILD)/vmscreen $(if $(DAEMON_SRC),$(BUILD)/vmscreend) vmscreen $(if $(DAEMON_SRC),vmscreend) $(LEARNED_MODEL) $(AGENT_LM) $(PHONE_MLLR)

# Convenience links at the top so `./vmscreen check` works after `make`.
vmscreen: $(BUILD)/vmscreen
	@ln -sf $< $@
vmscreend: $(BUILD)/vmscreend
	@ln -sf $< $@

# issue 11: the reviewer console, daemon/console/ (plain HTML/CSS/JS) copied
# into $(BUILD)/console/, with wavesurfer.js (pinned in daemon/console/
# package-lock.json) vendored from npm into $(BUILD)/console/vendor/.
CONSOLE_SRC := $(wildcard daemon/console/*.html daemon/console/*.js daemon/console/*.css)
CONSOLE_NPM := $(BUILD)/console-npm
WAVESURFER := $(CONSOLE_NPM)/node_modules/wavesurfer.js
.PHONY: console
console: $(BUILD)/console/.stamp
all: $(BUILD)/console/.stamp
$(CONSOLE_NPM)/.stamp: daemon/console/package.json daemon/console/package-lock.json
	@mkdir -p $(CONSOLE_NPM)
	cp daemon/console/package.json daemon/console/package-lock.json $(CONSOLE_NPM)/
	cd $(CONSOLE_NPM) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@
$(BUILD)/console/.stamp: $(CONSOLE_SRC) $(CONSOLE_NPM)/.stamp
	@mkdir -p $(BUILD)/console/vendor
	cp $(CONSOLE_SRC) $(BUILD)/console/
	cp $(WAVESURFER)/dist/wavesurfer.esm.js $(WAVESURFER)/dist/plugins/regions.esm.js $(BUILD)/console/vendor/
	cp $(WAVESURFER)/LICENSE $(BUILD)/console/vendor/LICENSE.wavesurfer.txt
	@touch $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@
$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ALL) -MMD -MP -c $< -o $@

# The learned phrasing layer, trained from the corpus at build time
# (reproducible: fixed seed, one thread; see models/corpus/train.sh).
$(LEARNED_MODEL): $(wildcard models/corpus/*.tsv) models/corpus/train.sh models/corpus/prepare.py
	bash models/corpus/train.sh $@
$(AGENT_LM): $(wildcard models/corpus/*.tsv) models/corpus/build-lm.sh models/corpus/prepare.py
	bash models/corpus/build-lm.sh $@

# issue 17: the telephone-channel transform of the acoustic model, estimated
# from Debian's Asterisk prompts (see models/phone/build-mllr.sh).
$(PHONE_MLLR): models/phone/build-mllr.sh models/phone/prompts.py models/phone/sendump2mixw.py
	bash models/phone/build-mllr.sh $@

$(CORE_LIB): $(call obj,$(CORE_SRC))
	@rm -f $@; ar rcs $@ $^
$(OPS_LIB): $(call obj,$(OPS_SRC))
	@rm -f $@; ar rcs $@ $^ $(if $^,,/dev/null 2>/dev/null || true)

$(BUILD)/vmscreen: $(call obj,$(CLI_SRC)) $(OPS_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS_ALL) -o $@ $(call obj,$(CLI_SRC)) $(OPS_LIB) $(CORE_LIB) $(LIBS_ALL)
$(BUILD)/vmscreend: $(call obj,$(DAEMON_SRC)) $(OPS_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS_ALL) -o $@ $(call obj,$(DAEMON_SRC)) $(OPS_LIB) $(CORE_LIB) $(LIBS_ALL)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(OPS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(OPS_LIB) $(CORE_LIB) $(LIBS_ALL) $(CHECK_LIBS)
$(BUILD)/tests/tools/alert_driver: $(BUILD)/tests/tools/alert_driver.o $(OPS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(OPS_LIB) $(CORE_LIB) $(LIBS_ALL)

# issue 6: fuzzing.  libFuzzer harnesses tests/fuzz/fuzz_NAME.c, built with clang and
# ASan+UBSan into build/fuzz/ (`make fuzz`: seed build/fuzz/corpus/, run each for
# FUZZ_SECONDS).  Linked with tests/fuzz/replay_main.c they are also test tools,
# $(BUILD)/tests/fuzz/replay_NAME, that replay tests/fuzz/regressions/ in `make check`.
FUZZ_SECONDS ?= 60
FUZZ_CC   ?= clang
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
TEST_BINS += $(patsubst %,$(BUILD)/tests/fuzz/replay_%,$(FUZZ_NAMES))
$(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/daemon/runtime.o $(OPS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(OPS_LIB) $(CORE_LIB) $(LIBS_ALL)
build/fuzz/fuzz_%: build/fuzz/tests/fuzz/fuzz_%.o build/fuzz/daemon/runtime.o build/fuzz/libvmscreen-ops.a build/fuzz/libvmscreen-core.a
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.o,$^) build/fuzz/libvmscreen-ops.a build/fuzz/libvmscreen-core.a $(LIBS_ALL)
.SECONDARY: $(patsubst %,build/fuzz/tests/fuzz/fuzz_%.o,$(FUZZ_NAMES)) $(patsubst %,$(BUILD)/tests/fuzz/fuzz_%.o,$(FUZZ_NAMES)) $(BUILD)/tests/fuzz/replay_main.o
.PHONY: fuzz-build
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=$(FUZZ_CC) CFLAGS='$(FUZZ_SAN)' $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_NAMES))
fuzz: fuzz-build
	@bash tests/fuzz/seed.sh
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_NAMES)

deps:
	@bash tests/deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash tests/demo.sh

# The whole suite, twice: an optimised build and an ASan+UBSan build.
check: deps
	@$(MAKE) --no-print-directory all $(TEST_BINS)
	@$(MAKE) --no-print-directory BUILD=build/asan build/asan/vmscreen $(if $(DAEMON_SRC),build/asan/vmscreend) $(patsubst build/rel/%,build/asan/%,$(TEST_BINS))
	@bash tests/run.sh

# issue 6: the heavier fault and load tests (tmpfs disk full, webhook down,
# kill -9 across 300 files, a 1,000-file burst), on the optimised build only.
# .ci/run calls it after `make check`.  About 10 minutes on 2 cores.
.PHONY: check-faults
check-faults: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p build/test-logs; rc=0; for t in tests/faults/test_*.py; do \
		n=$$(basename $$t .py); log=build/test-logs/rel-faults-$$n.log; \
		if VMS_BIN_DIR=$(CURDIR)/build/rel VMS_FLAVOUR=rel VMSCREEN_MODELS=$(CURDIR)/models \
			timeout 1500 python3 $$t -v >$$log 2>&1; then echo "PASS rel/faults/$$n"; \
		else rc=1; echo "FAIL rel/faults/$$n (log: $$log)"; tail -n 30 $$log | sed 's/^/    /'; fi; \
		grep -E '^  (load|kill -9|disk full|cluster):|^(Ran|OK|FAILED)' $$log | sed 's/^/    /'; \
	done; exit $$rc

bench: deps all
	@bash tests/bench/run.sh

# issue 13: cluster mode's throughput with 1, 2 and 3 nodes of one worker
# (a real redis-server on 127.0.0.1), beside a single daemon.
.PHONY: bench-cluster
bench-cluster: deps all
	@VMS_BIN_DIR=$(CURDIR)/build/rel VMSCREEN_MODELS=$(CURDIR)/models python3 tests/bench/cluster.py

valgrind: deps all $(TEST_BINS)
	@VMS_VALGRIND=1 bash tests/run.sh --unit-only

C_FILES := $(wildcard include/*.h src/*/*.c src/*/*.cc src/*/*.h daemon/*.c daemon/*.h tests/unit/*.c tests/unit/*.h tests/tools/*.c tests/fuzz/*.c)
format:
	clang-format -i $(C_FILES)
format-check:
	@clang-format --dry-run -Werror $(C_FILES) && echo "clang-format: clean"

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/vmscreen
	install -m 0755 $(BUILD)/vmscreen $(DESTDIR)$(PREFIX)/bin/vmscreen
	$(if $(DAEMON_SRC),install -m 0755 $(BUILD)/vmscreend $(DESTDIR)$(PREFIX)/sbin/vmscreend)
	cp -R models $(DESTDIR)$(PREFIX)/share/vmscreen/
	install -d $(DESTDIR)$(PREFIX)/share/vmscreen/console/vendor
	install -m 0644 $(patsubst daemon/console/%,$(BUILD)/console/%,$(CONSOLE_SRC)) $(DESTDIR)$(PREFIX)/share/vmscreen/console/
	install -m 0644 $(BUILD)/console/vendor/wavesurfer.esm.js $(BUILD)/console/vendor/regions.esm.js $(BUILD)/console/vendor/LICENSE.wavesurfer.txt $(DESTDIR)$(PREFIX)/share/vmscreen/console/vendor/
	@if [ -f systemd/vmscreend.service ]; then $(MAKE) --no-print-directory install-systemd; fi
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/vmscreen
	$(if $(wildcard man/vmscreen.1),install -m 0644 man/vmscreen.1 $(DESTDIR)$(MANDIR)/man1/vmscreen.1)
	$(if $(wildcard man/vmscreend.conf.5),install -m 0644 man/vmscreend.conf.5 $(DESTDIR)$(MANDIR)/man5/vmscreend.conf.5)
	$(if $(wildcard man/vmscreend.8),install -m 0644 man/vmscreend.8 $(DESTDIR)$(MANDIR)/man8/vmscreend.8)
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 README.md CHANGELOG.md LICENSE $(wildcard docs/*.md) $(DESTDIR)$(DOCDIR)/
	@if [ -f etc/vmscreend.conf ] && [ ! -e $(DESTDIR)$(SYSCONFDIR)/vmscreen/vmscreend.conf ]; then \
		install -m 0640 etc/vmscreend.conf $(DESTDIR)$(SYSCONFDIR)/vmscreen/vmscreend.conf; fi
	@# issue 10: the service user must be able to read its config (root:vmscreen
	@# 0640); tmpfiles.d sets the same on boot when the group came later
	@# A staged install (DESTDIR, e.g. a package build) leaves the group to the
	@# target's tmpfiles.d: the build host's group means nothing there.
	@if [ -n "$(DESTDIR)" ]; then :; \
	elif getent group $(SERVICE_GROUP) >/dev/null 2>&1; then \
		chgrp $(SERVICE_GROUP) $(DESTDIR)$(SYSCONFDIR)/vmscreen $(DESTDIR)$(SYSCONFDIR)/vmscreen/vmscreend.conf && \
		chmod 0750 $(DESTDIR)$(SYSCONFDIR)/vmscreen; \
	else echo "note: group $(SERVICE_GROUP) does not exist yet: run systemd-sysusers, then systemd-tmpfiles --create (it makes $(SYSCONFDIR)/vmscreen/vmscreend.conf root:$(SERVICE_GROUP) 0640)"; fi

# systemd unit, sysusers.d and tmpfiles.d entries (paths substituted).
SERVICE_GROUP ?= vmscreen
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/vmscreen
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
.PHONY: install-systemd
install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		systemd/vmscreend.service > $(DESTDIR)$(UNITDIR)/vmscreend.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vmscreend.service
	install -m 0644 systemd/vmscreen.sysusers $(DESTDIR)$(SYSUSERSDIR)/vmscreen.conf
	sed -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/vmscreen.tmpfiles > $(DESTDIR)$(TMPFILESDIR)/vmscreen.conf
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/vmscreen.conf

# What `make install` installed, except the configuration ($(SYSCONFDIR)/vmscreen)
# and the data (/var/spool/vmscreen, /var/log/vmscreen, /var/lib/vmscreen, the
# vmscreen user).  Stop the service first: systemctl disable --now vmscreend.
.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vmscreen $(DESTDIR)$(PREFIX)/sbin/vmscreend
	rm -rf $(DESTDIR)$(PREFIX)/share/vmscreen $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(MANDIR)/man1/vmscreen.1 $(DESTDIR)$(MANDIR)/man5/vmscreend.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/vmscreend.8
	rm -f $(DESTDIR)$(UNITDIR)/vmscreend.service $(DESTDIR)$(SYSUSERSDIR)/vmscreen.conf \
		$(DESTDIR)$(TMPFILESDIR)/vmscreen.conf

# issue 12: the Debian package (debian/), built from `git archive HEAD` (what is
# committed is what is packaged) in build/deb/vmscreen-VERSION, so the tree
# stays clean; the .deb, the native source (.dsc, .tar.xz) and the .changes land in
# build/deb/, then lintian checks both.  (`dpkg-buildpackage -us -uc -b` alone
# builds just the binary package.)
DEB_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -SVersion 2>/dev/null)
DEB_SRC     = build/deb/vmscreen-$(DEB_VERSION)
.PHONY: deb
deb:
	@rm -rf build/deb && mkdir -p $(DEB_SRC)
	@if git rev-parse --verify -q HEAD >/dev/null 2>&1; then \
		echo "deb: packaging HEAD ($$(git rev-parse --short HEAD)); uncommitted changes are not in it"; \
		git archive --format=tar HEAD | tar -xf - -C $(DEB_SRC); \
	else tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C $(DEB_SRC); fi
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc
	@if command -v lintian >/dev/null; then lintian --fail-on error build/deb/*.changes; \
	else echo "deb: lintian not installed, not checked"; fi
	@ls -l build/deb/*.deb

clean:
	rm -rf build vmscreen vmscreend $(LEARNED_MODEL) $(AGENT_LM)

-include $(shell find build -path build/deb -prune -o -name '*.d' -type f -print 2>/dev/null)
