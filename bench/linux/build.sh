#!/usr/bin/env bash
# bench/linux/build.sh — build the stock Linux baseline guest: Debian's bookworm cloud kernel (unpacked, not
# installed) and an initramfs with busybox, our echo/discard/counter server (echo.c) and iperf2.
#
#   bench/linux/build.sh [--force]
#
# Downloads and unpacked packages go to .cache/linux-guest/, the results to build/linux-guest/:
#   vmlinuz, initramfs.cpio.gz, manifest.txt (package versions, checksums, sizes)
# Idempotent: the kernel package is downloaded and unpacked once per version; the initramfs is rebuilt each
# run (a few seconds) and is byte-for-byte the same for the same inputs. --force unpacks the kernel again.
# Environment: LINUX_GUEST_PKG=linux-image-6.1.0-N-cloud-amd64 picks a kernel package instead of the one
# Debian's linux-image-cloud-amd64 currently depends on.
set -euo pipefail

prog=bench/linux/build.sh
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=$root/.cache/linux-guest
out=$root/build/linux-guest
force=0

die() {
	echo "$prog: error: $*" >&2
	exit 1
}
log() { echo "$prog: $*" >&2; }

case "${1:-}" in
"") ;;
--force) force=1 ;;
-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown option '$1' (try --help)" ;;
esac

# The virtio modules, in load order (each needs only those before it). Ones built into the kernel are skipped.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net)

