#!/usr/bin/env python3
"""A userspace 802.1Q access port for the interop harness, whose host kernels may have no
VLAN support (no 8021q, no tc vlan action).

    vlan_shim.py UNTAGGED TAGGED VID SECONDS

Frames received on UNTAGGED get an 802.1Q tag for VID (priority 0) inserted after the
addresses and are sent on TAGGED; frames received on TAGGED carrying VLAN VID (the kernel
takes the tag off and reports it in PACKET_AUXDATA; a tag still in the frame counts too)
are sent on UNTAGGED without it; everything else is dropped. Exits after SECONDS, or when
stdin closes (the harness holds it open). Python 3 standard library only.
"""

import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
TP_STATUS_VLAN_VALID = 1 << 4
TPID = 0x8100


def open_port(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # never read our own sends back
    s.bind((ifname, 0))
    return s


def recv(s: socket.socket) -> tuple[bytes, int | None]:
    """(frame as received, VLAN ID from the auxiliary data or None)."""
    data, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
    vid = None
    for level, kind, cdata in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
            status, = struct.unpack_from("=I", cdata, 0)
            tci, = struct.unpack_from("=H", cdata, 16)
            if status & TP_STATUS_VLAN_VALID:
                vid = tci & 0x0FFF
    return data, vid


def main() -> int:
    untagged_if, tagged_if, vid, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    u, t = open_port(untagged_if), open_port(tagged_if)
    tag = struct.pack("!HH", TPID, vid & 0x0FFF)
    deadline = time.monotonic() + seconds
    counts = {"tagged": 0, "untagged": 0, "dropped": 0}
    watch = [u, t, sys.stdin]
    while time.monotonic() < deadline:
        ready, _, _ = select.select(watch, [], [], max(0.0, min(1.0, deadline - time.monotonic())))
        for s in ready:
            if s is sys.stdin:
                if not os.read(sys.stdin.fileno(), 4096):
                    watch.remove(sys.stdin)
                    deadline = 0  # the harness is gone
                continue
            frame, aux_vid = recv(s)
            if len(frame) < 14:
                counts["dropped"] += 1
            elif s is u:
                t.send(frame[:12] + tag + frame[12:])
                counts["tagged"] += 1
            elif aux_vid == vid:
                u.send(frame)
                counts["untagged"] += 1
            elif aux_vid is None and frame[12:16] == tag:
                u.send(frame[:12] + frame[16:])
                counts["untagged"] += 1
            else:
                counts["dropped"] += 1
    print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
