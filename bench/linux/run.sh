#!/usr/bin/env bash
# bench/linux/run.sh — boot the stock Linux baseline guest (built by bench/linux/build.sh) with the same QEMU
# machine, NIC and namespace setup as ./run-qemu.sh --net tap. Serial console on stdio; the guest prints
# "LINUX-GUEST READY ..." once its services listen. ./bench/linux/run.sh --help lists the options.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prog=bench/linux/run.sh

accel=auto mem=256 netns=vlinux tap=tap0 host_ip=192.168.77.1/24 timeout_s="" cmdline="" nic_opts=""
kernel=$root/build/linux-guest/vmlinuz initrd=$root/build/linux-guest/initramfs.cpio.gz
pcap="" trace_file="" monitor="" dry_run=0 quiet=quiet
traces=() qemu_args=()

usage() {
	cat <<'USAGE'
Usage: bench/linux/run.sh [options]
  --netns NAME           network namespace for the tap (default vlinux); created if missing, and then removed
                         on exit
  --tap IFNAME           tap interface created inside the namespace (default tap0), removed on exit
  --host-ip ADDR/PREFIX  host-side address of the tap (default 192.168.77.1/24); the guest takes the next
                         address (192.168.77.2)
  --timeout SECONDS      stop the guest after that long (exit status 124)
  --qemu-arg ARG         pass ARG to QEMU verbatim (repeatable)
  --accel kvm|tcg|auto   accelerator; auto (default) uses KVM only where it really works (as run-qemu.sh)
  --mem MiB              guest memory (default 256)
  --cmdline "K=V ..."    appended to the kernel command line (e.g. "vg_rcvbuf=4194304 vg_shell=0")
  --no-quiet             boot without 'quiet' (all kernel messages on the console)
  --nic-opts OPTS        extra virtio-net-pci properties, e.g. 'rx_queue_size=1024'
  --trace EVENTS         QEMU trace events, comma-separated or repeated
  --trace-file FILE      write QEMU's trace/log output to FILE instead of stderr
  --pcap FILE            record the NIC's traffic with QEMU's filter-dump
  --monitor PATH         QEMU human monitor on a unix socket at PATH
  --kernel FILE          default build/linux-guest/vmlinuz
  --initrd FILE          default build/linux-guest/initramfs.cpio.gz
  --dry-run              print the QEMU command line and exit
  -h, --help             this text
In the guest: echo on UDP/TCP 7, discard on UDP/TCP 9, "count" on UDP 9999 (datagrams received on UDP 9
since the last "reset"), status on UDP 7007, iperf2 server on TCP 5001. Quit with Ctrl-A x, or type
'poweroff -f' on the guest console. Needs root (tap in a namespace).
USAGE
}

# die, need_arg and the steps both launch scripts share.
# shellcheck source=tools/launch-lib.sh
. "$root/tools/launch-lib.sh"

while [ $# -gt 0 ]; do
	case "$1" in
	--netns) need_arg "$@"; netns=$2; shift ;;
	--tap) need_arg "$@"; tap=$2; shift ;;
	--host-ip) need_arg "$@"; host_ip=$2; shift ;;
	--timeout) need_arg "$@"; timeout_s=$2; shift ;;
	--qemu-arg) need_arg "$@"; qemu_args+=("$2"); shift ;;
	--accel) need_arg "$@"; accel=$2; shift ;;
	--mem) need_arg "$@"; mem=$2; shift ;;
	--cmdline) [ $# -ge 2 ] || die "option --cmdline needs a value"; cmdline=$2; shift ;;
	--nic-opts) need_arg "$@"; nic_opts=$2; shift ;;
	--trace) need_arg "$@"; IFS=, read -r -a evs <<<"$2"; traces+=("${evs[@]}"); shift ;;
	--trace-file) need_arg "$@"; trace_file=$2; shift ;;
	--pcap) need_arg "$@"; pcap=$2; shift ;;
	--monitor) need_arg "$@"; monitor=$2; shift ;;
	--kernel) need_arg "$@"; kernel=$2; shift ;;
	--initrd) need_arg "$@"; initrd=$2; shift ;;
	--no-quiet) quiet="" ;;
	--dry-run) dry_run=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
	shift
done

