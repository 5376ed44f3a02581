#!/bin/sh
# mkesp.sh OUT.img EFI_APP [CMDLINE]
#
# Builds a small FAT EFI system partition image (no partition table: OVMF boots a bare FAT "superfloppy"
# disk) holding \EFI\BOOT\BOOTX64.EFI and, when CMDLINE is given, \EFI\BOOT\CMDLINE.TXT containing it
# (no trailing newline). Uses mtools only: no root, no loop devices.
set -eu

usage() {
	echo "usage: $0 OUT.img EFI_APP [CMDLINE]" >&2
	exit 2
}
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
out=$1
app=$2

for tool in mformat mmd mcopy; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$0: '$tool' not found: install mtools (Debian package 'mtools')" >&2
		exit 1
	fi
done
if [ ! -f "$app" ]; then
	echo "$0: EFI application '$app' not found" >&2
	exit 1
fi

# Size: 8 MiB, or the app plus 1 MiB of headroom if that is larger (FAT16 below 32 MiB here).
app_kib=$(( ($(wc -c <"$app") + 1023) / 1024 ))
size_kib=8192
[ $((app_kib + 1024)) -le $size_kib ] || size_kib=$((app_kib + 1024))

tmp="$out.tmp.$$"
trap 'rm -f "$tmp" "$tmp.cmdline"' EXIT INT TERM
rm -f "$tmp"
# Don't let a user's ~/.mtoolsrc or a drive letter check get in the way.
export MTOOLS_SKIP_CHECK=1
export MTOOLSRC=/dev/null

# -C creates the image file, -T total sectors (512 bytes), -h/-s geometry, -v volume label.
mformat -i "$tmp" -C -T $((size_kib * 2)) -h 64 -s 32 -v ESP ::
mmd -i "$tmp" ::/EFI ::/EFI/BOOT
mcopy -i "$tmp" "$app" ::/EFI/BOOT/BOOTX64.EFI
if [ $# -eq 3 ]; then
	printf '%s' "$3" >"$tmp.cmdline"
	mcopy -i "$tmp" "$tmp.cmdline" ::/EFI/BOOT/CMDLINE.TXT
fi
mv -f "$tmp" "$out"
