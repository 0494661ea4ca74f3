#!/bin/sh
# run.sh BUILD: starts strata on 127.0.0.1:9201 with its data under ./data/ (git-ignored).
BUILD=${1:-build}
mkdir -p data
echo "strata: http://127.0.0.1:9201  (Ctrl-C to stop)"
exec "$BUILD/strata" --listen=127.0.0.1:9201
