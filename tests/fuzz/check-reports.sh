#!/bin/sh
# check-reports.sh: fails when a sanitizer wrote any report into DIR (make test-asan and
# test-tsan point ASAN/UBSAN/TSAN_OPTIONS log_path there, so a report from any process,
# a server included, is a failure even when the test that ran it passed). Prints them.
# Usage: tests/fuzz/check-reports.sh DIR
set -u
dir=${1:?usage: $0 DIR}
n=$(find "$dir" -type f 2>/dev/null | wc -l)
if [ "$n" -ne 0 ]; then
    for f in "$dir"/*; do
        echo "== $f"
        head -n 60 "$f"
    done
    echo "sanitizer reports: $n (in $dir)"
    exit 1
fi
echo "sanitizer reports: 0"
