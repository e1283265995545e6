#!/usr/bin/env python3
"""A stand-in for `macsec forward --config FILE`, to exercise the forwarder plumbing of the
interop harness (ForwarderPeer) before the Rust forwarder exists, and to pin down the contract
the real one is driven by:

    fake_forwarder.py forward --config FILE
    fake_forwarder.py pcap decrypt --config FILE --in CAPTURE.pcap --out PLAIN.pcap

- reads the TOML config (the same keys as the real forwarder, see harness.forwarder_config);
- bridges frames between the plain port and the secure port (AF_PACKET on both, promiscuous,
  frames the socket itself sent - PACKET_OUTGOING - are ignored): plain -> protect -> secure,
  secure -> validate -> plain;
- prints its counters as one JSON object on a line on SIGUSR1, and again when it exits on
  SIGTERM/SIGINT (keys named like 802.1AE/Linux: InPktsOK, InPktsLate, OutPktsEncrypted, ...,
  plus tx_pn / rx_pn as 64-bit next PNs).

`pcap decrypt` reads a capture of the secure link and writes every frame it can validate, of
either direction (the RX SC's frames with the RX SAs, its own SCI's with the TX SAs), as the
plain frame; frames it cannot validate are left out. No replay check.

It is a test double, not a MACsec implementation to rely on: one RX SC, strict validation only,
no VLAN handling. Needs python3-cryptography (AES-GCM); run.py does not need it otherwise.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import tomllib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ETH_P_ALL = 0x0003
ETH_P_MACSEC = 0x88E5
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1

COUNTERS = ["OutPktsUntagged", "InPktsUntagged", "OutPktsTooLong", "InPktsNoTag", "InPktsBadTag",
            "InPktsUnknownSCI", "InPktsNoSCI", "InPktsOverrun", "OutPktsProtected",
            "OutPktsEncrypted", "OutOctetsProtected", "OutOctetsEncrypted", "InOctetsValidated",
            "InOctetsDecrypted", "InPktsUnchecked", "InPktsDelayed", "InPktsOK", "InPktsInvalid",
            "InPktsLate", "InPktsNotValid", "InPktsNotUsingSA", "InPktsUnusedSA"]


def num(v) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


def open_port(name: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((name, 0))
    idx = socket.if_nametoindex(name)
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", idx, PACKET_MR_PROMISC, 0, b""))
    return s


class SA:
    def __init__(self, d: dict, xpn: bool) -> None:
        self.an = num(d["an"])
        self.aead = AESGCM(bytes.fromhex(d["key"]))
        self.pn = num(d["pn"])  # TX: next PN to send; RX: lowest acceptable PN (next_pn)
        self.ssci = bytes.fromhex(d["ssci"]) if xpn else b""
        self.salt = bytes.fromhex(d["salt"]) if xpn else b""


class Forwarder:
    def __init__(self, cfg: dict, open_ports: bool = True) -> None:
        sy = cfg["secy"]
        self.xpn = "xpn" in sy["cipher"]
        self.encrypt = bool(sy["encrypt"])
        self.send_sci = bool(sy["send_sci"])
        self.replay = bool(sy.get("replay_protect", True))
        self.window = num(sy.get("replay_window", 0))
        self.sci = bytes.fromhex(sy["sci"])
        self.tx = {num(sa["an"]): SA(sa, self.xpn) for sa in sy["tx"]["sa"]}
        self.enc_an = num(sy["tx"]["encoding_sa"])
        rx = sy["rx"][0]
        self.rx_sci = bytes.fromhex(rx["sci"])
        self.rx = {num(sa["an"]): SA(sa, self.xpn) for sa in rx["sa"]}
        self.c = dict.fromkeys(COUNTERS, 0)
        if open_ports:
            self.plain = open_port(cfg["ports"]["plain"])
            self.secure = open_port(cfg["ports"]["secure"])

    def iv(self, sci: bytes, sa: SA, pn: int) -> bytes:
        if self.xpn:
            a = sa.ssci + pn.to_bytes(8, "big")
            return bytes(x ^ y for x, y in zip(a, sa.salt))
        return sci + (pn & 0xFFFFFFFF).to_bytes(4, "big")

    # ---- plain -> secure
    def protect(self, frame: bytes) -> None:
        sa = self.tx.get(self.enc_an)
        if sa is None or sa.pn == 0:
            return
        pn = sa.pn
        sa.pn = (pn + 1) & (0xFFFFFFFFFFFFFFFF if self.xpn else 0xFFFFFFFF)
        dst_src, user = frame[:12], frame[12:]
        tci = sa.an | (0x20 if self.send_sci else 0) | (0x0C if self.encrypt else 0)
        sl = len(user) if len(user) < 48 else 0
        tag = struct.pack("!HBBI", ETH_P_MACSEC, tci, sl, pn & 0xFFFFFFFF) + (self.sci if self.send_sci else b"")
        iv = self.iv(self.sci, sa, pn)
        if self.encrypt:
            body = sa.aead.encrypt(iv, user, dst_src + tag)
            self.c["OutPktsEncrypted"] += 1
            self.c["OutOctetsEncrypted"] += len(user)
        else:
            body = user + sa.aead.encrypt(iv, b"", dst_src + tag + user)
            self.c["OutPktsProtected"] += 1
            self.c["OutOctetsProtected"] += len(user)
        self.secure.send(dst_src + tag + body)

    # ---- secure -> plain
    def validate(self, f: bytes) -> None:
        if len(f) < 14 or struct.unpack_from("!H", f, 12)[0] != ETH_P_MACSEC:
            self.c["InPktsNoTag"] += 1
            return
        tci_an, sl_b, pn32 = f[14], f[15], struct.unpack_from("!I", f, 16)[0]
        hl = 28 if tci_an & 0x20 else 20
        sci = f[20:28] if tci_an & 0x20 else f[6:12] + b"\x00\x01"
        if sci != self.rx_sci:
            self.c["InPktsNoSCI"] += 1
            return
        sl = sl_b & 0x3F
        if tci_an & 0x80 or sl_b & 0xC0 or (not self.xpn and pn32 == 0) or len(f) < hl + 16 + 1:
            self.c["InPktsBadTag"] += 1
            return
        if sl:
            f = f[:hl + sl + 16]
        sa = self.rx.get(tci_an & 3)
        if sa is None:
            self.c["InPktsNotUsingSA"] += 1
            return
        lowest = max(1, sa.pn - self.window)
        if self.xpn:  # 802.1AE/802.1AEbw recovery against the lowest acceptable PN
            hi = lowest >> 32
            if (lowest & 0x80000000) and not (pn32 & 0x80000000):
                hi += 1
            pn = (hi << 32) | pn32
        else:
            pn = pn32
        if self.replay and pn < lowest:
            self.c["InPktsLate"] += 1
            return
        dst_src, tag, body = f[:12], f[12:hl], f[hl:]
        iv = self.iv(sci, sa, pn)
        try:
            if tci_an & 0x08:
                user = sa.aead.decrypt(iv, body, dst_src + tag)
                self.c["InOctetsDecrypted"] += len(user)
            else:
                user = body[:-16]
                sa.aead.decrypt(iv, body[-16:], dst_src + tag + user)
                self.c["InOctetsValidated"] += len(user)
        except Exception:  # noqa: BLE001 - InvalidTag
            self.c["InPktsNotValid"] += 1
            return
        if pn < lowest:
            self.c["InPktsDelayed"] += 1
        else:
            self.c["InPktsOK"] += 1
        sa.pn = max(sa.pn, pn + 1)
        self.plain.send(dst_src + user)

    def decrypt_one(self, f: bytes) -> bytes | None:
        """The plain frame of a captured MACsec frame of either direction, or None."""
        if len(f) < 22 or struct.unpack_from("!H", f, 12)[0] != ETH_P_MACSEC:
            return None
        tci_an, sl, pn32 = f[14], f[15] & 0x3F, struct.unpack_from("!I", f, 16)[0]
        hl = 28 if tci_an & 0x20 else 20
        sci = f[20:28] if tci_an & 0x20 else f[6:12] + b"\x00\x01"
        sas = self.rx if sci == self.rx_sci else self.tx if sci == self.sci else {}
        sa = sas.get(tci_an & 3)
        if sa is None:
            return None
        if sl:
            f = f[:hl + sl + 16]
        candidates = [pn32]
        if self.xpn:  # no SA state here: try the 2^32 blocks next to the SA's starting PN
            base = sa.pn >> 32
            candidates = [((base + d) << 32) | pn32 for d in (0, 1, -1) if base + d >= 0]
        dst_src, tag, body = f[:12], f[12:hl], f[hl:]
        for pn in candidates:
            try:
                if tci_an & 0x08:
                    user = sa.aead.decrypt(self.iv(sci, sa, pn), body, dst_src + tag)
                else:
                    user = body[:-16]
                    sa.aead.decrypt(self.iv(sci, sa, pn), body[-16:], dst_src + tag + user)
                return dst_src + user
            except Exception:  # noqa: BLE001 - InvalidTag
                continue
        return None

    def report(self) -> None:
        d = dict(self.c)
        d["tx_pn"] = self.tx[self.enc_an].pn
        d["rx_pn"] = max(sa.pn for sa in self.rx.values())
        print(json.dumps(d), flush=True)

    def loop(self) -> None:
        socks = {self.plain.fileno(): (self.plain, self.protect),
                 self.secure.fileno(): (self.secure, self.validate)}
        while True:
            try:
                ready, _, _ = select.select(list(socks), [], [], 1.0)
            except InterruptedError:
                continue
            for fd in ready:
                s, handler = socks[fd]
                data, addr = s.recvfrom(65535)
                if addr[2] == PACKET_OUTGOING:
                    continue
                handler(data)


def read_pcap(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        data = f.read()
    end = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(end + "I", data, off + 8)[0]
        off += 16
        frames.append(data[off:off + incl])
        off += incl
    return frames


def write_pcap(path: str, frames: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)) + fr)


def pcap_decrypt(args: list[str]) -> int:
    opts = dict(zip(args[0::2], args[1::2]))
    if len(args) != 6 or set(opts) != {"--config", "--in", "--out"}:
        print("usage: fake_forwarder.py pcap decrypt --config FILE --in CAP --out PLAIN", file=sys.stderr)
        return 2
    with open(opts["--config"], "rb") as f:
        fw = Forwarder(tomllib.load(f), open_ports=False)
    frames = read_pcap(opts["--in"])
    plain = [p for p in (fw.decrypt_one(f) for f in frames) if p is not None]
    write_pcap(opts["--out"], plain)
    print(f"decrypted {len(plain)} of {len(frames)} frames", file=sys.stderr)
    return 0


def main() -> int:
    args = sys.argv[1:]
    if args[:2] == ["pcap", "decrypt"]:
        return pcap_decrypt(args[2:])
    if len(args) != 3 or args[0] != "forward" or args[1] != "--config":
        print("usage: fake_forwarder.py forward --config FILE | pcap decrypt --config FILE "
              "--in CAP --out PLAIN", file=sys.stderr)
        return 2
    with open(args[2], "rb") as f:
        cfg = tomllib.load(f)
    fw = Forwarder(cfg)
    signal.signal(signal.SIGUSR1, lambda *_: fw.report())

    def stop(*_):
        fw.report()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fake forwarder: plain={cfg['ports']['plain']} secure={cfg['ports']['secure']} "
          f"cipher={cfg['secy']['cipher']}", file=sys.stderr, flush=True)
    fw.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
