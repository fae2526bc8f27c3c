# syntax=docker/dockerfile:1
#
# The controller image: `gitseal-controller` (the entry point) and the `gitseal` command
# line, built in release from the locked dependency graph, on a distroless base (no shell,
# no package manager), running as an unprivileged numeric user.
#
#   docker build -t ghcr.io/gitseal/gitseal-controller:0.1.0 .
#
# The builder is Debian 12 (bookworm), as the runtime base is, so that the binaries link
# against the glibc they will find.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep the registry and build outputs between builds; the binaries are copied
# out of the cached target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gitseal -p gitseal-controller \
    && install -D -m 0755 -t /out target/release/gitseal target/release/gitseal-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gitseal /out/gitseal-controller /usr/local/bin/
# 65532 is the distroless `nonroot` user; numeric, so that `runAsNonRoot` can verify it.
USER 65532:65532
# The HTTP API (kubeseal, /v1/age-recipient, /v1/refresh, probes) and /metrics.
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/gitseal-controller"]
