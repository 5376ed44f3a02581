# tools/apt-src.sh: sourced (after tools/dep-script.sh) by the scripts that fetch a Debian source package,
# tools/fetch-lwip.sh and tools/fetch-qemu-plugin-h.sh. It sets up a PRIVATE apt configuration under
# OUTDIR/apt (never touching /etc/apt) whose one deb-src entry is derived at run time from the machine's own
# Debian entry (/etc/apt/sources.list.d/*.sources, else sources.list / *.list): same URIs, Components and
# Signed-By, suite = the main release (e.g. bookworm), so no mirror's host name is ever written into the repo.
#
# Set before sourcing: OUTDIR. Optional: APT_SRC_SUITE (or the older LWIP_APT_SUITE) overrides the suite,
# LWIP_APT_ETC=DIR reads DIR instead of /etc/apt (for testing the parser).
# Defines: APT (the private directory), SRC_FILE, APT_OPTS (the -o options), LOG, and
#   run_apt WHAT ARGS...   apt-get with APT_OPTS, everything logged, the log shown and die on failure
suite=${APT_SRC_SUITE:-${LWIP_APT_SUITE:-}}
if [ -z "$suite" ] && [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    suite=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
fi
# An empty $suite means: accept the first suite without a '-' suffix
# (i.e. not -updates, -security, -backports).

APT="$OUTDIR/apt"
mkdir -p "$APT/sources.list.d" "$APT/lists/partial" \
         "$APT/cache/archives/partial"
: > "$APT/sources.list"                      # no one-line sources at all
SRC_FILE="$APT/sources.list.d/lwip-src.sources"   # the name of the first user, kept for existing caches

# deb822 files: print a deb-src stanza built from the first enabled `deb`
# stanza whose Suites contain the wanted suite. Signed-By is copied verbatim
# (it may be a path or an inline, multi-line key block).
from_deb822() {
    awk -v want="$suite" '
    function reset() { types = ""; uris = ""; suites = ""; comps = "";
                       sb = ""; enabled = "yes"; cur = ""; n = 0 }
    function pick(   i, k, s) {
        k = split(suites, s, /[ \t]+/)
        for (i = 1; i <= k; i++) {
            if (s[i] == "") continue
            if (want != "" && s[i] == want) return s[i]
            if (want == "" && s[i] !~ /-/) return s[i]
        }
        return ""
    }
    function flush(   s) {
        if (n > 0 && tolower(enabled) != "no" && (" " types " ") ~ / deb / &&
            uris != "" && comps != "") {
            s = pick()
            if (s != "") {
                print "Types: deb-src"
                print "URIs: " uris
                print "Suites: " s
                print "Components: " comps
                if (sb != "") print sb
                found = 1
                exit 0
            }
        }
        reset()
    }
    BEGIN { reset() }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ {                                   # continuation line
        if (cur == "signed-by") sb = sb "\n" $0
        else if (cur == "types") types = types " " $0
        else if (cur == "uris") uris = uris " " $0
        else if (cur == "suites") suites = suites " " $0
        else if (cur == "components") comps = comps " " $0
        next
    }
    {
        n++
        i = index($0, ":"); if (i == 0) { cur = ""; next }
        cur = tolower(substr($0, 1, i - 1))
        v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
        if (cur == "types") types = v
        else if (cur == "uris") uris = v
        else if (cur == "suites") suites = v
        else if (cur == "components") comps = v
        else if (cur == "enabled") enabled = v
        else if (cur == "signed-by") sb = "Signed-By: " v
    }
    END { if (!found) flush() }
    ' "$@"
}

# One-line format: `deb [opt=val ...] URI SUITE COMPONENT...`
from_oneline() {
    awk -v want="$suite" '
    { sub(/#.*/, "") }
    $1 != "deb" { next }
    {
        line = $0; sb = ""
        sub(/^[ \t]*deb[ \t]+/, "", line)
        if (line ~ /^\[/) {
            opts = substr(line, 2, index(line, "]") - 2)
            line = substr(line, index(line, "]") + 1)
            k = split(opts, o, /[ \t]+/)
            for (i = 1; i <= k; i++)
                if (tolower(o[i]) ~ /^signed-by=/) sb = substr(o[i], 11)
        }
        k = split(line, f, /[ \t]+/); j = 0
        for (i = 1; i <= k; i++) if (f[i] != "") g[++j] = f[i]
        if (j < 3) next
        if (want != "" && g[2] != want) next
        if (want == "" && g[2] ~ /-/) next
        comps = g[3]; for (i = 4; i <= j; i++) comps = comps " " g[i]
        print "Types: deb-src"
        print "URIs: " g[1]
        print "Suites: " g[2]
        print "Components: " comps
        if (sb != "") print "Signed-By: " sb
        exit 0
    }' "$@"
}

stanza=""
shopt -s nullglob
ETC=${LWIP_APT_ETC:-/etc/apt}
deb822_files=("$ETC"/sources.list.d/*.sources)
oneline_files=()
[ -r "$ETC/sources.list" ] && oneline_files+=("$ETC/sources.list")
oneline_files+=("$ETC"/sources.list.d/*.list)
shopt -u nullglob
for f in "${deb822_files[@]}"; do
    stanza=$(from_deb822 "$f")
    [ -n "$stanza" ] && break
done
if [ -z "$stanza" ]; then
    for f in "${oneline_files[@]}"; do
        stanza=$(from_oneline "$f")
        [ -n "$stanza" ] && break
    done
fi
if [ -z "$stanza" ]; then
    die "no deb-src entry derivable: found no enabled 'deb' entry for suite" \
        "'${suite:-<any main release>}' in $ETC/sources.list.d/*.sources," \
        "$ETC/sources.list or $ETC/sources.list.d/*.list" \
        "(set LWIP_APT_SUITE=<suite> to choose another suite)"
fi
printf '%s\n' "$stanza" > "$SRC_FILE"

APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APT/sources.list"
    -o "Dir::Etc::sourceparts=$APT/sources.list.d"
    -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache=$APT/cache"
    -o "Dir::Cache::archives=$APT/cache/archives"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
    -o "Acquire::Languages=none"
    -o "APT::Get::List-Cleanup=true"
)
LOG="$APT/apt.log"
: > "$LOG"

run_apt() {   # run_apt WHAT args... ; log everything, show the log on failure
    local what=$1; shift
    if ! apt-get "${APT_OPTS[@]}" "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "$what failed (full log: $LOG; sources used: $SRC_FILE)"
    fi
}

# dsc_sha256 DSC FILE: the SHA256 the (possibly clearsigned) .dsc lists for FILE in its Checksums-Sha256
# field (" <sha256> <size> <file>" continuation lines), or nothing.
dsc_sha256() {
    awk -v file="$2" '
    /^Checksums-Sha256:/ { in_f = 1; next }
    in_f && /^[ \t]/ { if ($3 == file) { print $1; exit } ; next }
    { in_f = 0 }' "$1"
}
