#!/bin/sh
# run-tests.sh: runs the cmocka unit test binaries given as arguments, then the
# integration suite, and prints one closing line: "N passed, N failed".
# Usage: scripts/run-tests.sh [--unit-only] bin/tests/test_x ...
set -u
unit_only=0
[ "${1:-}" = "--unit-only" ] && { unit_only=1; shift; }

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$@"; do
    echo "== unit: $t"
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    # a crash before cmocka's summary still counts as a failure
    if [ $rc -ne 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); fi
done

if [ $unit_only = 0 ]; then
    echo "== integration: tests/integration"
    python3 tests/integration/run.py --summary-file "$log"
    rc=$?
    read -r ip if_ <"$log" || { ip=0; if_=1; }
    passed=$((passed + ip))
    failed=$((failed + if_))
    if [ $rc -ne 0 ] && [ "$if_" = 0 ]; then failed=$((failed + 1)); fi
fi

echo
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
