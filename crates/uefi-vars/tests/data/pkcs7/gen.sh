#!/bin/sh
# Regenerates the PKCS#7 test data used by tests/pkcs7_openssl.rs, with the
# real `openssl` CLI (OpenSSL 3) and efitools (`cert-to-efi-sig-list`,
# `sign-efi-sig-list`; Debian package `efitools`).
#
# Keys are throw-away and never written here: only certificates (DER),
# signatures and EFI files are kept. Running the script again gives new keys
# and so different bytes, but files with the same roles; the tests use the
# committed files so that they are stable.
#
#   usage: sh gen.sh        (from any directory; writes next to itself)
set -eu

out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

quiet() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }; }

# --- certificates ----------------------------------------------------------

# selfsigned NAME CN SERIAL [extra openssl req args...]
selfsigned() {
    name=$1 cn=$2 serial=$3
    shift 3
    quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout "$name.key" \
        -out "$name.crt" -subj "/CN=$cn" -days 36500 -set_serial "$serial" "$@"
}

# issued NAME CN SERIAL ISSUER EXTSECTION
issued() {
    quiet openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" \
        -out "$1.csr" -subj "/CN=$2"
    quiet openssl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" \
        -set_serial "$3" -days 36500 -extfile ext.cnf -extensions "$5" \
        -out "$1.crt"
}

cat > ext.cnf <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

CA_EXT="-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"

# A three-level PKI: root -> intermediate -> leaf.
# shellcheck disable=SC2086
selfsigned root "Test Root CA" 1 $CA_EXT
issued int "Test Intermediate CA" 2 root ca
issued leaf "Test Leaf Signer" 3 int leaf
# Same subject as the root, different key: must not be taken as the issuer.
# shellcheck disable=SC2086
selfsigned decoy "Test Root CA" 9 $CA_EXT
# A certificate that has nothing to do with any signer.
selfsigned unrelated "Unrelated" 4
# A self-signed signer, used directly as its own trust anchor (and as PK).
selfsigned signer "Test Direct Signer" 5
# A negative serial number, as in some Microsoft certificates.
selfsigned negserial "Negative Serial Signer" -0x1234567890abcdef
# Key usage that S/MIME would refuse (no digitalSignature, EKU codeSigning).
selfsigned oddusage "Odd Usage Signer" 6 \
    -addext "keyUsage=critical,keyCertSign" -addext "extendedKeyUsage=codeSigning"

# Expired (2000-2001) and not yet valid (2090-2091) self-signed signers.
mkdir ca
touch ca/index.txt
echo 07 > ca/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = testca
[testca]
database = ca/index.txt
new_certs_dir = ca
serial = ca/serial
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
[v3]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
CNF
dated() {
    quiet openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" \
        -out "$1.csr" -subj "/CN=$2"
    quiet openssl ca -batch -config ca.cnf -selfsign -keyfile "$1.key" \
        -in "$1.csr" -startdate "$3" -enddate "$4" -extensions v3 -notext \
        -out "$1.crt"
}
dated expired "Expired Signer" 20000101000000Z 20010101000000Z
dated future "Future Signer" 20900101000000Z 20910101000000Z

# Two CAs that certify each other (a cycle), and a leaf under the first:
# cyclea is issued by cycleb, cycleb by cyclea.
selfsigned cycleb0 "Cycle B" 10
issued cyclea "Cycle A" 11 cycleb0 ca
cp cycleb0.key cycleb.key
quiet openssl x509 -req -in /dev/stdin -CA cyclea.crt -CAkey cyclea.key \
    -set_serial 12 -days 36500 -extfile ext.cnf -extensions ca -out cycleb.crt \
    <<CSR
$(openssl req -new -key cycleb.key -subj "/CN=Cycle B")
CSR
issued cycleleaf "Cycle Leaf" 13 cyclea leaf

for c in root int leaf decoy unrelated signer negserial oddusage expired future \
    cyclea cycleb cycleleaf; do
    openssl x509 -in "$c.crt" -outform DER -out "$out/$c.der"
done

# --- signatures --------------------------------------------------------------

