#!/bin/sh
# run_tests.sh BUILD: runs every cmocka test binary in BUILD/tests and every
# integration script in tests/integration/, then prints "N passed, N failed".
# cmocka binaries report per test; an integration script prints TAP-style
# "ok - name" / "not ok - name" lines.  A program that crashes counts as failed.
BUILD=${1:-build}
export STRATA_BUILD="$BUILD"
# Debian's python3 and its python3-* packages (installed by tools/deps.sh) come first, not a
# pyenv or venv interpreter that happens to be on PATH.
export PATH="/usr/bin:/bin:$PATH"
passed=0; failed=0; failures=""
log=$(mktemp); trap 'rm -f "$log"' EXIT
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$log" 2>&1; rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); failures="$failures $name(exit $rc)"; fi
    [ "$f" -gt 0 ] && failures="$failures $name"
done
for s in tests/integration/*.sh tests/integration/*.py; do
    [ -f "$s" ] || continue
    name=$(basename "$s")
    echo "== $name"
    case "$s" in *.py) python3 "$s" >"$log" 2>&1 ;; *) bash "$s" >"$log" 2>&1 ;; esac; rc=$?
    cat "$log"
    p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); failures="$failures $name(exit $rc)"; fi
    [ "$f" -gt 0 ] && failures="$failures $name"
done
[ -n "$failures" ] && echo "failing:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
