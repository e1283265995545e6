#!/usr/bin/env python3
"""TCP bulk transfer with a guest: `tcp_client.py IP NBYTES` (run in the host-side namespace).

The guest (guest/init.sh, macsec.tcp=NBYTES) listens on port 5001 (it stores what it receives)
and 5002 (it sends NBYTES of random data, then closes). This sends NBYTES of random data to
5001, then reads 5002 to its end, and prints one JSON line: the bytes and MD5 of each
direction. Every step is bounded (20 s socket timeout, 10 s of connection retries).
"""
import hashlib
import json
import os
import socket
import sys
import time


def connect(ip: str, port: int) -> socket.socket:
    end = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection((ip, port), timeout=20)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def main() -> int:
    ip, n = sys.argv[1], int(sys.argv[2])
    r = {}
    data = os.urandom(n)
    t0 = time.monotonic()
    with connect(ip, 5001) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # wait for the guest to close: everything was received
    r["sent_bytes"], r["sent_md5"] = n, hashlib.md5(data).hexdigest()
    r["sent_s"] = round(time.monotonic() - t0, 3)
    t0 = time.monotonic()
    h, got = hashlib.md5(), 0
    with connect(ip, 5002) as s:
        while True:
            b = s.recv(65536)
            if not b:
                break
            h.update(b)
            got += len(b)
    r["recv_bytes"], r["recv_md5"] = got, h.hexdigest()
    r["recv_s"] = round(time.monotonic() - t0, 3)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
