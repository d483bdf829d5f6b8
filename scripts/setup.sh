#!/usr/bin/env bash
# Idempotent host set-up for zonecopy on Debian bookworm (run as root).
#
# - adds the bookworm-backports apt source (deb822) and installs QEMU from it
#   (bookworm's qemu-system-x86 7.2 conflicts with qemu-utils 10.0 from
#   backports, which the machine image already carries);
# - installs the host packages the suites and image builder need (and perf,
#   linux-perf, for profiling the backend and QEMU: issue 17);
# - downloads the Debian guest kernels (6.1 from bookworm, 6.12 from
#   bookworm-backports) into $ZONECOPY_CACHE (default /var/cache/zonecopy),
#   unpacks them and extracts an uncompressed vmlinux for faster TCG boots.
#
# Safe to run twice: every step checks first and does nothing when done.
set -euo pipefail

CACHE=${ZONECOPY_CACHE:-/var/cache/zonecopy}
HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf 'setup: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

BACKPORTS=/etc/apt/sources.list.d/bookworm-backports.sources
APT_UPDATED=
apt_update() {
	if [ -z "$APT_UPDATED" ]; then
		apt-get update -qq
		APT_UPDATED=1
	fi
}

if [ ! -f "$BACKPORTS" ]; then
	# Same mirror URI as the main Debian source.
	uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ && $2 !~ /security/ {print $2; exit}' \
		/etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || { log "cannot find the Debian mirror URI"; exit 1; }
	log "adding bookworm-backports ($uri)"
	cat >"$BACKPORTS" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	APT_UPDATED=
fi

PKGS=(busybox-static sg3-utils nvme-cli fio f2fs-tools util-linux cpio
	xz-utils zstd kmod cryptsetup-bin e2fsprogs iproute2 binutils libc6-dev gcc git python3-venv
	mmdebstrap tshark linux-perf)
