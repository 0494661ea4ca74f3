#!/bin/sh
# console_build.sh OUT.c: what the Makefile runs to build the web console into the
# binary (docs/console.md).  Installs console/node_modules with `npm ci` when
# package-lock.json is newer than the last install (so an offline machine with a
# current node_modules builds), then runs console/build.mjs.  Without node or
# uPlot it writes an empty table instead, so the daemon still builds and its
# console answers 503 saying what is missing.
#
# console_build.sh --npm: only the npm ci step (make test and make check run it, so the
# browser test finds playwright-core even when the C file was already current).
set -e
OUT=$1
DIR=$(dirname "$0")/../console
if command -v npm >/dev/null 2>&1; then
    if [ ! -f "$DIR/node_modules/.package-lock.json" ] || [ ! -d "$DIR/node_modules/playwright-core" ] ||
       [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
        (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) ||
            echo "console: npm ci failed; using what console/node_modules holds" >&2
    fi
fi
[ "$OUT" = "--npm" ] && exit 0
mkdir -p "$(dirname "$OUT")"
if command -v node >/dev/null 2>&1 && [ -f "$DIR/node_modules/uplot/dist/uPlot.iife.min.js" ]; then
    exec node "$DIR/build.mjs" "$OUT"
fi
echo "console: no node or no console/node_modules/uplot (make deps); the console is left out" >&2
cat >"$OUT" <<'C'
/* console_assets.c: written by tools/console_build.sh without node: no console. */
#include "console_assets.h"
const api_console_asset_t api_console_assets[1];
const size_t api_console_nassets = 0;
C
