#!/usr/bin/env bash
# Build the zonecopy guest initramfs: busybox + the guest tool + /init + the
# kernel modules the suites need, with their dependencies resolved here (no
# depmod) and a modules.dep that busybox modprobe understands.
#
# Usage:
#   images/build-initramfs.sh --guest-bin PATH --out FILE
#                             [--modules-dir DIR] [--modules "name name ..."]
#                             [--compress none|gzip|lz4|zstd|xz]
#
#   --guest-bin    the static zonecopy-guest binary (installed as
#                  /bin/zonecopy-guest)
#   --out          the cpio (newc) archive to write; FILE.inputs beside it
#                  holds a hash of all inputs, and when it matches nothing is
#                  rebuilt
#   --modules-dir  a kernel's lib/modules/<version> directory (.ko, .ko.xz,
#                  .ko.zst or .ko.gz files plus modules.builtin). Leave it
#                  out for a kernel with everything built in.
#   --modules      the modules to load at boot (default: the walking-skeleton
#                  suite's set, below). Built-in ones are skipped; ones the
#                  kernel lacks are skipped with a note on stderr.
#   --compress     default none: under TCG an uncompressed archive boots
#                  fastest (see images/README.md for the measurements)
#
# Needs root (the archive holds a /dev/console node) and only: bash,
# coreutils, busybox-static, kmod (modinfo), cpio, xz-utils, zstd, gzip,
# binutils (strip).
# The output is deterministic: same inputs, same bytes.
set -euo pipefail
umask 022 # modes in the archive must not depend on the caller

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT_SRC=$HERE/init
BUSYBOX=${BUSYBOX:-/bin/busybox}
DEFAULT_MODULES="virtio_pci virtio_scsi scsi_mod sd_mod sg t10_pi crc_t10dif
	9p 9pnet_virtio netfs fscache virtio_net"

log() { printf 'build-initramfs: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '/^# Usage:/,/^# The output/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# --- arguments -----------------------------------------------------------------
guest_bin= out= moddir= modules=$DEFAULT_MODULES compress=none
while [ $# -gt 0 ]; do
	case $1 in
	--guest-bin) guest_bin=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--modules-dir) moddir=${2:?}; shift 2 ;;
	--modules) modules=${2?}; shift 2 ;;
	--compress) compress=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) log "unknown argument: $1"; usage ;;
	esac
done
[ -n "$guest_bin" ] && [ -n "$out" ] || usage
[ -f "$guest_bin" ] || die "--guest-bin $guest_bin: no such file"
guest_bin=$(realpath "$guest_bin")
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing (apt-get install busybox-static)"
BUSYBOX=$(realpath "$BUSYBOX")
[ -f "$INIT_SRC" ] || die "$INIT_SRC missing"
[ "$(id -u)" = 0 ] || die "must run as root (the archive holds device nodes)"
case $compress in
none) compressor=(cat) ;;
gzip) compressor=(gzip -n -9) ;;
lz4) compressor=(lz4 -l -9 -q) ;; # -l: the legacy frame the kernel reads
zstd) compressor=(zstd -q -19 -T1) ;;
xz) compressor=(xz --check=crc32 -9 -T1) ;; # the kernel wants crc32
*) die "--compress: none, gzip, lz4, zstd or xz" ;;
esac
command -v "${compressor[0]}" >/dev/null || die "$compress not installed"
if [ -n "$moddir" ]; then
	moddir=$(cd "$moddir" && pwd -P) || die "--modules-dir: no such directory"
	[ -d "$moddir/kernel" ] || die "$moddir: not a lib/modules/<version> directory"
	kver=$(basename "$moddir")
fi
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd -P)/$(basename "$out")

# --- cache: skip the build when no input changed ---------------------------------
# The hash covers this script, /init, busybox, the guest binary, the options
# and, for the modules, a listing (path, size, mtime) of the module tree.
inputs_hash() {
	{
		echo "compress=$compress"
		echo "modules=$(echo $modules)"
		sha256sum "${BASH_SOURCE[0]}" "$INIT_SRC" "$BUSYBOX" "$guest_bin" | cut -d' ' -f1
		if [ -n "$moddir" ]; then
			echo "moddir=$moddir"
			(cd "$moddir" && find . \( -type f -o -type l \) -printf '%p %s %T@\n' | LC_ALL=C sort)
		fi
	} | sha256sum | cut -d' ' -f1
}
hash=$(inputs_hash)
if [ -f "$out" ] && [ -f "$out.inputs" ] && [ "$(cat "$out.inputs")" = "$hash" ]; then
	log "$out is up to date"
	exit 0
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/zonecopy-initramfs.XXXXXX")
trap 'rm -rf "$stage" "${tmp_out:-}"' EXIT

