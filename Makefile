# Makefile - vmrq: libvmrq + the vmrq CLI (frontend-api/), vmrqd (backend/), the tests (t/).
#
#   make               build everything under .build/ (installs missing Debian packages as root)
#   make check         build and run every test against a throwaway PostgreSQL
#   make check SANITIZE=1   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make install       PREFIX=/usr/local, DESTDIR supported (make uninstall: the same, undone)
#   make demo          see README.md
#   make fuzz          libFuzzer under ASan+UBSan on the parsers input reaches (FUZZ_TIME seconds
#                      each, one after the other; seeds in t/fuzz/corpus/NAME/)
#
# Every compile uses -Wall -Wextra -Werror. Objects of a SANITIZE=1 build live apart (.build/san).
# Each build step prints one short line ("CC backend/claim.c"); V=1 prints the whole commands.

VERSION    := 0.1.0
SOVERSION  := 0
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/vmrq
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANPAGES   := etc/man/vmrq.1 etc/man/vmrqd.8 etc/man/vmrqd.conf.5

ifeq ($(V),1)
Q :=
say := @true
else
Q := @
say := @printf '%s %s\n'
endif

ifeq ($(SANITIZE),1)
B   := .build/san
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_ENV := VMRQ_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
else
B   := .build/default
SAN :=
endif

# Debian packages needed to build and test; `deps` installs the missing ones (as root). procps:
# the tests' ps and pkill (t/pg-pair, the real-guest tier).
DEB_PKGS := gcc make pkg-config libpq-dev libjson-c-dev uuid-dev libvirt-dev libxml2-dev check postgresql valgrind \
            libbsd-dev libsystemd-dev mandoc man-db procps
# The real-guest tests' private libvirtd and QEMU (make check installs them if it can; if not,
# those tests say SKIPPED with the reason). The guest itself is built from downloaded .debs.
GUEST_PKGS := libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 libvirt-clients qemu-utils
# make fuzz only: clang and its libFuzzer runtime.
FUZZ_PKGS := clang libclang-rt-14-dev

PKG_CFLAGS  = $(shell pkg-config --cflags libpq json-c uuid)
PKG_LIBS    = $(shell pkg-config --libs libpq json-c uuid)
VIRT_CFLAGS = $(shell pkg-config --cflags libvirt libxml-2.0)
VIRT_LIBS   = $(shell pkg-config --libs libvirt libxml-2.0)
# vmrqd only: libbsd's pidfile_open() family, libsystemd's sd_notify().
D_LIBS      = $(shell pkg-config --libs libbsd libsystemd)
CHECK_LIBS  = $(shell pkg-config --libs check)

CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SAN) $(PKG_CFLAGS) -D_GNU_SOURCE \
             -DVMRQ_VERSION='"$(VERSION)"' -Ifrontend-api -I$(B)/gen
ALL_LDFLAGS = $(LDFLAGS) $(SAN)

