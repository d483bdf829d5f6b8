#!/usr/bin/env bash
# Copy-offload benchmark: build, boot one kernel with a plain SCSI disk LUN
# and an NVMe/TCP nvm namespace (192 MiB each), run the guest's `bench`
# suite, and print its `# bench` lines as a table.
#
#   scripts/bench.sh [--kernel K] [--no-build] [--out DIR] [-- RUNNER-ARGS...]
#       K: a cached Debian kernel (6.1, 6.12, 7.2), 7.2-series/7.2-fixed, or
#       a bzImage path [6.12: the copies are passthrough commands (SG_IO,
#       NVMe passthrough), so no kernel copy offload is needed]
#   scripts/bench.sh --table FILE   the table of a console log already taken
#   scripts/bench.sh --self-test    check the table maker against a sample
#
# Exit status: the suite's (0 = every copy verified), never the numbers.
# Timings come from a TCG guest on a shared machine: compare ratios taken
# in the same run, not absolute times across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The table of the `# bench NAME key=value ...` lines in a console log.
bench_table() {
	tr -d '\r' <"$1" | awk '
	function field(k,   i, kv) {
		for (i = 3; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k) return substr($i, length(k) + 2)
		}
		return "-"
	}
	{ sub(/^[ \t]+/, "") }
	$1 == "#" && $2 == "bench" {
		$0 = substr($0, 3)
		if ($2 ~ /-64MiB$/) {
			c[++nc] = sprintf("%-18s %-5s %10s %12s %8s %13s %13s %9s %12s", $2, field("dev"),
				field("offload_s"), field("readwrite_s"), field("ratio"),
				field("offload_fabric_bytes"), field("readwrite_fabric_bytes"),
				field("fabric_ratio"), field("offload_fabric_pct"))
		} else {
			io[++ni] = sprintf("%-18s %-5s %10s %10s", $2, field("dev"),
				field("read_iops"), field("write_iops"))
		}
	}
	END {
		if (nc) {
			printf "%-18s %-5s %10s %12s %8s %13s %13s %9s %12s\n", "copy", "dev",
				"offload_s", "readwrite_s", "speedup", "fabric_off", "fabric_rw",
				"fab_ratio", "off_fab_%"
			for (i = 1; i <= nc; i++) print c[i]
		}
		if (ni) {
			if (nc) print ""
			printf "%-18s %-5s %10s %10s\n", "iops", "dev", "read", "write"
			for (i = 1; i <= ni; i++) print io[i]
		}
		if (!nc && !ni) print "no # bench lines"
	}'
}

self_test() {
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	printf '%s\r\n' \
		'KTAP version 1' \
		'# bench scsi-xcopy-64MiB dev=lun0 bytes=67108864 offload_s=0.083 readwrite_s=0.512 ratio=6.17 offload_MiBps=771.1' \
		'ok 3 scsi_readwrite_64MiB' \
		'    # bench scsi-4KiB-qd1 dev=lun0 read_iops=812 write_iops=640 read_ops=2436' \
		'# benchmark is not a bench line' \
		'# bench nvme-copy-64MiB dev=ns1 offload_s=0.020 readwrite_s=4.000 ratio=200.00 offload_fabric_bytes=1024 readwrite_fabric_bytes=134217728 fabric_ratio=131072.00 offload_fabric_pct=0.0015' \
		>"$tmp/console.log"
	bench_table "$tmp/console.log" >"$tmp/got"
	cat >"$tmp/want" <<'EOF'
copy               dev    offload_s  readwrite_s  speedup    fabric_off     fabric_rw fab_ratio    off_fab_%
scsi-xcopy-64MiB   lun0       0.083        0.512     6.17             -             -         -            -
nvme-copy-64MiB    ns1        0.020        4.000   200.00          1024     134217728 131072.00       0.0015

iops               dev         read      write
scsi-4KiB-qd1      lun0         812        640
EOF
	printf 'no output\n' >"$tmp/empty.log"
	bench_table "$tmp/empty.log" >"$tmp/got-empty"
	if diff -u "$tmp/want" "$tmp/got" && [ "$(cat "$tmp/got-empty")" = "no # bench lines" ]; then
		echo "bench.sh self-test: ok"
	else
		echo "bench.sh self-test: FAILED" >&2
		return 1
	fi
}

kernel=6.12
build=1
out=
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--no-build) build=0; shift ;;
	--out) out=$2; shift 2 ;;
	--table) bench_table "$2"; exit 0 ;;
	--self-test) self_test; exit $? ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

[ "$build" = 1 ] && bash scripts/build.sh
[ -n "$out" ] || out="out/bench-${kernel##*/}-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"

# One 4 KiB-block disk LUN and one nvm namespace, 192 MiB each: source at
# 0, offload destination at 64 MiB, read+write destination at 128 MiB.
status=0
target/release/zonecopy-ci suite --kernel "$kernel" --suite bench --net \
	--lun kind=disk,size=192M,bs=4096 \
	--ns kind=nvm,size=192M,bs=4096 \
	--timeout 900 --out "$out" "${extra[@]}" || status=$?

echo
echo "bench on kernel $kernel ($out/console.log):"
if [ -f "$out/console.log" ]; then
	bench_table "$out/console.log"
	grep -a '^not ok' "$out/console.log" | tr -d '\r' || true
else
	echo "no console log"
fi
exit "$status"
