#!/usr/bin/env bash
# tools/deps.sh check|install
#
# The Debian packages this project needs to build, boot and test.
#   check    exit 0 if all are installed; else print the apt-get line that
#            installs the missing ones and exit 1.
#   install  install the missing ones (root only; `apt-get update` is run only
#            when the package lists look empty or a first install attempt
#            fails). Not root: print the line and exit 1.
# When everything is present both are a single dpkg-query call (~20 ms).
set -euo pipefail

PACKAGES=(
    # build
    gcc make binutils libc6-dev clang libclang-rt-14-dev
    dpkg-dev xz-utils patch        # apt-get source + unpacking and patching lwIP
    newlib-source                  # newlib 3.3.0 tarball, built by build-newlib.sh
    gnu-efi                        # EFI loader
    mtools                         # FAT boot image
    # run
    qemu-system-x86 ovmf
    # tests and benchmarks
    libcmocka-dev python3-pytest python3-scapy
    iperf tcpdump iputils-ping iproute2 socat bc gnuplot-nox
    cpio busybox-static            # the Linux baseline guest for make bench (bench/linux)
    nmap                           # OS scan: TCP ISN predictability (test_tcp_hardening.py)
)
# libc6-dev: gcc only *recommends* it, and we install without recommends;
# the host-side unit tests (cmocka) need the host libc headers.

usage() { echo "usage: $0 check|install" >&2; exit 2; }
[ $# -eq 1 ] || usage

missing_packages() {
    # One line per package dpkg knows: "<name> <status-abbrev>"; a package
    # counts as present only when its status letter is 'i' (installed).
    local -A ok=()
    local name status p
    while read -r name status; do
        [ "${status:1:1}" = i ] && ok[$name]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' \
                 "${PACKAGES[@]}" 2>/dev/null || true)
    for p in "${PACKAGES[@]}"; do
        [ -n "${ok[$p]:-}" ] || printf '%s\n' "$p"
    done
}

install_line() { echo "apt-get install -y --no-install-recommends $*"; }

mapfile -t missing < <(missing_packages)

case $1 in
check)
    [ ${#missing[@]} -eq 0 ] && exit 0
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: install them (as root) with:" >&2
    install_line "${missing[@]}"
    exit 1
    ;;
install)
    [ ${#missing[@]} -eq 0 ] && exit 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing Debian packages: ${missing[*]}" >&2
        echo "deps: not root; run this as root:" >&2
        install_line "${missing[@]}"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-q -o DPkg::Lock::Timeout=300)
    updated=0
    lists_empty() {
        ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
    }
    if lists_empty; then
        echo "deps: package lists are empty: apt-get update"
        apt-get "${apt_opts[@]}" update
        updated=1
    fi
    echo "deps: installing: ${missing[*]}"
    if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends \
            "${missing[@]}"; then
        if [ $updated -eq 1 ]; then
            echo "deps: error: apt-get install failed" >&2
            exit 1
        fi
        echo "deps: install failed; retrying after apt-get update"
        apt-get "${apt_opts[@]}" update
        apt-get "${apt_opts[@]}" install -y --no-install-recommends \
            "${missing[@]}" ||
            { echo "deps: error: apt-get install failed after update" >&2
              exit 1; }
    fi
    mapfile -t still < <(missing_packages)
    if [ ${#still[@]} -ne 0 ]; then
        echo "deps: error: still missing after install: ${still[*]}" >&2
        exit 1
    fi
    ;;
*)
    usage
    ;;
esac
