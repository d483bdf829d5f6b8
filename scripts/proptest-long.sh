#!/usr/bin/env bash
# Long mode of the property tests (not part of the README's commands):
# every parser and state-machine property test of the backend runs CASES
# generated cases (default 1,000,000) in a release build, one target at a
# time, and the case count and time of each are printed. CI runs the same
# tests with their own, small counts through `cargo test`.
#
# Usage: scripts/proptest-long.sh [CASES] [FILTER...]
#   CASES   cases per property test (PROPTEST_CASES), default 1000000
#   FILTER  only the targets whose test path contains one of these words
#
# Cases generated: 1M per target takes from seconds (CDB parsers) to about
# an hour (tests that build a device per case) in a release build; run a
# FILTER at a time on a busy machine.
#
# A failing case is printed by proptest with its minimal input, and this
# script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-1000000}
shift || true
# The property tests: parsers (PDUs, SQEs, CDBs, XCOPY lists, virtqueue
# chains, control lines, device specs) and the NVMe/TCP connection state
# machine driven by generated PDU sequences.
targets=(
	transport::nvme_tcp::pdu::tests::random_bytes_never_panic
	transport::nvme_tcp::pdu::tests::plausible_headers_never_panic
	transport::nvme_tcp::pdu::tests::h2c_data_roundtrip
	transport::nvme_tcp::conn::state_machine_tests::pdu_sequences_keep_the_limits
	nvme::tests::random_commands_never_panic
	nvme::tests::random_connects_never_panic
	scsi::cdb::tests::any_bytes_never_panic_and_roundtrip
	scsi::cdb::tests::masked_bytes_roundtrip
	scsi::tests::any_input::never_panics
	scsi::xcopy::cdb::tests::never_panic_and_roundtrip
	scsi::xcopy::tests::any_command_and_data_never_panics
	scsi::xcopy::tests::random_lists_stay_in_named_ranges
	transport::vhost_user_scsi::tests::random::random_chains_never_panic
	control::tests::lines::every_line_gets_one_reply
	config::tests::lun_spec_parser
)
cargo test --release --locked -p zonecopy-vhost --lib --no-run
failed=0
total=0
for t in "${targets[@]}"; do
	if [ $# -gt 0 ]; then
		keep=
		for f in "$@"; do case $t in *"$f"*) keep=1 ;; esac; done
		[ -n "$keep" ] || continue
	fi
	start=$(date +%s.%N)
	if PROPTEST_CASES=$cases cargo test --release --locked -q -p zonecopy-vhost --lib -- --exact "$t" \
		>"/tmp/proptest-long.$$.log" 2>&1; then
		verdict=ok
	else
		verdict=FAILED
		failed=1
		cat "/tmp/proptest-long.$$.log"
	fi
	ran=$(grep -o '[0-9]* passed' "/tmp/proptest-long.$$.log" | tail -1 | cut -d' ' -f1)
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	printf 'proptest-long: %-72s %s, %s test(s) x %s cases, %.1f s\n' "$t" "$verdict" "${ran:-0}" "$cases" "$secs"
	total=$((total + ${ran:-0} * cases))
done
rm -f "/tmp/proptest-long.$$.log"
printf 'proptest-long: %s generated cases in all\n' "$total"
exit $failed
