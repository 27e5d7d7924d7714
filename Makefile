# relflip — plain make, one file.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKG_CONFIG ?= pkg-config
PKGS := libssh2 libcurl libarchive inih libcrypto json-c
CFLAGS ?= -O2 -g
VERSION := 0.1.0
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wwrite-strings -Wvla -Wdeclaration-after-statement
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) -pthread $(CFLAGS)
LDLIBS += $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -pthread

ifneq ($(V),1)
Q := @
endif

SRCS := $(sort $(wildcard src/*.c src/cmd/*.c))
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:src/%.c=build/%.o)
LIB_OBJS := $(LIB_SRCS:src/%.c=build/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:src/%.c=build/asan/%.o)
FAKE_SRCS := $(sort $(wildcard tests/fakes/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

# The packages the build needs; make installs them when one is missing.
# SKIP_DEPS=1: the caller installed the build packages (the GitHub Action).
ifeq ($(SKIP_DEPS),1)
DEPS_STAMP :=
else
DEPS_STAMP := build/.deps-ok
endif

.PHONY: all deps check unit unit-asan e2e bench demo style install uninstall clean \
	tools

all: relflip

build/.deps-ok: scripts/install-deps.sh
	$(Q)./scripts/install-deps.sh
	$(Q)mkdir -p build && touch $@

deps: build/.deps-ok

relflip: $(DEPS_STAMP) $(OBJS)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

build/version.o: ALL_CFLAGS += -DRELFLIP_VERSION='"$(VERSION)"' -DRELFLIP_COMMIT='"$(GIT_COMMIT)"'
build/version.o: .FORCE
.FORCE:

build/%.o: src/%.c $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: src/%.c $(DEPS_STAMP)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -O1 -MMD -MP -c -o $@ $<

build/tests/%: tests/unit/%.c $(FAKE_SRCS) $(LIB_OBJS)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -Itests -o $@ $< $(FAKE_SRCS) \
		$(LIB_OBJS) $(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

build/asan/tests/%: tests/unit/%.c $(FAKE_SRCS) $(ASAN_LIB_OBJS)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(SANITIZE_FLAGS) -O1 -Wno-missing-prototypes -Itests \
		-o $@ $< $(FAKE_SRCS) $(ASAN_LIB_OBJS) $(LDLIBS) \
		$(shell $(PKG_CONFIG) --libs cmocka)

# Keep the sanitizer objects: they are not intermediate files.
.SECONDARY: $(ASAN_LIB_OBJS) $(LIB_OBJS)

-include $(OBJS:.o=.d) $(ASAN_LIB_OBJS:.o=.d)

# Test tools: the WAN-shaped fault proxy (tests/tools/netem-proxy.c).
TOOLS := build/tools/netem-proxy
tools: $(TOOLS)

build/tools/%: tests/tools/%.c
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm

# check: every suite, then one summary line over all of them.
check: relflip $(TOOLS) $(UNIT_BINS) $(ASAN_UNIT_BINS)
	$(Q)./scripts/check.sh all

unit: relflip $(UNIT_BINS)
	$(Q)./scripts/check.sh unit

unit-asan: $(ASAN_UNIT_BINS)
	$(Q)./scripts/check.sh unit-asan

e2e: relflip $(TOOLS)
	$(Q)./scripts/check.sh e2e

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

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/relflip $(DESTDIR)$(MANDIR)/man1/relflip.1 \
		$(DESTDIR)$(MANDIR)/man5/relflip.ini.5

clean:
	rm -rf build relflip
