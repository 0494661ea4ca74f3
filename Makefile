# strata: one Makefile for everything.
#
#   make            build the daemon, tools, tests and benchmarks (build/)
#   make run        build and start the server on 127.0.0.1:9201 with demo data
#   make test       install missing Debian packages, build, run every test
#   make check      the layer and format checks, then the tests again under
#                   AddressSanitizer + UBSan (build/san/)
#   make format     clang-format every C file in place (.clang-format)
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each (default 30)
#   make bench      storage benchmarks (figures printed, nothing asserted)
#   make bench-peers  strata vs Prometheus and VictoriaMetrics, answers cross-checked
#   make bench-promql PromQL query_range latency, strata vs Prometheus and VictoriaMetrics
#   make bench-gateway  the remote-write shipper's CPU and catch-up rate (docs/scale-out.md)
#   make soak       a bounded fault campaign, SOAK_MINUTES (default 10; docs/soak.md)
#
# Every module directory is one static library; adding a .c file needs no
# edit here.  tools/foo_bar.c becomes build/foo-bar, tests/test_x.c becomes
# build/tests/test_x, tests/fuzz/fuzz_x.c becomes build/fuzz/fuzz_x.

BUILD   ?= build
OPT     ?= -O2
SAN     ?=
GEN     := build/gen
CC      ?= cc

CFLAGS_ALL = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g $(OPT) $(SAN) -pthread -MMD -MP \
             -Icommon -Itsdb -Iingest $(API_INC) -I$(GEN) $(CFLAGS)
