# cross-rs image for armv7-unknown-linux-gnueabihf (see cross/Cross.toml): Debian bookworm, Debian's cross gcc
# and the private sysroot from scripts/mksysroot. The ENV lines are what scripts/lib/board.sh
# (target_setup) exports for a build without Docker.
FROM debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config file \
      gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/mksysroot /usr/local/bin/sioedge-mksysroot
RUN sioedge-mksysroot armhf /opt/sioedge-sysroot \
 && rm -rf /opt/sioedge-sysroot/debs /opt/sioedge-sysroot/lists
ENV PKG_CONFIG_ALLOW_CROSS=1 \
    PKG_CONFIG_SYSROOT_DIR=/opt/sioedge-sysroot/root \
    PKG_CONFIG_LIBDIR=/opt/sioedge-sysroot/root/usr/lib/arm-linux-gnueabihf/pkgconfig:/opt/sioedge-sysroot/root/usr/share/pkgconfig \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C link-arg=--sysroot=/opt/sioedge-sysroot/root -C link-arg=-Wl,-rpath-link,/opt/sioedge-sysroot/root/usr/lib/arm-linux-gnueabihf -C link-arg=-Wl,-rpath-link,/opt/sioedge-sysroot/root/lib/arm-linux-gnueabihf"
