#!/bin/sh
# Build (or reuse) the interop guest image in tests/interop/cache/. See build_guest.py.
exec python3 "$(dirname "$0")/build_guest.py" "$@"
