#!/usr/bin/env bash
# check-trace.sh scsi|nvme RUN_DIR...: for each suite run that kept its
# backend trace (zonecopy-ci --keep-trace), replay it without a boot
# (zonecopy-ci replay: no divergence, every device's final checksum equal,
# and the error the suite injected reproduced), then write it as pcapng
# (zonecopy-vhost trace pcap) and have tshark, Wireshark's own dissectors,
# find the copy commands in it with their fields:
# - scsi: EXTENDED COPY (83h) with its parameter list decoded (LIST
#   IDENTIFIER, CSCD and segment list lengths), and the injected media
#   error's sense (COPY ABORTED, 11h/00h: sense a/11/00 in the replay);
# - nvme: Copy (19h) command capsules on an I/O queue, and the injected
#   media error's status (Unrecovered Read Error, SCT 2h SC 81h).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=$1
shift
ci=target/release/zonecopy-ci
vhost=target/release/zonecopy-vhost
case $kind in
scsi)
	injected='result SCSI status 0x02 sense a/11/00'
	# The parameter list's own fields: Wireshark files the CDB under
	# scsi_sbc only for LUs it takes for block devices (not after an
	# INQUIRY says zoned, 14h), but decodes every list.
	filter='scsi.extcopy.list_id'
	fields=(-e scsi.extcopy.list_id -e scsi.extcopy.cscd_list_len -e scsi.extcopy.seg_desc_list_len)
	;;
nvme)
	injected='result NVMe status SCT 2h SC 81h'
	filter='nvme.cmd.opc == 0x19 && nvme-tcp.cmd.qid > 0'
	fields=(-e nvme.cmd.cid -e nvme.cmd.dword10 -e nvme.cmd.dword12)
	;;
*)
	echo "usage: $0 scsi|nvme RUN_DIR..." >&2
	exit 2
	;;
esac
for run in "$@"; do
	replay=$($ci replay "$run") || {
		echo "$replay"
		echo "check-trace: $run: the replay diverged or could not verify the checksums" >&2
		exit 1
	}
	echo "$replay" | tail -n 20
	grep -qx 'divergences: 0' <<<"$replay"
	grep -q "$injected" <<<"$replay" || {
		echo "check-trace: $run: the replay does not show the injected error ($injected)" >&2
		exit 1
	}
	if grep -q -e DIFFERS -e 'no recorded checksum' <<<"$replay"; then exit 1; fi
	pcap="$run/trace/backend.pcapng"
	$vhost trace pcap "$run/trace/backend.trace" "$pcap"
	found=$(tshark -r "$pcap" -Y "$filter" -T fields "${fields[@]}" | grep -cv '^[[:space:]]*$' || true)
	echo "check-trace: $run: tshark decodes $found $kind copy commands with their fields in $pcap"
	[ "$found" -gt 0 ]
	rm -f "$pcap"
done
