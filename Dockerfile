# Dockerfile: chatbench's programs in a slim Debian image (README.md, section "Docker").
#   docker build -t chatbench:0.1.0 .
#   docker run --rm -p 127.0.0.1:5000:5000 chatbench:0.1.0 tcp_server --host 0.0.0.0 -q
# Base images: an explicit Debian release tag, never "latest". To pin further (a dated tag
# such as bookworm-YYYYMMDD, or a digest), pass --build-arg DEBIAN=...; both stages follow it.
ARG DEBIAN=bookworm

# --- build: the same commands CI runs (.ci/run: make deps, then make) ---
FROM debian:${DEBIAN} AS build
WORKDIR /src
# The package step has its own layer, so editing a .c file does not reinstall the compiler.
# "scripts/deps.sh build" rather than "make deps" ("deps.sh all"): the image only compiles;
# the test and benchmark packages (valgrind, clang, gnuplot, nftables, ...) would add hundreds
# of MiB and are of no use here. The tests need root, network namespaces and a quiet machine:
# CI runs them (make test), the image build does not.
COPY scripts/deps.sh scripts/deps.sh
RUN apt-get update \
    && scripts/deps.sh build \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# make checks the packages again (already there), builds bin/*, and installs them into /out.
RUN make -j"$(nproc)" all \
    && make install DESTDIR=/out PREFIX=/usr/local

# --- runtime: the binaries and the shared libraries they load, nothing else ---
FROM debian:${DEBIAN}-slim
# From ldd bin/*: libevent-2.1.so.7 (loadgen), libreadline.so.8 (the clients), libz.so.1 (all);
# libc6, libtinfo6 and zlib1g are in the slim base already. libevent_pthreads is named on
# loadgen's link line, yet loadgen calls nothing in it (one event base per thread, no
# evthread_use_pthreads) and the linker drops it (--as-needed), so it is not installed. Versions are not pinned: the Debian archive keeps
# only the current bookworm version, so a pinned one breaks at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libevent-2.1-7 libreadline8 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
# Fail the build, not the first run, when a binary needs a library missing above.
RUN for b in /usr/local/bin/*; do \
        libs=$(ldd "$b") || exit 1; \
        case "$libs" in *"not found"*) echo "$libs" >&2; echo "$b: missing library" >&2; exit 1 ;; esac; \
    done
RUN groupadd --system --gid 10001 chatbench \
    && useradd --system --uid 10001 --gid chatbench --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin chatbench
USER chatbench
EXPOSE 5000/tcp 5001/udp
# The servers listen on 127.0.0.1 by default; inside a container that is unreachable from
# outside, so every command given to this image says --host 0.0.0.0.
CMD ["tcp_server", "--host", "0.0.0.0", "--port", "5000"]