# --- modules -------------------------------------------------------------------
# Names are compared the way the kernel does: '-' and '_' are the same.
norm() { printf '%s' "${1//-/_}"; }

declare -A MODPATH=()  # normalized name -> path relative to $moddir (compressed as shipped)
declare -A BUILTIN=()  # normalized name -> 1
declare -A STATE=()    # normalized name -> visiting | done | builtin | missing
declare -A LOADLIST=() # normalized name -> 1 if /etc/zonecopy/modules lists it
declare -A RELKO=()    # normalized name -> path of the decompressed .ko in the image
declare -A DEPS=()     # normalized name -> its direct hard deps (normalized)
ORDER=()               # every module in the image, dependencies first

# Copy a module into the image, decompressed; sets RELKO[name].
stage_module() { # $1 = normalized name
	local src=${MODPATH[$1]} rel
	rel=${src%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
	local dst=$stage/lib/modules/$kver/$rel
	if [ ! -f "$dst" ]; then
		mkdir -p "$(dirname "$dst")"
		case $src in
		*.xz) xz -dc "$moddir/$src" >"$dst" ;;
		*.zst) zstd -qdc "$moddir/$src" >"$dst" ;;
		*.gz) gzip -dc "$moddir/$src" >"$dst" ;;
		*) cp "$moddir/$src" "$dst" ;;
		esac
		# Without the appended signature: the kernel (MODULE_SIG, not
		# enforced) then loads it without hashing and verifying it, which
		# under TCG is a good part of modprobe's time; it notes the
		# unsigned module and taints itself (E). Without .BTF too: the
		# kernel parses each module's BTF on load (for BPF, which no suite
		# runs), and the first one makes it parse the whole vmlinux BTF;
		# modprobe of the smoke set took 0.13 s instead of 0.3 s (6.12,
		# TCG).
		strip --strip-debug --remove-section=.BTF "$dst"
	fi
	RELKO[$1]=$rel
}

