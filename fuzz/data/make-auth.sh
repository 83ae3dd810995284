#!/usr/bin/env bash
# Regenerates fuzz/data/auth/*.auth: a throw-away test PKI (PK, KEK, db and a
# rogue key, RSA-2048, openssl) and signed EFI_VARIABLE_AUTHENTICATION_2
# updates made with efitools' sign-efi-sig-list. The fuzz target
# `service_ops` embeds them (fuzz/src/auth.rs), so the fuzzer gets past the
# signature check of the Secure Boot hierarchy and of private variables.
# The keys are not kept: the blobs alone are what the target needs.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/auth"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
owner=11111111-2222-3333-4444-555555555555
private_guid=99999999-8888-7777-6666-555555555555

for cn in PK KEK db rogue; do
    openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 \
        -subj "/CN=fuzz $cn" -keyout "$cn.key" -out "$cn.crt" 2>/dev/null
    cert-to-efi-sig-list -g "$owner" "$cn.crt" "$cn.esl"
done
: > empty.esl
printf 'private payload 1' > priv1.bin
printf 'private payload 2' > priv2.bin

sign() { # OUT VAR ESL KEY TIME [extra sign-efi-sig-list options...]
    local o=$1 var=$2 esl=$3 key=$4 time=$5
    shift 5
    sign-efi-sig-list "$@" -t "$time" -k "$key.key" -c "$key.crt" "$var" "$esl" "$o.auth" >/dev/null
}

sign 00-PK          PK  PK.esl    PK    "2025-01-01 00:00:00"
sign 01-KEK         KEK KEK.esl   PK    "2025-01-02 00:00:00"
sign 02-KEK-append  KEK db.esl    PK    "2025-01-03 00:00:00" -a
sign 03-db          db  db.esl    KEK   "2025-01-04 00:00:00"
sign 04-db-append   db  rogue.esl KEK   "2025-01-05 00:00:00" -a
sign 05-dbx         dbx rogue.esl KEK   "2025-01-06 00:00:00"
sign 06-db-by-PK    db  KEK.esl   PK    "2025-01-07 00:00:00"
sign 07-db-rogue    db  rogue.esl rogue "2025-01-08 00:00:00"
sign 08-KEK-by-KEK  KEK db.esl    KEK   "2025-01-09 00:00:00"
sign 09-PK-rotate   PK  rogue.esl PK    "2025-01-10 00:00:00"
sign 10-PK-delete   PK  empty.esl PK    "2025-02-01 00:00:00"
sign 11-PK-del-rogue PK empty.esl rogue "2025-02-02 00:00:00"
sign 12-db-delete   db  empty.esl KEK   "2025-02-03 00:00:00"
sign 13-priv        FuzzPriv priv1.bin db    "2025-01-01 00:00:00" -g "$private_guid"
sign 14-priv-update FuzzPriv priv2.bin db    "2025-01-02 00:00:00" -g "$private_guid"
sign 15-priv-rogue  FuzzPriv priv2.bin rogue "2025-01-03 00:00:00" -g "$private_guid"
sign 16-priv-delete FuzzPriv empty.esl db    "2025-01-04 00:00:00" -g "$private_guid"

rm -f "$out"/*.auth
cp ./*.auth "$out"/
ls -l "$out"
