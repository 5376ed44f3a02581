# tools/dep-script.sh: sourced (not run) by the scripts that put a third-party dependency under OUTDIR,
# tools/build-newlib.sh and tools/fetch-lwip.sh, so that both speak and fail the same way.
#
#   dep_init NAME "$@"   messages start with NAME; the one argument OUTDIR is created if missing and OUTDIR is
#                        set to its absolute path (usage error, exit 2, without exactly one argument)
#   die MESSAGE...       "NAME: error: MESSAGE" on stderr, exit 1
#   note MESSAGE...      "NAME: MESSAGE" on stdout
#   need_tools TOOL...   die unless every TOOL is on PATH (tools/deps.sh installs them)

dep_name=${0##*/}

die() { printf '%s: error: %s\n' "$dep_name" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$dep_name" "$*"; }

dep_init() {
    dep_name=$1
    shift
    [ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
    mkdir -p "$1" || die "cannot create output directory '$1'"
    OUTDIR=$(cd "$1" && pwd)
}

need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "'$tool' not found (run: tools/deps.sh install)"
    done
}
