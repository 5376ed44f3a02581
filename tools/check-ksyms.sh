#!/bin/sh
# check-ksyms.sh PASS1.elf FINAL.elf — the symbol table is only right if adding it moved no function: compare
# the text symbols of both links.
set -eu
a=$(nm -n --defined-only "$1" | awk '$2 ~ /^[tT]$/' | md5sum)
b=$(nm -n --defined-only "$2" | awk '$2 ~ /^[tT]$/ && $3 !~ /^ksym_/' | md5sum)
if [ "$a" != "$b" ]; then
	echo "check-ksyms: function addresses differ between the two links; stack traces would be wrong" >&2
	exit 1
fi
