#!/usr/bin/env bash
# Print the uncompressed ELF vmlinux embedded in a bzImage on stdout.
# Under TCG an uncompressed kernel boots measurably faster (no in-guest
# decompression). Works like the kernel's scripts/extract-vmlinux: find each
# compressor's magic bytes, try to decompress from there, keep the first
# result that is an ELF file.
set -euo pipefail
img=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

is_elf() { [ "$(head -c4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

try() { # $1 = magic as printf escape, $2 = grep pattern, $3.. = decompressor
	local magic=$1 pat=$2; shift 2
	local off
	for off in $(LC_ALL=C grep -aboP "$pat" "$img" 2>/dev/null | cut -d: -f1); do
		tail -c +"$((off + 1))" "$img" | "$@" >"$tmp/out" 2>/dev/null || true
		if [ -s "$tmp/out" ] && is_elf "$tmp/out"; then
			cat "$tmp/out"
			exit 0
		fi
	done
}

try gzip '\x1f\x8b\x08' gunzip -c
try xz '\xfd\x37\x7a\x58\x5a\x00' unxz -c
try zstd '\x28\xb5\x2f\xfd' zstd -dc
try bzip2 'BZh' bunzip2 -c
try lzma '\x5d\x00\x00\x00' unlzma -c
echo "extract-vmlinux: no compressed ELF found in $img" >&2
exit 1
