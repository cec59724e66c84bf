#!/bin/bash
# Profiles dockfw's native XDP program under the macro benchmark's flood:
# `perf record` on the receiver's CPU (1) while `dockfw-bench macro --only
# dockfw-native` runs, the jited image and its line table read from the
# kernel while the program is attached, then a breakdown of the receiver's
# time by kernel symbol and by source line of the program.
#
# usage: bench/profile/profile-macro.sh OUTDIR [extra dockfw-bench macro args]
# Needs root, perf, bpftool, python3, and `cargo xtask bench` run once (it
# builds target/release/dockfw and dockfw-bench). No libbfd is needed: the
# jited line table comes from BPF_OBJ_GET_INFO_BY_FD (jitinfo.py).
set -euo pipefail
out=${1:?usage: profile-macro.sh OUTDIR [dockfw-bench macro args]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
perf record -C 1 -o "$out/perf.data" -- sleep 60 >/dev/null 2>&1 &
perf_pid=$!
(
    for _ in $(seq 1 240); do
        if grep -q udp-fixed "$out/bench.log" 2>/dev/null; then
            id=$(bpftool prog show | awk -F: '/name dockfw_xdp/ {print $1; exit}')
            bpftool prog dump xlated id "$id" linum >"$out/xlated.txt"
            python3 "$here/jitinfo.py" "$id" "$out/prog"
            exit 0
        fi
        sleep 0.5
    done
) &
dump_pid=$!
DOCKFW_BIN="$root/target/release/dockfw" "$root/target/release/dockfw-bench" macro \
    --only dockfw-native --no-legit --runs 1 --seconds 5 --out "$out" "$@" >"$out/bench.log" 2>&1
wait "$dump_pid" "$perf_pid" || true
grep ns/drop "$out/bench.log"
python3 "$here/analyze.py" "$out"
