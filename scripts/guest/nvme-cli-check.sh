#!/bin/sh
# Runs inside a `zonecopy-ci run` guest (the host's root shared over 9p, so
# this is the host's nvme-cli): connect to the backend's NVMe/TCP subsystem
# named on the kernel command line (or find its PCIe controller), list it, report the ZNS namespace's
# zones, copy blocks with `nvme copy` on the NVM namespace and check them.
# Exits non-zero on the first thing that does not work. (dash: no pipefail.)
set -eu

arg=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^zonecopy\.nvme=//p')
field() { echo "$arg" | tr ',' '\n' | sed -n "s/^$1=//p"; }
traddr=$(field traddr)
port=$(field trsvcid)
nqn=$(field nqn)
if [ "$(field transport)" = pcie ]; then
	# A PCIe controller (zonecopy-ci --nvme-transport pcie): the nvme-pci
	# driver probed it, nothing to connect; id-ctrl must show our NQN.
	[ -n "$nqn" ] || { echo "no nqn= in zonecopy.nvme=" >&2; exit 2; }
	i=0
	until [ -e /dev/nvme0 ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
	nvme id-ctrl /dev/nvme0 | grep -q "^subnqn *: $nqn" ||
		{ echo "nvme id-ctrl /dev/nvme0 does not name $nqn" >&2; exit 1; }
	echo "id-ctrl: $(nvme id-ctrl /dev/nvme0 | grep -E '^(mn|oncs|sgls) ' | tr -s ' ' | tr '\n' ';')"
else
	[ -n "$traddr" ] && [ -n "$port" ] && [ -n "$nqn" ] || {
		echo "no zonecopy.nvme= on the kernel command line" >&2
		exit 2
	}
	uuid=$(cat /proc/sys/kernel/random/uuid)
	nvme connect -t tcp -a "$traddr" -s "$port" -n "$nqn" \
		--hostnqn="nqn.2014-08.org.nvmexpress:uuid:$uuid" --hostid="$uuid"
	trap 'nvme disconnect -n "$nqn" >/dev/null 2>&1 || true' EXIT
fi

# Namespaces by NSID (block device names need not follow NSIDs).
zns= nvm= i=0
while [ $i -lt 100 ]; do
	for d in /sys/block/nvme*n*; do
		[ -e "$d/nsid" ] || continue
		case $(cat "$d/queue/zoned") in
		host-managed) zns=${d##*/} ;;
		none) nvm=${d##*/} ;;
		esac
	done
	[ -n "$zns" ] && [ -n "$nvm" ] && break
	sleep 0.1
	i=$((i + 1))
done
[ -n "$zns" ] && [ -n "$nvm" ] || { echo "namespaces did not appear" >&2; exit 1; }

nvme list
nvme list | grep -q "zonecopy" || { echo "nvme list does not show the controller" >&2; exit 1; }

zones=$(nvme zns report-zones "/dev/$zns" -d 4 | grep -c "SLBA")
echo "report-zones: $zones zone descriptors"
[ "$zones" -eq 4 ] || { echo "expected 4 zone descriptors, got $zones" >&2; exit 1; }

# 8 blocks of a known pattern at LBA 0, copied to LBA 1024 by the device.
bs=$(cat "/sys/block/$nvm/queue/logical_block_size")
tmp=$(mktemp -d)
head -c $((8 * bs)) /dev/urandom >"$tmp/src"
dd if="$tmp/src" of="/dev/$nvm" bs="$bs" oflag=direct status=none
nvme copy "/dev/$nvm" --sdlba=1024 --slbs=0 --blocks=7
dd if="/dev/$nvm" of="$tmp/dst" bs="$bs" skip=1024 count=8 iflag=direct status=none
cmp "$tmp/src" "$tmp/dst"
rm -rf "$tmp"
echo "nvme copy: 8 blocks copied by the device and verified"