LDLIBS_ALL = -lmicrohttpd -lprotobuf-c -lsnappy -lzstd -ljansson -ljwt -lssl -lcrypto -lcurl -lm -pthread $(LDLIBS)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_SRC := $(wildcard common/*.c)
TSDB_SRC   := $(wildcard tsdb/*.c)
PROTO      := $(wildcard ingest/proto/*.proto)
PROTO_C    := $(patsubst ingest/proto/%.proto,$(GEN)/%.pb-c.c,$(PROTO))
PROTO_H    := $(PROTO_C:.c=.h)
INGEST_SRC := $(wildcard ingest/*.c) $(PROTO_C)
# The web console, generated from console/ (docs/console.md), is part of api/http.
CONSOLE_C  := $(GEN)/console_assets.c
API_SRC    := $(wildcard api/*/*.c) $(CONSOLE_C)
# api/ is a folder of rooms (http, query, workloads, reports); api/main.c is the daemon.
API_INC    := $(patsubst %/,-I%,$(sort $(dir $(wildcard api/*/*.h))))

LIB_COMMON := $(BUILD)/libcommon.a
LIB_TSDB   := $(BUILD)/libtsdb.a
LIB_INGEST := $(BUILD)/libingest.a
LIB_API    := $(BUILD)/libapi.a
LIBS       := $(LIB_API) $(LIB_INGEST) $(LIB_TSDB) $(LIB_COMMON)

TOOLS_SRC  := $(wildcard tools/*.c)
TOOLS      := $(patsubst tools/%.c,$(BUILD)/%,$(subst _,-,$(TOOLS_SRC)))
TEST_SRC   := $(wildcard tests/test_*.c)
TESTS      := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS    := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30

.PHONY: all deps run test check lint format fuzz fuzzers fuzz-bins bench clean
# Keep objects that only feed a link (no re-compiles, no noisy rm).
.SECONDARY:
.DEFAULT_GOAL := all

all: $(BUILD)/strata $(TOOLS) $(TESTS)

deps:
	@sh tools/deps.sh

# Generated protobuf-c code is shared by every build flavour.
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: ingest/proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=ingest/proto --c_out=$(GEN) $<

# The console's files as a C table: npm ci when the lock changed, then console/build.mjs.
$(CONSOLE_C): tools/console_build.sh console/build.mjs console/package.json console/package-lock.json \
              $(wildcard console/src/*)
	@sh tools/console_build.sh $@

# Generated headers must exist before anything that may include them compiles.
$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# protobuf-c's generated code is not -Wextra clean; it is not ours to fix.
$(BUILD)/obj/$(GEN)/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-unused-parameter -c $< -o $@

$(LIB_COMMON): $(call obj,$(COMMON_SRC))
$(LIB_TSDB):   $(call obj,$(TSDB_SRC))
$(LIB_INGEST): $(call obj,$(INGEST_SRC))
$(LIB_API):    $(call obj,$(API_SRC))
$(BUILD)/lib%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/strata: $(call obj,api/main.c) $(LIBS)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBS) $(LDLIBS_ALL)

# tools/strata_load.c -> build/strata-load
.SECONDEXPANSION:
$(TOOLS): $(BUILD)/%: $$(call obj,tools/$$(subst -,_,$$*).c) $(LIBS)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBS) $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBS) $(LDLIBS_ALL) -lcmocka

run: deps all
	sh tools/run.sh $(BUILD)

test: deps
	$(MAKE) all
	@sh tools/console_build.sh --npm
	sh tests/run_tests.sh $(BUILD)

# The C files git knows of (fuzz corpora are data).
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '/corpus/')

format: deps
	clang-format -i $(C_FILES)

# Layers (docs/architecture.md) and format, without changing anything.
lint: deps
	python3 tools/check_layers.py
	@clang-format --dry-run -Werror $(C_FILES) && echo "format: $(words $(C_FILES)) files follow .clang-format"

# Same tests, instrumented.  Timing-free tests only, so slower code is fine.
check: deps lint
	$(MAKE) BUILD=build/san OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all
	@sh tools/console_build.sh --npm
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  sh tests/run_tests.sh build/san

# Fuzzers: everything compiled with clang's coverage instrumentation.
fuzzers:
	$(MAKE) BUILD=build/fuzz CC=clang OPT=-O1 \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
	  fuzz-bins

# Only meaningful inside the sub-make above (BUILD=build/fuzz, CC=clang).
fuzz-bins: $(FUZZERS)
$(FUZZERS): $(BUILD)/%: $(BUILD)/obj/tests/fuzz/%.o $(LIBS)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -o $@ $< $(LIBS) $(LDLIBS_ALL)

fuzz: deps fuzzers
	sh tests/fuzz/run_fuzz.sh build/fuzz $(FUZZ_SECONDS)

bench: deps all
	sh tools/bench.sh $(BUILD)

# Remote-write ingest throughput: strata-load at max throughput for
# BENCH_SECONDS (default 20) against strata (BENCH_TARGET= victoria-metrics or
# prometheus for the peers); figures printed, nothing asserted.
.PHONY: bench-ingest
bench-ingest: deps all
	sh tools/bench_ingest.sh $(BUILD)

# Telemetry latency (api_telemetry_compute) over 10,000 workloads, every type
# grouped by 2 keys; figures printed, nothing asserted.
.PHONY: bench-telemetry
bench-telemetry: deps all
	$(BUILD)/bench-telemetry

# Workload metrics latency through the daemon: one 8-GPU workload, 7 days of 15 s data
# backfilled with strata-load, 10 metric types at numberOfSamples=1000 over 1h, 24h, 7d
# (p50/p99 and X-Strata-Points-Read); figures printed, nothing asserted.
.PHONY: bench-query
bench-query: deps all
	python3 tools/bench_query.py $(BUILD)

# Metrics-query latency under mixed load: 8 reader processes alone, with real-time ingest,
# and with ingest plus forced head cuts, for --threads 2, 4, 8 (docs/metrics.md, "Under
# mixed load").  BENCH_THREADS, BENCH_READERS, BENCH_SECONDS, BENCH_WCHAN=1 (see the script).
.PHONY: bench-mixed
bench-mixed: deps all
	python3 tools/bench_mixed.py $(BUILD)

# strata next to Prometheus and VictoriaMetrics (Debian packages) on the same
# strata-load backfill, one system at a time: ingest CPU/RSS, disk per sample,
# query latency, and every strata metrics answer cross-checked against both
# (a difference fails).  PEERS_SCALE=full (~20k series, 3 h, < 10 min; writes
# docs/benchmarks.md), day (the same cluster over 24 h, < 15 min; writes its "Scale: day"
# section of docs/benchmarks.md) or ci (~2k series, 2 h, about a minute).  PEERS_SYSTEMS
# (default strata,victoria-metrics,prometheus) runs a subset.
PEERS_SCALE ?= full
.PHONY: bench-peers
bench-peers: deps all
	python3 tools/bench_peers.py --build $(BUILD) --scale $(PEERS_SCALE) \
	  $(if $(filter full day,$(PEERS_SCALE)),--docs docs/benchmarks.md) \
	  $(if $(PEERS_SYSTEMS),--systems $(PEERS_SYSTEMS))

# PromQL query_range latency (p50/p99) of dashboard queries (sum by rate, avg_over_time, topk,
# histogram_quantile) over 1h, 24h and 7d: strata vs Prometheus vs VictoriaMetrics on the
# bench-peers data (tools/bench_promql.py).  PROMQL_SCALE=small (24 h of data, a few minutes)
# or week (7 days).  Figures printed, nothing asserted.
PROMQL_SCALE ?= small
.PHONY: bench-promql
bench-promql: deps all
	python3 tools/bench_promql.py --build $(BUILD) --scale $(PROMQL_SCALE)

# The scale-out gateway (docs/scale-out.md): strata's CPU per million samples with and without
# --remote-write-url to a real victoria-metrics, the catch-up rate after an engine outage
# (BENCH_OUTAGE_SECONDS, default BENCH_SECONDS = 15; 300 for the issue's 5 minutes), and metrics
# query p50/p99 local vs through a --remote-query-url gateway on the bench-query data
# (BENCH_READ_DAYS, default 7); BENCH_PHASES=write,read,outage; figures printed, nothing asserted.
.PHONY: bench-gateway
bench-gateway: deps all
	python3 tools/bench_gateway.py $(BUILD)

# How strata's costs grow with the number of active series, next to VictoriaMetrics
# (tools/bench_scale.py): ingest CPU per 1M samples and peak RSS per series at
# BENCH_SCALE_SERIES (default 10000,100000,1000000) active series, BENCH_SCALE_MINUTES (30) of
# 15 s data each; BENCH_SCALE_HEAP=1 adds strata's heap by owner (heaptrack) at the smallest
# size; then the metrics endpoint over 1h, 24h, 7d and 30d (bench_query.py, BENCH_DAYS=30).
# Figures printed, nothing asserted; BENCH_SCALE_DOCS=1 writes its docs/benchmarks.md section.
.PHONY: bench-scale
bench-scale: deps all
	python3 tools/bench_scale.py --build $(BUILD) $(if $(BENCH_SCALE_DOCS),--docs docs/benchmarks.md)

# Consumption report over 30 days of a simulated cluster at 15 s scrapes, grouped by Project,
# through the real daemon: backfill rate, generation time, peak RSS (tools/bench_report.sh;
# BENCH_WORKLOADS, BENCH_DAYS); figures printed, nothing asserted.
.PHONY: bench-report
bench-report: deps all
	sh tools/bench_report.sh $(BUILD)

# Fault campaign against the real binary for SOAK_MINUTES (default 10): kill -9 under load,
# a full loop-mounted disk, WAL and block byte flips, slowloris (tools/soak.py, docs/soak.md).
# Prints figures and "N passed, N failed"; fails on lost acknowledged samples, a crash, a
# 5xx other than 503 or a wrong sample.
SOAK_MINUTES ?= 10
.PHONY: soak
soak: deps $(BUILD)/strata $(BUILD)/strata-load
	python3 tools/soak.py --build $(BUILD) --minutes $(SOAK_MINUTES)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
