#!/usr/bin/env bash
# End-to-end forwarder benchmark (root; needs iperf3, the one outside program it runs).
#   sudo benches/forward.sh            # 10 s per iperf3 run
#   BENCH_SECONDS=5 sudo benches/forward.sh
# Prints a markdown table: Gbit/s through kernel bridges and through the forwarder pair
# (GCM-AES-128, GCM-AES-256, integrity-only) at MTU 9000 and 1500, each as a ratio to the
# bridges measured in the same run, plus idle RTT added per hop, CPU time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin macsec --example forward_bench
MACSEC_BIN="$PWD/target/release/macsec" exec target/release/examples/forward_bench
