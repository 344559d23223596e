# minicloud itself: built with the Rust toolchain, run on a slim Debian with CA roots only.
#   docker build -t minicloud .                       (the published image, from source)
#   docker build --target prebuilt -f Dockerfile DIR  (DIR holds a `minicloud` built on this
#                                                      machine; what the install test runs)
# Base images are build arguments, so a machine that cannot pull public images builds on local
# ones (scripts/build-install-images.sh passes a Debian made with debootstrap).
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${DEBIAN_IMAGE} AS runtime
# ca-certificates: ACME (Let's Encrypt) and private registries over HTTPS.
# restic and mariadb-client (mariadb-dump): backups, in a repository the stock tool reads.
# curl: the compose health check calls /api/health on the container's loopback.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates restic mariadb-client curl \
    && rm -rf /var/lib/apt/lists/*
ENV MINICLOUD_DATA_DIR=/data
VOLUME /data
EXPOSE 80 443
ENTRYPOINT ["minicloud"]
CMD ["serve"]

# The binary built outside (same Debian release, so the same glibc). Placed before the source
# build so that the classic builder, which builds every stage up to --target, never needs the
# Rust image for it.
FROM runtime AS prebuilt
COPY minicloud /usr/local/bin/minicloud

FROM ${RUST_IMAGE} AS build
# pingora pulls libz-ng-sys, whose build script runs cmake.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin minicloud \
    && strip target/release/minicloud \
    && cp target/release/minicloud /usr/local/bin/minicloud

FROM runtime
COPY --from=build /usr/local/bin/minicloud /usr/local/bin/minicloud
