#!/usr/bin/env bash
# tools/fetch-qemu-plugin-h.sh OUTDIR
#
# QEMU's TCG plugin API header for tools/plugin/icount.c. Debian's qemu-system-x86 has `-plugin` built in but
# ships neither plugins nor the header; the header is in Debian's `qemu` source package. This fetches that
# package for the installed QEMU's upstream version through the private apt configuration of tools/apt-src.sh
# (/etc/apt untouched), checks the orig tarball against the SHA256 in the .dsc, and extracts only
# include/qemu/qemu-plugin.h to OUTDIR/qemu-plugin/qemu-plugin.h (about 24 MB downloaded once, ~4 s to
# extract). The header's QEMU_PLUGIN_VERSION must match the QEMU that loads the plugin, hence the same
# source version as the installed binary.
#
# Idempotent: with the header and its stamp present it only touches the stamp.
set -euo pipefail

# shellcheck source=tools/dep-script.sh
. "$(dirname "$0")/dep-script.sh"
dep_init fetch-qemu-plugin-h "$@"
DEST="$OUTDIR/qemu-plugin"
STAMP="$DEST/.stamp-verified"
if [ -f "$DEST/qemu-plugin.h" ] && [ -f "$STAMP" ]; then
    touch "$STAMP"
    exit 0
fi
need_tools apt-get sha256sum tar xz awk dpkg-query
command -v dpkg-source >/dev/null 2>&1 ||
    die "dpkg-dev is missing (no dpkg-source); run: tools/deps.sh install"

# The installed binary's source version, e.g. 1:7.2+dfsg-7+deb12u18 (a binNMU's +bN suffix removed).
ver=$(dpkg-query -W -f '${source:Version}' qemu-system-x86 2>/dev/null) ||
    die "qemu-system-x86 is not installed"
upstream=${ver#*:}
upstream=${upstream%-*}                       # 7.2+dfsg
ORIG="qemu_${upstream}.orig.tar.xz"

# shellcheck source=tools/apt-src.sh
. "$(dirname "$0")/apt-src.sh"
DL="$OUTDIR/qemu-dl"
mkdir -p "$DL" "$DEST"
if [ ! -f "$DL/$ORIG" ]; then
    note "updating the private Sources index ($APT)"
    run_apt "apt-get update (private deb-src index)" -q --error-on=any update
    note "downloading source package qemu=$ver into $DL"
    ( cd "$DL" && run_apt "apt-get source --download-only qemu=$ver" -q source --download-only "qemu=$ver" )
fi
shopt -s nullglob
dscs=("$DL"/qemu_*.dsc)
shopt -u nullglob
[ ${#dscs[@]} -gt 0 ] || die "no qemu .dsc in $DL"
want=$(dsc_sha256 "${dscs[${#dscs[@]}-1]}" "$ORIG")
[ -n "$want" ] || die "${dscs[${#dscs[@]}-1]} lists no SHA256 for $ORIG"
have=$(sha256sum "$DL/$ORIG" | awk '{print $1}')
if [ "$have" != "$want" ]; then
    rm -f "$DL/$ORIG"
    die "SHA256 MISMATCH for $ORIG: got $have, the .dsc says $want (the bad file was removed)"
fi
tar -xJf "$DL/$ORIG" -O --wildcards '*/include/qemu/qemu-plugin.h' > "$DEST/qemu-plugin.h.tmp" ||
    die "no include/qemu/qemu-plugin.h in $ORIG"
mv "$DEST/qemu-plugin.h.tmp" "$DEST/qemu-plugin.h"
printf 'verified %s sha256=%s\n' "$ORIG" "$have" > "$STAMP"
note "qemu-plugin.h ($ORIG) ready in $DEST"
