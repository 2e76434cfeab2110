# syntax=docker/dockerfile:1
#
# The shadowdiff container image: the `shadowdiff` binary (release profile) on distroless/cc, run
# as a non-root user, with no shell, no package manager and nothing else.
#
#   docker build -t shadowdiff:dev .
#   docker run --rm shadowdiff:dev --help
#
# Why distroless/cc and not a static musl binary: the binary links glibc, libm and libgcc_s only
# (`ldd target/release/shadowdiff`), exactly what gcr.io/distroless/cc-debian12 ships (glibc from
# its base image, libgcc-s1 from cc); tests/deploy.rs checks that list against the image's
# published package set. A musl build would need the musl target and musl-tools for the C code
# (zstd, mimalloc, ring) and runs noticeably slower with musl's allocator paths; it buys a
# FROM scratch image a few MB smaller. Builder and runtime are both Debian 12 (bookworm, glibc
# 2.36), so every glibc symbol version the binary asks for is there at run time.
#
# Targets: `runtime` (the default, last stage) is the image to deploy. `fixtures` is the
# shadowdiff-fixtures binary on the same base, used only by the local trial (deploy/trial) to
# play a baseline, a secondary and a canary with planted regressions, as `shadowdiff demo` does.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit cache mounts, so a rebuild after a source edit
# recompiles only what changed. The release profile keeps line tables for backtraces; the image
# drops them (symbols stay, so a backtrace still names functions).
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin shadowdiff \
    && install -D -m 0755 target/release/shadowdiff /out/shadowdiff \
    && mkdir -p /out/data

FROM build AS build-fixtures
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p shadowdiff-fixtures --bin shadowdiff-fixtures \
    && install -D -m 0755 target/release/shadowdiff-fixtures /out/shadowdiff-fixtures

FROM ${RUNTIME_IMAGE} AS fixtures
COPY --from=build-fixtures /out/shadowdiff-fixtures /usr/local/bin/shadowdiff-fixtures
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/shadowdiff-fixtures"]
CMD ["serve", "--listen", "0.0.0.0:8080"]

FROM ${RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.title="shadowdiff" \
      org.opencontainers.image.description="Shadow-traffic diff and analysis: capture, replay, analyze and judge a canary against its baseline." \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/shadowdiff /usr/local/bin/shadowdiff
# Pair files and analyses go under /data by default. It belongs to the nonroot user, so a fresh
# Docker named volume mounted there (which takes the directory's owner) is writable; Kubernetes
# gets the same through the Pod's fsGroup.
COPY --from=build --chown=65532:65532 /out/data /data
# distroless's nonroot user, by number, so Kubernetes can check runAsNonRoot without /etc/passwd.
USER 65532:65532
WORKDIR /data
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/shadowdiff"]
CMD ["--help"]
