# tools/launch-lib.sh: sourced (not run) by the two QEMU launch scripts, run-qemu.sh and bench/linux/run.sh,
# for what they do the same way. The functions read and extend the caller's variables: prog (the prefix of
# messages), traces, trace_file, monitor, timeout_s, dry_run, args and cmd.

# A usage error: the message on stderr, exit 2.
die() {
	echo "$prog: $*" >&2
	exit 2
}

# need_arg "$@": the option in $1 must have a non-empty value in $2.
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "option $1 needs a value"; }

# --trace, --trace-file and --monitor as QEMU options, appended to args.
launch_add_debug_args() {
	local ev
	for ev in "${traces[@]+"${traces[@]}"}"; do args+=(-trace "$ev"); done
	[ -z "$trace_file" ] || args+=(-D "$trace_file")
	[ -z "$monitor" ] || args+=(-monitor "unix:$monitor,server,nowait")
}

# --timeout wraps cmd in timeout(1) (exit status 124 when it fires); --dry-run prints cmd and ends the script.
launch_finish_cmd() {
	if [ -n "$timeout_s" ]; then cmd=(timeout --foreground -k 2 "$timeout_s" "${cmd[@]}"); fi
	if [ "$dry_run" = 1 ]; then
		printf '%q ' "${cmd[@]}"
		echo
		exit 0
	fi
}

# The moment the guest's QEMU command starts (CLOCK_REALTIME, from bash's $EPOCHREALTIME) into the file named
# by $VNETK_START_STAMP, when set: bench/bench.py times "QEMU start -> first ping" from it instead of polling
# for the QEMU process, which competed with QEMU's own start-up for this machine's two cores.
launch_stamp_start() {
	if [ -n "${VNETK_START_STAMP:-}" ]; then echo "$EPOCHREALTIME" >"$VNETK_START_STAMP"; fi
}

# The machine as QEMU gets it: q35 without ICH9's SATA and SMBus functions (00:1f.2, 00:1f.3), which q35 always
# has and a network guest uses neither of; enumerating them and placing their BARs cost ~5 ms of every boot
# under TCG. Only keys the caller left unset are added: --machine q35,sata=on brings the SATA controller back.
# Keys named after the machine are kept (the UEFI boot's ESP is a disk on the SATA controller).
launch_machine() {
	local m=$1 key
	shift
	case "$m" in
	q35 | q35,* | pc-q35-*)
		for key in sata smbus; do
			case " $* " in *" $key "*) continue ;; esac
			case ",$m," in *",$key="*) ;; *) m+=",$key=off" ;; esac
		done
		;;
	esac
	echo "$m"
}
