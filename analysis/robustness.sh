#!/bin/sh
# robustness.sh: runs the hardening suite and prints the figures of REPORT.md's Robustness
# section as a Markdown block (paste it between the ROBUSTNESS markers).
#   analysis/robustness.sh                 fuzzing (FUZZ_SECONDS each, default 60), the
#                                          hostile suite, valgrind sessions (~8 min)
#   analysis/robustness.sh --sanitizers    also make test-asan and test-tsan (~25 min)
# Logs go to build-robustness/. Exits 1 when any part failed (the figures still print).
set -u
cd "$(dirname "$0")/.." || exit 1
sanitizers=0
[ "${1:-}" = "--sanitizers" ] && sanitizers=1
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
out=build-robustness
mkdir -p $out
status=0

run() { # name command...: runs it, keeps its log, records failure
    name=$1
    shift
    echo "robustness.sh: $name ..." >&2
    if ! "$@" >$out/$name.log 2>&1; then
        echo "robustness.sh: $name FAILED (see $out/$name.log)" >&2
        status=1
        eval "fail_$name=1"
    fi
}
fig() { # key file: the value of "robustness: key=value" lines in a log
    sed -n "s/.*robustness: $1=//p" "$2" | tail -n 1
}
summary() { # the "N passed, N failed" line of scripts/run-tests.sh, or of run.py
    grep -E '^[0-9]+ passed, [0-9]+ failed|^integration: ' "$1" | tail -n 1
}

run fuzz make --no-print-directory fuzz FUZZ_SECONDS="$FUZZ_SECONDS"
run hostile python3 tests/integration/run.py test_hostile_tcp test_hostile_udp test_hostile_hybrid
run logstop python3 tests/integration/run.py test_log test_client_stop
run valgrind make --no-print-directory test-valgrind
if [ $sanitizers = 1 ]; then
    run asan make --no-print-directory test-asan
    run tsan make --no-print-directory test-tsan
fi

echo "Figures from \`analysis/robustness.sh$([ $sanitizers = 1 ] && echo ' --sanitizers')\`" \
    "($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, FUZZ_SECONDS=$FUZZ_SECONDS)."
echo
echo "| fuzzer | seconds | executions | inputs: committed seeds + working corpus | regression inputs | crashes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
total=0
for f in $(sed -n "s/^FUZZERS = //p" Makefile); do
    log=build-fuzz/logs/$f.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' $log 2>/dev/null | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' $log 2>/dev/null | tail -n 1)
    seeds=$(ls tests/fuzz/corpus/$f 2>/dev/null | wc -l)
    found=$(ls build-fuzz/corpus/$f 2>/dev/null | wc -l)
    reg=$(ls tests/fuzz/regress/$f 2>/dev/null | wc -l)
    crashes=$(ls build-fuzz/artifacts/ 2>/dev/null | grep -c "^$f-crash" || true)
    total=$((total + ${execs:-0}))
    echo "| fuzz_$f | ${secs:-?} | ${execs:-?} | $seeds + $found | $reg | $crashes |"
done
echo "| all | | $total | | | |"
echo
h=$out/hostile.log
echo "| suite | result |"
echo "| --- | --- |"
echo "| hostile cases (\`tests/integration/test_hostile_tcp.py\`, \`test_hostile_udp.py\`, \`test_hostile_hybrid.py\`) | $(summary $h) |"
echo "| TCP connect/disconnect cycles (8 workers, warm-up included) | $(fig tcp_churn_cycles $h) in $(fig tcp_churn_seconds $h) s;" \
    "threads and fds back to baseline; RSS growth $(fig tcp_churn_rss_growth_kib $h) KiB |"
echo "| UDP HELLO/BYE cycles (8 workers) | $(fig udp_churn_cycles $h); table empty after |"
echo "| UDP flood | $(fig udp_flood_datagrams $h) datagrams from 50 addresses |"
echo "| UDP reflection: datagrams from 250 addresses that never registered | $(fig udp_reflection_datagrams $h):" \
    "$(fig udp_reflection_reply_bytes $h) bytes answered, bound $(fig udp_reflection_bound_bytes $h)" \
    "(64 KiB + 256 KiB/s x the flood's seconds); $(fig udp_reflection_suppressed $h) replies suppressed by the bucket |"
echo "| hybrid: control connections without HELLO / random tokens | $(fig hybrid_control_flood_connections $h)" \
    "timed out / $(fig hybrid_guessed_tokens $h) refused without an answer |"
echo "| out of fds (RLIMIT_NOFILE 24) | server CPU $(fig emfile_cpu_seconds_per_second $h) s/s while saturated; recovered |"
l=$out/logstop.log
echo "| stalled log, client Ctrl-C (\`test_log.py\`, \`test_client_stop.py\`) | $(summary $l) |"
for k in tcp udp; do
    echo "| ${k}_server, 20,000 frames with stdout never read / read by a SIGSTOPped \`cat\` |" \
        "all ACKed and relayed in $(fig log_${k}_unread_pipe_seconds $l) s / $(fig log_${k}_stopped_reader_seconds $l) s;" \
        "$(fig log_${k}_unread_pipe_dropped_lines $l) / $(fig log_${k}_stopped_reader_dropped_lines $l) lines dropped and reported;" \
        "exit on SIGTERM with a stuck stdout in $(fig log_${k}_stuck_exit_seconds $l) s |"
done
echo "| client SIGINT to exit, blocked writing (tcp, hybrid) / connecting (tcp, hybrid) |" \
    "$(fig client_sigint_tcp_blocked_write_ms $l), $(fig client_sigint_hybrid_blocked_write_ms $l) /" \
    "$(fig client_sigint_tcp_connecting_ms $l), $(fig client_sigint_hybrid_connecting_ms $l) ms |"
v=$out/valgrind.log
for k in tcp udp; do
    echo "| valgrind memcheck, ${k}_server session | errors $(fig valgrind_${k}_errors $v)," \
        "bytes lost $(fig valgrind_${k}_lost_bytes $v), all heap freed: $(fig valgrind_${k}_all_heap_freed $v) |"
done
if [ $sanitizers = 1 ]; then
    for s in asan tsan; do
        echo "| make test-$s (unit + integration) | $(summary $out/$s.log);" \
            "$(grep '^sanitizer reports:' $out/$s.log | tail -n 1) |"
    done
fi
exit $status
