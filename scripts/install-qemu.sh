#!/usr/bin/env bash
# Installs QEMU with the `uefi-vars-x64` device (QEMU >= 10.0) and the tools
# the QEMU conformance suite needs to build its test guest (gcc -m32, ld).
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

if have_device && have_guest_tools; then
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
        # Find the machine's Debian archive entry: the one that carries the
        # release's main suite (not -security, not a third-party repository).
        added=""
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            # deb822: paragraphs separated by blank lines. Keep the first
            # paragraph whose Suites field lists "$codename" itself, and
            # rewrite only its Suites field.
            out="$(awk -v rel="$codename" -v bp="$backports" '
                BEGIN { RS = ""; FS = "\n" }
                {
                    ok = 0
                    for (i = 1; i <= NF; i++) {
                        if ($i ~ /^Suites:/) {
                            n = split(substr($i, 8), s, /[ \t]+/)
                            for (j = 1; j <= n; j++) if (s[j] == rel) ok = 1
                        }
                        if ($i ~ /^Enabled:[ \t]*no/) { ok = 0; break }
                    }
                    if (ok) {
                        for (i = 1; i <= NF; i++) {
                            if ($i ~ /^Suites:/) print "Suites: " bp
                            else print $i
                        }
                        exit
                    }
                }' "$f")"
            if [ -n "$out" ]; then
                printf '%s\n' "$out" >"/etc/apt/sources.list.d/${backports}.sources"
                added="$f"
                break
            fi
        done
        if [ -z "$added" ]; then
            # One-line format: "deb [opts] URI SUITE COMPONENTS..." with
            # SUITE exactly the release codename.
            for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] || continue
                line="$(awk -v rel="$codename" '
                    $1 == "deb" {
                        i = 2
                        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                        if ($(i + 1) == rel) { print; exit }
                    }' "$f")"
                if [ -n "$line" ]; then
                    printf '%s\n' "$line" | awk -v rel="$codename" -v bp="$backports" '{
                        i = 2
                        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                        $(i + 1) = bp; print }' >"/etc/apt/sources.list.d/${backports}.list"
                    added="$f"
                    break
                fi
            done
        fi
        if [ -z "$added" ]; then
            echo "install-qemu.sh: no Debian apt source entry for '$codename' found to copy" >&2
            exit 1
        fi
        echo "install-qemu.sh: added suite $backports (copied from $added)"
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
