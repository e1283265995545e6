#!/bin/sh
# The interop suite as CI runs it (root, Debian 12, no KVM): host packages, the release
# binary, then Debian's kernel (QEMU/TCG) against `macsec forward`, captures and MKA
# included. Exits non-zero on any failure; the last line is "N passed, N failed".
#   sh tests/interop/ci.sh            # forwarder peer (the whole suite, < 15 min)
#   INTEROP_PEER=vm sh tests/interop/ci.sh   # kernel <-> kernel (checks the harness)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sh "$here/install-host-deps.sh"
cd "$root"
if [ "${INTEROP_PEER:-forwarder}" = forwarder ]; then
    cargo build --release --quiet
    exec python3 tests/interop/run.py --peer forwarder --forwarder-bin target/release/macsec "$@"
fi
exec python3 tests/interop/run.py --peer vm "$@"
