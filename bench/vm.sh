#!/usr/bin/env bash
# The kernel path's cost: dd of 128 MiB of random data through ext4 with
# conv=fsync, then back after dropping the caches, on
#   VM    ext4 on /dev/nbd0 attached by s3backer --nbd --test (blocks in the
#         guest's tmpfs), in the TCG guest of test/vm (TestVMBench, guest
#         script test/vm/testdata/bench.sh), and in the same boot ext4 on a
#         ram disk (brd) and on a loop device over a tmpfs file: the
#         guest's own ceiling under the same emulation;
#   host  ext4 on a loop device over the file that nbdfuse serves from
#         s3backer --nbd --test on a unix socket (blocks in /dev/shm), and
#         ext4 on a loop device over a file in /dev/shm, the host ceiling.
# Prints MB/s (10^6 bytes) per run, the medians of RUNS runs and the
# nbd/ceiling ratios (the median of each run's ratio: the devices take
# turns within a run, so a change in the machine's load hits them alike).
# Needs root (loop devices, mounts, drop_caches), qemu-system-x86_64 and the
# rest of scripts/install-vm-deps.sh, nbdfuse (libnbd-bin) and e2fsprogs.
#
#   bench/vm.sh                  # 128 MiB, 3 runs
#   SIZE_MB=64 RUNS=5 bench/vm.sh
#   SKIP_VM=1 bench/vm.sh        # the host half only
#   VM_LOG=/tmp/vm.log bench/vm.sh   # keep the guest's console log
#   S3BACKER_VM_BENCH_NBD_QUEUE="max_sectors_kb=1024" bench/vm.sh  # tune nbd0
#   S3BACKER_VM_BENCH_FLAGS=--readAhead=0 bench/vm.sh  # flags for the guest's s3backer
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-128}
RUNS=${RUNS:-3}
DISK=512M
BLOCK=256k
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

[ "$(id -u)" = 0 ] || { echo "bench: needs root (loop devices, mounts, drop_caches)" >&2; exit 1; }
for tool in nbdfuse losetup mkfs.ext4 go; do
	command -v $tool >/dev/null || { echo "bench: $tool missing" >&2; exit 1; }
done