# tshark's wireshark-common asks whether non-root users may capture; answer
# no before it is installed (the tests only read pcapng files).
# (debconf-set-selections is idempotent.)
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v qemu-system-x86_64 >/dev/null || ! [ -e /usr/share/qemu/qboot.rom ]; then
	apt_update
	log "installing QEMU from bookworm-backports"
	apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
	apt_update
	log "installing ${missing[*]}"
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Guest kernels: name the unsigned image package that the suite's
# linux-image-amd64 metapackage points at, download and unpack it once.
# $3.. are extra apt options (a separate configuration for sid, so the
# host's own package candidates never change).
fetch_kernel() { # $1 = short name (6.1, 6.12, 7.2), $2 = apt target release
	local name=$1 rel=$2 dir="$CACHE/kernels/$1"
	shift 2
	local opts=("$@")
	if [ -f "$dir/.done" ]; then
		return
	fi
	[ ${#opts[@]} -gt 0 ] || apt_update
	local signed
	signed=$(apt-cache "${opts[@]}" depends -t "$rel" linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$signed" ] || { log "no linux-image-amd64 in $rel"; exit 1; }
	# bookworm's metapackage names the signed image, with an -unsigned
	# twin. Newer suites split the image into linux-binary (signed, with a
	# linux-binary-unsigned twin) and linux-modules packages.
	local pkgs=() ver=${signed#linux-image-}
	if apt-cache "${opts[@]}" show "${signed}-unsigned" >/dev/null 2>&1; then
		pkgs=("${signed}-unsigned")
	elif apt-cache "${opts[@]}" show "linux-binary-unsigned-$ver" >/dev/null 2>&1; then
		pkgs=("linux-binary-unsigned-$ver" "linux-modules-$ver")
	else
		pkgs=("linux-binary-$ver" "linux-modules-$ver")
	fi
	log "fetching kernel $name: ${pkgs[*]}"
	rm -rf "$dir" && mkdir -p "$dir/pkg"
	# apt drops to the _apt user for downloads: let it write there.
	chown _apt "$dir" 2>/dev/null || true
	(cd "$dir" && apt-get "${opts[@]}" download -t "$rel" "${pkgs[@]}" >/dev/null)
	local deb
	for deb in "$dir"/*.deb; do
		dpkg-deb -x "$deb" "$dir/pkg"
	done
	# /boot/vmlinuz-V and /lib/modules/V (bookworm), or
	# /usr/lib/modules/V/vmlinuz.unsigned and /usr/lib/modules/V (sid).
	local vmlinuz moddir
	vmlinuz=$(ls "$dir"/pkg/boot/vmlinuz-* "$dir"/pkg/usr/lib/modules/*/vmlinuz* 2>/dev/null | head -n1 || true)
	moddir=$(ls -d "$dir"/pkg/lib/modules/*/kernel "$dir"/pkg/usr/lib/modules/*/kernel 2>/dev/null | head -n1 || true)
	[ -n "$vmlinuz" ] && [ -n "$moddir" ] || { log "kernel $name: no image or modules in ${pkgs[*]}"; exit 1; }
	ln -sf "${vmlinuz#"$dir"/}" "$dir/bzImage"
	moddir=$(dirname "$moddir")
	ln -sf "${moddir#"$dir"/}" "$dir/modules"
	"$HERE/extract-vmlinux.sh" "$vmlinuz" >"$dir/vmlinux.tmp" && mv "$dir/vmlinux.tmp" "$dir/vmlinux"
	rm -f "$dir"/*.deb
	touch "$dir/.done"
}
fetch_kernel 6.1 bookworm
fetch_kernel 6.12 bookworm-backports

# Debian sid's kernel (7.2 at the time of writing: the base of the
# copy-offload test kernels, without the series), through an apt
# configuration of our own under the cache.
SID=$CACHE/apt-sid
if [ ! -f "$CACHE/kernels/7.2/.done" ]; then
	uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ && $2 !~ /security/ {print $2; exit}' \
		/etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	mkdir -p "$SID/lists/partial" "$SID/cache/archives/partial"
	cat >"$SID/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main
SRC
	sid_opts=(-o "Dir::Etc::SourceList=$SID/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$SID/lists" -o "Dir::Cache=$SID/cache"
		-o "APT::Default-Release=" -o "Dir::State::status=/dev/null")
	chown -R _apt "$SID/lists" "$SID/cache" 2>/dev/null || true
	apt-get "${sid_opts[@]}" update -qq
	fetch_kernel 7.2 sid "${sid_opts[@]}"
fi

# QEMU with a vfio-user client (10.1 and later; bookworm-backports has 10.0)
# for the NVMe-over-PCIe transport: Debian sid's qemu-system-x86 in a root
# of its own, so the host's packages stay as they are. scripts/qemu-sid
# runs it (chroot with the host paths QEMU must see). The sid Release file
# reached from here can be past its Valid-Until date, hence the option.
QROOT=$CACHE/qemu-sid
if [ ! -f "$QROOT/.done" ]; then
	uri=$(awk '$1=="deb" {print $3; exit}' "$SID/sources.list")
	[ -n "$uri" ] || { log "no sid mirror in $SID/sources.list"; exit 1; }
	log "building the sid QEMU root in $QROOT/root"
	rm -rf "$QROOT" && mkdir -p "$QROOT"
	start=$(date +%s)
	mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
		--include=qemu-system-x86 sid "$QROOT/root" "$uri"
	chroot "$QROOT/root" qemu-system-x86_64 -device vfio-user-pci,help >/dev/null ||
		{ log "the sid QEMU has no vfio-user-pci device"; exit 1; }
	log "sid QEMU root built in $(($(date +%s) - start)) s: $(chroot "$QROOT/root" qemu-system-x86_64 --version | head -n1)"
	touch "$QROOT/.done"
fi

# The runner's tap device for NVMe/TCP (ci/src/tapnet.rs) needs the tun
# driver; without it runs fall back to QEMU user networking.
if [ ! -e /dev/net/tun ]; then
	modprobe tun 2>/dev/null || log "warning: no /dev/net/tun: NVMe/TCP suites use user networking"
fi

command -v cargo >/dev/null || log "warning: no cargo on PATH: install the Rust toolchain (stable) to build zonecopy"
log "ok: $(qemu-system-x86_64 --version | head -n1); kernels in $CACHE/kernels"
