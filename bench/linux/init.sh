#!/bin/sh
# /init of the stock Linux baseline guest (bench/linux; copied into the initramfs by build.sh). busybox sh.
# Kernel command line parameters it reads (run.sh --cmdline):
#   vg_ip=ADDR/PREFIX    guest address (default 192.168.77.2/24)
#   vg_rcvbuf=BYTES      SO_RCVBUF(FORCE) of echod's UDP sockets (default: the kernel's default)
#   vg_shell=0           no shell on the console after READY (default 1)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp

vg_ip=192.168.77.2/24 vg_rcvbuf="" vg_shell=1
for w in $(cat /proc/cmdline); do
	case "$w" in
	vg_ip=*) vg_ip=${w#vg_ip=} ;;
	vg_rcvbuf=*) vg_rcvbuf=${w#vg_rcvbuf=} ;;
	vg_shell=*) vg_shell=${w#vg_shell=} ;;
	esac
done

fail() {
	echo "LINUX-GUEST FAILED: $*"
	exec sh
}

while read -r m; do
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done </lib/modules/order

# The first ethernet device (ARPHRD_ETHER = 1); virtio_net probes asynchronously, so wait up to 5 s.
dev="" i=0
while [ -z "$dev" ]; do
	for d in /sys/class/net/*; do
		n=${d##*/}
		[ "$n" != lo ] && [ "$(cat "$d/type" 2>/dev/null)" = 1 ] && { dev=$n; break; }
	done
	[ -n "$dev" ] && break
	i=$((i + 1))
	[ $i -le 500 ] || fail "no ethernet device after 5 s"
	usleep 10000
done

ip link set lo up
ip addr add "$vg_ip" dev "$dev" || fail "ip addr add $vg_ip dev $dev"
ip link set "$dev" up || fail "ip link set $dev up"

if [ -n "$vg_rcvbuf" ]; then echod -r "$vg_rcvbuf" & else echod & fi
iperf -s -D >/dev/null 2>&1 || fail "iperf -s -D"

# READY only once the servers listen: TCP 5001 (0x1389, iperf) and 7 (echod), state 0A = LISTEN.
i=0
until grep -q ':1389 00000000:0000 0A' /proc/net/tcp && grep -q ':0007 00000000:0000 0A' /proc/net/tcp; do
	i=$((i + 1))
	[ $i -le 300 ] || fail "servers not listening after 3 s"
	usleep 10000
done

read -r up _ </proc/uptime
echo "LINUX-GUEST READY dev=$dev ip=$vg_ip kernel=$(uname -r) uptime=${up}s"

# A shell on the console (Ctrl-A x quits QEMU; 'poweroff -f' powers the guest off, which ends QEMU too).
if [ "$vg_shell" = 1 ]; then
	while :; do
		setsid cttyhack sh
		sleep 1
	done
fi
while :; do sleep 3600; done
