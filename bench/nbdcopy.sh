#!/usr/bin/env bash
# Sequential throughput of the NBD path: nbdcopy of random data into and out
# of a --test disk served by s3backer-go, and the same through `nbdkit file`
# on one local file (the ceiling of the NBD path on this machine).
# Prints MB/s per run, the medians of RUNS runs, and our/nbdkit ratios.
#
#   bench/nbdcopy.sh            # 512 MiB, 256 KiB blocks, 5 runs
#   SIZE_MB=128 RUNS=5 bench/nbdcopy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-512}
BLOCK=${BLOCK:-256k}
RUNS=${RUNS:-5}
BIN=${S3BACKER_BIN:-bin/s3backer}
export PATH=/usr/bin:$PATH

# shellcheck source=bench/lib.sh
. bench/lib.sh
need nbdcopy nbdkit
[ -x "$BIN" ] || make build >/dev/null

work=$(mktemp -d /var/tmp/s3b-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

head -c $((SIZE_MB << 20)) /dev/urandom >"$work/in.img"

# settle: every run starts from the same state. The previous run's data is
# deleted by then; write everything out (the input file and the deletions
# are not this run's to flush) and drop the page and buffer caches (as root),
# then read the input back in. Without the drop, ext4 scans the inode table
# past the thousands of block files deleted seconds before (it avoids reusing
# recently deleted inodes while their table block is cached), which costs
# the --test disk several times what it costs one nbdkit file.
settle() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
	cat "$work/in.img" >/dev/null
}

# run_one NAME: start the server, copy in (with a final flush), copy out.
run_one() {
	local name=$1 sock="$work/$1.sock" pid
	rm -f "$sock"
	case $name in
	s3backer-go)
		rm -rf "$work/dir"; mkdir "$work/dir"
		"$BIN" --nbd --test -f --size=${SIZE_MB}M --blockSize=$BLOCK ${S3B_FLAGS:-} "$work/dir" "nbd+unix:///?socket=$sock" 2>"$work/server.log" &
		;;
	nbdkit-file)
		rm -f "$work/disk.img"; truncate -s ${SIZE_MB}M "$work/disk.img"
		nbdkit -f -U "$sock" file "$work/disk.img" &
		;;
	esac
	pid=$!; pids+=("$pid")
	wait_socket "$sock" "$pid" "$work/server.log"
	settle
	local t0 t1 t2
	t0=$(now)
	nbdcopy --flush "$work/in.img" "nbd+unix:///?socket=$sock"
	t1=$(now)
	nbdcopy "nbd+unix:///?socket=$sock" null:
	t2=$(now)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	echo "$(mbps "$t0" "$t1") $(mbps "$t1" "$t2")"
}

declare -A wr rd
for name in s3backer-go nbdkit-file; do wr[$name]=""; rd[$name]=""; done
for i in $(seq "$RUNS"); do
	for name in s3backer-go nbdkit-file; do
		read -r w r < <(run_one $name)
		echo "run $i  $name  write $w MB/s  read $r MB/s"
		wr[$name]+="$w "; rd[$name]+="$r "
	done
done

echo
echo "| path | write MB/s | read MB/s |"
echo "|---|---|---|"
for name in s3backer-go nbdkit-file; do
	# shellcheck disable=SC2086
	echo "| $name | $(median ${wr[$name]}) | $(median ${rd[$name]}) |"
done
# shellcheck disable=SC2086
awk -v a="$(median ${wr[s3backer-go]})" -v b="$(median ${wr[nbdkit-file]})" \
    -v c="$(median ${rd[s3backer-go]})" -v d="$(median ${rd[nbdkit-file]})" \
    'BEGIN { printf "| ratio | %.0f %% | %.0f %% |\n", 100 * a / b, 100 * c / d }'
echo
echo "($SIZE_MB MiB random data, $BLOCK blocks, median of $RUNS runs, $(nproc) cores)"