work=$(mktemp -d /dev/shm/s3b-vmbench.XXXXXX)
mkdir -p "$work/s3b" "$work/fuse" "$work/mnt/nbdfuse" "$work/mnt/loop"
server="" fuse="" loops=()
cleanup() {
	set +e
	for m in "$work/mnt/nbdfuse" "$work/mnt/loop"; do mountpoint -q "$m" && umount "$m"; done
	for l in "${loops[@]}"; do losetup -d "$l"; done
	if [ -n "$fuse" ]; then
		# As root nbdfuse mounted by itself; umount is what fusermount3 -u does.
		mountpoint -q "$work/fuse" && umount "$work/fuse"
		wait "$fuse" 2>/dev/null
	fi
	if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

# col FILE DEV OP: the MB/s column of "dev run op MB/s seconds" lines.
col() { awk -v d="$2" -v op="$3" '$1 == d && $3 == op { print $4 }' "$1"; }

# One static binary for the guest and the host. Others may be editing the
# tree: a build that fails is retried a few times.
for try in 1 2 3 4 5; do
	CGO_ENABLED=0 go build -trimpath -o "$work/s3backer" ./cmd/s3backer && break
	[ $try = 5 ] && { echo "bench: go build failed" >&2; exit 1; }
	sleep 30
done

# --- VM ---------------------------------------------------------------------
if [ "${SKIP_VM:-}" != 1 ]; then
	echo "VM: booting the test/vm guest under TCG (a few minutes)..."
	if ! S3BACKER_VM_BENCH=1 S3BACKER_VM_BIN="$work/s3backer" S3BACKER_VM_BENCH_OUT="$work/vm.txt" \
		S3BACKER_VM_BENCH_MB="$SIZE_MB" S3BACKER_VM_BENCH_RUNS="$RUNS" \
		go test -count=1 -timeout 60m -run '^TestVMBench$' -v ./test/vm/ >"$work/vm.log" 2>&1 ||
		[ ! -s "$work/vm.txt" ]; then
		[ -z "${VM_LOG:-}" ] || cp "$work/vm.log" "$VM_LOG"
		tail -n 40 "$work/vm.log" >&2
		echo "bench: the VM benchmark failed or was skipped" >&2
		exit 1
	fi
	[ -z "${VM_LOG:-}" ] || cp "$work/vm.log" "$VM_LOG"
	while read -r d r op v s; do
		echo "VM   run $r  $d  $op $v MB/s ($s s)"
	done <"$work/vm.txt"
fi

# --- host -------------------------------------------------------------------
echo "host: nbdfuse + loop, and loop over /dev/shm..."
head -c $((SIZE_MB << 20)) /dev/urandom >"$work/src"

sock="$work/nbd.sock"
"$work/s3backer" --nbd -f --test --size=$DISK --blockSize=$BLOCK "$work/s3b" "nbd+unix:///?socket=$sock" 2>"$work/server.log" &
server=$!
for _ in $(seq 500); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || { echo "bench: $sock never appeared" >&2; cat "$work/server.log" >&2; exit 1; }
# nbdfuse stays in the foreground; its pidfile appears once the mount is up.
nbdfuse -P "$work/nbdfuse.pid" "$work/fuse" "nbd+unix:///?socket=$sock" &
fuse=$!
for _ in $(seq 500); do [ -s "$work/nbdfuse.pid" ] && break; sleep 0.02; done
[ -s "$work/nbdfuse.pid" ] || { echo "bench: nbdfuse did not start" >&2; exit 1; }

truncate -s $DISK "$work/loop.img"
declare -A hdev
hdev[nbdfuse]=$(losetup -f --show "$work/fuse/nbd"); loops+=("${hdev[nbdfuse]}")
hdev[loop]=$(losetup -f --show "$work/loop.img"); loops+=("${hdev[loop]}")
for d in nbdfuse loop; do
	# As in the guest: inode tables and journal now, no ext4lazyinit later.
	mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 "${hdev[$d]}"
	mount -t ext4 -o noatime "${hdev[$d]}" "$work/mnt/$d"
done

now() { date +%s.%N; }
rate() { awk -v mb="$SIZE_MB" -v s="$1" -v e="$2" 'BEGIN { printf "%.1f %.3f", mb * 1.048576 / (e - s), e - s }'; }
drop() { echo 3 >/proc/sys/vm/drop_caches; }
: >"$work/host.txt"
for i in $(seq "$RUNS"); do
	for d in nbdfuse loop; do
		f="$work/mnt/$d/f"
		rm -f "$f"; sync; drop
		t0=$(now); dd if="$work/src" of="$f" bs=1M conv=fsync status=none; t1=$(now)
		drop
		t2=$(now); dd if="$f" of=/dev/null bs=1M status=none; t3=$(now)
		w=$(rate "$t0" "$t1"); r=$(rate "$t2" "$t3")
		echo "$d $i write $w" >>"$work/host.txt"; echo "$d $i read $r" >>"$work/host.txt"
		echo "host run $i  $d  write ${w% *} MB/s (${w#* } s)  read ${r% *} MB/s (${r#* } s)"
	done
done
for d in nbdfuse loop; do cmp "$work/src" "$work/mnt/$d/f"; done

# --- table ------------------------------------------------------------------
row() { # label file dev
	# shellcheck disable=SC2046
	echo "| $1 | $(median $(col "$2" "$3" write)) | $(median $(col "$2" "$3" read)) |"
}
ratio() { # label file dev ceiling-dev: the median of the runs' ratios
	local w r
	w=$(awk -v a="$3" -v b="$4" '$3 == "write" { v[$1, $2] = $4; n[$2] } END { for (i in n) print 100 * v[a, i] / v[b, i] }' "$2")
	r=$(awk -v a="$3" -v b="$4" '$3 == "read" { v[$1, $2] = $4; n[$2] } END { for (i in n) print 100 * v[a, i] / v[b, i] }' "$2")
	# shellcheck disable=SC2086
	printf '| %s | %.0f %% | %.0f %% |\n' "$1" "$(median $w)" "$(median $r)"
}
echo
echo "| path | write MB/s | read MB/s |"
echo "|---|---|---|"
if [ -s "$work/vm.txt" ]; then
	row "VM: ext4 on /dev/nbd0 (s3backer --nbd --test)" "$work/vm.txt" nbd
	row "VM: ext4 on loop over tmpfs (ceiling)" "$work/vm.txt" loop
	row "VM: ext4 on brd ram disk" "$work/vm.txt" brd
	ratio "VM ratio nbd / loop" "$work/vm.txt" nbd loop
	ratio "VM ratio nbd / brd" "$work/vm.txt" nbd brd
fi
row "host: ext4 on loop over nbdfuse (s3backer --nbd --test, unix socket)" "$work/host.txt" nbdfuse
row "host: ext4 on loop over /dev/shm (ceiling)" "$work/host.txt" loop
ratio "host ratio nbdfuse / loop" "$work/host.txt" nbdfuse loop
echo
echo "($SIZE_MB MiB random data, dd bs=1M, conv=fsync on writes, caches dropped before reads;"
echo " $DISK disk, $BLOCK blocks; median of $RUNS runs; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
