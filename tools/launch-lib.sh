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
