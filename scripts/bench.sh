#!/usr/bin/env bash
# Every benchmark in one command, then one summary:
# - host: `cargo bench` copy_engine (storage copy engine vs copy_file_range),
#   trace_overhead (4 KiB QD1 through the SCSI target with recording off,
#   whole data, digests: the ratios, and at the end the on/off ratio at the
#   guest's measured QD1 write latency) and startup (1 TiB / 131072-zone device: backend start-up, RSS, REPORT
#   ZONES, against the issue 4 targets);
# - VM: the guest's `bench` suite on one kernel (the runner's bench
#   defaults: a 192 MiB 4 KiB-block disk LUN, a 192 MiB nvm namespace over
#   NVMe/TCP, QEMU's scsi-hd of the same size as the reference, and a
#   loopback sink for raw user-networking throughput): offloaded copies vs
#   read+write, copy_file_range offload path vs copy_max_bytes=0 fallback,
#   fio on every disk with ratios, network throughput. fio measures each
#   cell (device x job) in 3 rounds of 2 s per job (`-- --fio-rounds N
#   --fio-runtime SECS`), the devices taking turns job by job, and reports
#   each cell's median and spread; every ratio is the median of the
#   per-round ratios, with their range. With
#   `-- --nvme-transport pcie` the namespace is our PCIe controller and
#   QEMU's own -device nvme (cache=none, cache=writeback) are its fio
#   references; the copy_file_range ledger tables (offload / fallback /
#   read+write: time, host-interface and media bytes, commands, guest CPU)
#   are printed too. The device timing model: two more 96 MiB namespaces
#   modeled as NVMe/TCP targets on 1 GbE and 100 GbE (--ns ...,timing=),
#   16 x 2 MiB copied by the host and offloaded on each: modeled MiB/s,
#   gain, link use, and the energy ledger (bytes and mJ per component).
# - boot: the smoke suite's time to its first test, the median of 5 runs
#   (ZONECOPY_BENCH_BOOT_RUNS), and where the bench guest's
#   boot went, and the smoke run's own (the kernel by phase from its log,
#   initramfs unpacking, /init's steps, the time before the kernel's clock
#   from the runner's; guest-tools src/bench/boot.rs);
# - issue 17's targets, each with its ratio, its range over the rounds
#   and whether it is met ("undecided" when the range straddles it; our
#   SCSI disk vs QEMU's scsi-hd cache=writeback in the same guest: >= 1.2x
#   at 4 KiB QD1 and QD16, read and write, >= 1.0x 1 MiB sequential; NVMe/TCP
#   sequential >= 5x the slirp baseline, QD1 IOPS >= 0.8x our SCSI disk,
#   boot to the first test <= 2 s; the timing contrast: offload gain >= 10x
#   on the 1 GbE profile and <= 1.5x on the 100 GbE one). NVMe/TCP runs over the runner's tap
#   device (zonecopy-ci --guest-net, default auto); `-- --guest-net user`
#   measures the slirp path.
#
#   scripts/bench.sh [--kernel K] [--no-build] [--no-host] [--out DIR] [-- RUNNER-ARGS...]
#       K: a cached Debian kernel (6.1, 6.12, 7.2), 7.2-series/7.2-fixed, or
#       a bzImage path [6.12: the copies are passthrough commands (SG_IO,
#       NVMe passthrough), so no kernel copy offload is needed]
#       --no-host: skip the cargo benches (VM suite only)
#   scripts/bench.sh --table FILE...  the summary of logs already taken
#       (target/release/zonecopy-ci bench-summary FILE..., which prints
#       the summary at the end of a run too; its --help says what it reads)
#   scripts/bench.sh --self-test      the summary's unit tests (cargo test
#       -p zonecopy-ci benchsum, also run by the README test command)
#
# Exit status: non-zero if a benchmark failed to run or the suite failed
# (a copy did not verify, fio or a transfer failed), never for slow
# numbers. Timings come from a TCG guest on a shared machine: compare the
# ratios taken in the same run, not absolute numbers across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The summary of the `# bench NAME key=value ...` lines in the given logs
# (console logs, the runner's and cargo bench output): `zonecopy-ci
# bench-summary` (ci/src/benchsum; its unit tests hold a sample and the
# summary it must give), as scripts/build.sh built it.
bench_table() {
	local bin=target/release/zonecopy-ci
	if [ ! -x "$bin" ]; then
		echo "bench.sh: no $bin: run scripts/build.sh first" >&2
		return 2
	fi
	"$bin" bench-summary "$@"
}

# The summary's unit tests (the sample logs and their expected summary,
# each target's verdict rule, the parser), then, when the runner is built,
# the summary it prints for a log without `# bench` lines.
self_test() {
	local tmp
	cargo test --locked -q -p zonecopy-ci benchsum || {
		echo "bench.sh self-test: FAILED" >&2
		return 1
	}
	if [ -x target/release/zonecopy-ci ]; then
		tmp=$(mktemp)
		trap 'rm -f "$tmp"' RETURN
		printf 'no output\n' >"$tmp"
		if [ "$(bench_table "$tmp")" != "no # bench lines" ]; then
			echo "bench.sh self-test: FAILED (target/release/zonecopy-ci bench-summary)" >&2
			return 1
		fi
	fi
	echo "bench.sh self-test: ok"
}

kernel=6.12
build=1
host=1
out=
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--no-build) build=0; shift ;;
	--no-host) host=0; shift ;;
	--out) out=$2; shift 2 ;;
	--table) shift; bench_table "$@"; exit 0 ;;
	--self-test) self_test; exit $? ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

[ "$build" = 1 ] && bash scripts/build.sh
[ -n "$out" ] || out="out/bench-${kernel##*/}-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"

status=0
logs=()
if [ "$host" = 1 ]; then
	for b in copy_engine startup trace_overhead; do
		echo "== cargo bench --bench $b (log: $out/$b.log)"
		cargo bench --locked -p zonecopy-vhost --bench "$b" 2>&1 | tee "$out/$b.log" || status=1
		logs+=("$out/$b.log")
	done
fi

# The boot target is the time to the first test of the leanest suite,
# the median of BOOT_RUNS boots (one swings 1.8-2.6 s on an idle host);
# the first run's console log gives the breakdown.
boot_runs=${ZONECOPY_BENCH_BOOT_RUNS:-5}
echo "== smoke suite on kernel $kernel x $boot_runs, for the boot time (logs: $out/boot, $out/boot-N)"
: >"$out/boot.log"
for i in $(seq 1 "$boot_runs"); do
	dir="$out/boot"
	[ "$i" = 1 ] || dir="$out/boot-$i"
	target/release/zonecopy-ci suite --kernel "$kernel" --suite smoke --out "$dir" \
		2>&1 | tee -a "$out/boot.log" || status=1
done
logs+=("$out/boot.log")
[ -f "$out/boot/console.log" ] && logs+=("$out/boot/console.log")

echo "== bench suite on kernel $kernel (logs: $out/vm)"
target/release/zonecopy-ci suite --kernel "$kernel" --suite bench \
	--timeout 900 --out "$out/vm" "${extra[@]}" 2>&1 | tee "$out/runner.log" || status=1
logs+=("$out/runner.log")
[ -f "$out/vm/console.log" ] && logs+=("$out/vm/console.log")

echo
echo "== summary (kernel $kernel, $out):"
if [ ${#logs[@]} -gt 0 ]; then
	bench_table "${logs[@]}" || status=1
	[ -f "$out/vm/console.log" ] && { grep -a '^not ok' "$out/vm/console.log" | tr -d '\r' || true; }
else
	echo "no logs"
fi
exit "$status"
