#!/usr/bin/env bash
# Installs QEMU with the `uefi-vars-x64` device (QEMU >= 10.0) and the tools
# the QEMU conformance suite needs to build its test guest (gcc -m32, ld),
# then QEMU 11.1 in a Debian trixie root (scripts/install-qemu11.sh).
#
# Debian bookworm ships QEMU 7.2; bookworm-backports has 10.0.x. When the
# device is missing, this script adds the backports suite by copying the
# machine's own Debian apt source entry with only the suite changed (so the
# mirror the machine already uses is reused, whatever it is), then installs
# from that suite. Idempotent; does nothing when QEMU already has the device.
set -euo pipefail

have_device() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 &&
        qemu-system-x86_64 -device uefi-vars-x64,help >/dev/null 2>&1
}
have_guest_tools() {
    command -v gcc >/dev/null 2>&1 && command -v ld >/dev/null 2>&1 &&
        echo 'int x;' | gcc -m32 -ffreestanding -nostdlib -c -x c -o /dev/null - >/dev/null 2>&1
}

# QEMU 11.1 (trixie-backports) in its own mmdebstrap root: the conformance
# suite runs against it as well (scripts/install-qemu11.sh; idempotent).
install_qemu11() {
    bash "$(dirname "$0")/install-qemu11.sh"
}

if have_device && have_guest_tools; then
    install_qemu11
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-qemu.sh: QEMU with uefi-vars-x64 is missing and this needs root (apt-get)" >&2
    exit 1
fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"
backports="${codename}-backports"
if [ -z "$codename" ]; then
    echo "install-qemu.sh: cannot tell the Debian release from /etc/os-release" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

if ! have_device; then
    # Is the backports suite already configured?
    if ! grep -rqsE "(^|[[:space:]])${backports}([[:space:]]|$)" \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
        . "$(dirname "$0")/lib/apt-source.sh"
        entry="$(copy_debian_entry "$codename" "$backports")"
        case "$(printf '%s\n' "$entry" | head -n1)" in
        deb822) dest="/etc/apt/sources.list.d/${backports}.sources" ;;
        *) dest="/etc/apt/sources.list.d/${backports}.list" ;;
        esac
        printf '%s\n' "$entry" | tail -n +2 >"$dest"
        echo "install-qemu.sh: added suite $backports ($dest)"
    fi
    apt-get update -q
    apt-get install "${apt_opts[@]}" -t "$backports" --no-install-recommends \
        qemu-system-x86
fi

if ! have_guest_tools; then
    apt-get update -q
    apt-get install "${apt_opts[@]}" --no-install-recommends gcc gcc-multilib binutils
fi

if ! have_device; then
    echo "install-qemu.sh: qemu-system-x86_64 still lacks the uefi-vars-x64 device:" >&2
    qemu-system-x86_64 --version >&2 || true
    exit 1
fi
qemu-system-x86_64 --version | head -n1
install_qemu11