case "$accel" in kvm | tcg | auto) ;; *) die "option --accel: '$accel' is not kvm, tcg or auto" ;; esac
[[ "$mem" =~ ^[0-9]+$ ]] && [ "$mem" -ge 64 ] || die "option --mem: '$mem' is not a number of MiB >= 64"
[ -z "$timeout_s" ] || [[ "$timeout_s" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "option --timeout: '$timeout_s' is not a number of seconds"
[[ "$host_ip" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "option --host-ip: '$host_ip' is not ADDR/PREFIX"
[[ "$tap" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "option --tap: '$tap' is not a valid interface name"
[[ "$netns" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "option --netns: '$netns' is not a valid namespace name"
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 not found: install the Debian package qemu-system-x86"
command -v ip >/dev/null 2>&1 || die "ip not found: install the Debian package iproute2"
if [ "$dry_run" = 0 ]; then
	[ -f "$kernel" ] && [ -f "$initrd" ] || die "$kernel or $initrd missing: run bench/linux/build.sh"
	[ "$(id -u)" = 0 ] || die "needs root (creates a tap inside a network namespace)"
	[ -c /dev/net/tun ] || die "/dev/net/tun is missing: load the tun module (modprobe tun)"
fi

# The same accelerator choice, -cpu and -smp as run-qemu.sh (tools/kvm-usable.sh).
read -r accel cpu smp <<<"$("$root/tools/kvm-usable.sh" --accel "$accel" --prog "$prog")"

IFS=./ read -r o1 o2 o3 o4 plen <<<"$host_ip"
guest_ip="$o1.$o2.$o3.$((o4 + 1))"
append="console=ttyS0${quiet:+ $quiet} panic=-1 vg_ip=$guest_ip/$plen${cmdline:+ $cmdline}"

nic="virtio-net-pci,netdev=net0,disable-legacy=on,romfile="
[ -z "$nic_opts" ] || nic="$nic,$nic_opts"
# The same machine as run-qemu.sh (isa-debug-exit included, unused by Linux).
args=(-machine "$(launch_machine q35)" -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem" -display none -vga none -no-reboot
	-serial mon:stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04
	-kernel "$kernel" -initrd "$initrd" -append "$append"
	-netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" -device "$nic")
[ -z "$pcap" ] || args+=(-object "filter-dump,id=dump0,netdev=net0,file=$pcap")
launch_add_debug_args
args+=("${qemu_args[@]+"${qemu_args[@]}"}")

cmd=(ip netns exec "$netns" qemu-system-x86_64 "${args[@]}")
launch_finish_cmd

# Cleanup on every exit path: QEMU first (it holds the tap), then the tap, then a namespace we created.
created_ns="" created_tap="" qemu_pid=""
cleanup() {
	trap - EXIT INT TERM HUP
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill -TERM "$qemu_pid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	if [ -n "$created_tap" ]; then ip netns exec "$netns" ip link del "$created_tap" 2>/dev/null || true; fi
	if [ -n "$created_ns" ]; then ip netns del "$created_ns" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if ! ip netns list | awk '{print $1}' | grep -qx "$netns"; then
	ip netns add "$netns" || die "cannot create network namespace $netns"
	created_ns=$netns
fi
ip netns exec "$netns" ip link set lo up
err=$(ip netns exec "$netns" ip tuntap add dev "$tap" mode tap 2>&1) || die "cannot create tap $tap in namespace $netns: $err"
created_tap=$tap
ip netns exec "$netns" ip addr add "$host_ip" dev "$tap"
ip netns exec "$netns" ip link set "$tap" up
echo "$prog: Linux guest ($accel) on tap $tap (host side $host_ip) in namespace $netns; guest $guest_ip: ip netns exec $netns ping $guest_ip" >&2

# QEMU runs in the background so that a signal to this script stops it and cleans up at once; stdin is
# handed over explicitly (a background job's stdin would otherwise be /dev/null).
exec 3<&0
launch_stamp_start
"${cmd[@]}" <&3 &
qemu_pid=$!
exec 3<&-
set +e
wait "$qemu_pid"
status=$?
set -e
qemu_pid=""
case "$status" in
124) echo "$prog: stopped after --timeout $timeout_s s" >&2 ;;
1) echo "$prog: QEMU failed (status 1)" >&2 ;;
esac
exit "$status"
