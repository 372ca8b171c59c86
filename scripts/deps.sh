#!/bin/sh
# deps.sh: checks (and as root installs) the Debian packages chatbench needs.
# Usage: scripts/deps.sh [build|test|bench|all] [--check]
#   --check  only report; exit 1 when something is missing.
set -eu

BUILD_PKGS="gcc make pkg-config libevent-dev zlib1g-dev libcmocka-dev uthash-dev libreadline-dev"
# iproute2 and nftables: test_client_stop.py drops packets inside its own network namespace;
# default-jdk-headless and libhdrhistogram-java: HdrHistogram's own reader checks loadgen's .hlog;
# openmpi-bin (and iproute2): mpirun starts loadgen shards, on "hosts" that are namespaces;
# python3-yaml: test_k8s reads the Kubernetes manifest;
# sockperf and iperf3: test_linkem reads the link emulator's delay, rate and loss with them
TEST_PKGS="python3 netcat-openbsd socat valgrind clang libclang-rt-14-dev procps docker-compose \
iproute2 nftables default-jdk-headless libhdrhistogram-java openmpi-bin python3-yaml sockperf iperf3"
# openmpi-bin: the scale scenario's sharded points start their loadgen shards with mpirun
BENCH_PKGS="gnuplot-nox nftables iproute2 sockperf iperf3 tcpdump openmpi-bin"

what=${1:-all}
check_only=0
[ "${2:-}" = "--check" ] && check_only=1

case "$what" in
build) want="$BUILD_PKGS" ;;
test) want="$BUILD_PKGS $TEST_PKGS" ;;
bench) want="$BUILD_PKGS $BENCH_PKGS" ;;
all) want="$BUILD_PKGS $TEST_PKGS $BENCH_PKGS" ;;
*) echo "usage: $0 [build|test|bench|all] [--check]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$check_only" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "chatbench: missing Debian packages:$missing" >&2
    echo "install them with:  sudo apt-get install -y$missing   (or run 'make deps' as root)" >&2
    exit 1
fi

echo "chatbench: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# An out-of-date package list is the usual reason for a failed install: refresh once, retry.
if ! apt-get install -y -q $missing; then
    apt-get update -q
    apt-get install -y -q $missing
fi
