#!/usr/bin/env bash
# The FUSE front end beside our NBD path and the C s3backer's FUSE file
# (Debian's 1.5.4), on one Versity S3 Gateway (posix backend, --keep-alive,
# loopback), with the same block size and --blockCacheSize. Each run, in a
# fresh bucket per program:
#
#   write  SIZE_MB MiB of random data, timed until durable.
#          ours-fuse: dd bs=1M oflag=direct conv=notrunc,fsync into the
#            FUSE file (fsync returns once every block is in S3);
#          ours-fuse-loop: the same through a loop device on the file
#            (losetup --direct-io=on), dd oflag=direct conv=fsync;
#          ours-nbd: nbdcopy --flush over a unix socket;
#          ours-nbd-seq: the same (not in PATHS unless asked for);
#          ours-plugin: the same through nbdkit with our plugin
#            (bin/nbdkit-s3backer-plugin.so, `make plugin`), every flag
#            passed as a NAME=VALUE parameter;
#          c-fuse: dd bs=1M oflag=direct into its file, fusermount -u,
#            until its process exits (1.5.4 ignores fsync and writes back
#            at unmount; umount returns first).
#   read   cold (a fresh process, empty cache): dd bs=1M iflag=direct to
#          /dev/null (through the loop device for ours-fuse-loop), nbdcopy
#          to null: for ours-nbd and ours-plugin; for ours-nbd-seq one
#          128 KiB request at a time, as the kernel's nbd device reads a
#          file sequentially (read-ahead is then all ours).
#
# CPU seconds per GiB are the s3backer process's own (user+system from
# /proc/PID/stat; for the C write, which ends with the process, from
# /usr/bin/time). Prints every run, then the medians of RUNS runs and the
# ratios the issue asks for (ours-fuse and ours-plugin against c-fuse and
# ours-nbd).
#
# LATENCY=30ms puts bench/s3latency between the programs and the gateway:
# every request waits that long before it is forwarded, as the first byte
# of a remote S3 endpoint would (the gateway's own time comes on top).
#
#   bench/fuse.sh                             # 512 MiB, 256k blocks, 3 runs
#   RUNS=1 SIZE_MB=256 BS=1M bench/fuse.sh
#   PATHS="ours-fuse c-fuse" S3B_FLAGS=--readAhead=16 bench/fuse.sh   # flags for ours only
#   LATENCY=30ms PATHS="ours-fuse ours-nbd c-fuse" bench/fuse.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-512}
RUNS=${RUNS:-3}
BS=${BS:-256k}
CACHE=${CACHE:-1000}
PATHS=${PATHS:-ours-fuse ours-fuse-loop ours-nbd ours-plugin c-fuse}
BIN=${S3BACKER_BIN:-bin/s3backer}
PLUGIN=${S3BACKER_PLUGIN:-bin/nbdkit-s3backer-plugin.so}
CBIN=${C_S3BACKER:-/usr/bin/s3backer}
TIME=/usr/bin/time
VGW=${VERSITYGW:-$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")}
export PATH=/usr/bin:/usr/sbin:/sbin:$PATH
# Loopback only: never let the SDK reach for instance metadata.
export AWS_EC2_METADATA_DISABLED=true
KEY=bench-access SECRET=bench-secret

# shellcheck source=bench/lib.sh
. bench/lib.sh
need nbdcopy fusermount losetup curl dd
need_gateway
need_c
[ -x "$BIN" ] || make build >/dev/null
if [[ " $PATHS " == *" ours-plugin "* ]]; then
	need nbdkit
	[ -e "$PLUGIN" ] || make plugin >/dev/null
fi

work=$(mktemp -d /var/tmp/s3b-fusebench.XXXXXX)
gw_pid="" pid="" tpid="" lat_pid="" loop="" mnt=$work/mnt
cleanup() {
	if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
	if mountpoint -q "$mnt" 2>/dev/null; then umount -l "$mnt" 2>/dev/null || true; fi
	for p in "$pid" "$tpid" "$lat_pid" "$gw_pid"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$mnt"

head -c $((SIZE_MB << 20)) /dev/urandom >"$work/in.img"
start_gateway
base=$URL
if [ -n "${LATENCY:-}" ]; then
	go build -o "$work/s3latency" ./bench/s3latency
	"$work/s3latency" -upstream "$URL" -delay "$LATENCY" >"$work/lat.url" 2>"$work/lat.log" &
	lat_pid=$!
	for _ in $(seq 500); do [ -s "$work/lat.url" ] && break; sleep 0.01; done
	base=$(cat "$work/lat.url")/
	[ "$base" != / ] || fail "s3latency did not start:" "$work/lat.log"
fi
S3=(--baseURL="$base" --accessId="$KEY" --accessKey="$SECRET")
sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"


# start PATH BUCKET FLAGS...: the program of PATH on the bucket; sets pid
# (the s3backer process) and, for the C program, tpid (its time wrapper).
start() {
	local path=$1 bucket=$2; shift 2
	case $path in
	ours-fuse*)
		# shellcheck disable=SC2086
		"$BIN" -f "${S3[@]}" "$@" ${S3B_FLAGS:-} "$bucket" "$mnt" 2>"$work/s.log" &
		pid=$!
		;;
	ours-nbd*)
		rm -f "$sock"
		# shellcheck disable=SC2086
		"$BIN" --nbd -f "${S3[@]}" "$@" ${S3B_FLAGS:-} "$bucket" "$uri" 2>"$work/s.log" &
		pid=$!
		;;
	ours-plugin)
		rm -f "$sock"
		local params=() f
		# shellcheck disable=SC2086
		for f in "${S3[@]}" "$@" ${S3B_FLAGS:-}; do
			f=${f#--}
			[[ $f == *=* ]] || f="$f=true" # a boolean flag
			params+=("$f")
		done
		nbdkit -f -U "$sock" "$PLUGIN" bucket="$bucket" "${params[@]}" 2>"$work/s.log" &
		pid=$!
		;;
	c-fuse)
		"$TIME" -f "%U %S" -o "$work/ctime" "$CBIN" -f "${S3[@]}" "$@" "$bucket" "$mnt" >"$work/s.log" 2>&1 &
		tpid=$! pid=""
		;;
	esac
	for _ in $(seq 1500); do
		if [ "$path" = c-fuse ] && [ -z "$pid" ]; then
			pid=$(awk '{ print $1 }' "/proc/$tpid/task/$tpid/children" 2>/dev/null || true)
		fi
		case $path in
		ours-nbd* | ours-plugin) [ -S "$sock" ] && return 0 ;;
		*) [ -n "$pid" ] && [ -e "$mnt/file" ] && return 0 ;;
		esac
		kill -0 "${tpid:-$pid}" 2>/dev/null || break
		sleep 0.02
	done
	fail "$path did not start:" "$work/s.log"
}

