#!/usr/bin/env bash
# Build the host binaries (backend, runner) and the static guest binary.
# The guest binary is linked statically (glibc, +crt-static) for its own
# target directory so the host build keeps its flags and cache.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p zonecopy-vhost -p zonecopy-ci
RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build --release --locked -p zonecopy-guest --target x86_64-unknown-linux-gnu
