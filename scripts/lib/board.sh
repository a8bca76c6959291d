# Shared by scripts/build-arm, scripts/package-deb and scripts/qemu-smoke (source it, don't run it):
# board profiles, target triples and the cross-build environment for the private sysroot.
# Needs ROOT (the repository root) set by the caller.

# board_load NAME: sources target-configs/boards/NAME.board (TARGET, VIDEO_*, DEB_VARIANT, ...).
board_load() {
  local f="$ROOT/target-configs/boards/$1.board"
  if [ ! -f "$f" ]; then
    echo "unknown board '$1'; known: $(board_list)" >&2
    return 2
  fi
  # shellcheck disable=SC1090
  . "$f"
  BOARD=$1
}

# board_list: the known board names.
board_list() {
  local f names=()
  for f in "$ROOT"/target-configs/boards/*.board; do names+=("$(basename "$f" .board)"); done
  echo "${names[*]}"
}

# board_render_config: prints the board's sioedge.toml (target-configs/sioedge.toml.in filled in).
board_render_config() {
  local text
  text=$(sed -e "s|@BOARD_DESCRIPTION@|$BOARD_DESCRIPTION|g" -e "s|@VIDEO_ENCODER@|$VIDEO_ENCODER|g" \
    -e "s|@VIDEO_WIDTH@|$VIDEO_WIDTH|g" -e "s|@VIDEO_HEIGHT@|$VIDEO_HEIGHT|g" \
    -e "s|@VIDEO_FPS@|$VIDEO_FPS|g" -e "s|@VIDEO_BITRATE_KBPS@|$VIDEO_BITRATE_KBPS|g" \
    "$ROOT/target-configs/sioedge.toml.in")
  if grep -q '@[A-Z_]*@' <<<"$text"; then
    echo "board_render_config: unfilled placeholder for board $BOARD" >&2
    return 1
  fi
  printf '%s\n' "$text"
}

# target_setup TRIPLE: sets DEB_ARCH, GNU_TRIPLET, SYSROOT, QEMU, QEMU_CPU_MODEL and exports the
# cross-build environment (linker, pkg-config into the sysroot, link flags) for cargo --target TRIPLE.
# QEMU_CPU_MODEL is the oldest Raspberry Pi core the target's packages cover, for qemu-user's -cpu:
# Cortex-A53 (Pi 3, Zero 2 W) for arm64, Cortex-A7 (Pi 2 v1.1) for armhf.
target_setup() {
  TRIPLE=$1
  case "$TRIPLE" in
    aarch64-unknown-linux-gnu) DEB_ARCH=arm64 GNU_TRIPLET=aarch64-linux-gnu CROSS_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" QEMU=qemu-aarch64-static QEMU_CPU_MODEL=cortex-a53 ;;
    armv7-unknown-linux-gnueabihf) DEB_ARCH=armhf GNU_TRIPLET=arm-linux-gnueabihf CROSS_PKGS="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross" QEMU=qemu-arm-static QEMU_CPU_MODEL=cortex-a7 ;;
    *) echo "unsupported target '$TRIPLE' (aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)" >&2; return 2 ;;
  esac
  if ! command -v "$GNU_TRIPLET-gcc" >/dev/null; then
    echo "installing the cross compiler: $CROSS_PKGS" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q --no-install-recommends $CROSS_PKGS >&2 \
      || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends $CROSS_PKGS >&2; }
  fi
  rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE" || rustup target add "$TRIPLE" >&2
  SYSROOT=$("$ROOT/scripts/mksysroot" "$DEB_ARCH" | tail -n 1)
  local S=$SYSROOT T=$GNU_TRIPLET
  local U
  U=$(echo "$TRIPLE" | tr 'a-z-' 'A-Z_')
  export PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_SYSROOT_DIR="$S"
  export PKG_CONFIG_LIBDIR="$S/usr/lib/$T/pkgconfig:$S/usr/share/pkgconfig"
  export "CARGO_TARGET_${U}_LINKER=$T-gcc"
  # --sysroot: the extracted libc.so linker script uses absolute paths. -rpath-link: lets ld
  # resolve libgstreamer's own dependencies. Per-target, so host build scripts are unaffected.
  export "CARGO_TARGET_${U}_RUSTFLAGS=-C link-arg=--sysroot=$S -C link-arg=-Wl,-rpath-link,$S/usr/lib/$T -C link-arg=-Wl,-rpath-link,$S/lib/$T"
}

# elf_machine: reads an ELF file on stdin, prints its machine (aarch64, arm, x86_64, ...).
elf_machine() {
  local hdr
  hdr=$(head -c 20 | od -An -tx1 | tr -d ' \n')
  [ "${hdr:0:8}" = 7f454c46 ] || { echo "not-elf"; return 0; }
  case "${hdr:36:4}" in
    b700) echo aarch64 ;; 2800) echo arm ;; 3e00) echo x86_64 ;; *) echo "machine-${hdr:36:4}" ;;
  esac
}