# stop PATH: a clean stop (flush, clear the flag); for the C program the
# CPU seconds of its whole life in c_total.
stop() {
	case $1 in
	c-fuse)
		fusermount -u "$mnt"
		wait "$tpid" || fail "the C s3backer failed:" "$work/s.log"
		c_total=$(awk 'END { printf "%.2f", $1 + $2 }' "$work/ctime")
		tpid=""
		;;
	*)
		kill "$pid"
		wait "$pid" || fail "$1 failed:" "$work/s.log"
		;;
	esac
	pid=""
}

# run_one PATH RUN: prints "WRITE_MBPS WRITE_CPU READ_MBPS READ_CPU".
run_one() {
	local path=$1 run=$2 bucket t0 t1 c0 w wc r rc
	bucket=$path-$run
	make_bucket "$bucket"
	start "$path" "$bucket" --size="${SIZE_MB}M" --blockSize="$BS" --blockCacheSize="$CACHE"
	c0=$(cpu "$pid") t0=$(now)
	case $path in
	ours-fuse) dd if="$work/in.img" of="$mnt/file" bs=1M oflag=direct conv=notrunc,fsync status=none ;;
	ours-fuse-loop)
		loop=$(losetup --find --show --direct-io=on "$mnt/file")
		dd if="$work/in.img" of="$loop" bs=1M oflag=direct conv=fsync status=none
		losetup -d "$loop"; loop=""
		;;
	ours-nbd* | ours-plugin) nbdcopy --flush "$work/in.img" "$uri" ;;
	c-fuse) dd if="$work/in.img" of="$mnt/file" bs=1M oflag=direct conv=notrunc status=none ;;
	esac
	if [ "$path" = c-fuse ]; then
		stop "$path"
		t1=$(now)
		w=$(mbps "$t0" "$t1") wc=$(per_gib "$(sub "$c_total" "$c0")")
	else
		t1=$(now)
		w=$(mbps "$t0" "$t1") wc=$(per_gib "$(sub "$(cpu "$pid")" "$c0")")
		stop "$path"
	fi

	start "$path" "$bucket" --size="${SIZE_MB}M" --blockSize="$BS" --blockCacheSize="$CACHE"
	c0=$(cpu "$pid") t0=$(now)
	case $path in
	ours-fuse | c-fuse) dd if="$mnt/file" of=/dev/null bs=1M iflag=direct status=none ;;
	ours-fuse-loop)
		loop=$(losetup --find --show --direct-io=on --read-only "$mnt/file")
		dd if="$loop" of=/dev/null bs=1M iflag=direct status=none
		;;
	ours-nbd | ours-plugin) nbdcopy "$uri" null: ;;
	ours-nbd-seq) nbdcopy --connections=1 --requests=1 --request-size=131072 "$uri" null: ;;
	esac
	t1=$(now)
	r=$(mbps "$t0" "$t1") rc=$(per_gib "$(sub "$(cpu "$pid")" "$c0")")
	if [ -n "$loop" ]; then losetup -d "$loop"; loop=""; fi
	stop "$path"
	rm -rf "${work:?}/gw/$bucket"
	echo "$w $wc $r $rc"
}

declare -A W WC R RC
for i in $(seq "$RUNS"); do
	for path in $PATHS; do
		read -r w wc r rc < <(run_one "$path" "$i")
		echo "run $i  $path  write $w MB/s ($wc CPU s/GiB)  read $r MB/s ($rc CPU s/GiB)"
		W[$path]+="$w " WC[$path]+="$wc " R[$path]+="$r " RC[$path]+="$rc "
	done
done

echo
echo "| path | write MB/s | write CPU s/GiB | cold read MB/s | read CPU s/GiB |"
echo "|---|---|---|---|---|"
for path in $PATHS; do
	# shellcheck disable=SC2086
	echo "| $path | $(median ${W[$path]}) | $(median ${WC[$path]}) | $(median ${R[$path]}) | $(median ${RC[$path]}) |"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; }
for other in c-fuse ours-nbd; do
	for ours in ours-fuse ours-plugin; do
		[[ " $PATHS " == *" $ours "* && " $PATHS " == *" $other "* ]] || continue
		# shellcheck disable=SC2086
		echo "| $ours / $other | $(ratio "$(median ${W[$ours]})" "$(median ${W[$other]})") | | $(ratio "$(median ${R[$ours]})" "$(median ${R[$other]})") | |"
	done
done
echo
echo "($SIZE_MB MiB random data, --blockSize=$BS, --blockCacheSize=$CACHE, dd bs=1M direct, median of $RUNS runs, $(nproc) cores)"
