# cross-rs image for aarch64-unknown-linux-gnu (see cross/Cross.toml): Debian bookworm, Debian's cross gcc
# and the private sysroot from scripts/mksysroot. The ENV lines are what scripts/lib/board.sh
# (target_setup) exports for a build without Docker.
FROM debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config file \
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/mksysroot /usr/local/bin/sioedge-mksysroot
RUN sioedge-mksysroot arm64 /opt/sioedge-sysroot \
 && rm -rf /opt/sioedge-sysroot/debs /opt/sioedge-sysroot/lists
ENV PKG_CONFIG_ALLOW_CROSS=1 \
    PKG_CONFIG_SYSROOT_DIR=/opt/sioedge-sysroot/root \
    PKG_CONFIG_LIBDIR=/opt/sioedge-sysroot/root/usr/lib/aarch64-linux-gnu/pkgconfig:/opt/sioedge-sysroot/root/usr/share/pkgconfig \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=/opt/sioedge-sysroot/root -C link-arg=-Wl,-rpath-link,/opt/sioedge-sysroot/root/usr/lib/aarch64-linux-gnu -C link-arg=-Wl,-rpath-link,/opt/sioedge-sysroot/root/lib/aarch64-linux-gnu"
