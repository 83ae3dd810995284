#!/usr/bin/env bash
# Installs QEMU 11.1 (Debian trixie-backports `qemu-system-x86`) for the
# QEMU conformance suite, inside a Debian trixie chroot made with mmdebstrap,
# so nothing from trixie lands on the host (a bookworm machine keeps its
# own libraries; scripts/install-qemu.sh installs the host's QEMU 10.0).
#
#   scripts/install-qemu11.sh [DIR]     (default /var/cache/uefi-vars-qemu11)
#
# DIR/root is the chroot. The chroot's apt source is the machine's own Debian
# entry with only the suite changed (scripts/lib/apt-source.sh). Idempotent:
# a finished chroot (DIR/root/.uefi-vars-qemu11 names its QEMU version) is
# reused; a half-made one (DIR/root.tmp) is thrown away and made again.
#
# The oracle runs this QEMU without chroot(2) and without root: through the
# chroot's own dynamic loader with the chroot's library path, and `-L` for
# its firmware (crates/uefi-vars-qemu-oracle/src/qemu.rs, QemuRoot). For
# that, Debian's absolute firmware symlinks in /usr/share/qemu (e.g.
# bios-256k.bin -> /usr/share/seabios/bios-256k.bin) are made relative here,
# so they resolve inside the chroot, not to the host's SeaBIOS.
set -euo pipefail

dir="${1:-/var/cache/uefi-vars-qemu11}"
root="$dir/root"
marker="$root/.uefi-vars-qemu11"
suite=trixie
backports="$suite-backports"

loader_version() {
    "$1/usr/lib64/ld-linux-x86-64.so.2" \
        --library-path "$1/usr/lib/x86_64-linux-gnu" \
        "$1/usr/bin/qemu-system-x86_64" --version 2>/dev/null | head -n1
}

# Absolute symlinks under /usr/share/qemu -> relative ones (see above).
relative_firmware_links() {
    local link target
    find "$1/usr/share/qemu" -type l | while read -r link; do
        target="$(readlink "$link")"
        case "$target" in
        /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$1$target")" "$link" ;;
        esac
    done
}

if [ -f "$marker" ] && [ -n "$(loader_version "$root")" ]; then
    relative_firmware_links "$root"
    loader_version "$root"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-qemu11.sh: $root is missing and making it needs root (mmdebstrap)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v mmdebstrap >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 update -q
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends mmdebstrap
fi

. /etc/os-release
. "$(dirname "$0")/lib/apt-source.sh"
mkdir -p "$dir"
entry="$(copy_debian_entry "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}" \
    "$suite" "$backports")"
case "$(printf '%s\n' "$entry" | head -n1)" in
deb822) sources="$dir/$suite.sources" ;;
*) sources="$dir/$suite.list" ;;
esac
printf '%s\n' "$entry" | tail -n +2 >"$sources"

rm -rf "$root.tmp"
started=$(date +%s)
# --variant=apt: Essential packages and apt; QEMU then comes from backports
# (-t, as its exact-version dependencies must too), without Recommends
# (no GUI, OpenGL, spice modules: the suite runs -nographic).
mmdebstrap --mode=root --variant=apt --quiet \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="chroot \"\$1\" apt-get install -y -q -t $backports qemu-system-x86" \
    --customize-hook='chroot "$1" apt-get clean' \
    "$suite" "$root.tmp" "$sources"
relative_firmware_links "$root.tmp"
version="$(loader_version "$root.tmp")"
case "$version" in
*"version 11."[1-9]* | *"version 1"[2-9].*) ;;
*)
    echo "install-qemu11.sh: expected QEMU >= 11.1 from $backports, got: ${version:-nothing}" >&2
    exit 1
    ;;
esac
printf '%s\n' "$version" >"$root.tmp/.uefi-vars-qemu11"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "install-qemu11.sh: $version in $root ($(($(date +%s) - started)) s)"
