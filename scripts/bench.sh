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
#   scripts/bench.sh --self-test      check the summary maker on a sample
#
# Exit status: non-zero if a benchmark failed to run or the suite failed
# (a copy did not verify, fio or a transfer failed), never for slow
# numbers. Timings come from a TCG guest on a shared machine: compare the
# ratios taken in the same run, not absolute numbers across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The summary of the `# bench NAME key=value ...` lines in the given logs
# (console logs and cargo bench output).
bench_table() {
	cat "$@" | tr -d '\r' | awk '
	function field(k,   i, kv) {
		for (i = 3; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k) return substr($i, length(k) + 2)
		}
		return "-"
	}
	# A cell measured in rounds is KEY=median KEY_range=min..max
	# (guest-tools src/bench/stats.rs); lo(), hi() read the range (the
	# median itself when there is none).
	function lo(k,   r) { r = field(k "_range"); return r == "-" ? field(k) : substr(r, 1, index(r, "..") - 1) }
	function hi(k,   r) { r = field(k "_range"); return r == "-" ? field(k) : substr(r, index(r, "..") + 2) }
	# (max - min) / median of cell k, in percent.
	function spread(k,   x) {
		x = field(k)
		if (field(k "_range") == "-" || x + 0 <= 0) return "-"
		return sprintf("%.0f%%", (hi(k) - lo(k)) / x * 100)
	}
	# The fio table'"'"'s columns: job[] (see BEGIN), with p, q, m the key'"'"'s
	# prefix, 4 KiB suffix and 1 MiB suffix.
	function fio(label,   i, k, r) {
		for (i = 1; i <= 6; i++) k[i] = p job[i] (i <= 4 ? q : m)
		k[7] = "randread_qd1_lat_us"; k[8] = "randwrite_qd1_lat_us"
		r = sprintf("%-17s %-5s %9s %9s %9s %9s %9s %9s %8s %8s", label, field("dev"),
			field(k[1]), field(k[2]), field(k[3]), field(k[4]), field(k[5]), field(k[6]), field(k[7]), field(k[8]))
		if (field(k[1] "_range") != "-")
			r = r "\n" sprintf("%-17s %-5s %9s %9s %9s %9s %9s %9s %8s %8s", "  spread", "",
				spread(k[1]), spread(k[2]), spread(k[3]), spread(k[4]), spread(k[5]), spread(k[6]), spread(k[7]), spread(k[8]))
		return r
	}
	# The jobs of guest-tools src/bench/fio.rs JOBS, in the order of the
	# fio table'"'"'s columns and of the SCSI targets.
	BEGIN { split("randread_qd1 randwrite_qd1 randread_qd16 randwrite_qd16 seqread_1M seqwrite_1M", job, " ") }
	/^  (copy_file_range|engine|read\+write)/ { e[++ne] = $0 }
	# The runner'"'"'s own summary line: "SUITE on KERNEL: ... (boot X s, ...)".
	/^[a-z-]+ on [^ ]+: .*\(boot [0-9.]+ s/ {
		t = $0; sub(/.*\(boot /, "", t); sub(/ s.*/, "", t)
		# The first of a suite'"'"'s runs is the one whose console log the
		# breakdown reads; every smoke run counts toward the boot target.
		if (!($1 in runner_boot)) { runner_boot[$1] = t; runner_kernel[$1] = $3; sub(/:$/, "", runner_kernel[$1]) }
		if ($1 == "smoke") smoke_boot[++nsmoke] = t + 0
	}
	# The per-copy ledger tables (bench/ledger.rs): "# ledger ..." and
	# its "#   ..." rows.
	/^# ledger / { g[++ng] = substr($0, 3); inl = 1; next }
	inl && /^#   / { g[++ng] = substr($0, 3); next }
	{ inl = 0 }
	{ sub(/^[ \t]+/, "") }
	$1 == "#" && $2 == "bench" {
		$0 = substr($0, 3)
		if ($2 ~ /^timing-/) {
			tm[++ntm] = sprintf("%-15s %-5s %9s %9s %7s %9s %9s %9s %9s", substr($2, 8), field("dev"),
				field("host_MiBps"), field("offload_MiBps"), field("gain"),
				field("host_link_h2c_pct"), field("host_link_c2h_pct"),
				field("offload_link_h2c_pct"), field("offload_link_c2h_pct"))
			if ($2 == "timing-nvmeof-1gbe") {
				g1 = field("gain"); hl1 = field("host_link_c2h_pct"); ol1 = field("offload_link_h2c_pct")
			}
			if ($2 == "timing-nvmeof-100gbe") g100 = field("gain")
		} else if ($2 ~ /-cfr-64MiB$/) {
			k[++nk] = sprintf("%-16s %-5s %9s %10s %11s %8s %12s %12s %8s %-9s %s", $2, field("dev"),
				field("offload_s"), field("fallback_s"), field("readwrite_s"),
				field("offload_vs_fallback_time"), field("offload_fabric_bytes"),
				field("fallback_fabric_bytes"), field("offload_vs_fallback_fabric"),
				field("offload_path"), field("offload_data"))
		} else if ($2 ~ /-64MiB$/) {
			c[++nc] = sprintf("%-18s %-5s %10s %12s %8s %13s %13s %9s %12s", $2, field("dev"),
				field("offload_s"), field("readwrite_s"), field("ratio"),
				field("offload_fabric_bytes"), field("readwrite_fabric_bytes"),
				field("fabric_ratio"), field("offload_fabric_pct"))
		} else if ($2 ~ /^fio-/) {
			p = ""; q = "_iops"; m = "_MiBps"
			f[++nf] = fio(substr($2, 5))
			if ($2 == "fio-nvme")
				for (i = 0; i <= 1; i++) {
					x = i ? "seqwrite_1M_MiBps" : "seqread_1M_MiBps"
					nvme_seq[i] = field(x); nvme_seq_lo[i] = lo(x); nvme_seq_hi[i] = hi(x)
				}
			if ($2 == "fio-scsi") wlat = field("randwrite_qd1_lat_us")
		} else if ($2 == "trace_overhead") {
			tov = field("overhead_us")
			trc = sprintf("4 KiB QD1 in-process (scsi::Target::execute): off %s IOPS, whole data %s IOPS (on/off %s), digest %s IOPS (on/off %s); +%s us per command",
				field("iops_off"), field("iops_whole"), field("ratio_whole"),
				field("iops_digest"), field("ratio_digest"), tov)
		} else if ($2 ~ /-vs-/ && $2 != "nvme-vs-usernet") {
			p = ""; q = ""; m = ""
			f[++nf] = fio($2)
			if ($2 == "nvme-vs-scsi")
				for (i = 1; i <= 2; i++) {
					x = i == 1 ? "randread_qd1" : "randwrite_qd1"
					nvs[i] = field(x); nvs_lo[i] = lo(x); nvs_hi[i] = hi(x)
				}
			if ($2 == "scsi-vs-scsihd-wb")
				for (i = 1; i <= 6; i++) {
					svw[i] = field(job[i]); svw_lo[i] = lo(job[i]); svw_hi[i] = hi(job[i])
				}
		} else if ($2 == "fio") {
			fio_plan = sprintf("median of %s interleaved rounds x %s s per job", field("rounds"), field("runtime_s"))
		} else if ($2 == "guest-net") {
			netpath = field("path") " (MTU " field("mtu") ")"
		} else if ($2 == "boot") {
			# One per suite: the smoke run'"'"'s (suite=smoke) and the bench guest'"'"'s.
			su = field("suite"); if (su == "-") su = "bench"
			if (!(su in bstart)) border[++nb] = su
			bstart[su] = field("guest_start_s"); bkern[su] = field("kernel_s"); bluns[su] = field("luns_s")
			bexec[su] = field("exec_s")
			bk_line[su] = sprintf("setup %s, CPU %s, to the first PCI probe %s, initcalls %s, unpack the initramfs %s, late initcalls and freeing %s",
				field("k_setup_s"), field("k_cpu_s"), field("k_pci_s"), field("k_initcalls_s"), field("unpack_s"), field("k_late_s"))
			bi_line[su] = sprintf("mounts %s, modprobe %s, network %s, host root %s",
				field("mounts_s"), field("modules_s"), field("net_s"), field("hostroot_s"))
		} else if ($2 == "usernet") {
			n[++nn] = sprintf("%s raw TCP: guest->host %s MiB/s, host->guest %s MiB/s (%s bytes each way)",
				"NETPATH", field("send_MiBps"), field("recv_MiBps"), field("bytes"))
		} else if ($2 == "nvme-vs-usernet") {
			n[++nn] = sprintf("NVMe/TCP seq 1 MiB: read %s MiB/s = %s x raw host->guest; write %s MiB/s = %s x raw guest->host",
				field("seqread_MiBps"), field("seqread_of_usernet"),
				field("seqwrite_MiBps"), field("seqwrite_of_usernet"))
		} else if ($2 == "startup") {
			s[++ns] = sprintf("backend start-up, %s zones: %s ms (target <= 1000; 1 GiB: %s ms), of it Device::open %s ms", field("zones"), field("start_ms"), field("start_base_ms"), field("open_ms"))
			s[++ns] = sprintf("RSS after start-up %s KiB (HWM %s), + %s KiB peak for one full SCSI REPORT ZONES (target <= 102400 KiB)", field("rss_start_kib"), field("hwm_start_kib"), field("report_scsi_peak_kib"))
			s[++ns] = sprintf("full REPORT ZONES: core %s ms, SCSI front end %s ms (target <= 100)", field("report_core_ms"), field("report_scsi_ms"))
		}
	}
	END {
		if (trc != "") {
			print "recording (host, cargo bench trace_overhead):"
			print "  " trc
			if (wlat != "" && wlat != "-")
				printf "  at the guest'"'"'s 4 KiB QD1 write latency (fio-scsi, %s us): on/off %.3f (estimated: latency / (latency + %s us))\n", wlat, wlat / (wlat + tov), tov
			print ""
		}
		if (ne) {
			print "copy engine (host, cargo bench copy_engine):"
			for (i = 1; i <= ne; i++) print e[i]
			print ""
		}
		if (ns) {
			print "large zoned device (host, cargo bench startup):"
			for (i = 1; i <= ns; i++) print "  " s[i]
			print ""
		}
		if (nc) {
			printf "%-18s %-5s %10s %12s %8s %13s %13s %9s %12s\n", "copy", "dev",
				"offload_s", "readwrite_s", "speedup", "fabric_off", "fabric_rw",
				"fab_ratio", "off_fab_%"
			for (i = 1; i <= nc; i++) print c[i]
			print ""
		}
		if (nk) {
			print "copy_file_range (a) offload path, (b) copy_max_bytes 0, (c) guest read+write:"
			printf "%-16s %-5s %9s %10s %11s %8s %12s %12s %8s %-9s %s\n", "cfr", "dev",
				"a_s", "b_s", "c_s", "a/b_s", "fabric_a", "fabric_b", "a/b_fab", "a_path", "a_data"
			for (i = 1; i <= nk; i++) print k[i]
			print ""
		}
		if (nf) {
			if (fio_plan == "") print "fio (4 KiB IOPS, 1 MiB MiB/s; -vs- rows: first / second):"
			else printf "fio, %s (4 KiB IOPS, 1 MiB MiB/s; -vs- rows: first / second, the median of the per-round ratios; spread: (max - min) / median):\n", fio_plan
			printf "%-17s %-5s %9s %9s %9s %9s %9s %9s %8s %8s\n", "device", "dev",
				"rr_qd1", "rw_qd1", "rr_qd16", "rw_qd16", "seq_r", "seq_w", "rlat_us", "wlat_us"
			for (i = 1; i <= nf; i++) print f[i]
			print ""
		}
		if (ntm) {
			print "timing model (modeled device classes, 16 x 2 MiB; link use % each way):"
			printf "%-15s %-5s %9s %9s %7s %9s %9s %9s %9s\n", "profile", "dev", "host_MiBs",
				"off_MiBs", "gain", "host_h2c%", "host_c2h%", "off_h2c%", "off_c2h%"
			for (i = 1; i <= ntm; i++) print tm[i]
			print ""
		}
		for (i = 1; i <= ng; i++) print g[i]
		if (ng) print ""
		if (netpath == "") netpath = "user networking"
		else netpath = "guest network " netpath
		for (i = 1; i <= nn; i++) { sub(/NETPATH/, netpath, n[i]); print n[i] }
		if (nn) print ""
		if (nb) print "boot breakdown (seconds; the smoke run is the boot target'"'"'s):"
		for (i = 1; i <= nb; i++) {
			su = border[i]
			x = bstart[su] - bkern[su] - bexec[su]
			if (su in runner_boot)
				printf "  %s: run start to the first KTAP line %s (runner) = set-up, QEMU and firmware before the kernel'"'"'s clock %.2f + kernel %s + /init %.2f + exec %s (tool started at %s)\n",
					su, runner_boot[su], runner_boot[su] - bstart[su], bkern[su], x, bexec[su], bstart[su]
			else
				printf "  %s: kernel %s + /init %.2f + exec %s = tool started at %s on the kernel'"'"'s clock\n",
					su, bkern[su], x, bexec[su], bstart[su]
			print "    kernel: " bk_line[su]
			printf "    /init: %s", bi_line[su]
			if (bluns[su] != "-") printf "; every LUN there %s after the tool started", bluns[su]
			print ""
		}
		if (nb) print ""
		targets()
		if (!nc && !nk && !nf && !nn && !ns && !ne && !ng && !nt && !ntm && trc == "") print "no # bench lines"
	}
	function met(ok) { return ok ? "met" : "NOT met" }
	# A ratio measured in rounds is met only if its whole range is; a
	# range that straddles the target decides nothing.
	function decide(med, l, h, want) {
		if (l + 0 >= want) return "met"
		if (h + 0 < want) return "NOT met"
		return med + 0 >= want ? "undecided (median met, range straddles)" : "undecided (median NOT met, range straddles)"
	}
	# The same for a time that must stay at or under `want`.
	function decide_le(med, l, h, want) {
		if (h + 0 <= want) return "met"
		if (l + 0 > want) return "NOT met"
		return med + 0 <= want ? "undecided (median met, range straddles)" : "undecided (median NOT met, range straddles)"
	}
	# Sort a[1..n] ascending in place (insertion sort: a handful of runs).
	function sort_n(a, n,   i, j, x) {
		for (i = 2; i <= n; i++) {
			x = a[i]
			for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
			a[j + 1] = x
		}
	}
	# The median of a[1..n], sorted.
	function median_n(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	# "[min..max]" of a ratio, empty for a single sample.
	function rng(l, h) { return l == h ? "" : sprintf("[%s..%s]", l, h) }
	# Issue 17'"'"'s targets, each with its ratio. The NVMe/TCP baseline is
	# the run that filed it (6.12, slirp): 81 MiB/s read, 32 MiB/s write.
	# Our SCSI disk vs QEMU'"'"'s scsi-hd (cache=writeback) in the same
	# guest: >= 1.2x at 4 KiB QD1 and QD16, >= 1.0x 1 MiB sequential.
	# Every ratio is the median of the per-round ratios, with their range.
	function targets(   x, i, want, what, base) {
		nt = 0
		if (svw[1] != "" && svw[1] != "-") {
			split("4 KiB rand read QD1,4 KiB rand write QD1,4 KiB rand read QD16,4 KiB rand write QD16,1 MiB seq read,1 MiB seq write", what, ",")
			for (i = 1; i <= 6; i++) {
				want = i <= 4 ? 1.2 : 1.0
				tg[++nt] = sprintf("SCSI %-22s = %5s x scsi-hd (writeback) %-12s target >= %.1fx   %s", what[i], svw[i], rng(svw_lo[i], svw_hi[i]), want, decide(svw[i], svw_lo[i], svw_hi[i], want))
			}
		}
		if (nvme_seq[0] != "" && nvme_seq[0] != "-") {
			split("81 32", base, " "); split("read write", what, " ")
			for (i = 0; i <= 1; i++) {
				x = nvme_seq[i] / base[i + 1]
				tg[++nt] = sprintf("NVMe/TCP seq %-5s %7.1f MiB/s = %5.2f x %s (slirp) %-14s target >= 5x     %s", what[i + 1], nvme_seq[i], x, base[i + 1],
					rng(sprintf("%.2f", nvme_seq_lo[i] / base[i + 1]), sprintf("%.2f", nvme_seq_hi[i] / base[i + 1])),
					decide(x, nvme_seq_lo[i] / base[i + 1], nvme_seq_hi[i] / base[i + 1], 5))
			}
		}
		if (nvs[1] != "" && nvs[1] != "-") {
			split("read write", what, " ")
			for (i = 1; i <= 2; i++)
				tg[++nt] = sprintf("NVMe/TCP QD1 %-5s IOPS = %5s x our SCSI disk %-12s target >= 0.8x   %s", what[i], nvs[i], rng(nvs_lo[i], nvs_hi[i]), decide(nvs[i], nvs_lo[i], nvs_hi[i], 0.8))
		}
		# The boot: the median of the smoke runs (bench.sh boots it
		# BOOT_RUNS times; the first may also rebuild the initramfs).
		if (nsmoke) {
			sort_n(smoke_boot, nsmoke)
			x = median_n(smoke_boot, nsmoke)
			tg[++nt] = sprintf("boot to the first test (smoke, %s) %.1f s of %d runs %-10s target <= 2 s    %s", runner_kernel["smoke"], x, nsmoke,
				rng(smoke_boot[1], smoke_boot[nsmoke]), decide_le(x, smoke_boot[1], smoke_boot[nsmoke], 2))
		}
		# The published anchor (2 MiB x 16 over NVMe/TCP): offload took
		# 1 GbE from 100 to 2655 MiB/s, 100 GbE only from 1027 to 1183.
		if (g1 != "" && g100 != "")
			tg[++nt] = sprintf("timing contrast: offload gain 1 GbE %sx (link %s%% -> %s%%), 100 GbE %sx   target >= 10x and <= 1.5x   %s", g1, hl1, ol1, g100, g1 + 0 >= 10 && g100 + 0 <= 1.5 ? "reproduced" : "NOT reproduced")
		if (nt) print "targets (issue 17):"
		for (i = 1; i <= nt; i++) print "  " tg[i]
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
		'# benchmark is not a bench line' \
		'# bench fio rounds=3 runtime_s=2 devices=scsi,scsihd,nvme fio_s=160.2' \
		'# bench fio-scsi dev=lun0 seqwrite_1M_MiBps=150.5 seqwrite_1M_MiBps_range=140.0..160.0 randwrite_qd1_iops=900 randwrite_qd1_iops_range=850..990 randwrite_qd1_lat_us=1000.1 randwrite_qd1_lat_us_range=900.0..1100.0 randwrite_qd16_iops=3000 randwrite_qd16_iops_range=2900..3100 randread_qd1_iops=1000 randread_qd1_iops_range=950..1050 randread_qd1_lat_us=900.0 randread_qd1_lat_us_range=880.0..950.0 randread_qd16_iops=4000 randread_qd16_iops_range=3000..4400 seqread_1M_MiBps=200.0 seqread_1M_MiBps_range=190.0..210.0' \
		'# bench fio-scsihd dev=sdb seqwrite_1M_MiBps=100.0 seqwrite_1M_MiBps_range=100.0..100.0 randwrite_qd1_iops=450 randwrite_qd1_iops_range=440..460 randwrite_qd1_lat_us=2000.2 randwrite_qd1_lat_us_range=1990.0..2100.0 randwrite_qd16_iops=1500 randwrite_qd16_iops_range=1400..1500 randread_qd1_iops=500 randread_qd1_iops_range=500..500 randread_qd1_lat_us=1800.0 randread_qd1_lat_us_range=1800.0..1800.0 randread_qd16_iops=2000 randread_qd16_iops_range=1900..2100 seqread_1M_MiBps=100.0 seqread_1M_MiBps_range=90.0..100.0' \
		'# bench scsi-vs-scsihd seqwrite_1M=1.50 seqwrite_1M_range=1.40..1.60 randwrite_qd1=2.00 randwrite_qd1_range=1.95..2.05 randwrite_qd16=2.00 randwrite_qd16_range=2.00..2.00 randread_qd1=2.00 randread_qd1_range=1.90..2.10 randread_qd16=2.00 randread_qd16_range=1.80..2.20 seqread_1M=2.00 seqread_1M_range=2.00..2.10' \
		'# bench scsi-vs-scsihd-wb seqwrite_1M=0.95 seqwrite_1M_range=0.90..0.99 randwrite_qd1=1.20 randwrite_qd1_range=1.10..1.30 randwrite_qd16=1.10 randwrite_qd16_range=1.00..1.25 randread_qd1=1.40 randread_qd1_range=1.30..1.50 randread_qd16=1.50 randread_qd16_range=1.45..1.55 seqread_1M=1.60 seqread_1M_range=1.50..1.70' \
		'# bench fio-nvme dev=ns1 seqwrite_1M_MiBps=170.0 seqwrite_1M_MiBps_range=165.0..175.0 randwrite_qd1_iops=800 randwrite_qd1_iops_range=780..820 randwrite_qd1_lat_us=1200.0 randwrite_qd1_lat_us_range=1150.0..1250.0 randwrite_qd16_iops=2000 randwrite_qd16_iops_range=2000..2000 randread_qd1_iops=900 randread_qd1_iops_range=850..950 randread_qd1_lat_us=1000.0 randread_qd1_lat_us_range=950.0..1050.0 randread_qd16_iops=3000 randread_qd16_iops_range=2900..3200 seqread_1M_MiBps=420.0 seqread_1M_MiBps_range=400.0..430.0' \
		'# bench nvme-vs-scsi seqwrite_1M=1.13 seqwrite_1M_range=1.10..1.20 randwrite_qd1=0.79 randwrite_qd1_range=0.70..0.82 randwrite_qd16=0.67 randwrite_qd16_range=0.60..0.70 randread_qd1=0.90 randread_qd1_range=0.85..0.95 randread_qd16=0.75 randread_qd16_range=0.70..0.80 seqread_1M=2.10 seqread_1M_range=2.00..2.20' \
		'# bench usernet bytes=134217728 send_MiBps=80.0 recv_MiBps=60.0 send_s=1.600 recv_s=2.133' \
		'# bench boot kernel_s=1.100 k_setup_s=0.300 k_cpu_s=0.020 k_pci_s=0.250 k_initcalls_s=0.200 unpack_s=0.150 k_late_s=0.180 mounts_s=0.020 modules_s=0.300 net_s=0.010 hostroot_s=0.050 exec_s=0.030 guest_start_s=1.510' \
		'# bench boot suite=smoke kernel_s=1.000 k_setup_s=0.300 k_cpu_s=0.020 unpack_s=0.100 mounts_s=0.020 modules_s=0.130 net_s=0.010 hostroot_s=0.000 exec_s=0.010 guest_start_s=1.170 luns_s=0.040' \
		'# bench nvme-copy-64MiB dev=ns1 offload_s=0.020 readwrite_s=4.000 ratio=200.00 offload_fabric_bytes=1024 readwrite_fabric_bytes=134217728 fabric_ratio=131072.00 offload_fabric_pct=0.0015' \
		'# bench nvme-cfr-64MiB dev=ns1 bytes=67108864 offload_s=12.000 offload_path=fallback offload_data=verified offload_fabric_bytes=300 fallback_s=4.000 fallback_fabric_bytes=100 readwrite_s=1.500 offload_vs_fallback_time=3.00 offload_vs_fallback_fabric=3.00' \
		'# bench scsi-cfr-64MiB dev=lun0 bytes=67108864 offload_s=n/a fallback_s=n/a readwrite_s=0.500 offload_vs_fallback_time=n/a' \
		'# bench nvme-vs-usernet seqread_MiBps=12.0 usernet_recv_MiBps=60.0 seqread_of_usernet=0.20 seqwrite_MiBps=8.0 usernet_send_MiBps=80.0 seqwrite_of_usernet=0.10' \
		'# ledger nvme-cfr-64MiB: one 64 MiB copy each way' \
		'#                           (a) offload   (b) fallback (c) read+write' \
		'#   wall time s                   0.043          1.230          0.300' \
		'ok 12 nvme_cfr_64MiB' \
		'#   not a ledger row' \
		'# bench timing-nvmeof-1gbe dev=ns2 bytes=33554432 host_MiBps=105.0 offload_MiBps=2628.6 gain=25.03 host_link_h2c_pct=93.58 host_link_c2h_pct=93.57 offload_link_h2c_pct=0.04 offload_link_c2h_pct=0.00 host_wall_s=1.200 offload_wall_s=0.100' \
		'# bench timing-nvmeof-100gbe dev=ns3 bytes=33554432 host_MiBps=1098.8 offload_MiBps=1179.2 gain=1.07 host_link_h2c_pct=9.79 host_link_c2h_pct=9.79 offload_link_h2c_pct=0.00 offload_link_c2h_pct=0.00 host_wall_s=1.100 offload_wall_s=0.100' \
		'# ledger timing-nvmeof-1gbe: 16 x 2 MiB copied, modeled (host copy vs offload)' \
		'#   link mJ                          858.993          0.007' \
		>"$tmp/console.log"
	printf '%s\n' \
		'copy engine benchmark: 64 MiB, median of 5' \
		'  copy_file_range (baseline)     40.0 ms     1600 MiB/s' \
		'# bench guest-net path=tap mtu=65520' \
		'bench on 6.12: 20 passed, 0 failed, 0 skipped, 0 xfail (boot 2.3 s, total 300.0 s)' \
		'smoke on 6.12: 46 passed, 0 failed, 0 skipped, 0 xfail (boot 1.9 s, total 2.5 s)' \
		'smoke on 6.12: 46 passed, 0 failed, 0 skipped, 0 xfail (boot 2.4 s, total 2.9 s)' \
		'smoke on 6.12: 46 passed, 0 failed, 0 skipped, 0 xfail (boot 1.8 s, total 2.3 s)' \
		'# bench startup zones=131072 start_ms=556.3 start_base_ms=4.3 open_ms=473.1 rss_start_kib=13256 hwm_start_kib=21032 rss_report_kib=134600 hwm_report_kib=134600 report_core_ms=0.60 report_scsi_ms=13.17 report_scsi_peak_kib=14216' \
		>"$tmp/host.log"
	bench_table "$tmp/host.log" "$tmp/console.log" >"$tmp/got"
	cat >"$tmp/want" <<'EOF'
copy engine (host, cargo bench copy_engine):
  copy_file_range (baseline)     40.0 ms     1600 MiB/s

large zoned device (host, cargo bench startup):
  backend start-up, 131072 zones: 556.3 ms (target <= 1000; 1 GiB: 4.3 ms), of it Device::open 473.1 ms
  RSS after start-up 13256 KiB (HWM 21032), + 14216 KiB peak for one full SCSI REPORT ZONES (target <= 102400 KiB)
  full REPORT ZONES: core 0.60 ms, SCSI front end 13.17 ms (target <= 100)

copy               dev    offload_s  readwrite_s  speedup    fabric_off     fabric_rw fab_ratio    off_fab_%
scsi-xcopy-64MiB   lun0       0.083        0.512     6.17             -             -         -            -
nvme-copy-64MiB    ns1        0.020        4.000   200.00          1024     134217728 131072.00       0.0015

copy_file_range (a) offload path, (b) copy_max_bytes 0, (c) guest read+write:
cfr              dev         a_s        b_s         c_s    a/b_s     fabric_a     fabric_b  a/b_fab a_path    a_data
nvme-cfr-64MiB   ns1      12.000      4.000       1.500     3.00          300          100     3.00 fallback  verified
scsi-cfr-64MiB   lun0        n/a        n/a       0.500      n/a            -            -        - -         -

fio, median of 3 interleaved rounds x 2 s per job (4 KiB IOPS, 1 MiB MiB/s; -vs- rows: first / second, the median of the per-round ratios; spread: (max - min) / median):
device            dev      rr_qd1    rw_qd1   rr_qd16   rw_qd16     seq_r     seq_w  rlat_us  wlat_us
scsi              lun0       1000       900      4000      3000     200.0     150.5    900.0   1000.1
  spread                      10%       16%       35%        7%       10%       13%       8%      20%
scsihd            sdb         500       450      2000      1500     100.0     100.0   1800.0   2000.2
  spread                       0%        4%       10%        7%       10%        0%       0%       5%
scsi-vs-scsihd    -          2.00      2.00      2.00      2.00      2.00      1.50        -        -
  spread                      10%        5%       20%        0%        5%       13%        -        -
scsi-vs-scsihd-wb -          1.40      1.20      1.50      1.10      1.60      0.95        -        -
  spread                      14%       17%        7%       23%       12%        9%        -        -
nvme              ns1         900       800      3000      2000     420.0     170.0   1000.0   1200.0
  spread                      11%        5%       10%        0%        7%        6%      10%       8%
nvme-vs-scsi      -          0.90      0.79      0.75      0.67      2.10      1.13        -        -
  spread                      11%       15%       13%       15%       10%        9%        -        -

timing model (modeled device classes, 16 x 2 MiB; link use % each way):
profile         dev   host_MiBs  off_MiBs    gain host_h2c% host_c2h%  off_h2c%  off_c2h%
nvmeof-1gbe     ns2       105.0    2628.6   25.03     93.58     93.57      0.04      0.00
nvmeof-100gbe   ns3      1098.8    1179.2    1.07      9.79      9.79      0.00      0.00

ledger nvme-cfr-64MiB: one 64 MiB copy each way
                          (a) offload   (b) fallback (c) read+write
  wall time s                   0.043          1.230          0.300
ledger timing-nvmeof-1gbe: 16 x 2 MiB copied, modeled (host copy vs offload)
  link mJ                          858.993          0.007

guest network tap (MTU 65520) raw TCP: guest->host 80.0 MiB/s, host->guest 60.0 MiB/s (134217728 bytes each way)
NVMe/TCP seq 1 MiB: read 12.0 MiB/s = 0.20 x raw host->guest; write 8.0 MiB/s = 0.10 x raw guest->host

boot breakdown (seconds; the smoke run is the boot target's):
  bench: run start to the first KTAP line 2.3 (runner) = set-up, QEMU and firmware before the kernel's clock 0.79 + kernel 1.100 + /init 0.38 + exec 0.030 (tool started at 1.510)
    kernel: setup 0.300, CPU 0.020, to the first PCI probe 0.250, initcalls 0.200, unpack the initramfs 0.150, late initcalls and freeing 0.180
    /init: mounts 0.020, modprobe 0.300, network 0.010, host root 0.050
  smoke: run start to the first KTAP line 1.9 (runner) = set-up, QEMU and firmware before the kernel's clock 0.73 + kernel 1.000 + /init 0.16 + exec 0.010 (tool started at 1.170)
    kernel: setup 0.300, CPU 0.020, to the first PCI probe -, initcalls -, unpack the initramfs 0.100, late initcalls and freeing -
    /init: mounts 0.020, modprobe 0.130, network 0.010, host root 0.000; every LUN there 0.040 after the tool started

targets (issue 17):
  SCSI 4 KiB rand read QD1    =  1.40 x scsi-hd (writeback) [1.30..1.50] target >= 1.2x   met
  SCSI 4 KiB rand write QD1   =  1.20 x scsi-hd (writeback) [1.10..1.30] target >= 1.2x   undecided (median met, range straddles)
  SCSI 4 KiB rand read QD16   =  1.50 x scsi-hd (writeback) [1.45..1.55] target >= 1.2x   met
  SCSI 4 KiB rand write QD16  =  1.10 x scsi-hd (writeback) [1.00..1.25] target >= 1.2x   undecided (median NOT met, range straddles)
  SCSI 1 MiB seq read         =  1.60 x scsi-hd (writeback) [1.50..1.70] target >= 1.0x   met
  SCSI 1 MiB seq write        =  0.95 x scsi-hd (writeback) [0.90..0.99] target >= 1.0x   NOT met
  NVMe/TCP seq read    420.0 MiB/s =  5.19 x 81 (slirp) [4.94..5.31]   target >= 5x     undecided (median met, range straddles)
  NVMe/TCP seq write   170.0 MiB/s =  5.31 x 32 (slirp) [5.16..5.47]   target >= 5x     met
  NVMe/TCP QD1 read  IOPS =  0.90 x our SCSI disk [0.85..0.95] target >= 0.8x   met
  NVMe/TCP QD1 write IOPS =  0.79 x our SCSI disk [0.70..0.82] target >= 0.8x   undecided (median NOT met, range straddles)
  boot to the first test (smoke, 6.12) 1.9 s of 3 runs [1.8..2.4] target <= 2 s    undecided (median met, range straddles)
  timing contrast: offload gain 1 GbE 25.03x (link 93.57% -> 0.04%), 100 GbE 1.07x   target >= 10x and <= 1.5x   reproduced
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
	-h | --help) sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
	bench_table "${logs[@]}"
	[ -f "$out/vm/console.log" ] && { grep -a '^not ok' "$out/vm/console.log" | tr -d '\r' || true; }
else
	echo "no logs"
fi
exit "$status"