# ---- host tools: tool -> Debian package -------------------------------------------------------------------
declare -A TOOL_PKG=(
	[apt-get]=apt [apt-cache]=apt [dpkg-deb]=dpkg [gcc]=gcc [strip]=binutils [cpio]=cpio [gzip]=gzip
	[xz]=xz-utils [ldd]=libc-bin [sha256sum]=coreutils
)
# Files that are not commands: path -> Debian package
declare -A FILE_PKG=(
	[/bin/busybox]=busybox-static [/usr/bin/iperf]=iperf [/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
)

missing_pkgs() {
	local t f
	for t in "${!TOOL_PKG[@]}"; do command -v "$t" >/dev/null 2>&1 || echo "${TOOL_PKG[$t]}"; done
	for f in "${!FILE_PKG[@]}"; do [ -e "$f" ] || echo "${FILE_PKG[$f]}"; done
	# /bin/busybox may be the dynamic busybox package: the initramfs needs the static one.
	if [ -e /bin/busybox ] && ! busybox_is_static; then echo busybox-static; fi
}
busybox_is_static() { ! LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; }

apt_opts=(-q -o DPkg::Lock::Timeout=300)
lists_empty() { ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }

ensure_tools() {
	local missing
	mapfile -t missing < <(missing_pkgs | sort -u)
	[ ${#missing[@]} -eq 0 ] && return 0
	log "missing Debian packages: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "$prog: not root; install them as root with:" >&2
		echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	local updated=0
	if lists_empty; then
		apt-get "${apt_opts[@]}" update >&2
		updated=1
	fi
	if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
		[ $updated = 0 ] || die "apt-get install ${missing[*]} failed"
		apt-get "${apt_opts[@]}" update >&2
		apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2 ||
			die "apt-get install ${missing[*]} failed (also after apt-get update)"
	fi
	mapfile -t missing < <(missing_pkgs | sort -u)
	[ ${#missing[@]} -eq 0 ] || die "still missing after apt-get install: ${missing[*]}"
}

# ---- the kernel package ------------------------------------------------------------------------------------
kernel_pkg_name() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-cloud-amd64\)$/\1/p' | head -1
}
# -o APT::Sandbox::User=root: apt's _apt user may not be able to write into the work tree.
download() { (cd "$debdir" && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root download "$1=$2" >&2); }
candidate_version() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -1; }

ensure_tools

pkg=${LINUX_GUEST_PKG:-}
if [ -z "$pkg" ]; then
	pkg=$(kernel_pkg_name)
	if [ -z "$pkg" ]; then
		[ "$(id -u)" = 0 ] || die "apt-cache knows no linux-image-cloud-amd64: run 'apt-get update' as root"
		log "apt-cache knows no linux-image-cloud-amd64: apt-get update"
		apt-get "${apt_opts[@]}" update >&2
		pkg=$(kernel_pkg_name)
	fi
	[ -n "$pkg" ] || die "cannot find the bookworm cloud kernel (apt-cache depends linux-image-cloud-amd64)"
fi
[[ "$pkg" =~ ^linux-image-[0-9][-.0-9a-z]*-cloud-amd64$ ]] || die "'$pkg' does not look like linux-image-*-cloud-amd64"
ver=$(candidate_version "$pkg")
debdir=$cache/debs
mkdir -p "$debdir" "$out"

# A .deb already here for this package is reused (no network); else download the candidate version.
deb=$(ls -1 "$debdir/${pkg}_"*_amd64.deb 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
	want="$debdir/${pkg}_${ver//:/%3a}_amd64.deb"
	if [ ! -s "$want" ]; then
		log "downloading $pkg=$ver"
		if ! download "$pkg" "$ver"; then
			# Stale package lists: the mirror may have replaced this version. Update once and try again.
			[ "$(id -u)" = 0 ] || die "apt-get download $pkg=$ver failed: run 'apt-get update' as root and retry"
			log "apt-get download failed: apt-get update, then again"
			apt-get "${apt_opts[@]}" update >&2
			[ -n "${LINUX_GUEST_PKG:-}" ] || pkg=$(kernel_pkg_name)
			ver=$(candidate_version "$pkg")
			want="$debdir/${pkg}_${ver//:/%3a}_amd64.deb"
			[ -s "$want" ] || download "$pkg" "$ver" || die "apt-get download $pkg=$ver failed (also after apt-get update)"
		fi
	fi
	deb=$want
fi
[ -n "$deb" ] && [ -s "$deb" ] || die "no .deb for $pkg (apt-cache has no candidate version: apt-get update?)"
deb_pkg=$(dpkg-deb -f "$deb" Package) deb_ver=$(dpkg-deb -f "$deb" Version)
[ "$deb_pkg" = "$pkg" ] || die "$deb holds $deb_pkg, not $pkg"

unpacked=$cache/$pkg-$deb_ver
# Keep the cache to one kernel: drop other versions' .debs and trees.
for f in "$debdir"/linux-image-*.deb "$cache"/linux-image-*; do
	[ -e "$f" ] && [ "$f" != "$deb" ] && [ "$f" != "$unpacked" ] || continue
	log "removing stale $(basename "$f")"
	rm -rf "$f"
done
if [ "$force" = 1 ] || [ ! -f "$unpacked/.unpacked" ]; then
	log "unpacking $(basename "$deb")"
	rm -rf "$unpacked"
	mkdir -p "$unpacked"
	dpkg-deb -x "$deb" "$unpacked" || die "dpkg-deb -x $deb failed"
	touch "$unpacked/.unpacked"
fi
krel=$(ls -1 "$unpacked/lib/modules" 2>/dev/null | head -1)
[ -n "$krel" ] || die "no lib/modules/<release> in $deb"
moddir=$unpacked/lib/modules/$krel
vmlinuz=$unpacked/boot/vmlinuz-$krel
[ -f "$vmlinuz" ] || die "no boot/vmlinuz-$krel in $deb"
cp -f "$vmlinuz" "$out/vmlinuz"

# ---- initramfs tree ----------------------------------------------------------------------------------------
stage=$out/rootfs
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp,run,var/run,etc,root}

# Modules: copy (decompressed) in load order; the order file tells /init what to load.
: >"$stage/lib/modules/order"
for m in "${MODULES[@]}"; do
	f=$(find "$moddir/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -1)
	if [ -z "$f" ]; then
		if grep -q "/$m\.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
			log "module $m is built into $krel"
			continue
		fi
		die "module $m not found in $pkg ($moddir)"
	fi
	case "$f" in
	*.ko.xz) xz -dc "$f" >"$stage/lib/modules/$m.ko" ;;
	*.ko.zst)
		command -v zstd >/dev/null || die "$f is zstd-compressed: install the Debian package zstd"
		zstd -qdc "$f" >"$stage/lib/modules/$m.ko"
		;;
	*.ko.gz) gzip -dc "$f" >"$stage/lib/modules/$m.ko" ;;
	*) cp "$f" "$stage/lib/modules/$m.ko" ;;
	esac
	# Each module may need only modules loaded before it (or built in).
	deps=$(tr '\0' '\n' <"$stage/lib/modules/$m.ko" | sed -n 's/^depends=//p' | head -1)
	for d in ${deps//,/ }; do
		grep -qx "$d" "$stage/lib/modules/order" ||
			grep -q "/$d\.ko\$" "$moddir/modules.builtin" 2>/dev/null ||
			die "module $m depends on $d, which is neither built in nor loaded before it"
	done
	echo "$m" >>"$stage/lib/modules/order"
done

# busybox (static) with one symlink per applet.
cp /bin/busybox "$stage/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -sf busybox "$stage/bin/$a"
done

# Our services, static.
gcc -static -O2 -Wall -Wextra -o "$out/echod" "$here/echo.c" || die "gcc failed on bench/linux/echo.c (needs libc6-dev)"
strip "$out/echod"
cp "$out/echod" "$stage/usr/bin/echod"

# iperf2 with its shared libraries, at the paths ldd shows (the loader's default search path covers them).
cp /usr/bin/iperf "$stage/usr/bin/iperf"
ldd /usr/bin/iperf | grep -o '/[^ ]*' | while read -r lib; do
	[ -e "$lib" ] || die "ldd /usr/bin/iperf: $lib not found"
	mkdir -p "$stage$(dirname "$lib")"
	cp -L "$lib" "$stage$lib"
	strip --strip-unneeded "$stage$lib" 2>/dev/null || true
done
strip "$stage/usr/bin/iperf" 2>/dev/null || true

cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"
printf 'linux-guest %s %s\n' "$pkg" "$deb_ver" >"$stage/etc/linux-guest"

# ---- cpio + gzip, reproducible: fixed mtimes, sorted names, root-owned --------------------------------------
find "$stage" -exec touch -h -d @1 {} +
(cd "$stage" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z |
	cpio --quiet --null -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$out/initramfs.cpio.gz.tmp"
mv -f "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"

{
	echo "kernel_package=$pkg"
	echo "kernel_version=$deb_ver"
	echo "kernel_release=$krel"
	echo "kernel_deb_sha256=$(sha256sum "$deb" | cut -d' ' -f1)"
	echo "modules=$(tr '\n' ' ' <"$stage/lib/modules/order" | sed 's/ $//')"
	echo "busybox=$(dpkg-query -W -f='${Package} ${Version}' busybox-static 2>/dev/null || echo unknown)"
	echo "iperf=$(dpkg-query -W -f='${Package} ${Version}' iperf 2>/dev/null || echo unknown)"
	echo "vmlinuz_bytes=$(stat -c %s "$out/vmlinuz")"
	echo "initramfs_bytes=$(stat -c %s "$out/initramfs.cpio.gz")"
	echo "initramfs_sha256=$(sha256sum "$out/initramfs.cpio.gz" | cut -d' ' -f1)"
} >"$out/manifest.txt"

log "kernel $pkg $deb_ver ($krel), modules: $(tr '\n' ' ' <"$stage/lib/modules/order")"
printf '%s: %8s  %s\n' "$prog" "$(du -h --apparent-size "$out/vmlinuz" | cut -f1)" "build/linux-guest/vmlinuz" \
	"$prog" "$(du -h --apparent-size "$out/initramfs.cpio.gz" | cut -f1)" "build/linux-guest/initramfs.cpio.gz" \
	"$prog" "$(du -sh --apparent-size "$stage" | cut -f1)" "build/linux-guest/rootfs (unpacked)" \
	"$prog" "$(du -h --apparent-size "$out/echod" | cut -f1)" "build/linux-guest/echod"
