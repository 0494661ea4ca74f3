#!/bin/sh
# run.sh BUILD: what `make run` does.  Starts strata on 127.0.0.1:9201 with its
# data under ./data/ (git-ignored), backfills an hour of a small simulated GPU
# cluster with strata-load, keeps strata-load pushing in real time in the
# background, prints what to curl, and stops both cleanly on Ctrl-C.
BUILD=${1:-build}
ADDR=127.0.0.1:9201
URL=http://$ADDR
LOAD_FLAGS="--url=$URL/api/v1/write --workloads=8 --nodes=2 --seed=1"
mkdir -p data

"$BUILD/strata" --listen=$ADDR --data-dir=./data --auth=none &
spid=$!
lpid=""
stop() {
    trap - INT TERM EXIT
    [ -n "$lpid" ] && kill -TERM "$lpid" 2>/dev/null && wait "$lpid" 2>/dev/null
    kill -TERM "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    echo "run: stopped"
}
# Background jobs of a non-interactive shell ignore SIGINT, so Ctrl-C reaches
# this trap, which stops strata-load first, then strata (both exit cleanly on TERM).
trap 'stop; exit 0' INT TERM
trap stop EXIT

code() { curl -s -o /dev/null -w '%{http_code}' "$@" 2>/dev/null; }

# Ready when /readyz says so (WAL replayed); a build without /readyz is ready once it answers /healthz.
ready=""
i=0
while [ $i -lt 600 ]; do
    kill -0 "$spid" 2>/dev/null || { echo "run: strata exited; see the log above" >&2; exit 1; }
    c=$(code "$URL/readyz")
    [ "$c" = 200 ] && { ready=1; break; }
    if [ "$c" = 404 ] || [ "$c" = 501 ]; then
        [ "$(code "$URL/healthz")" = 200 ] && { ready=1; break; }
    fi
    sleep 0.1
    i=$((i + 1))
done
[ -n "$ready" ] || { echo "run: strata not ready after 60 s" >&2; exit 1; }

# An empty WriteRequest is valid remote write: 2xx means ingest is there.
w=$(printf '\000' | code -X POST --data-binary @- -H 'Content-Encoding: snappy' \
    -H 'Content-Type: application/x-protobuf' -H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
    "$URL/api/v1/write")
case "$w" in
2*)
    # The real-time run starts where the backfill ends (catching up first if
    # the backfill took a while), so the series have no gap.
    s=$(( ($(date +%s) - 3600) / 15 * 15 ))
    echo "run: backfilling 1 h of a demo cluster (8 workloads, 2 nodes x 8 GPUs)"
    "$BUILD/strata-load" $LOAD_FLAGS --start=$s --backfill=1 || echo "run: backfill had failures (see above)" >&2
    "$BUILD/strata-load" $LOAD_FLAGS --start=$((s + 3600)) --quiet >data/strata-load.log 2>&1 &
    lpid=$!
    echo "run: strata-load keeps pushing every 15 s (log: data/strata-load.log)"
    ;;
*)
    echo "run: this strata build answers $w to POST /api/v1/write, so no demo data is loaded"
    ;;
esac

cat <<MSG

strata: $URL   (Ctrl-C stops strata-load and strata)
console: $URL/   (open it in a browser: workloads, charts, telemetry, reports)
  curl -gs '$URL/api/v1/export?match[]=DCGM_FI_DEV_GPU_UTIL' | head -c 600
  curl -gs '$URL/api/v1/export?match[]=runai_workload_info'
  curl -s '$URL/api/v1/workloads'
  curl -s '$URL/api/v1/workloads/telemetry?telemetryType=GPU_ALLOCATION&groupBy=DepartmentId'
  curl -s '$URL/metrics'
MSG
# A ready-made metrics query for the first workload, when the server lists them.
id=$(curl -s "$URL/api/v1/workloads?limit=1" 2>/dev/null |
     sed -n 's/.*"workloads":\[{[^}]*"id":"\([0-9a-f-]*\)".*/\1/p')
if [ -n "$id" ]; then
    end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    start=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "$end")
    echo "  curl -s '$URL/api/v1/workloads/$id/metrics?metricType=GPU_UTILIZATION,CPU_USAGE_CORES&start=$start&end=$end&numberOfSamples=12'"
fi
wait "$spid"
