#!/usr/bin/env bash
# The main job: set up what is missing, build, boot a VM with the emulated
# devices and run the default guest suite; prints the guest's verdict.
# Extra arguments go to `zonecopy-ci suite` (e.g. --kernel 6.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec target/release/zonecopy-ci suite --kernel 6.12 --suite smoke "$@"
