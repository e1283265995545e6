#!/usr/bin/env python3
"""Send every frame of a pcap file on an interface, raw (AF_PACKET), in order.

Run inside the test network namespace: `ip netns exec NS python3 inject.py IFACE FILE.pcap`.
run.py builds the frames (a replayed and a bit-flipped copy of a captured MACsec frame) and
uses this to put them on the wire towards one MACsec peer.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import macsec_wire  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    iface, path = sys.argv[1], sys.argv[2]
    frames = macsec_wire.read_pcap(path)
    macsec_wire.send_frames(iface, frames)
    print(f"inject: sent {len(frames)} frame(s) on {iface}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
