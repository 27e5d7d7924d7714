# relflip — plain make, one file.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKG_CONFIG ?= pkg-config
PKGS := libssh2 libcurl libarchive inih libcrypto json-c
# libcurl is loaded when the first HTTP request needs it (src/http-curl.c):
# its headers, not its library.
LINK_PKGS := $(filter-out libcurl,$(PKGS))
CFLAGS ?= -O2 -g
VERSION := 0.2.0
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wwrite-strings -Wvla -Wdeclaration-after-statement
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) -pthread $(CFLAGS)
LDLIBS += $(shell $(PKG_CONFIG) --libs $(LINK_PKGS) 2>/dev/null) -pthread

ifneq ($(V),1)
Q := @
endif

# One compiler a core unless the caller said -j: check builds four trees
# (plain, ASan, unit tests, fuzz), a minute and a half one at a time. A
# sub-make shares its parent's jobs instead.
ifeq ($(MAKELEVEL)$(filter -j% --jobs%,$(MAKEFLAGS)),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

SRCS := $(sort $(wildcard src/*.c src/cmd/*.c))
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:src/%.c=build/%.o)
LIB_OBJS := $(LIB_SRCS:src/%.c=build/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:src/%.c=build/asan/%.o)
FAKE_SRCS := $(sort $(wildcard tests/fakes/*.c))
FAKE_OBJS := $(FAKE_SRCS:tests/fakes/%.c=build/fakes/%.o)
ASAN_FAKE_OBJS := $(FAKE_SRCS:tests/fakes/%.c=build/asan/fakes/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
# The runtimes linked in: every process of the sanitizer e2e run starts
# without relocating two large shared libraries, and LeakSanitizer's exit
# scan skips libubsan.so's 6 MB of globals: an ASan relflip --version
# takes 69 ms, against 87 with them shared (24 plain).
SANITIZE_LINK := -static-libasan -static-libubsan

# The packages the build needs; make installs them when one is missing.
# SKIP_DEPS=1: the caller installed the build packages (the GitHub Action).
ifeq ($(SKIP_DEPS),1)
DEPS_STAMP :=
else
DEPS_STAMP := build/.deps-ok
endif

# libFuzzer targets (tests/fuzz/README.md), built with clang against the
# library compiled with the same sanitizers, all in build/fuzz/. clang's
# -Wformat=2 also flags the va_list wrappers that gcc lets through.
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1 \
	-Wno-format-nonliteral
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o)

.PHONY: all deps check unit unit-asan e2e e2e-asan bench demo style install \
	uninstall clean tools soak
.PHONY: fuzz fuzz-build fuzz-smoke check-fuzz-build

# Quiet but for one line saying what was built (V=1 shows the commands).
all: relflip
	@echo "built ./relflip (relflip $(VERSION), commit $(GIT_COMMIT))"

# What compiles waits for it, order-only: an edit of install-deps.sh runs it
# again, and rebuilds nothing.
build/.deps-ok: scripts/install-deps.sh
	$(Q)./scripts/install-deps.sh
	$(Q)mkdir -p build && touch $@

deps: build/.deps-ok

relflip: $(OBJS) | $(DEPS_STAMP)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

# The ASan+UBSan build that most e2e suites run against (RF_BIN).
build/asan/relflip: $(ASAN_OBJS) | $(DEPS_STAMP)
	$(Q)$(CC) $(SANITIZE_FLAGS) $(SANITIZE_LINK) $(LDFLAGS) -o $@ $(ASAN_OBJS) \
		$(LDLIBS)

# The version and commit compiled in: version.o is rebuilt (and relflip
# relinked) only when they change, through a stamp rewritten only then.
VERSION_STAMP := build/version.stamp
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p build && s='$(VERSION) $(GIT_COMMIT)' && \
	{ [ "$$(cat $(VERSION_STAMP) 2>/dev/null)" = "$$s" ] || echo "$$s" >$(VERSION_STAMP); })
endif
build/version.o build/asan/version.o: ALL_CFLAGS += -DRELFLIP_VERSION='"$(VERSION)"' -DRELFLIP_COMMIT='"$(GIT_COMMIT)"'
build/version.o build/asan/version.o: $(VERSION_STAMP)

build/%.o: src/%.c | $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: src/%.c | $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -O1 -MMD -MP -c -o $@ $<

# The fakes are compiled once, not once per test binary.
build/fakes/%.o: tests/fakes/%.c | $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -Itests -MMD -MP -c -o $@ $<

build/asan/fakes/%.o: tests/fakes/%.c | $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -O1 -Wno-missing-prototypes -Itests \
		-MMD -MP -c -o $@ $<

build/tests/%: tests/unit/%.c $(FAKE_OBJS) $(LIB_OBJS)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -Itests -o $@ $< $(FAKE_OBJS) \
		$(LIB_OBJS) $(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

build/asan/tests/%: tests/unit/%.c $(ASAN_FAKE_OBJS) $(ASAN_LIB_OBJS)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) $(SANITIZE_LINK) -O1 \
		-Wno-missing-prototypes -Itests \
		-o $@ $< $(ASAN_FAKE_OBJS) $(ASAN_LIB_OBJS) $(LDLIBS) \
		$(shell $(PKG_CONFIG) --libs cmocka)

build/fuzz/obj/%.o: src/%.c | $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_FLAGS) -MMD -MP -c -o $@ $<

build/fuzz/fuzz-%: tests/fuzz/fuzz-%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJS)
	$(Q)$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_LIB_OBJS) $(LDLIBS)

# Keep the sanitizer objects: they are not intermediate files.
.SECONDARY: $(ASAN_OBJS) $(LIB_OBJS) $(FAKE_OBJS) $(ASAN_FAKE_OBJS) \
	$(FUZZ_LIB_OBJS)

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FAKE_OBJS:.o=.d) \
	$(ASAN_FAKE_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d)

# Test tools: the WAN-shaped fault proxy (tests/tools/netem-proxy.c).
TOOLS := build/tools/netem-proxy
tools: $(TOOLS)

build/tools/%: tests/tools/%.c
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm

# check: every suite, then one summary line over all of them.
check: relflip build/asan/relflip $(TOOLS) $(UNIT_BINS) $(ASAN_UNIT_BINS) \
	check-fuzz-build
	$(Q)./scripts/check.sh all

# Without clang or its fuzzer runtime the targets do not build; check goes
# on, and its fuzz smoke counts each missing target as failed, saying why.
check-fuzz-build: $(DEPS_STAMP)
	-$(Q)$(MAKE) --no-print-directory fuzz-build

fuzz-build: $(FUZZ_BINS)

# Each target for FUZZ_SECONDS; crashes in build/fuzz/crashes/<target>/.
fuzz: $(FUZZ_BINS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/fuzz/run.sh run

fuzz-smoke: $(FUZZ_BINS)
	$(Q)./scripts/check.sh fuzz-smoke

unit: relflip $(UNIT_BINS)
	$(Q)./scripts/check.sh unit

unit-asan: $(ASAN_UNIT_BINS)
	$(Q)./scripts/check.sh unit-asan

e2e: relflip $(TOOLS)
	$(Q)./scripts/check.sh e2e

# soak: the whole fault matrix (tests/faults/matrix.sh), about half an hour.
soak: relflip $(TOOLS)
	$(Q)nice tests/faults/matrix.sh -j $(or $(SOAK_JOBS),4)

e2e-asan: build/asan/relflip
	$(Q)./scripts/check.sh e2e-asan

bench: relflip $(TOOLS)
	$(Q)./scripts/bench.sh

demo: relflip
	$(Q)./scripts/demo.sh

style:
	$(Q)git clang-format --diff

install: relflip
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 relflip $(DESTDIR)$(BINDIR)/relflip
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 docs/relflip.1 $(DESTDIR)$(MANDIR)/man1/relflip.1
	install -m 0644 docs/relflip.ini.5 $(DESTDIR)$(MANDIR)/man5/relflip.ini.5

# deb: a Debian package of the binary, man pages and completion, in build/deb/
# (packaging/deb/README.md).
.PHONY: deb
deb: $(DEPS_STAMP)
	$(Q)./packaging/deb/build-deb.sh $(VERSION)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/relflip $(DESTDIR)$(MANDIR)/man1/relflip.1 \
		$(DESTDIR)$(MANDIR)/man5/relflip.ini.5

clean:
	rm -rf build relflip
