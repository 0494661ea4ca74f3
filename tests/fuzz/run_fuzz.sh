#!/bin/sh
# run_fuzz.sh DIR SECONDS: runs each fuzzer in DIR for SECONDS, starting from
# its seed corpus tests/fuzz/corpus/<fuzzer>/ (seeds are read, never written).
DIR=${1:-build/fuzz}; SECS=${2:-30}
rc=0; n=0
for f in "$DIR"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    work=$(mktemp -d)
    seeds="tests/fuzz/corpus/$name"
    echo "== $name for ${SECS}s"
    if "$f" -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$work/" "$work" \
         $( [ -d "$seeds" ] && echo "$seeds" ) >"$work/log" 2>&1; then
        tail -n 12 "$work/log" | grep -E 'stat::number_of_executed_units|Done' || true
        echo "ok - $name"
    else
        tail -n 40 "$work/log"
        echo "not ok - $name (crash input kept in $work)"
        rc=1; n=$((n+1))
        continue
    fi
    rm -rf "$work"
done
exit $rc