# Softdep targets may be aliases (e.g. "crct10dif", "crc32c" name crypto
# algorithms). Resolve those from the aliases of the crypto modules only;
# scanning all ~4000 modules would be slow and is never needed.
declare -A CRYPTO_ALIAS=() # alias -> space-separated normalized names
crypto_alias_loaded=
resolve_alias() { # $1 = name; prints normalized module names providing it
	if [ -z "$crypto_alias_loaded" ]; then
		crypto_alias_loaded=1
		# One modinfo for all of them: "filename: PATH" then "alias: NAME" lines.
		local key val n=
		while read -r key val; do
			case $key in
			filename:) n=${val##*/}; n=$(norm "${n%%.ko*}") ;;
			alias:) CRYPTO_ALIAS[$val]+="$n " ;;
			esac
		done < <(cd "$moddir" && find kernel/crypto kernel/arch/*/crypto -name '*.ko*' 2>/dev/null |
			LC_ALL=C sort | xargs -r modinfo 2>/dev/null)
	fi
	printf '%s' "${CRYPTO_ALIAS[$1]:-}"
}

# Depth-first: softdep "pre:" modules and hard deps first, then the module.
# $2 = "load" when the module must be listed in /etc/zonecopy/modules (asked
# for, or a softdep: busybox modprobe ignores softdeps, so we load those
# ourselves, before the module that wants them).
resolve() { # $1 = name, $2 = load|dep
	local n
	n=$(norm "$1")
	case ${STATE[$n]:-} in
	done) [ "$2" = load ] && LOADLIST[$n]=1; return 0 ;;
	builtin | missing | visiting) return 0 ;;
	esac
	if [ -n "${BUILTIN[$n]:-}" ]; then STATE[$n]=builtin; return 0; fi
	if [ -z "${MODPATH[$n]:-}" ]; then
		STATE[$n]=missing
		log "note: kernel $kver has no module $1 (neither a .ko nor built in), skipped"
		return 0
	fi
	STATE[$n]=visiting
	stage_module "$n"
	local ko=$stage/lib/modules/$kver/${RELKO[$n]} d soft word
	# softdep lines look like "pre: a b post: c"; take the pre: words.
	soft=$(modinfo -F softdep "$ko" | tr '\n' ' ')
	local in_pre=
	for word in $soft; do
		case $word in
		pre:) in_pre=1 ;;
		post:) in_pre= ;;
		*)
			[ -n "$in_pre" ] || continue
			if [ -n "${MODPATH[$(norm "$word")]:-}" ] || [ -n "${BUILTIN[$(norm "$word")]:-}" ]; then
				resolve "$word" load
			else
				local provider found=
				for provider in $(resolve_alias "$word"); do
					found=1
					resolve "$provider" load
				done
				[ -n "$found" ] || log "note: softdep $word of $1 not found, skipped"
			fi
			;;
		esac
	done
	local deps
	deps=$(modinfo -F depends "$ko")
	DEPS[$n]=
	for d in ${deps//,/ }; do
		resolve "$d" dep
		[ "${STATE[$(norm "$d")]}" = done ] && DEPS[$n]+="$(norm "$d") "
	done
	STATE[$n]=done
	ORDER+=("$n")
	[ "$2" = load ] && LOADLIST[$n]=1
	return 0
}

# All (transitive) dependencies of a module, those to load last first: the
# order of a depmod-made modules.dep, which modprobe loads back to front.
declare -A TDEPS_SEEN=()
tdeps_rec() { # appends to TDEPS_OUT
	local d
	for d in ${DEPS[$1]}; do
		[ -n "${TDEPS_SEEN[$d]:-}" ] && continue
		TDEPS_SEEN[$d]=1
		tdeps_rec "$d"
		TDEPS_OUT=("$d" "${TDEPS_OUT[@]}")
	done
}

mkdir -p "$stage/etc/zonecopy"
: >"$stage/etc/zonecopy/modules"
if [ -n "$moddir" ]; then
	# Index the module tree and the built-ins.
	while IFS= read -r f; do
		b=${f##*/}
		b=${b%%.ko*}
		MODPATH[${b//-/_}]=$f
	done < <(cd "$moddir" && find kernel \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) | LC_ALL=C sort)
	if [ -f "$moddir/modules.builtin" ]; then
		while IFS= read -r f; do
			b=${f##*/}
			b=${b%.ko}
			BUILTIN[${b//-/_}]=1
		done <"$moddir/modules.builtin"
	fi
	for m in $modules; do
		resolve "$m" load
	done

	mdir=$stage/lib/modules/$kver
	mkdir -p "$mdir"
	[ -f "$moddir/modules.builtin" ] && cp "$moddir/modules.builtin" "$mdir/"
	# modules.dep (busybox modprobe format = depmod's), and modules.alias so
	# modprobe (also as the kernel's request_module helper) finds aliases of
	# the modules in the image.
	: >"$mdir/modules.dep"
	: >"$mdir/modules.alias"
	for n in "${ORDER[@]}"; do
		TDEPS_SEEN=() TDEPS_OUT=()
		tdeps_rec "$n"
		line="${RELKO[$n]}:"
		for d in "${TDEPS_OUT[@]}"; do line+=" ${RELKO[$d]}"; done
		echo "$line" >>"$mdir/modules.dep"
		modinfo -F alias "$mdir/${RELKO[$n]}" | while IFS= read -r a; do
			echo "alias $a $n"
		done >>"$mdir/modules.alias"
		if [ -n "${LOADLIST[$n]:-}" ]; then
			echo "$n" >>"$stage/etc/zonecopy/modules"
		fi
	done
	log "kernel $kver: ${#ORDER[@]} modules in the image, loading: $(echo $(cat "$stage/etc/zonecopy/modules"))"
else
	log "no --modules-dir: assuming a kernel with everything built in"
fi

# --- file system layout ---------------------------------------------------------
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys run tmp host root
chmod 1777 tmp
install -m 0755 "$BUSYBOX" bin/busybox
# Every busybox applet, so the image doubles as a rescue shell; /sbin/modprobe
# also serves the kernel's request_module().
"$BUSYBOX" --list-full | while IFS= read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	[ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
# Without its debug info (line tables, ~11 of its ~15 MB): the kernel
# unpacks every byte of the archive before /init runs, ~40 ms per MB
# under TCG. Symbols stay, so a panic's backtrace still names functions.
strip --strip-debug -o bin/zonecopy-guest "$guest_bin"
chmod 0755 bin/zonecopy-guest
install -m 0755 "$INIT_SRC" init
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 dev/console c 5 1
mknod -m 666 dev/null c 1 3

# --- archive ---------------------------------------------------------------------
# Fixed mtimes, owners and order make the archive reproducible.
find . -exec touch -h -d @0 {} +
tmp_out=$out.tmp.$$
find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible |
	"${compressor[@]}" >"$tmp_out"
mv -f "$tmp_out" "$out"
echo "$hash" >"$out.inputs"
log "wrote $out ($(du -h "$out" | cut -f1), compress=$compress)"
