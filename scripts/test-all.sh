#!/usr/bin/env bash
# Every test: set up what is missing, unit tests for the workspace, then the
# VM suites on each Debian kernel (6.1, 6.12, sid's 7.2), the reconnect test (QEMU killed mid-suite,
# the suite run again against the same running backend) and the restart test
# (zone state and data intact across a backend restart between two boots).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked
bash scripts/build.sh
target/release/zonecopy-ci matrix --kernels 6.1,6.12,7.2 --suite smoke
target/release/zonecopy-ci reconnect --kernel 6.12 --suite smoke
target/release/zonecopy-ci restart --kernel 6.1 --suite smoke
