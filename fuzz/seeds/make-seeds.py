#!/usr/bin/env python3
"""Regenerates the hand-made seed corpora under fuzz/seeds/ from the real
data in tests/data (boot captures, JSON stores, enrollment .auth files) and
fuzz/data/auth (signed updates). Structured targets (service_ops,
device_regs) get their seeds from `cargo fuzz cmin` of local runs instead
(see docs/robustness.md), since their input encoding is arbitrary's.

    python3 fuzz/seeds/make-seeds.py
"""
import glob
import gzip
import hashlib
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
DATA = os.path.join(ROOT, "tests", "data")


def put(target, blob, name=None):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha1(blob).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def records(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    off = 24
    while off + 16 <= len(raw):
        ts, us, incl, orig = struct.unpack_from("<IIII", raw, off)
        body = raw[off + 16: off + 16 + incl]
        off += 16 + incl
        yield struct.unpack_from("<I", body)[0], body[4:]


def auth_parts(blob):
    """(pkcs7, payload) of an EFI_VARIABLE_AUTHENTICATION_2 blob."""
    length = struct.unpack_from("<I", blob, 16)[0]
    return blob[40:16 + length], blob[16 + length:]


def main():
    for t in ("mm_dispatch", "json_store", "siglist", "pkcs7", "pcap"):
        for f in glob.glob(os.path.join(SEEDS, t, "*")):
            os.remove(f)

    # mm_dispatch: runs of 6 consecutive requests from each capture, and
    # every distinct single request up to 200 per capture.
    for cap in sorted(glob.glob(os.path.join(DATA, "*.pcap.gz"))):
        reqs = [p for kind, p in records(cap) if kind == 2]
        for i in range(0, len(reqs), 60):
            run = b"".join(reqs[i:i + 6])
            if len(run) <= 16384:
                put("mm_dispatch", run)
        distinct = {}
        for r in reqs:
            # key: header GUID + function/command word + size bucket
            key = (r[:16], r[24:32], len(r) // 256)
            if len(r) <= 4096 or r[24:28] == b"\x04\x00\x00\x00":
                distinct.setdefault(key, r)
        for r in list(distinct.values())[:40]:
            put("mm_dispatch", r)

    # pcap: the head of each capture (plain and gzip), a tiny one.
    for cap in sorted(glob.glob(os.path.join(DATA, "*.pcap.gz"))):
        raw = gzip.open(cap).read()
        off, n = 24, 0
        while off + 16 <= len(raw) and n < 8:
            incl = struct.unpack_from("<I", raw, off + 8)[0]
            off += 16 + incl
            n += 1
        head = raw[:off]
        base = os.path.basename(cap).split(".")[0]
        put("pcap", head, base + "-head.pcap")
        put("pcap", gzip.compress(head), base + "-head.pcap.gz")
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65536, 302)
    put("pcap", hdr + struct.pack("<IIII", 1, 2, 4, 4) + struct.pack("<I", 1), "reset-only.pcap")
    be = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65536, 302)
    put("pcap", be + struct.pack(">IIII", 1, 2000, 8, 9) + struct.pack(">I", 2) + b"abcd", "be-nsec-cut.pcap")

    # json_store: the real stores and a few small ones.
    for js in sorted(glob.glob(os.path.join(DATA, "*.json"))):
        put("json_store", open(js, "rb").read(), os.path.basename(js))
    put("json_store", b'{"version": 2, "variables": []}', "empty.json")
    put("json_store", (
        b'{\n    "version": 2,\n    "variables": [\n        {\n            "name": "FuzzPriv",\n'
        b'            "digest": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",\n'
        b'            "guid": "99999999-8888-7777-6666-555555555555",\n            "attr": 39,\n'
        b'            "time": "e907010100000000000000000000000000",\n            "data": "6869"\n'
        b'        },\n        {\n            "name": "Boot\\u00e9\\n",\n'
        b'            "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c",\n            "attr": 7,\n'
        b'            "data": "0100"\n        }\n    ]\n}'), "private-and-escapes.json")

    # siglist / pkcs7: the pieces of every signed update.
    auths = sorted(glob.glob(os.path.join(ROOT, "fuzz", "data", "auth", "*.auth")))
    # Same order as fuzz/src/auth.rs.
    auths += [os.path.join(DATA, "enroll", v + ".auth") for v in ("PK", "KEK", "db", "dbx")]
    payloads = []
    for i, a in enumerate(auths):
        blob = open(a, "rb").read()
        p7, payload = auth_parts(blob)
        # pkcs7: selector byte = index of the update whose content it signs
        # (fuzz/src/auth.rs lists the same files in the same order), with
        # the real signers as anchors (selector bits 5..7 = 1).
        put("pkcs7", bytes([(1 << 5) | i]) + p7, os.path.basename(a) + ".p7")
        if payload:
            payloads.append(payload)
    for i, p in enumerate(payloads):
        for is_pk in (0, 1):
            put("siglist", bytes([is_pk]) + struct.pack("<H", len(p)) + p)
        q = payloads[(i + 1) % len(payloads)]
        put("siglist", bytes([0]) + struct.pack("<H", len(p)) + p + q)

    store_format_seeds()


def store_format_seeds():
    """store_formats: a 4 KiB edk2 image (volume, store, two variables, one
    deleted copy, an FTW working block) and an AWS blob made by
    `uefi-vars convert` (committed as fuzz/seeds/store_formats/*)."""
    nv_fv = bytes.fromhex("8d2bf1ff96768b4ca9852747075b4f50")
    auth_store = bytes.fromhex("782cf3aa7b949a43a1802e144ec37792")
    ftw_sig = bytes.fromhex("2b29589e687c7d49a0ce6500fd9f1b95")
    gv = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
    fv_len, vars_end, ftw = 0x1000, 0xc00, 0xc00
    hdr = bytearray(bytes(16) + nv_fv + struct.pack("<Q", fv_len) + b"_FVH"
                    + struct.pack("<LHHHBB", 0x4FEFF, 0x48, 0, 0, 0, 2)
                    + struct.pack("<LL", 1, fv_len) + bytes(8))
    csum = (-sum(struct.unpack("<36H", hdr))) & 0xFFFF
    hdr[50:52] = struct.pack("<H", csum)
    img = bytearray(b"\xff" * fv_len)
    img[0:0x48] = hdr
    img[0x48:0x64] = auth_store + struct.pack("<LBBHL", vars_end - 0x48, 0x5A, 0xFE, 0, 0)
    pos = 0x64
    for state, name, data in ((0x3C, "Lang", b"fra\0"), (0x3F, "Lang", b"eng\0"),
                              (0x3E, "Timeout", b"\x05\x00")):
        n = (name + "\0").encode("utf-16-le")
        var = (struct.pack("<HBBLQ", 0x55AA, state, 0, 7, 0) + bytes(16)
               + struct.pack("<LLL", 0, len(n), len(data)) + gv + n + data)
        var += b"\xff" * (-len(var) % 4)
        img[pos:pos + len(var)] = var
        pos += len(var)
    work = bytearray(ftw_sig + b"\xff" * 8 + struct.pack("<Q", fv_len - ftw - 32))
    import zlib
    work[16:20] = struct.pack("<L", zlib.crc32(bytes(work)))
    work[20] = 0xFE
    img[ftw:ftw + 32] = work
    put("store_formats", bytes(img), "small.fd")


if __name__ == "__main__":
    main()
