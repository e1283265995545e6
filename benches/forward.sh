#!/usr/bin/env bash
# End-to-end forwarder benchmark (root; needs iperf3). Peers are measured when installed
# (apt-get install iperf3 wireguard-go wireguard-tools openvpn) and skipped with a note
# otherwise.
#   sudo benches/forward.sh                       # 10 s per iperf3 run, 3 rounds
#   BENCH_SECONDS=5 BENCH_ROUNDS=2 sudo benches/forward.sh
#   MACSEC_BIN_BASE=/path/to/old/macsec sudo benches/forward.sh   # before/after, one run
#   BENCH_MTUS=1500 BENCH_ONLY=threads sudo benches/forward.sh    # a subset
# Prints a markdown table: Gbit/s through kernel bridges, through the forwarder pair
# (GCM-AES-128 in each thread mode, GCM-AES-256, integrity-only), wireguard-go and
# OpenVPN at MTU 9000 and 1500, best of the rounds (run alternating), each as a ratio to
# the bridges and to our pair measured in the same run, plus the whole machine's
# CPU-seconds per GB moved, idle RTT added per hop, the daemons' CPU time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin macsec --example forward_bench
MACSEC_BIN="$PWD/target/release/macsec" exec target/release/examples/forward_bench
