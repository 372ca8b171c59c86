#!/usr/bin/env python3
"""make_seeds: writes the committed seed corpora of tests/fuzz/corpus/<harness>/.

Seeds are hand-written sessions in each harness's input format (see the comment at the top
of fuzz_<harness>.c), so the fuzzer starts from every verb, both transports' framing, the
error paths and valid zlib streams instead of having to find them. Deterministic: running
it again rewrites the same files. Usage: tests/fuzz/make_seeds.py
"""
import base64
import hashlib
import os
import re
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ZMARK = b"\xff"


def load_dictionary():
    with open(os.path.join(ROOT, "common", "zframe_dict.h")) as f:
        text = f.read()
    body = text.split("/* BEGIN dictionary */", 1)[1].split("/* END dictionary */", 1)[0]
    return "".join(re.findall(r'"([^"\\]*)"', body)).encode("ascii")


DICT = load_dictionary()


def zpack(frame, zdict=DICT, level=9):
    c = (zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=zdict)
         if zdict else zlib.compressobj(level))
    return ZMARK + c.compress(frame) + c.flush()


def write(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        if old.startswith("seed-"):
            os.unlink(os.path.join(d, old))
    for data in seeds:
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{harness}: {len(seeds)} seeds")


FRAMES = [
    b"HELLO alice", b"HELLO carol games", b"HELLO dave bad!room", b"MSG 1 hello room", b"MSG - x", b"just typing works too",
    b"TO bob 2 psst", b"TO nobody 3 x", b"JOIN games", b"JOIN lobby", b"WHO", b"PING",
    b"PING 17", b"BYE", b"HELLO bad!id", b"JOIN bad room", b"MSG 18446744073709551614 max",
    b"MSG 18446744073709551615 over", b"MSG x", b"TO bob", b"HELLO", b"\x1b[2J\x1b]0;owned\x07",
    b"caf\xc3\xa9 \xff\xfe", b"a\x00b", b"MSG 5 \xe2\x80\xae rtl", b"\r", b"",
]


def proto_seeds():
    seeds = []
    for i, f in enumerate(FRAMES):
        seeds.append(bytes([i]) + f)
    seeds.append(b"\x00" + b"A" * 70 + b"\n" + b"B" * 10 + b"\r\nC")
    seeds.append(b"\x07" + b"x" * 64 + b"\r\n")
    seeds.append(b"\x01" + b"WELCOME a 127.0.0.1:1")
    seeds.append(b"\x02" + b"LEFT a lobby quit")
    seeds.append(b"\x03" + b"ERR bad_frame malformed frame")
    seeds.append(b"\x04" + b"WELCOME a 127.0.0.1:1 0123456789abcdef 5001")
    seeds.append(b"\x05" + b"0123456789abcdef MSG 1 hi")
    return seeds


def zframe_seeds():
    seeds = []
    for i, f in enumerate([b"MSG 1 hello", b"", b"A" * 5000, b"FROM alice 3 hi", b"HELLO bob"]):
        seeds.append(bytes([i & 3]) + zpack(f))
        seeds.append(bytes([(i + 1) & 3]) + zpack(f, zdict=None, level=1))
    bomb = zpack(b"\x00" * 100000, zdict=None)
    seeds.append(b"\x00" + bomb)
    seeds.append(b"\x02" + zpack(b"MSG 2 truncated")[:-3])
    seeds.append(b"\x02" + zpack(b"MSG 2 trailing") + b"junk")
    seeds.append(b"\x02" + zpack(b"MSG 2 other dict", zdict=b"another dictionary"))
    seeds.append(b"\x02" + b"\xff\x00\x01\x02")
    seeds.append(b"\x02" + b"MSG 1 not compressed")
    return seeds


# --- fuzz_tcp: op = what | client << 3 ---
def tcp_data(client, data):
    out = b""
    while True:
        chunk, data = data[:255], data[255:]
        out += bytes([0 | client << 3, len(chunk)]) + chunk
        if not data:
            return out


def tcp_lines(client, *lines):
    return tcp_data(client, b"".join(l + b"\n" for l in lines))


def tcp_seeds():
    s = []
    hello = tcp_lines(0, b"HELLO alice") + tcp_lines(1, b"HELLO bob")
    s.append(b"\x00" + hello + tcp_lines(0, b"MSG 1 hi", b"WHO", b"TO bob 2 psst", b"PING 7")
             + tcp_lines(1, b"JOIN games", b"MSG 3 alone", b"BYE"))
    s.append(b"\x03" + hello + tcp_lines(2, b"MSG 1 early", b"HELLO alice", b"HELLO carol",
                                         b"HELLO dave", b"JOIN !!", b"TO x"))
    # a slow consumer: bob's socket takes 16 bytes, alice floods the room
    s.append(b"\x04" + hello + bytes([4 | 1 << 3, 2]) +
             tcp_lines(0, *[b"MSG %d " % i + b"x" * 50 for i in range(12)]) + bytes([5 | 1 << 3]))
    # a line too long, then a good one; CR LF; an unterminated line and EOF
    s.append(b"\x01" + hello + tcp_data(0, b"y" * 300 + b"\nMSG 9 ok\r\n" + b"z" * 40)
             + bytes([6, 0]) + bytes([6 | 1 << 3, 1]))
    s.append(b"\x02" + tcp_lines(3, b"PING", b"WHO") + bytes([7 | 3 << 3]) + hello)
    s.append(b"\x00" + tcp_lines(2, b"HELLO carol games") + hello
             + tcp_lines(0, b"JOIN games", b"MSG 1 x") + tcp_lines(3, b"HELLO dave !!"))
    s.append(b"\x21" + hello + tcp_lines(0, b"\x1b[31mred\x1b[0m", b"a\x00b", b"\xc3\x28"))
    return s


# --- fuzz_udp: op = addr | zip << 2 | trunc << 3 | expire (0x30) | long len << 6 ---
def udp_dgram(addr, payload, zip_=False, trunc=False):
    if len(payload) > 255:
        return bytes([addr | zip_ << 2 | trunc << 3 | 0x40]) + struct.pack("<H", len(payload)) + payload
    return bytes([addr | zip_ << 2 | trunc << 3, len(payload)]) + payload


def pad(hello):
    """A plain HELLO padded to PROTO_HELLO_PAD, so that the server may answer it."""
    return hello + b" #" + b"#" * max(0, 64 - len(hello) - 2)


def noise(word):
    """Padding that does not compress: a compressed HELLO must still hold its WELCOME."""
    return b" #" + hashlib.sha256(word).hexdigest().encode()


def udp_seeds():
    s = []
    hello = (udp_dgram(0, pad(b"HELLO alice") + b"\n")
             + udp_dgram(1, b"HELLO bob" + noise(b"bob"), zip_=True))
    s.append(b"\x00" + hello + udp_dgram(0, b"MSG 1 hi") + udp_dgram(1, b"WHO", zip_=True)
             + udp_dgram(0, b"TO bob 2 x") + udp_dgram(1, b"JOIN games") + udp_dgram(1, b"BYE"))
    # strangers: short frames get nothing or a short ERR, unpadded HELLOs ERR pad
    s.append(b"\x01" + udp_dgram(2, b"PING 1") + udp_dgram(2, b"MSG 1 x") + hello
             + udp_dgram(2, pad(b"HELLO alice")) + udp_dgram(2, b"HELLO carol")
             + udp_dgram(2, b"PING 0000000000000001") + udp_dgram(3, pad(b"HELLO dave"))
             + udp_dgram(2, b"HELLO carol", zip_=True) + udp_dgram(2, pad(b"HELLO carol")))
    s.append(b"\x02" + hello + udp_dgram(0, zpack(b"\x00" * 70000, zdict=None))
             + udp_dgram(0, zpack(b"MSG 3 cut")[:-2]) + udp_dgram(0, b"\xff\x78")
             + udp_dgram(0, b"") + udp_dgram(0, b"A" * 600, trunc=True))
    s.append(b"\x03" + hello + bytes([0x30]) + udp_dgram(0, b"PING"))
    s.append(b"\x00" + udp_dgram(2, pad(b"HELLO carol games")) + hello + udp_dgram(0, b"JOIN games")
             + udp_dgram(0, b"MSG 1 x") + udp_dgram(3, pad(b"HELLO dave !!"), zip_=True))
    s.append(b"\x00" + hello + udp_dgram(0, b"\x1b]0;x\x07 \xe2\x80\x8f\n\r\n"))
    return s


# --- fuzz_hlog: byte 0 picks text (0), compressed V2 (1) or raw V2 (2) ---
# HdrHistogram 2.1.11's own encoding of 176 values from 1 ns to 60 s (as in test_hlog.c)
JAVA_HLOG = ("HISTFAAAAEJ42pNpmSzMwMCgxAABzFCaEYh5f7hHMNh/gIpwMbG85xJpFmXi+M3PxNfvd4JxrUHAUhamvyks"
             "P02Z+uOYAHjbDhs=")


def v2_raw(counts, sigfigs=3, lowest=1, highest=60000000000):
    """The uncompressed V2 encoding: header, then ZigZag LEB128 counts, zero runs negative."""
    def zz(v):
        v = (v << 1) ^ (v >> 63)
        v &= (1 << 64) - 1
        out = b""
        for _ in range(8):
            if v >> 7 == 0:
                return out + bytes([v])
            out += bytes([(v & 0x7F) | 0x80])
            v >>= 7
        return out + bytes([v])
    body, i = b"", 0
    while i < len(counts):
        if counts[i] == 0:
            j = i
            while j < len(counts) and counts[j] == 0:
                j += 1
            body += zz(-(j - i)) if j - i > 1 else zz(0)
            i = j
        else:
            body += zz(counts[i])
            i += 1
    head = struct.pack(">IiiiqqQ", 0x1c849313, len(body), 0, sigfigs, lowest, highest,
                       struct.unpack(">Q", struct.pack(">d", 1.0))[0])
    return head + body


def hlog_seeds():
    java = base64.b64decode(JAVA_HLOG)
    raw = zlib.decompress(java[8:])
    return [
        b"\x00Tag=ack,0.000,1.000,3.376," + JAVA_HLOG.encode(),
        b"\x00#[StartTime: 1700000000.250 (seconds since epoch), Tue Nov 14]",
        b"\x00" + JAVA_HLOG.encode(),
        b"\x01" + java,
        b"\x02" + raw,
        b"\x02" + v2_raw([0, 3, 0, 0, 0, 7] + [0] * 2000 + [1]),
        b"\x02" + v2_raw([5], sigfigs=2),  # another layout: refused
        b"\x02" + v2_raw([0] * 27648 + [1]),  # past the last count
    ]


if __name__ == "__main__":
    write("proto", proto_seeds())
    write("zframe", zframe_seeds())
    write("tcp", tcp_seeds())
    write("udp", udp_seeds())
    write("hlog", hlog_seeds())
