#!/usr/bin/env bash
# run-qemu.sh — build what is missing, then boot the kernel in QEMU. Serial console on stdio.
# ./run-qemu.sh --help lists the options.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prog=run-qemu.sh

boot=pvh accel=auto mem=256 cmdline="" net=user tap=tap0 netns="" host_ip=192.168.77.1/24
firmware=auto gdb=0 timeout_s="" pcap="" trace_file="" monitor="" nic_opts="" machine=q35 build=1 dry_run=0 mgmt=0
mgmt_ip=192.168.78.1/24
traces=() qemu_args=()

usage() {
	cat <<'USAGE'
Usage: ./run-qemu.sh [options]
  --boot pvh|uefi        boot path: PVH direct boot (default) or GNU-EFI loader on OVMF
  --accel kvm|tcg|auto   accelerator; auto (default) uses KVM only where it really works, else TCG
  --mem MiB              guest memory (default 256)
  --cmdline "K=V ..."    kernel command line (e.g. "test=ticks hz=1000 budget=32")
  --net tap|user|none    NIC backend (default user: QEMU's user network, restricted to this host)
  --tap IFNAME           tap interface name (default tap0), created inside --netns
  --netns NAME           network namespace for the tap (default vnetk); created if missing, removed after
                         if this script created it
  --host-ip ADDR/PREFIX  host-side address of the tap (default 192.168.77.1/24)
  --nic-opts OPTS        extra NIC properties (virtio-net-pci, or virtio-net-device on microvm), e.g. 'rx_queue_size=1024,event_idx=off'
  --mgmt                 with --net tap: a second virtio-net NIC on its own tap (<tap>m, host side
                         192.168.78.1/24, guest ip1=192.168.78.2/24), a management path a flood on the first
                         NIC does not share
  --gdb                  start halted with a gdb stub on tcp::1234 (see README)
  --trace EVENTS         QEMU trace events, comma-separated or repeated (e.g. virtqueue_flush,virtio_notify)
  --trace-file FILE      write QEMU's trace/log output to FILE instead of stderr
  --pcap FILE            record the NIC's traffic with QEMU's filter-dump
  --monitor PATH         QEMU human monitor on a unix socket at PATH
  --machine TYPE         QEMU machine (default q35, without its SATA (but with --boot uefi) and SMBus
                         functions unless sata=on/smbus=on); microvm[,OPTS] gets virtio-net-device on virtio-mmio
                         (virtio-net-pci with pcie=on)
  --firmware auto|qboot|seabios
                         PVH firmware: auto (default) = qboot where installed (the kernel assigns the PCI
                         BARs qboot leaves unassigned), else SeaBIOS; --boot uefi always uses OVMF
  --qemu-arg ARG         pass ARG to QEMU verbatim (repeatable)
  --timeout SECONDS      stop the guest after that long
  --no-build             do not run make first
  --dry-run              print the QEMU command line and exit
  -h, --help             this text
Exit status: QEMU's. In test mode the kernel exits through isa-debug-exit: 33 = pass, 35 = fail,
37 = panic, 65+2*vector = CPU exception (e.g. 77 = #UD, 93 = #PF); 1 = QEMU itself failed.
USAGE
}


# die, need_arg and the steps both launch scripts share.
# shellcheck source=tools/launch-lib.sh
. "$here/tools/launch-lib.sh"

while [ $# -gt 0 ]; do
	case "$1" in
	--boot) need_arg "$@"; boot=$2; shift ;;
	--accel) need_arg "$@"; accel=$2; shift ;;
	--mem) need_arg "$@"; mem=$2; shift ;;
	--cmdline) [ $# -ge 2 ] || die "option --cmdline needs a value"; cmdline=$2; shift ;;
	--net) need_arg "$@"; net=$2; shift ;;
	--tap) need_arg "$@"; tap=$2; shift ;;
	--netns) need_arg "$@"; netns=$2; shift ;;
	--host-ip) need_arg "$@"; host_ip=$2; shift ;;
	--nic-opts) need_arg "$@"; nic_opts=$2; shift ;;
	--mgmt) mgmt=1 ;;
	--gdb) gdb=1 ;;
	--trace) need_arg "$@"; IFS=, read -r -a evs <<<"$2"; traces+=("${evs[@]}"); shift ;;
	--trace-file) need_arg "$@"; trace_file=$2; shift ;;
	--pcap) need_arg "$@"; pcap=$2; shift ;;
	--monitor) need_arg "$@"; monitor=$2; shift ;;
	--machine) need_arg "$@"; machine=$2; shift ;;
	--firmware) need_arg "$@"; firmware=$2; shift ;;
	--qemu-arg) need_arg "$@"; qemu_args+=("$2"); shift ;;
	--timeout) need_arg "$@"; timeout_s=$2; shift ;;
	--no-build) build=0 ;;
	--dry-run) dry_run=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
	shift