# Binary content with LF, CRLF, NUL and 0xff: signatures made with -binary
# verify only if the verifier does no MIME canonicalisation either.
printf 'uefi-vars PKCS#7 test content\nline two\r\n\000\001\002\377' > "$out/content.bin"

# sign OUT SIGNER [openssl smime args...]: detached, binary, no signed
# attributes, DER ContentInfo.
sign() {
    o=$1 s=$2
    shift 2
    openssl smime -sign -binary -noattr -outform DER -in "$out/content.bin" \
        -signer "$s.crt" -inkey "$s.key" -out "$out/$o.p7" "$@"
}

# bare NAME: strips the ContentInfo of NAME.p7 into NAME.bare.p7 (the
# SignedData is the first element at depth 2).
bare() {
    off=$(openssl asn1parse -inform DER -in "$out/$1.p7" | awk -F: '/d=2/ { print $1; exit }')
    openssl asn1parse -inform DER -in "$out/$1.p7" -strparse "$off" -noout \
        -out "$out/$1.bare.p7"
}

sign direct signer -md sha256
bare direct
# With signed attributes (contentType, signingTime, messageDigest, ...).
openssl smime -sign -binary -outform DER -in "$out/content.bin" \
    -signer signer.crt -inkey signer.key -md sha256 -out "$out/direct-attrs.p7"
sign sha384 signer -md sha384
sign sha512 signer -md sha512
sign sha1 signer -md sha1
sign sha224 signer -md sha224
# Content embedded as well (-nodetach).
sign embedded signer -md sha256 -nodetach
# BER with indefinite lengths (CMS streaming).
openssl cms -sign -binary -noattr -outform DER -stream -in "$out/content.bin" \
    -signer signer.crt -inkey signer.key -md sha256 -out "$out/stream.p7"
# Signer certificate left out of the bag.
sign nocerts signer -md sha256 -nocerts
# Two SignerInfos: the direct signer, then the leaf of the PKI.
sign twosigners signer -md sha256 -signer leaf.crt -inkey leaf.key -certfile int.crt

# Chains. `openssl smime` puts -certfile certificates first and the signer
# last, so cert[0] is "Unrelated" here.
cat unrelated.crt int.crt root.crt > bag.pem
sign chain leaf -md sha256 -certfile bag.pem
bare chain
sign chain-noroot leaf -md sha256 -certfile int.crt
cat decoy.crt int.crt root.crt > decoybag.pem
sign chain-decoy leaf -md sha256 -certfile decoybag.pem
# CMS sorts the certificate SET by encoding.
openssl cms -sign -binary -noattr -outform DER -in "$out/content.bin" \
    -signer leaf.crt -inkey leaf.key -md sha256 -certfile bag.pem \
    -out "$out/chain-cms.p7"
cat cyclea.crt cycleb.crt > cyclebag.pem
sign cycle cycleleaf -md sha256 -certfile cyclebag.pem

sign expired expired -md sha256
sign future future -md sha256
sign negserial negserial -md sha256
bare negserial
sign oddusage oddusage -md sha256

# A certificates-only SignedData: no SignerInfo at all.
openssl crl2pkcs7 -nocrl -certfile signer.crt -outform DER -out "$out/nosigner.p7"

# --- efitools ----------------------------------------------------------------

# PK enrolment signed by the (self-signed) PK itself, and a db APPEND signed
# by the same key; -o writes the exact bytes that get signed.
owner=11111111-2222-3333-4444-555555555555
cert-to-efi-sig-list -g "$owner" signer.crt "$out/PK.esl" >/dev/null
cert-to-efi-sig-list -g "$owner" unrelated.crt "$out/db.esl" >/dev/null
ts="2025-01-01 00:00:00"
sign-efi-sig-list -t "$ts" -k signer.key -c signer.crt PK "$out/PK.esl" "$out/PK.auth" >/dev/null
sign-efi-sig-list -o -t "$ts" PK "$out/PK.esl" "$out/PK.signed" >/dev/null
sign-efi-sig-list -a -t "$ts" -k signer.key -c signer.crt db "$out/db.esl" "$out/db.auth" >/dev/null
sign-efi-sig-list -a -o -t "$ts" db "$out/db.esl" "$out/db.signed" >/dev/null

echo "regenerated $(ls "$out" | wc -l) files in $out"
