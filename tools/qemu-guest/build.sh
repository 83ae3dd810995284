#!/bin/sh
# Builds the conformance guest: build.sh OUTPUT.elf
# Needs gcc able to compile for -m32 (no C library is used) and GNU ld.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUTPUT.elf}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
CFLAGS="-m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie -fno-stack-protector \
 -fno-asynchronous-unwind-tables -mno-sse -mno-mmx -mno-80387 -O2 -Wall -Wextra -Werror"
${CC:-gcc} $CFLAGS -c "$here/entry.S" -o "$tmp/entry.o"
${CC:-gcc} $CFLAGS -c "$here/guest.c" -o "$tmp/guest.o"
${LD:-ld} -m elf_i386 -nostdlib -static -z max-page-size=0x1000 --no-warn-rwx-segments -T "$here/link.ld" \
    "$tmp/entry.o" "$tmp/guest.o" -o "$out.tmp"
mv "$out.tmp" "$out"
