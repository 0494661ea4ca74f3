#!/bin/sh
# run_tests.sh BUILD: runs every cmocka test binary in BUILD/tests and every
# integration script in tests/integration/, then prints "N passed, N failed".
# cmocka binaries report per test and must print their summary line ("[  PASSED  ] N test(s)");
# an integration script prints TAP-style "ok - name" / "not ok - name" lines and a plan "1..N"
# (first or last line of its checks); a script without a plan, or whose count of ok / not ok
# lines differs from its plan, fails.  A program that crashes, exits non-zero or runs past
# STRATA_TEST_TIMEOUT seconds (default 600) counts as failed.
BUILD=${1:-build}
export STRATA_BUILD="$BUILD"
TIMEOUT=${STRATA_TEST_TIMEOUT:-600}
# Debian's python3 and its python3-* packages (installed by tools/deps.sh) come first, not a
# pyenv or venv interpreter that happens to be on PATH.
export PATH="/usr/bin:/bin:$PATH"
passed=0; failed=0; failures=""
log=$(mktemp); trap 'rm -f "$log"' EXIT
# timed_out NAME RC: timeout(1) exits 124 when it had to stop the program.
timed_out() {
    [ "$2" -eq 124 ] || return 1
    echo "TIMEOUT: $1 ran longer than ${TIMEOUT}s and was stopped"
    return 0
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 10 "$TIMEOUT" "$t" >"$log" 2>&1; rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p)); failed=$((failed + f))
    if timed_out "$name" "$rc"; then
        failed=$((failed + 1)); failures="$failures $name(timeout)"
    elif ! grep -q '^\[  PASSED  \] [0-9]* test' "$log"; then
        echo "NO SUMMARY: $name printed no \"[  PASSED  ] N test(s)\" line (exit $rc)"
        failed=$((failed + 1)); failures="$failures $name(no-summary)"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1)); failures="$failures $name(exit $rc)"
    fi
    [ "$f" -gt 0 ] && failures="$failures $name"
done
for s in tests/integration/*.sh tests/integration/*.py; do
    [ -f "$s" ] || continue
    name=$(basename "$s")
    echo "== $name"
    case "$s" in
        *.py) timeout -k 10 "$TIMEOUT" python3 "$s" >"$log" 2>&1 ;;
        *) timeout -k 10 "$TIMEOUT" bash "$s" >"$log" 2>&1 ;;
    esac; rc=$?
    cat "$log"
    p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
    passed=$((passed + p)); failed=$((failed + f))
    plans=$(grep -c '^1\.\.[0-9][0-9]*$' "$log")
    plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
    if timed_out "$name" "$rc"; then
        failed=$((failed + 1)); failures="$failures $name(timeout)"
    elif [ "$plans" -ne 1 ]; then
        echo "PLAN: $name printed $plans plan lines (\"1..N\"), wants exactly one"
        failed=$((failed + 1)); failures="$failures $name(plan)"
    elif [ "$plan" -ne $((p + f)) ]; then
        echo "PLAN: $name planned $plan checks, ran $((p + f))"
        failed=$((failed + 1)); failures="$failures $name(plan $plan, ran $((p + f)))"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1)); failures="$failures $name(exit $rc)"
    fi
    [ "$f" -gt 0 ] && failures="$failures $name"
done
[ -n "$failures" ] && echo "failing:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
