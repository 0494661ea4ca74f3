#!/bin/sh
# bench_ingest.sh BUILD: `make bench-ingest`.  strata-load pushes a simulated
# GPU cluster at maximum throughput into a receiver for BENCH_SECONDS and this
# prints samples/s, the receiver's CPU seconds per million samples
# (utime+stime from /proc/PID/stat), its RSS and RSS per active series.
# Figures only, nothing asserted.  Environment:
#   BENCH_TARGET    strata (default) | victoria-metrics | prometheus
#   BENCH_SECONDS   20      BENCH_WORKLOADS 500   BENCH_NODES 64
#   BENCH_LOAD_ARGS extra strata-load flags (e.g. --rw-version=2 --samples-per-series=10)
BUILD=${1:-build}
TARGET=${BENCH_TARGET:-strata}
SECS=${BENCH_SECONDS:-20}
W=${BENCH_WORKLOADS:-500}
N=${BENCH_NODES:-64}
PORT=${BENCH_PORT:-19291}
ADDR=127.0.0.1:$PORT
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

case "$TARGET" in
strata)
    "$BUILD/strata" --listen=$ADDR --data-dir="$tmp/data" --auth=none >"$tmp/log" 2>&1 &
    pid=$!; ready=/readyz ;;
victoria-metrics)
    victoria-metrics -storageDataPath="$tmp/data" -httpListenAddr=$ADDR -loggerLevel=ERROR >"$tmp/log" 2>&1 &
    pid=$!; ready=/health ;;
prometheus)
    printf 'global: {scrape_interval: 1h}\n' >"$tmp/prometheus.yml"
    prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
        --web.listen-address=$ADDR --web.enable-remote-write-receiver --log.level=warn >"$tmp/log" 2>&1 &
    pid=$!; ready=/-/ready ;;
*) echo "bench-ingest: unknown BENCH_TARGET=$TARGET" >&2; exit 2 ;;
esac

i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR$ready")" = 200 ]; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "bench-ingest: $TARGET did not become ready:" >&2; tail -5 "$tmp/log" >&2; exit 1
    fi
    sleep 0.1
done
w=$(printf '\000' | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- \
    -H 'Content-Encoding: snappy' -H 'Content-Type: application/x-protobuf' "http://$ADDR/api/v1/write")
case "$w" in 2*) ;; *) echo "bench-ingest: $TARGET answers $w to POST /api/v1/write; nothing to measure" >&2; exit 1 ;; esac

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }   # utime + stime, clock ticks
hz=$(getconf CLK_TCK)
c0=$(cpu)
out=$("$BUILD/strata-load" --url="http://$ADDR/api/v1/write" --workloads="$W" --nodes="$N" \
      --max-throughput --duration="$SECS" --concurrency=2 --quiet $BENCH_LOAD_ARGS 2>"$tmp/load.err")
rc=$?
[ $rc -eq 0 ] || cat "$tmp/load.err" >&2
c1=$(cpu)
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
echo "$out"
samples=$(echo "$out" | sed -n 's/.* samples=\([0-9]*\) .*/\1/p' | head -1)
series=$(echo "$out" | sed -n 's/.* series=\([0-9]*\) .*/\1/p' | head -1)
elapsed=$(echo "$out" | sed -n 's/.* elapsed_s=\([0-9.]*\) .*/\1/p' | head -1)
[ -n "$samples" ] && [ "$samples" -gt 0 ] || { echo "bench-ingest: no samples accepted" >&2; exit 1; }
awk -v t="$TARGET" -v s="$samples" -v n="$series" -v e="$elapsed" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
    -v rss="$rss_kb" -v hwm="$hwm_kb" -v w="$W" -v nodes="$N" -v secs="$SECS" 'BEGIN {
    cpu = (c1 - c0) / hz
    printf "bench-ingest: target=%s workloads=%d nodes=%d series=%d duration_s=%s\n", t, w, nodes, n, secs
    printf "  samples accepted        %d in %.1f s = %.0f samples/s\n", s, e, s / e
    printf "  receiver CPU            %.2f s (%.2f cores)\n", cpu, cpu / e
    if (cpu > 0) printf "  CPU per 1M samples      %.3f s  (= %.0f samples/s per core used)\n", cpu * 1e6 / s, s / cpu
    printf "  RSS                     %.1f MiB (peak %.1f MiB), %.0f bytes per active series\n", rss / 1024, hwm / 1024, rss * 1024 / n
}'
exit $rc
