#!/usr/bin/env python3
"""Instructions per frame of MACsec seal/open and of the raw AES-GCM call (callgrind).

    python3 benches/icount.py                      # AES-128 (conf, integ) x (64, 1514, 9014)
    python3 benches/icount.py 'seal_gcm-aes-256_conf_aws-lc' 64

Wall-clock times on a shared 2-core machine are too noisy to resolve a few tens of
nanoseconds (see benches/ratio.py); instruction counts are exact and repeatable. For
each benchmark of benches/secy.rs (aws-lc backend) this runs the bench binary under
valgrind --tool=callgrind in criterion's --profile-time mode, collecting only inside
criterion's `Bencher::iter` (so setup is excluded), and divides by the number of
AES-GCM calls (EVP_AEAD_CTX_seal_scatter / _open_gather): instructions per frame for
`raw` and `macsec`, the instructions MACsec adds per frame, and the share of it spent
inside the AEAD. Under valgrind AWS-LC takes its AES-NI/AVX2 path (valgrind has no
AVX-512), so the AEAD's own count is not that of a VAES machine; the added count is
what MACsec's Rust code executes either way.

Needs valgrind (Debian: apt-get install valgrind). Python 3 standard library only.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GROUPS = [
    f"{op}_gcm-aes-128_{mode}_aws-lc" for op in ("seal", "open") for mode in ("conf", "integ")
]
DEFAULT_SIZES = ["64", "1514", "9014"]


def bench_binary():
    out = subprocess.run(
        ["cargo", "bench", "-p", "macsec", "--features", "bench-internals", "--bench", "secy", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == "secy":
            return msg["executable"]
    sys.exit("bench binary not found")


CALL = re.compile(r"^\s*([\d,]+) .*<\s.*\((\d[\d,]*)x\)")
SELF = re.compile(r"^\s*([\d,]+) .*\*\s+(.*)$")


def count(binary, bench_id):
    """(Ir inside Bencher::iter, AEAD calls) for one benchmark."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cg.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--toggle-collect=*Bencher*iter*",
             f"--callgrind-out-file={out}", binary, "--bench", f"^{re.escape(bench_id)}$",
             "--profile-time", "1"],
            check=True, capture_output=True, text=True,
        )
        ann = subprocess.run(
            ["callgrind_annotate", "--tree=caller", "--inclusive=yes", str(out)],
            check=True, capture_output=True, text=True,
        ).stdout
    total = None
    calls = 0
    pending = []
    for line in ann.splitlines():
        m = CALL.match(line)
        if m:
            pending.append(int(m.group(2).replace(",", "")))
            continue
        m = SELF.match(line)
        if m:
            name = m.group(2)
            if "Bencher<M>::iter" in name and total is None:
                total = int(m.group(1).replace(",", ""))
            if re.search(r"EVP_AEAD_CTX_(seal_scatter|open_gather) ", name):
                calls += sum(pending)
        if not line.strip():
            pending = []
    if not total or not calls:
        sys.exit(f"{bench_id}: no samples (is it an aws-lc benchmark?)")
    return total, calls


def main():
    args = sys.argv[1:]
    groups = [a for a in args if not a.isdigit()] or DEFAULT_GROUPS
    sizes = [a for a in args if a.isdigit()] or DEFAULT_SIZES
    binary = bench_binary()
    fmt = "{:<30} {:>5} {:>10} {:>10} {:>9} {:>7}"
    print(fmt.format("group", "size", "raw Ir", "macsec Ir", "added Ir", "ratio"))
    for g in groups:
        for s in sizes:
            per = {}
            for f in ("raw", "macsec"):
                total, calls = count(binary, f"{g}/{f}/{s}")
                per[f] = total / calls
            raw, mac = per["raw"], per["macsec"]
            print(fmt.format(g, s, f"{raw:.0f}", f"{mac:.0f}", f"{mac - raw:.0f}",
                             f"{raw / mac:.3f}"), flush=True)


if __name__ == "__main__":
    main()
