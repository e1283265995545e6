#!/usr/bin/env python3
"""Writes examples/sample.pcap: a few ordinary Ethernet frames (ARP, ICMP echo, UDP,
TCP SYN, an 802.1Q-tagged frame and a 9014-octet jumbo frame), deterministic, so the
README's first command has something to protect. Python 3 stdlib only."""
import struct, sys, os

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

A = bytes.fromhex("525400123401"); B = bytes.fromhex("525400123402")
IPA, IPB = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])

def ipv4(proto, payload, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, IPA, IPB)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def l4(proto, seg):
    ph = IPA + IPB + struct.pack("!BBH", 0, proto, len(seg))
    off = 6 if proto == 17 else 16
    c = csum(ph + seg)
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]

frames = []
frames.append(B"\xff" * 6 + A + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + A + IPA + b"\0" * 6 + IPB)
icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + bytes(range(56))
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
frames.append(B + A + b"\x08\x00" + ipv4(1, icmp, 1))
udp = struct.pack("!HHHH", 40000, 5201, 8 + 32, 0) + b"MACsec sample UDP payload 32 oct"
frames.append(B + A + b"\x08\x00" + ipv4(17, l4(17, udp), 2))
tcp = struct.pack("!HHIIBBHHH", 40001, 5201, 1000, 0, 0x50, 0x02, 64240, 0, 0)
frames.append(B + A + b"\x08\x00" + ipv4(6, l4(6, tcp), 3))
frames.append(B + A + b"\x81\x00\x00\x64" + b"\x08\x00" + ipv4(1, icmp, 4))
big = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 2) + bytes(i & 0xFF for i in range(9000 - 20 - 8))
big = big[:2] + struct.pack("!H", csum(big)) + big[4:]
frames.append(B + A + b"\x08\x00" + ipv4(1, big, 5))

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "sample.pcap")
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(frames):
        f.write(struct.pack("<IIII", 1764000000 + i, 0, len(fr), len(fr)) + fr)
print(out, len(frames), "frames, largest", max(map(len, frames)))
