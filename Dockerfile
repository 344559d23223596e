# minicloud itself: build with the Rust toolchain, run on a slim Debian with CA roots only.
#   docker build -t minicloud .      (docker-compose.yml does this)

FROM rust:1.95-bookworm AS build
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

FROM debian:bookworm-slim
# ca-certificates: ACME (Let's Encrypt) and private registries over HTTPS.
# restic and mariadb-client (mariadb-dump): backups, in a repository the stock tool reads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates restic mariadb-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/minicloud /usr/local/bin/minicloud
ENV MINICLOUD_DATA_DIR=/data
VOLUME /data
EXPOSE 80 443
ENTRYPOINT ["minicloud"]
CMD ["serve"]
