#!/usr/bin/env bash
# tools/kvm-usable.sh [--accel kvm|tcg|auto] [--prog NAME]
#
# Whether KVM really works on this machine, and the QEMU accelerator settings that follow: the one place
# run-qemu.sh and bench/linux/run.sh (and the tests of both) take this from.
#
# KVM counts as usable only if the CPU has VMX or SVM, /dev/kvm is readable and writable, and the kvm module
# is not the paravirtual kvm-pvm (cloud guests of this kind): kvm-pvm cannot run firmware or a normal kernel.
#
# Without --accel: prints "kvm" and exits 0 where KVM is usable, prints "tcg" and exits 1 where it is not.
# With --accel: prints "ACCEL CPU SMP", the values of QEMU's -accel, -cpu and -smp for that request, and exits
# 0. auto takes KVM where it is usable, else TCG; kvm where KVM is not usable stays kvm, with a warning on
# stderr (prefixed by --prog, default kvm-usable.sh).
set -euo pipefail

prog=kvm-usable.sh accel=""
while [ $# -gt 0 ]; do
	case "$1" in
	--accel) [ $# -ge 2 ] || { echo "$prog: option --accel needs a value" >&2; exit 2; }; accel=$2; shift ;;
	--prog) [ $# -ge 2 ] || { echo "$prog: option --prog needs a value" >&2; exit 2; }; prog=$2; shift ;;
	*) echo "$prog: unknown option '$1'" >&2; exit 2 ;;
	esac
	shift
done

kvm_works() {
	grep -qwE 'vmx|svm' /proc/cpuinfo 2>/dev/null || return 1
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	[ ! -d /sys/module/kvm_pvm ] || return 1
	return 0
}

if [ -z "$accel" ]; then
	if kvm_works; then echo kvm; exit 0; fi
	echo tcg
	exit 1
fi

case "$accel" in
auto) if kvm_works; then accel=kvm; else accel=tcg; fi ;;
kvm) kvm_works || echo "$prog: warning: KVM requested but it does not look usable here" >&2 ;;
tcg) ;;
*) echo "$prog: option --accel: '$accel' is not kvm, tcg or auto" >&2; exit 2 ;;
esac
if [ "$accel" = kvm ]; then cpu=host; else cpu=max; fi
# One vCPU, but maxcpus=2 under TCG: QEMU 7.2 omits guest memory barriers (mfence) when it believes only one
# vCPU can exist, and the virtqueue's "publish index, then read the device's event index" check then races
# QEMU's I/O thread (fixed in QEMU 8.1). The driver also re-notifies a queue that stalls (tx_rekicks).
smp=1
[ "$accel" = kvm ] || smp=1,maxcpus=2
echo "$accel $cpu $smp"
