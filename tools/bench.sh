#!/bin/sh
# bench.sh BUILD: runs every storage benchmark binary (build/bench-tsdb-*) in turn.
BUILD=${1:-build}
for b in "$BUILD"/bench-tsdb-*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || exit 1
done
