#!/usr/bin/env bash
# The project's test command (README "Set-up"): installs the external tools
# the interop tests use, then runs formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# This command runs everything (issue 14, item 8): a variable that would
# skip or shorten part of the suite is refused, not silently honoured.
# Larger counts and longer runs stay possible.
refuse() {
    echo "scripts/test.sh: $1; unset it (this command runs the whole suite)" >&2
    exit 2
}
at_least() { # NAME MINIMUM: unset, or a whole number >= MINIMUM
    [ -z "${!1+x}" ] && return 0
    [[ "${!1}" =~ ^[0-9]+$ ]] && [ "${!1}" -ge "$2" ] ||
        refuse "$1=${!1} is below the suite's $2"
}
[ -z "${UEFI_VARS_SKIP_QEMU+x}" ] ||
    refuse "UEFI_VARS_SKIP_QEMU is set: it turns the QEMU conformance tests into passes"
[ -z "${UEFI_VARS_SKIP_VIRT_FW_VARS+x}" ] ||
    refuse "UEFI_VARS_SKIP_VIRT_FW_VARS is set: it skips the virt-fw-vars comparisons"
[ -z "${FUZZ_SANITIZER+x}" ] || [ "$FUZZ_SANITIZER" = address ] ||
    refuse "FUZZ_SANITIZER=$FUZZ_SANITIZER: the smoke run uses AddressSanitizer"
at_least UEFI_VARS_SIGKILL_ITERATIONS 20 # crates/uefi-vars-cli/tests/serve.rs
at_least FUZZ_SECONDS 30                 # per fuzz target, below
# proptest's default is 256 cases; tests with their own count ignore it.
at_least PROPTEST_CASES 256

# virt-fw-vars (PyPI virt-firmware) reads and writes the same JSON stores;
# the interop tests run it for real.
if ! command -v virt-fw-vars >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check virt-firmware
    hash -r
fi
command -v virt-fw-vars >/dev/null 2>&1 || {
    echo "virt-fw-vars is not on PATH after installing virt-firmware" >&2
    exit 1
}
# uefivars (PyPI, awslabs python-uefivars) reads our AWS blobs and .fd images.
if ! command -v uefivars >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check uefivars
    hash -r
fi

# efitools (cert-to-efi-sig-list, sign-efi-sig-list) and openssl make the
# signed updates the Secure Boot tests apply; libssl-dev for the openssl crate.
missing=()
for t in sign-efi-sig-list:efitools cert-to-efi-sig-list:efitools openssl:openssl pkg-config:pkg-config; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
# Debian's OVMF/AAVMF variable images and qemu-img: the store format tests.
[ -e /usr/share/OVMF/OVMF_VARS_4M.ms.fd ] || missing+=(ovmf)
[ -e /usr/share/AAVMF/AAVMF_VARS.ms.fd ] || missing+=(qemu-efi-aarch64)
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
# etcd (server and etcdctl) for the etcd store tests, which start their own
# members on loopback ports; protoc builds the etcd-client crate's gRPC code.
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi

# QEMU >= 10.0 with the uefi-vars-x64 device, and gcc/ld for the test guest:
# the QEMU conformance suite (crates/uefi-vars-qemu-oracle) runs it.
bash scripts/install-qemu.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# Fuzz smoke run (docs/robustness.md): every target in fuzz/ for 30 seconds
# with AddressSanitizer and debug assertions, failing on any crash, hang or
# memory blow-up. cargo-fuzz needs nightly flags; scripts/fuzz.sh sets
# RUSTC_BOOTSTRAP=1 so the stable toolchain accepts them, and installs
# cargo-fuzz if it is missing. About 7 minutes on 2 cores, build included.
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
