#!/usr/bin/env bash
# Build a guest kernel from a Linux source tree for zonecopy: merge
# images/config-fragment into the tree's config and build the bzImage (and
# modules, installed under the output directory, when the config has any).
#
# Usage: scripts/build-kernel.sh TREE [OUT]
#
#   TREE  a Linux source tree (top directory with Kconfig and Makefile)
#   OUT   build directory (make O=OUT) [default: TREE itself, in place]
#
# The base config is OUT/.config when it exists (your own config: the
# fragment is merged into it), else `make defconfig`. Idempotent: make
# rebuilds only what changed, and the merge is skipped when every fragment
# line is already in .config. Prints the image path on the last line:
#   image: OUT/arch/x86/boot/bzImage
#   modules: OUT/zonecopy-modules/lib/modules/<release>   (if any)
# Environment: JOBS (default: nproc), MAKEFLAGS as usual.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FRAGMENT=$HERE/images/config-fragment
log() { printf 'build-kernel: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 TREE [OUT]"
tree=$(cd "$1" && pwd) || die "$1: no such directory"
[ -f "$tree/Kconfig" ] && [ -f "$tree/Makefile" ] || die "$tree: not a Linux source tree"
out=${2:-$tree}
mkdir -p "$out"
out=$(cd "$out" && pwd)
jobs=${JOBS:-$(nproc)}
mk() {
	if [ "$out" = "$tree" ]; then
		make -C "$tree" ARCH=x86_64 "$@"
	else
		make -C "$tree" O="$out" ARCH=x86_64 "$@"
	fi
}

# Every CONFIG_X=y line of the fragment, as "CONFIG_X=y".
wanted=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$FRAGMENT")
missing_lines() { grep -vxF -f "$out/.config" <<<"$wanted" || true; }

if [ ! -f "$out/.config" ]; then
	log "no .config: starting from defconfig"
	mk defconfig >/dev/null
fi
if [ -n "$(missing_lines)" ]; then
	log "merging $FRAGMENT"
	(cd "$out" && "$tree/scripts/kconfig/merge_config.sh" -m -O "$out" .config "$FRAGMENT" >/dev/null)
	mk olddefconfig >/dev/null
	dropped=$(missing_lines)
	if [ -n "$dropped" ]; then
		log "these fragment lines did not survive (unmet dependencies?):"
		printf '  %s\n' $dropped >&2
	fi
fi
log "building with $jobs jobs in $out"
mk -j"$jobs" bzImage >&2
release=$(mk -s kernelrelease)
if grep -qx 'CONFIG_MODULES=y' "$out/.config" && grep -q '=m$' "$out/.config"; then
	mk -j"$jobs" modules >&2
	rm -rf "$out/zonecopy-modules"
	mk -s INSTALL_MOD_PATH="$out/zonecopy-modules" modules_install >&2
	echo "modules: $out/zonecopy-modules/lib/modules/$release"
fi
echo "image: $out/arch/x86/boot/bzImage"
