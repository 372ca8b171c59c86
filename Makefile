# chatbench: one GNU Makefile for the servers, clients, load generator, tests and benchmarks.
#   make            build everything into bin/ (installs missing Debian packages as root)
#   make test       unit tests (cmocka) and integration tests over real sockets
#   make bench      the full benchmark; results/ and REPORT.md's tables
#   make help       every target

CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
BIN ?= bin
VERSION := 0.1.0

# Recursive on purpose: pkg-config runs when a recipe needs it, after the deps check.
PKG_CFLAGS = $(shell pkg-config --cflags libevent zlib cmocka 2>/dev/null)
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -DCHATBENCH_VERSION=\"$(VERSION)\" $(OPT) $(SAN) $(WARN) \
             -pthread -MMD -MP -Icommon $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = -pthread $(SAN) $(LDFLAGS)

LIBS_Z = $(shell pkg-config --libs zlib 2>/dev/null)
LIBS_EVENT = $(shell pkg-config --libs libevent_pthreads libevent 2>/dev/null)
LIBS_CMOCKA = $(shell pkg-config --libs cmocka 2>/dev/null)
LIBS_READLINE = -lreadline

COMMON_SRCS = $(wildcard common/*.c)
COMMON_OBJS = $(COMMON_SRCS:%.c=$(BUILD)/%.o)

# --- programs: NAME_SRCS (besides common/) and NAME_LIBS ---
PROGRAMS =

# the chat core every server runs: the rules, the client table and rooms
CHAT_SRCS = servers/chat.c servers/registry.c

PROGRAMS += tcp_server
tcp_server_SRCS = servers/tcp_server.c servers/tcp_threads.c servers/tcp_epoll.c \
	servers/tcp_conn.c servers/lines.c servers/outq.c $(CHAT_SRCS)
tcp_server_LIBS = $(LIBS_Z)
test_outq_EXTRA = servers/outq.c
test_registry_EXTRA = servers/registry.c

PROGRAMS += udp_server
udp_server_SRCS = servers/udp_server.c servers/udp_handle.c servers/udp_guard.c \
	servers/udp_outq.c servers/udp_hybrid.c servers/bucket.c servers/lines.c $(CHAT_SRCS)
udp_server_LIBS = $(LIBS_Z)
test_udp_outq_EXTRA = servers/udp_outq.c
test_bucket_EXTRA = servers/bucket.c

# what both clients share: the session, terminal, frames, commands, backoff and options
CLIENT_SRCS = clients/client_common.c clients/client_term.c clients/client_frames.c \
	clients/client_cmds.c clients/client_backoff.c clients/client_opts.c

PROGRAMS += tcp_client
tcp_client_SRCS = clients/tcp_client.c $(CLIENT_SRCS)
tcp_client_LIBS = $(LIBS_Z) $(LIBS_READLINE)

PROGRAMS += udp_client
udp_client_SRCS = clients/udp_client.c clients/hybrid_link.c $(CLIENT_SRCS)
udp_client_LIBS = $(LIBS_Z) $(LIBS_READLINE)

PROGRAMS += udp_impair
udp_impair_SRCS = impair/udp_impair.c impair/impair_relay.c impair/impair_report.c \
	impair/impair_classify.c impair/impair_core.c impair/impair_opts.c impair/impair_cli.c
udp_impair_LIBS = $(LIBS_Z)
test_impair_EXTRA = impair/impair_core.c impair/impair_classify.c

PROGRAMS += linkem
linkem_SRCS = impair/linkem.c impair/linkem_ns.c impair/linkem_opts.c impair/linkem_pkt.c \
	impair/linkem_report.c impair/impair_core.c impair/impair_cli.c
linkem_LIBS = $(LIBS_Z) -lm
test_linkem_pkt_EXTRA = impair/linkem_pkt.c
test_impair_link_EXTRA = impair/impair_core.c

PROGRAMS += loadgen
loadgen_SRCS = loadgen/main.c loadgen/opts.c loadgen/worker.c loadgen/client.c \
               loadgen/transport.c loadgen/tcp.c loadgen/udp.c loadgen/hybrid.c \
               loadgen/measure.c loadgen/shard.c loadgen/merge.c loadgen/stats.c \
               loadgen/report.c loadgen/csv.c \
               loadgen/schedule.c loadgen/payload.c loadgen/seqstats.c
loadgen_LIBS = $(LIBS_EVENT) $(LIBS_Z) -lm
test_schedule_EXTRA = loadgen/schedule.c
test_payload_EXTRA = loadgen/payload.c loadgen/schedule.c
$(BIN)/tests/test_schedule $(BIN)/tests/test_payload: LIBS_Z += -lm
test_csv_EXTRA = loadgen/csv.c
test_stats_EXTRA = loadgen/stats.c
test_shard_EXTRA = loadgen/shard.c
test_merge_EXTRA = $(filter-out loadgen/main.c,$(loadgen_SRCS))
$(BIN)/tests/test_merge: LIBS_Z += -lm
test_measure_EXTRA = loadgen/measure.c loadgen/stats.c loadgen/schedule.c loadgen/seqstats.c
$(BIN)/tests/test_measure: LIBS_Z += -lm

PROGRAM_BINS = $(PROGRAMS:%=$(BIN)/%)

# --- unit tests: tests/unit/test_NAME.c, linked with common/ and test_NAME_EXTRA ---
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BIN)/tests/%)
test_seqstats_EXTRA = loadgen/seqstats.c

DEPS_STAMP = $(BUILD)/.deps-build

.PHONY: all deps test unit integration bench bench-quick install uninstall clean help \
        lint format format-check test-asan test-tsan fuzz

all: $(PROGRAM_BINS)

help:
	@echo "make              build bin/* (checks and, as root, installs Debian packages)"
	@echo "make deps         install every Debian package the project uses (as root)"
	@echo "make test         unit + integration tests"
	@echo "make bench        full benchmark into results/ and REPORT.md (about 20 min)"
	@echo "make bench-quick  reduced benchmark into bench-quick/ (about 2 min)"
	@echo "make theory       THEORY.md's captures into results/theory/ (root, about 2 min)"
	@echo "make install      install bin/* into \$$DESTDIR\$$PREFIX/bin (PREFIX=$(PREFIX))"
	@echo "make lint | format | format-check | test-asan | test-tsan | fuzz | clean"

deps:
	@scripts/deps.sh all

$(DEPS_STAMP): scripts/deps.sh
	@scripts/deps.sh build
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

define program_rule
$(BIN)/$(1): $$($(1)_SRCS:%.c=$(BUILD)/%.o) $(COMMON_OBJS)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$($(1)_LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# A test of a module outside common/ names it: test_outq_EXTRA = servers/outq.c
.SECONDEXPANSION:
.SECONDARY:
$(BIN)/tests/%: $(BUILD)/tests/unit/%.o $(COMMON_OBJS) $$(foreach f,$$($$*_EXTRA),$(BUILD)/$$(basename $$f).o)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_Z) $(LIBS_EVENT)

# --- tests ---
test: $(PROGRAM_BINS) $(UNIT_BINS)
	@scripts/deps.sh test
	@scripts/run-tests.sh $(UNIT_BINS)

unit: $(UNIT_BINS)
	@scripts/run-tests.sh --unit-only $(UNIT_BINS)

integration: $(PROGRAM_BINS)
	@python3 tests/integration/run.py

# --- bench: analysis/bench.py (as root it runs inside its own network namespace) ---
# Packages first (gnuplot, nftables, sockperf, iperf3, mpirun), then the programs, then the matrix.
bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory $(PROGRAM_BINS)
	@python3 analysis/bench.py

bench-quick:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory $(PROGRAM_BINS)
	@python3 analysis/bench.py --quick

# --- theory: the captures and readings THEORY.md quotes, into results/theory/ (about 2 min) ---
# Root only: a private network namespace, nftables loss rules, tcpdump on its loopback.
.PHONY: theory
theory:
	@if [ "$$(id -u)" != 0 ]; then \
	    echo "make theory: skipped: it needs root (unshare -n, nftables, tcpdump on lo); run it as root"; \
	    exit 0; fi; \
	scripts/deps.sh bench && \
	$(MAKE) --no-print-directory $(PROGRAM_BINS) && \
	python3 analysis/theory/theory.py

# --- install ---
install: $(PROGRAM_BINS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGRAM_BINS) $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(PROGRAMS:%=$(DESTDIR)$(PREFIX)/bin/%)

# --- style ---
C_FILES = $(wildcard common/*.[ch] servers/*.[ch] clients/*.[ch] loadgen/*.[ch] impair/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch])

format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run -Werror $(C_FILES)

lint: | $(DEPS_STAMP)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Icommon \
	    common servers clients loadgen impair
	clang-tidy --quiet $(filter %.c,$(C_FILES)) -- -std=c11 -D_GNU_SOURCE -Icommon $(PKG_CFLAGS)

clean:
	rm -rf $(BUILD) $(BIN)

# --- hardening: fuzzers, sanitizer builds, valgrind (tests/fuzz/README.md) ---
# Each sanitizer build has its own BUILD/BIN pair, so build/ and bin/ are never touched.
#   make fuzz [FUZZ_SECONDS=60]  regressions, then each libFuzzer harness for FUZZ_SECONDS
#   make fuzz-regress            every harness over its seeds and regression inputs, no fuzzing
#   make test-asan | test-tsan   unit + integration tests on ASan+UBSan / TSan builds
#   make test-valgrind           a full session of each server under valgrind memcheck
#   make robustness              the figures of REPORT.md's Robustness section
FUZZ_SECONDS ?= 60
FUZZERS = proto zframe tcp udp hlog
FUZZ_MAX_LEN = 16384
SAN_ASAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_TSAN = -fsanitize=thread
SAN_OPT = -O1 -g
fuzz_tcp_EXTRA = servers/tcp_conn.c servers/lines.c servers/outq.c $(CHAT_SRCS)
fuzz_tcp_LINK = -Wl,--wrap=send -Wl,--wrap=sendmsg -Wl,--wrap=recv
fuzz_udp_EXTRA = servers/udp_handle.c servers/udp_guard.c servers/udp_hybrid.c \
	servers/udp_outq.c servers/bucket.c servers/lines.c $(CHAT_SRCS)
FUZZ_BINS = $(FUZZERS:%=bin-fuzz/fuzz/fuzz_%)
SAN_UNIT = $(UNIT_SRCS:tests/unit/%.c=$(1)/tests/%)
# sanitizer reports go to files, so a report from any server process fails the target
SAN_ENV = ASAN_OPTIONS=log_path=$(CURDIR)/$(1)/reports/asan:detect_leaks=1:abort_on_error=1 \
          UBSAN_OPTIONS=log_path=$(CURDIR)/$(1)/reports/ubsan:print_stacktrace=1:halt_on_error=1 \
          TSAN_OPTIONS=log_path=$(CURDIR)/$(1)/reports/tsan:halt_on_error=0:second_deadlock_stack=1 \
          CHATBENCH_BIN=$(CURDIR)/$(1) CHATBENCH_SAN=$(1)

.PHONY: fuzz-build fuzz-regress test-valgrind robustness

$(BIN)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(COMMON_OBJS) $$(foreach f,$$(fuzz_$$*_EXTRA),$(BUILD)/$$(basename $$f).o)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $@ $^ $(fuzz_$*_LINK) $(LIBS_Z)

fuzz-build:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=build-fuzz BIN=bin-fuzz CC=clang OPT="$(SAN_OPT)" \
	    SAN="$(SAN_ASAN) -fsanitize=fuzzer-no-link" $(FUZZ_BINS)

fuzz-regress: fuzz-build
	@for f in $(FUZZERS); do \
	    echo "== fuzz-regress: $$f"; \
	    files=$$(find tests/fuzz/corpus/$$f tests/fuzz/regress/$$f -type f 2>/dev/null); \
	    bin-fuzz/fuzz/fuzz_$$f $$files >build-fuzz/regress-$$f.log 2>&1 \
	        || { tail -n 40 build-fuzz/regress-$$f.log; exit 1; }; \
	    echo "$$(grep -c '^Executed ' build-fuzz/regress-$$f.log) inputs, no crash"; \
	done

fuzz: fuzz-regress
	@mkdir -p build-fuzz/artifacts build-fuzz/logs
	@for f in $(FUZZERS); do \
	    mkdir -p build-fuzz/corpus/$$f; \
	    echo "== fuzz: $$f for $(FUZZ_SECONDS) s (log: build-fuzz/logs/$$f.log)"; \
	    bin-fuzz/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/artifacts/$$f- build-fuzz/corpus/$$f tests/fuzz/corpus/$$f \
	        $$(ls -d tests/fuzz/regress/$$f 2>/dev/null) >build-fuzz/logs/$$f.log 2>&1; \
	    rc=$$?; grep -E 'stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs' \
	        build-fuzz/logs/$$f.log; \
	    if [ $$rc -ne 0 ]; then tail -n 40 build-fuzz/logs/$$f.log; \
	        echo "fuzz_$$f found a crash: keep its input under tests/fuzz/regress/$$f/"; exit 1; fi; \
	done

test-asan:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=bin-asan CC=clang OPT="$(SAN_OPT)" \
	    SAN="$(SAN_ASAN)" all $(call SAN_UNIT,bin-asan)
	@rm -rf bin-asan/reports && mkdir -p bin-asan/reports
	$(call SAN_ENV,bin-asan) scripts/run-tests.sh $(call SAN_UNIT,bin-asan); rc=$$?; \
	    tests/fuzz/check-reports.sh bin-asan/reports && exit $$rc

test-tsan:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=build-tsan BIN=bin-tsan CC=clang OPT="$(SAN_OPT)" \
	    SAN="$(SAN_TSAN)" all $(call SAN_UNIT,bin-tsan)
	@rm -rf bin-tsan/reports && mkdir -p bin-tsan/reports
	$(call SAN_ENV,bin-tsan) CHATBENCH_SLOW=1 CHATBENCH_CHURN=2000 scripts/run-tests.sh $(call SAN_UNIT,bin-tsan); \
	    rc=$$?; tests/fuzz/check-reports.sh bin-tsan/reports && exit $$rc

test-valgrind: $(BIN)/tcp_server $(BIN)/udp_server
	@scripts/deps.sh test
	python3 tests/integration/valgrind_session.py

robustness:
	@analysis/robustness.sh

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
