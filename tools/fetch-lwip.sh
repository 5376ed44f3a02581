#!/usr/bin/env bash
# tools/fetch-lwip.sh OUTDIR
#
# Fetch the Debian source package `lwip` (upstream 2.1.3) with a PRIVATE apt
# configuration under OUTDIR/apt (never touching /etc/apt), verify the
# upstream orig tarball against the SHA256 in the .dsc, and unpack the
# untouched upstream tree into OUTDIR/lwip-2.1.3 (Debian's patches are not
# applied: we bring our own port).
#
# The deb-src entry is derived at run time from the machine's own Debian
# entry (/etc/apt/sources.list.d/*.sources, else sources.list / *.list): same
# URIs, Components and Signed-By, suite = the main release (e.g. bookworm).
# Override the suite with LWIP_APT_SUITE=... if the codename cannot be found;
# LWIP_APT_ETC=DIR reads DIR instead of /etc/apt (for testing the parser).
#
# Then applies patches/lwip/*.patch in name order (`patch -p1`, each hunk
# commented): the only way lwIP itself is changed; never copy lwIP files.
#
# Idempotent: when OUTDIR/lwip-2.1.3/src/core/init.c exists and the stamp
# OUTDIR/lwip-2.1.3/.stamp-verified records the verified tarball and exactly
# the current patches (name and SHA256 each), it only refreshes the stamp's
# mtime (so make sees it as up to date) and exits. When only the patches
# changed and the verified tarball is still in OUTDIR/lwip-dl, the tree is
# unpacked and patched afresh from it without going to the network.
set -euo pipefail

LWIP_VERSION=2.1.3
ORIG_TARBALL="lwip_${LWIP_VERSION}+dfsg1.orig.tar.xz"
TREE_NAME="lwip-${LWIP_VERSION}"

# shellcheck source=tools/dep-script.sh
. "$(dirname "$0")/dep-script.sh"
dep_init fetch-lwip "$@"
TREE="$OUTDIR/$TREE_NAME"
STAMP="$TREE/.stamp-verified"

PATCH_DIR="$(cd "$(dirname "$0")/.." && pwd)/patches/lwip"
DL="$OUTDIR/lwip-dl"

# "patched NAME sha256=SUM" for every patch, in the order they are applied.
patch_lines() {
    local f
    shopt -s nullglob
    for f in "$PATCH_DIR"/*.patch; do
        printf 'patched %s sha256=%s\n' "${f##*/}" "$(sha256sum "$f" | awk '{print $1}')"
    done
    shopt -u nullglob
}
need_tools sha256sum tar xz awk patch
want_patches=$(patch_lines)

# ---- already done? -------------------------------------------------------
if [ -f "$TREE/src/core/init.c" ] && [ -f "$STAMP" ] &&
   grep -q "^verified $ORIG_TARBALL sha256=[0-9a-f]\{64\}\$" "$STAMP" &&
   [ "$(grep '^patched ' "$STAMP" || true)" = "$want_patches" ]; then
    touch "$STAMP"
    exit 0
fi

# The patches changed, the tarball verified before is still here: no download.
have_sum=""
if [ -f "$STAMP" ] && [ -f "$DL/$ORIG_TARBALL" ]; then
    old_sum=$(sed -n "s/^verified $ORIG_TARBALL sha256=\([0-9a-f]\{64\}\)\$/\1/p" "$STAMP")
    if [ -n "$old_sum" ] && [ "$(sha256sum "$DL/$ORIG_TARBALL" | awk '{print $1}')" = "$old_sum" ]; then
        have_sum=$old_sum
        note "re-using $ORIG_TARBALL verified earlier (sha256=$have_sum); patches changed"
    fi
fi

if [ -z "$have_sum" ]; then  # download and verify (up to the matching fi, not indented)

# ---- tools ---------------------------------------------------------------
need_tools apt-get
# apt-get source is part of the dpkg-dev tool set (dpkg-source); require it
# so that a machine set up by tools/deps.sh behaves like this one.
command -v dpkg-source >/dev/null 2>&1 ||
    die "dpkg-dev is missing (no dpkg-source); run: tools/deps.sh install"

# ---- the private apt configuration (tools/apt-src.sh) -----------------------
# shellcheck source=tools/apt-src.sh
. "$(dirname "$0")/apt-src.sh"

mkdir -p "$DL"
note "updating the private Sources index ($APT)"
run_apt "apt-get update (private deb-src index)" -q --error-on=any update
note "downloading source package lwip into $DL"
( cd "$DL" && run_apt "apt-get source --download-only lwip" \
      -q source --download-only lwip )

# ---- verify ----------------------------------------------------------------
shopt -s nullglob
dscs=("$DL"/lwip_"${LWIP_VERSION}"*.dsc)
shopt -u nullglob
if [ ${#dscs[@]} -eq 0 ]; then
    found=$(find "$DL" -maxdepth 1 -name '*.dsc' -printf '%f ')
    die "no lwip_${LWIP_VERSION}*.dsc downloaded (found: ${found:-nothing});" \
        "this suite does not carry lwIP ${LWIP_VERSION}"
fi
DSC=${dscs[${#dscs[@]}-1]}
[ -f "$DL/$ORIG_TARBALL" ] || die "$ORIG_TARBALL not downloaded (dsc: $DSC)"

# Checksums-Sha256 field of the (possibly clearsigned) .dsc:
#   " <sha256> <size> <file>" continuation lines.
want_sum=$(awk -v file="$ORIG_TARBALL" '
    /^Checksums-Sha256:/ { in_f = 1; next }
    in_f && /^[ \t]/ { if ($3 == file) { print $1; exit } ; next }
    { in_f = 0 }' "$DSC")
[ -n "$want_sum" ] || die "$DSC lists no SHA256 for $ORIG_TARBALL"
have_sum=$(sha256sum "$DL/$ORIG_TARBALL" | awk '{print $1}')
if [ "$have_sum" != "$want_sum" ]; then
    rm -f "$DL/$ORIG_TARBALL"     # so that the next run downloads it afresh
    die "SHA256 MISMATCH for $ORIG_TARBALL: got $have_sum," \
        "$DSC says $want_sum (the bad file was removed)"
fi
note "verified $ORIG_TARBALL sha256=$have_sum"
fi  # download and verify

# ---- unpack (into a temp dir, then rename: never a half-unpacked tree) ------
TMP=$(mktemp -d "$OUTDIR/.lwip-unpack.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
tar -xJf "$DL/$ORIG_TARBALL" -C "$TMP" ||
    die "cannot unpack $DL/$ORIG_TARBALL"
[ -f "$TMP/$TREE_NAME/src/core/init.c" ] ||
    die "$ORIG_TARBALL did not unpack to $TREE_NAME/ (got: $(ls "$TMP"))"
shopt -s nullglob
for f in "$PATCH_DIR"/*.patch; do
    patch -d "$TMP/$TREE_NAME" -p1 --batch --forward --quiet < "$f" ||
        die "patch ${f##*/} does not apply to lwIP ${LWIP_VERSION}"
    note "applied ${f##*/}"
done
shopt -u nullglob
rm -rf "$TREE"
mv "$TMP/$TREE_NAME" "$TREE"
{
    printf 'verified %s sha256=%s\n' "$ORIG_TARBALL" "$have_sum"
    [ -z "$want_patches" ] || printf '%s\n' "$want_patches"
} > "$STAMP"
note "lwIP ${LWIP_VERSION} ready in $TREE"