done

case "$boot" in pvh | uefi) ;; *) die "option --boot: '$boot' is not pvh or uefi" ;; esac
case "$accel" in kvm | tcg | auto) ;; *) die "option --accel: '$accel' is not kvm, tcg or auto" ;; esac
case "$net" in tap | user | none) ;; *) die "option --net: '$net' is not tap, user or none" ;; esac
case "$firmware" in auto | qboot | seabios) ;; *) die "option --firmware: '$firmware' is not auto, qboot or seabios" ;; esac
[[ "$mem" =~ ^[0-9]+$ ]] && [ "$mem" -ge 8 ] || die "option --mem: '$mem' is not a number of MiB >= 8"
[ -z "$timeout_s" ] || [[ "$timeout_s" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "option --timeout: '$timeout_s' is not a number of seconds"
[[ "$host_ip" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "option --host-ip: '$host_ip' is not ADDR/PREFIX"
[[ "$tap" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "option --tap: '$tap' is not a valid interface name"

need_tool() { # need_tool COMMAND DEBIAN-PACKAGE
	command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package $2 (apt-get install $2)"
}
# The build first: on a fresh machine it installs the Debian packages (QEMU among them) as root, or prints
# the one apt-get command to run and stops (tools/deps.sh). Only then is QEMU looked for.
if [ "$build" = 1 ] && [ "$dry_run" = 0 ]; then
	if ! make -C "$here" --no-print-directory -s all >&2; then
		die "build failed (run 'make' to see why; as root it installs the Debian packages it needs)"
	fi
fi
need_tool qemu-system-x86_64 qemu-system-x86

# KVM only where it really works; the -cpu and -smp that go with the accelerator (tools/kvm-usable.sh says why).
read -r accel cpu smp <<<"$("$here/tools/kvm-usable.sh" --accel "$accel" --prog "$prog")"

kernel="$here/build/kernel.elf"
efi_app="$here/build/efi/BOOTX64.EFI"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-qemu.XXXXXX")
created_ns="" created_tap="" created_tap2=""
cleanup() {
	if [ -n "$created_tap" ]; then ip netns exec "$netns" ip link del "$created_tap" 2>/dev/null || true; fi
	if [ -n "$created_tap2" ]; then ip netns exec "$netns" ip link del "$created_tap2" 2>/dev/null || true; fi
	if [ -n "$created_ns" ]; then ip netns del "$created_ns" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

keep=()
[ "$boot" = pvh ] || keep=(sata) # the ESP is an AHCI disk
args=(-machine "$(launch_machine "$machine" "${keep[@]+"${keep[@]}"}")" -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem" -display none -vga none -no-reboot
	-serial mon:stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04)

if [ "$boot" = pvh ]; then
	[ "$dry_run" = 1 ] || [ -f "$kernel" ] || die "$kernel missing (run make)"
	args+=(-kernel "$kernel")
	# Firmware: qboot starts the kernel in about half SeaBIOS's time on q35 (58 vs 122 ms to a test=boot
	# exit); it assigns no PCI BARs, which the kernel then does itself (drivers/pci.c, windows from the
	# DSDT). microvm's default firmware is its own qboot build; SeaBIOS has a microvm build too. Other
	# machines keep QEMU's default.
	qboot=/usr/share/qemu/qboot.rom seabios_microvm=/usr/share/seabios/bios-microvm.bin
	if [ "$firmware" = auto ]; then
		firmware=seabios
		[ ! -f "$qboot" ] || firmware=qboot
	fi
	# QEMU's own defaults need no -bios: SeaBIOS on q35, qboot on microvm.
	fw_file=""
	case "$machine:$firmware" in
	q35*:qboot) fw_file=$qboot ;;
	microvm*:seabios) fw_file=$seabios_microvm ;;
	esac
	if [ -n "$fw_file" ]; then
		[ "$dry_run" = 1 ] || [ -f "$fw_file" ] || die "firmware $fw_file not found: install the Debian package ${firmware/qboot/qemu-system-data}"
		args+=(-bios "$fw_file")
	fi
else
	ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
	[ -f "$ovmf_code" ] && [ -f "$ovmf_vars" ] || die "OVMF firmware not found in /usr/share/OVMF: install the Debian package ovmf"
	need_tool mformat mtools
	[ "$dry_run" = 1 ] || [ -f "$efi_app" ] || die "$efi_app missing (run make)"
	cp "$ovmf_vars" "$tmp/vars.fd"
	args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf_code"
		-drive "if=pflash,format=raw,unit=1,file=$tmp/vars.fd"
		-drive "format=raw,file=$tmp/esp.img")
fi

# The guest's address unless the command line sets one: on a tap, the host address + 1 in its subnet with
# the host as gateway; on the user network, DHCP from QEMU.
guest_ip=""
if [[ " $cmdline " != *" ip="* ]]; then
	case "$net" in
	tap)
		IFS=./ read -r o1 o2 o3 o4 plen <<<"$host_ip"
		guest_ip="$o1.$o2.$o3.$((o4 + 1))"
		cmdline="${cmdline:+$cmdline }ip=$guest_ip/$plen gw=${host_ip%/*}"
		;;
	user) cmdline="${cmdline:+$cmdline }ip=dhcp" ;;
	esac
fi
if [ "$mgmt" = 1 ]; then
	[ "$net" = tap ] || die "option --mgmt needs --net tap"
	[[ " $cmdline " == *" ip1="* ]] || cmdline="$cmdline ip1=${mgmt_ip%.*/*}.2/${mgmt_ip#*/}"
fi
if [ "$boot" = pvh ]; then
	args+=(-append "$cmdline")
elif [ "$dry_run" = 0 ]; then
	"$here/tools/mkesp.sh" "$tmp/esp.img" "$efi_app" "$cmdline" >/dev/null
fi

# The NIC the machine can carry: q35 (and microvm with pcie=on) virtio-net-pci, modern only, no option ROM
# (the kernel drives it); plain microvm has no PCI, only virtio-mmio slots, which QEMU describes to the guest
# in the ACPI DSDT (or, with acpi=off, on the command line as virtio_mmio.device=).
nic_dev="virtio-net-pci" nic_base="disable-legacy=on,romfile="
case "$machine" in
microvm*pcie=on*) ;;
microvm*)
	nic_dev="virtio-net-device" nic_base=""
	[ "$boot" = pvh ] || die "--machine microvm boots with --boot pvh only (no UEFI firmware for it here)"
	;;