LIB_SRC  := $(addprefix frontend-api/,catalog.c catalog_json.c error.c jsonb.c migrate.c queue.c request.c status.c validate.c)
LIB_OBJ  := $(patsubst frontend-api/%.c,$(B)/lib/%.o,$(LIB_SRC)) $(B)/lib/migrations.o
CLI_SRC  := $(wildcard frontend-api/cli/*.c)
CLI_OBJ  := $(patsubst frontend-api/cli/%.c,$(B)/cli/%.o,$(CLI_SRC))
D_SRC    := $(filter-out backend/main.c,$(wildcard backend/*.c))
D_OBJ    := $(patsubst backend/%.c,$(B)/backend/%.o,$(D_SRC))
TEST_SRC := $(wildcard t/*.c)
TEST_OBJ := $(patsubst t/%.c,$(B)/t/%.o,$(TEST_SRC))
SQL      := $(sort $(wildcard sql/*.sql)) $(sort $(wildcard sql/functions/*.sql))

LIBA  := $(B)/libvmrq.a
LIBSO := $(B)/libvmrq.so.$(VERSION)
CLI   := $(B)/vmrq
DAEMON := $(B)/vmrqd
DLIB  := $(B)/libvmrqd.a
TESTS := $(B)/check_vmrq

.PHONY: all build check run-check deps install uninstall clean demo bench fuzz run-fuzz FORCE
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

build: $(LIBA) $(LIBSO) $(CLI) $(DAEMON) $(B)/vmrq.pc $(B)/vmrqd.service

# Installs what DEB_PKGS lists and dpkg lacks; without root it names them and fails.
deps:
	@command -v dpkg-query >/dev/null || exit 0; \
	missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" != 0 ]; then echo "make: missing Debian packages:$$missing (as root: apt-get install$$missing)" >&2; exit 1; fi; \
	echo "make: installing$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null

# The list of SQL files (migrations, then sources), rewritten only when it changes: a file renamed or removed leaves
# no newer file behind, so without it the embedded copy would keep the old one.
$(B)/gen/migrations.list: FORCE
	@mkdir -p $(@D)
	@echo '$(SQL)' | cmp -s - $@ || echo '$(SQL)' > $@

$(B)/gen/migrations.c: $(SQL) $(B)/gen/migrations.list frontend-api/embed-sql.awk
	@mkdir -p $(@D)
	$(say) GEN $@
	$(Q)awk -f frontend-api/embed-sql.awk $(SQL) > $@.tmp && mv $@.tmp $@

$(B)/lib/migrations.o: $(B)/gen/migrations.c frontend-api/migrations.h
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DVMRQ_BUILDING_LIBRARY -c -o $@ $<

$(B)/lib/%.o: frontend-api/%.c $(wildcard frontend-api/*.h)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DVMRQ_BUILDING_LIBRARY -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSO): $(LIB_OBJ)
	$(say) LD $@
	$(Q)$(CC) -shared -Wl,-soname,libvmrq.so.$(SOVERSION) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)
	$(Q)ln -sf libvmrq.so.$(VERSION) $(B)/libvmrq.so.$(SOVERSION)
	$(Q)ln -sf libvmrq.so.$(VERSION) $(B)/libvmrq.so

$(B)/cli/%.o: frontend-api/cli/%.c $(wildcard frontend-api/cli/*.h) frontend-api/vmrq.h
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(CLI): $(CLI_OBJ) $(LIBA)
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(LIBA) $(PKG_LIBS)

# vmrqd: everything but main.c also goes into libvmrqd.a, which the tests link.
$(B)/backend/%.o: backend/%.c $(wildcard backend/*.h frontend-api/*.h)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) $(VIRT_CFLAGS) -pthread -c -o $@ $<

$(DLIB): $(D_OBJ)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(DAEMON): $(B)/backend/main.o $(DLIB) $(LIBA)
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -pthread -o $@ $(B)/backend/main.o $(DLIB) $(LIBA) $(PKG_LIBS) $(VIRT_LIBS) $(D_LIBS)

$(B)/vmrq.pc: frontend-api/vmrq.pc.in Makefile
	$(say) GEN $@
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' $< > $@

# The unit names the installed paths.
$(B)/vmrqd.service: etc/vmrqd.service.in Makefile
	@mkdir -p $(@D)
	$(say) GEN $@
	$(Q)sed -e 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g; s|@UNITDIR@|$(UNITDIR)|g' $< > $@

$(B)/t/%.o: t/%.c $(wildcard t/*.h backend/*.h frontend-api/*.h)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -Ibackend $(VIRT_CFLAGS) $(shell pkg-config --cflags check) -c -o $@ $<

$(TESTS): $(TEST_OBJ) $(DLIB) $(LIBA)
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -pthread -o $@ $(TEST_OBJ) $(DLIB) $(LIBA) $(PKG_LIBS) $(VIRT_LIBS) $(D_LIBS) $(CHECK_LIBS)

check: deps
	@$(MAKE) --no-print-directory DEB_PKGS="$(GUEST_PKGS)" deps \
	  || echo "make: could not install $(GUEST_PKGS): the real-guest tests will say SKIPPED" >&2
	@$(MAKE) --no-print-directory run-check

# The suites need the CLI (they run it), a private PostgreSQL (t/with-pg starts and removes it)
# and, for the real-guest tier, a private libvirtd (t/with-libvirtd; VMRQ_GUEST=0 skips it).
# On a failure the servers' logs come out after the tests' output; the failed tests are then
# printed again from Check's log ($(B)/check.log), so that they are the last lines of the run.
run-check: build $(TESTS)
	@rm -f $(B)/check.log
	VMRQ_CLI=$(CURDIR)/$(CLI) VMRQD=$(CURDIR)/$(DAEMON) $(SAN_ENV) \
	  VMRQ_MAKE="$(MAKE) --no-print-directory SANITIZE=$(SANITIZE)" \
	  CK_LOG_FILE_NAME=$(CURDIR)/$(B)/check.log \
	  t/with-pg t/with-libvirtd $(TESTS) \
	  || { echo "make check: failed (all results in $(B)/check.log):" >&2; \
	       grep -E '^[^:]+:[0-9]+:[EF]:' $(B)/check.log >&2; exit 1; }

# The real daemon end to end on a private PostgreSQL under .build/demo and libvirt's test driver.
demo: deps
	@$(MAKE) --no-print-directory build
	VMRQ_BUILD=$(B) t/with-libvirtd etc/demo.sh

# Performance figures (README, "Performance"); parameters: make bench BENCH_ARGS="--runs 3".
$(B)/vmrq-bench: t/bench/bench.c $(LIBA) frontend-api/vmrq.h
	@mkdir -p $(@D) .build/bench
	$(say) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBA) $(PKG_LIBS)

$(B)/vmrq-rss-floor: t/bench/rss_floor.c
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) $(VIRT_CFLAGS) -o $@ $< $(PKG_LIBS) $(VIRT_LIBS)

# The clone scenario's dir pool lives in the private libvirtd of t/with-libvirtd (qemu-img makes
# its qcow2 overlays); without it, that part is left out and says so.
bench: deps
	@$(MAKE) --no-print-directory DEB_PKGS="$(GUEST_PKGS)" deps \
	  || echo "make: could not install $(GUEST_PKGS): the dir-pool clones are not measured" >&2
	@$(MAKE) --no-print-directory build $(B)/vmrq-bench $(B)/vmrq-rss-floor
	@mkdir -p .build/bench
	VMRQD=$(CURDIR)/$(DAEMON) VMRQ_RSS_FLOOR=$(CURDIR)/$(B)/vmrq-rss-floor VMRQ_PG_DEFAULTS=1 \
	    t/with-pg t/with-libvirtd $(B)/vmrq-bench $(BENCH_ARGS)

# Fuzzing (t/fuzz/): each target is built with clang, libFuzzer, ASan and UBSan, and runs for
# FUZZ_TIME seconds on a working corpus under .build/fuzz seeded from t/fuzz/corpus/NAME; a crash
# stops it with the input saved as .build/fuzz/crash-NAME-*, for a regression test in t/.
FUZZ_TIME  ?= 60
FZ         := .build/fuzz
FUZZ_CC    := clang
# (clang, unlike gcc, warns of vprintf-style wrappers such as log.c's: -Wno-format-nonliteral)
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=c11 $(WARN) -Wno-format-nonliteral $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -D_GNU_SOURCE \
              -DVMRQ_VERSION='"$(VERSION)"' -Ifrontend-api -Ifrontend-api/cli -Ibackend -I$(FZ)/gen
FUZZ_LIB   := $(patsubst frontend-api/%.c,$(FZ)/lib/%.o,$(LIB_SRC)) $(FZ)/lib/migrations.o
FUZZ_CLI   := $(patsubst frontend-api/cli/%.c,$(FZ)/cli/%.o,$(filter-out frontend-api/cli/main.c,$(CLI_SRC)))
FUZZERS    := args config batch

$(FZ)/gen/migrations.c: $(SQL) frontend-api/embed-sql.awk
	@mkdir -p $(@D)
	awk -f frontend-api/embed-sql.awk $(SQL) > $@.tmp && mv $@.tmp $@
$(FZ)/lib/migrations.o: $(FZ)/gen/migrations.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FZ)/lib/%.o: frontend-api/%.c $(wildcard frontend-api/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FZ)/cli/%.o: frontend-api/cli/%.c $(wildcard frontend-api/cli/*.h frontend-api/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FZ)/backend/%.o: backend/%.c $(wildcard backend/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FZ)/t/%.o: t/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FZ)/fuzz_args: $(FZ)/t/fuzz_args.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)
$(FZ)/fuzz_config: $(FZ)/t/fuzz_config.o $(FZ)/backend/config.o $(FZ)/backend/log.o
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^
$(FZ)/fuzz_batch: $(FZ)/t/fuzz_batch.o $(FUZZ_CLI) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

fuzz:
	@$(MAKE) --no-print-directory DEB_PKGS="$(FUZZ_PKGS) $(DEB_PKGS)" deps
	@$(MAKE) --no-print-directory run-fuzz

# One fuzzer at a time (they share the machine's cores with whatever else runs).
run-fuzz: $(addprefix $(FZ)/fuzz_,$(FUZZERS))
	@set -e; for f in $(FUZZERS); do \
	  mkdir -p $(FZ)/corpus/$$f; \
	  echo "fuzz: $$f for $(FUZZ_TIME) s"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FZ)/fuzz_$$f -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2 \
	    -artifact_prefix=$(FZ)/crash-$$f- $(FZ)/corpus/$$f t/fuzz/corpus/$$f 2>$(FZ)/$$f.log \
	    || { tail -n 40 $(FZ)/$$f.log >&2; echo "fuzz: $$f failed; the input is $(FZ)/crash-$$f-*" >&2; exit 1; }; \
	  grep -E '^#[0-9]+ +DONE|Done [0-9]+ runs' $(FZ)/$$f.log | tail -n 2; \
	done

# Everything a host needs: programs, library, man pages, the unit and its system user, the
# example configuration (as the configuration only where there is none yet), the cron example
# and the README. Into the running system (no DESTDIR) as root it also creates the user vmrq.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(SYSCONFDIR)/vmrq
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/vmrq
	install -m 755 $(DAEMON) $(DESTDIR)$(BINDIR)/vmrqd
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libvmrq.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvmrq.so.$(SOVERSION)
	ln -sf libvmrq.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvmrq.so
	install -m 644 frontend-api/vmrq.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(B)/vmrq.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 644 etc/man/vmrq.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 etc/man/vmrqd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 etc/man/vmrqd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 $(B)/vmrqd.service $(DESTDIR)$(UNITDIR)/
	install -m 644 etc/vmrq.sysusers $(DESTDIR)$(SYSUSERSDIR)/vmrq.conf
	install -m 644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 644 etc/vmrqd.conf.example etc/vmrq.cron $(DESTDIR)$(DOCDIR)/examples/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/vmrq/vmrqd.conf ]; then \
	  echo "make: keeping the existing $(DESTDIR)$(SYSCONFDIR)/vmrq/vmrqd.conf (the example: $(DOCDIR)/examples/vmrqd.conf.example)"; \
	else \
	  echo "install -m 644 etc/vmrqd.conf.example $(DESTDIR)$(SYSCONFDIR)/vmrq/vmrqd.conf"; \
	  install -m 644 etc/vmrqd.conf.example $(DESTDIR)$(SYSCONFDIR)/vmrq/vmrqd.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
	  echo "systemd-sysusers $(SYSUSERSDIR)/vmrq.conf"; systemd-sysusers $(SYSUSERSDIR)/vmrq.conf; \
	fi

# Removes what install put there but the configuration (which may hold edits) and the user.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vmrq $(DESTDIR)$(BINDIR)/vmrqd \
	  $(DESTDIR)$(LIBDIR)/libvmrq.a $(DESTDIR)$(LIBDIR)/libvmrq.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/libvmrq.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libvmrq.so \
	  $(DESTDIR)$(INCLUDEDIR)/vmrq.h $(DESTDIR)$(LIBDIR)/pkgconfig/vmrq.pc \
	  $(DESTDIR)$(MANDIR)/man1/vmrq.1 $(DESTDIR)$(MANDIR)/man5/vmrqd.conf.5 \
	  $(DESTDIR)$(MANDIR)/man8/vmrqd.8 $(DESTDIR)$(UNITDIR)/vmrqd.service \
	  $(DESTDIR)$(SYSUSERSDIR)/vmrq.conf $(DESTDIR)$(DOCDIR)/README.md \
	  $(DESTDIR)$(DOCDIR)/examples/vmrqd.conf.example $(DESTDIR)$(DOCDIR)/examples/vmrq.cron
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	@[ ! -e $(DESTDIR)$(SYSCONFDIR)/vmrq/vmrqd.conf ] || \
	  echo "make: $(DESTDIR)$(SYSCONFDIR)/vmrq/vmrqd.conf and the user vmrq are left in place"

clean:
	rm -rf .build
