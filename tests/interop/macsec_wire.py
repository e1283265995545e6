"""MACsec frames on the wire: pcap reading, SecTAG parsing, negative-test mutations, injection.

Python 3 stdlib only. Used by run.py (wire checks on captures) and by inject.py (which runs
inside the test network namespace and sends frames with an AF_PACKET socket).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_P_MACSEC = 0x88E5

TCI_V = 0x80
TCI_ES = 0x40
TCI_SC = 0x20
TCI_SCB = 0x10
TCI_E = 0x08
TCI_C = 0x04


def read_pcap(path: str) -> list[bytes]:
    """Frames of a classic pcap file (Ethernet link type), in capture order.

    A file cut short while tcpdump still runs yields the complete records only.
    """
    with open(path, "rb") as f:
        data = f.read()
    return [fr for fr, _off in pcap_records(data, path)]


def pcap_records(data: bytes, what: str = "capture", start: int = 24) -> list[tuple[bytes, int]]:
    """(frame, offset of the record's end) for each complete record of a classic pcap file's
    bytes, from byte offset start (a record boundary; 24 = just after the file header)."""
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError(f"{what}: not a pcap file")
    linktype, = struct.unpack_from(end + "I", data, 20)
    if linktype != 1:
        raise ValueError(f"{what}: link type {linktype}, expected Ethernet (1)")
    frames = []
    off = max(24, start)
    while off + 16 <= len(data):
        _s, _us, incl, _orig = struct.unpack_from(end + "IIII", data, off)
        off += 16
        if off + incl > len(data):
            break
        frames.append((data[off:off + incl], off + incl))
        off += incl
    return frames


def write_pcap(path: str, frames: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)))
            f.write(fr)


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


@dataclass
class SecTag:
    dst: str
    src: str
    tci: int
    an: int
    sl: int
    pn: int           # the 32-bit PN field
    sci: str | None   # 16 hex digits when SC=1
    header_len: int   # octets from the start of the frame to the Secure Data
    length: int       # whole frame

    @property
    def e(self) -> bool:
        return bool(self.tci & TCI_E)

    @property
    def c(self) -> bool:
        return bool(self.tci & TCI_C)

    @property
    def sc(self) -> bool:
        return bool(self.tci & TCI_SC)


VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


def l2_len(frame: bytes) -> int:
    """Octets before the EtherType that follows the addresses and up to two VLAN tags."""
    off = 12
    for _ in range(2):
        if len(frame) >= off + 6 and struct.unpack_from("!H", frame, off)[0] in VLAN_TPIDS:
            off += 4
    return off


def ethertype(frame: bytes) -> int:
    """The EtherType after any (up to two) VLAN tags."""
    off = l2_len(frame)
    return struct.unpack_from("!H", frame, off)[0] if len(frame) >= off + 2 else -1


def parse(frame: bytes) -> SecTag | None:
    """The SecTAG of a MACsec frame (also behind VLAN tags in clear), or None if the frame is
    not MACsec."""
    o = l2_len(frame) - 12
    if len(frame) < o + 22 or ethertype(frame) != ETH_P_MACSEC:
        return None
    tci_an = frame[o + 14]
    sl = frame[o + 15] & 0x3F
    pn, = struct.unpack_from("!I", frame, o + 16)
    sci = None
    hl = o + 20
    if tci_an & TCI_SC:
        if len(frame) < o + 28:
            return None
        sci = frame[o + 20:o + 28].hex()
        hl = o + 28
    return SecTag(mac_str(frame[0:6]), mac_str(frame[6:12]), tci_an & 0xFC, tci_an & 0x03, sl, pn,
                  sci, hl, len(frame))


def secure_data(frame: bytes, icv_len: int = 16) -> bytes:
    t = parse(frame)
    if t is None:
        raise ValueError("not a MACsec frame")
    return frame[t.header_len:len(frame) - icv_len]


def with_pn(frame: bytes, pn: int) -> bytes:
    """A copy of a MACsec frame with its 32-bit PN field replaced (the ICV is left as it was)."""
    b = bytearray(frame)
    struct.pack_into("!I", b, l2_len(frame) + 4, pn & 0xFFFFFFFF)
    return bytes(b)


def bit_flipped(frame: bytes, pn_ahead: int = 1000) -> bytes:
    """A copy with one bit of the Secure Data flipped and the PN moved ahead by pn_ahead.

    Moving the PN ahead makes a receiver with replay protection check the ICV (an old PN would be
    dropped as Late before that), and the ICV then fails: InPktsNotValid.
    """
    t = parse(frame)
    if t is None:
        raise ValueError("not a MACsec frame")
    b = bytearray(with_pn(frame, t.pn + pn_ahead))
    b[t.header_len + 2] ^= 0x01
    return bytes(b)


def send_frames(iface: str, frames: list[bytes]) -> None:
    import socket
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind((iface, 0))
        for fr in frames:
            s.send(fr)
    finally:
        s.close()