esac
nic="$nic_dev,netdev=net0${nic_base:+,$nic_base}"
[ -z "$nic_opts" ] || nic="$nic,$nic_opts"
netns_exec=()
if [ "$net" = tap ] && [ "$(id -u)" != 0 ]; then
	echo "$prog: --net tap needs root (to create a tap in a namespace); falling back to --net user" >&2
	net=user
fi
case "$net" in
none) args+=(-nic none) ;;
user)
	# restrict=on: the guest reaches nothing beyond this host; host ports forward to the guest's services.
	args+=(-netdev "user,id=net0,restrict=on,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:10007-:7,hostfwd=tcp:127.0.0.1:15001-:5001,hostfwd=tcp:127.0.0.1:17007-:7007" -device "$nic")
	# TCP only: in restricted mode QEMU's user network drops every UDP datagram the guest sends but DHCP.
	echo "$prog: user network (guest DHCP from QEMU): TCP echo on 127.0.0.1:10007, iperf on 127.0.0.1:15001, status on 127.0.0.1:17007" >&2
	;;
tap)
	[ -c /dev/net/tun ] || die "/dev/net/tun is missing: load the tun module (modprobe tun)"
	need_tool ip iproute2
	[ -n "$netns" ] || netns=vnetk
	if [ "$dry_run" = 0 ]; then
		if ! ip netns list | awk '{print $1}' | grep -qx "$netns"; then
			ip netns add "$netns" || die "cannot create network namespace $netns"
			created_ns=$netns
		fi
		ip netns exec "$netns" ip link set lo up
		if ! ip netns exec "$netns" ip tuntap add dev "$tap" mode tap 2>"$tmp/err"; then
			die "cannot create tap $tap in namespace $netns: $(cat "$tmp/err")"
		fi
		created_tap=$tap
		ip netns exec "$netns" ip addr add "$host_ip" dev "$tap"
		ip netns exec "$netns" ip link set "$tap" up
		if [ "$mgmt" = 1 ]; then
			if ! ip netns exec "$netns" ip tuntap add dev "${tap}m" mode tap 2>"$tmp/err"; then
				die "cannot create tap ${tap}m in namespace $netns: $(cat "$tmp/err")"
			fi
			created_tap2=${tap}m
			ip netns exec "$netns" ip addr add "$mgmt_ip" dev "${tap}m"
			ip netns exec "$netns" ip link set "${tap}m" up
		fi
	fi
	netns_exec=(ip netns exec "$netns")
	args+=(-netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" -device "$nic")
	if [ "$mgmt" = 1 ]; then
		args+=(-netdev "tap,id=net1,ifname=${tap}m,script=no,downscript=no"
			-device "$nic_dev,netdev=net1${nic_base:+,$nic_base},mac=52:54:00:12:34:57")
	fi
	echo "$prog: tap $tap (host side ${host_ip}) in namespace $netns; reach the guest with: ip netns exec $netns ping ${guest_ip:-<guest-ip>}" >&2
	;;
esac
if [ -n "$pcap" ]; then
	if [ "$net" = none ]; then
		echo "$prog: warning: --pcap ignored with --net none (no NIC to record)" >&2
	else
		args+=(-object "filter-dump,id=dump0,netdev=net0,file=$pcap")
	fi
fi

launch_add_debug_args
if [ "$gdb" = 1 ]; then
	args+=(-s -S)
	echo "$prog: waiting for gdb on tcp::1234: gdb $kernel -ex 'target remote :1234'" >&2
fi
args+=("${qemu_args[@]+"${qemu_args[@]}"}")

cmd=("${netns_exec[@]+"${netns_exec[@]}"}" qemu-system-x86_64 "${args[@]}")
launch_finish_cmd

set +e
launch_stamp_start
"${cmd[@]}"
status=$?
set -e
case "$status" in
124) echo "$prog: stopped after --timeout $timeout_s s" >&2 ;;
33) echo "$prog: guest exited: test pass (status 33)" >&2 ;;
35) echo "$prog: guest exited: test FAIL (status 35)" >&2 ;;
37) echo "$prog: guest exited: kernel panic (status 37)" >&2 ;;
1) echo "$prog: QEMU failed (status 1)" >&2 ;;
esac
exit "$status"
