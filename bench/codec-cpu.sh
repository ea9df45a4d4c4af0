#!/usr/bin/env bash
# CPU cost of a disk's data path, s3backer-go against the C s3backer
# (Debian's 1.5.4, FUSE; its --test mode runs no codec, so a real S3 server
# it is). A Versity S3 Gateway (posix backend, --keep-alive) runs on a free
# loopback port in a temp dir. For each mode (plain; --encrypt
# --password=x, that is deflate + AES-128-CBC + HMAC; and, ours only,
# --encrypt=AES-256-GCM) and each run, into a fresh bucket:
#
#   C write   s3backer -f … --size --blockSize BUCKET MNT; dd DATA_MB MiB of
#             random data into MNT/file (bs=1M, conv=notrunc); fusermount -u;
#             wait for the process to exit (1.5.4 writes back at unmount)
#   C read    mount again with --readOnly; dd MNT/file to /dev/null; unmount
#   our write s3backer --nbd -f … BUCKET nbd+unix:///?socket=…; nbdcopy
#             --flush the same data in; SIGTERM
#   our read  a fresh process; nbdcopy to null:; SIGTERM
#   idle      each program started and stopped with no I/O, on the written
#             disk: the fixed cost of a start (mount flag, geometry, key
#             derivation: PBKDF2 for CBC, Argon2id for GCM), included above
#
# Each server process runs under /usr/bin/time: user + system CPU seconds
# over its whole life, scaled to CPU seconds per GiB of data. The disk is
# exactly DATA_MB MiB, so both programs move the same blocks (nbdcopy has
# no length limit; dd could stop short of a larger disk, nbdcopy could not).
# Clients (dd, nbdcopy) and the gateway are shown for context, not compared.
#
# Prints every run, then the medians of RUNS runs.
#
#   bench/codec-cpu.sh                          # 256 MiB, 256k blocks, 3 runs
#   DATA_MB=512 RUNS=5 MODES="plain cbc" bench/codec-cpu.sh
#   S3BACKER_BIN=/tmp/other/s3backer bench/codec-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_MB=${DATA_MB:-256}
RUNS=${RUNS:-3}
BS=${BS:-256k}
MODES=${MODES:-plain cbc gcm}
BIN=${S3BACKER_BIN:-bin/s3backer}
CBIN=${C_S3BACKER:-/usr/bin/s3backer}
TIME=/usr/bin/time
VGW=${VERSITYGW:-$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")}
export PATH=/usr/bin:$PATH
# Loopback only: never let the SDK reach for instance metadata.
export AWS_EC2_METADATA_DISABLED=true
KEY=bench-access SECRET=bench-secret

# shellcheck source=bench/lib.sh
. bench/lib.sh
need nbdcopy fusermount curl dd
need_gateway
need_c
[ -x "$BIN" ] || make build >/dev/null

work=$(mktemp -d /var/tmp/s3b-cpubench.XXXXXX)
gw_pid="" tpid="" mnt=$work/mnt
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then fusermount -u -z "$mnt" 2>/dev/null || true; fi
	if [ -n "$tpid" ]; then kill "$(child "$tpid")" 2>/dev/null || true; fi
	if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$mnt" "$work/gw"

head -c $((DATA_MB << 20)) /dev/urandom >"$work/in.img"

# child PID: the process /usr/bin/time started.
child() { awk '{ print $1 }' "/proc/$1/task/$1/children" 2>/dev/null; }
# timed_cpu FILE: user + system seconds from a `time -f "%U %S"` file.
timed_cpu() { awk 'END { printf "%.2f", $1 + $2 }' "$1"; }

start_gateway
S3=(--baseURL="$URL" --accessId="$KEY" --accessKey="$SECRET")

mode_flags() {
	case $1 in
	plain) ;;
	cbc) echo "--encrypt --password=x" ;;
	gcm) echo "--encrypt=AES-256-GCM --password=x" ;;
	*) echo "bench: unknown mode $1" >&2; exit 1 ;;
	esac
}

# spawn LOG CMD...: CMD under /usr/bin/time in the background; sets tpid
# (time's pid) and spid (CMD's).
spawn() {
	local log=$1; shift
	"$TIME" -f "%U %S" -o "$work/time" "$@" >"$log" 2>&1 &
	tpid=$!
	spid=""
	for _ in $(seq 500); do
		spid=$(child "$tpid") && [ -n "$spid" ] && return 0
		sleep 0.01
	done
	echo "bench: $* did not start:" >&2; cat "$log" >&2; exit 1
}
# reap LOG: wait for the spawned process; its CPU seconds in $srv_cpu.
reap() {
	if ! wait "$tpid"; then
		echo "bench: a measured process failed:" >&2; cat "$1" >&2; exit 1
	fi
	tpid=""
	srv_cpu=$(timed_cpu "$work/time")
}
# client CMD...: run CMD under /usr/bin/time; its CPU seconds in $cli_cpu.
client() {
	"$TIME" -f "%U %S" -o "$work/ctime" "$@" || { echo "bench: $* failed" >&2; exit 1; }
	cli_cpu=$(timed_cpu "$work/ctime")
}

# c_mount BUCKET FLAGS...: the C s3backer on $mnt, once its file is there.
c_mount() {
	local bucket=$1; shift
	spawn "$work/c.log" "$CBIN" -f "${S3[@]}" --size="${DATA_MB}m" --blockSize="$BS" "$@" "$bucket" "$mnt"
	for _ in $(seq 1500); do
		[ -e "$mnt/file" ] && return 0
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.02
	done
	echo "bench: the C s3backer did not mount:" >&2; cat "$work/c.log" >&2; exit 1
}
c_umount() { fusermount -u "$mnt"; reap "$work/c.log"; }

sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
# serve BUCKET FLAGS...: ours, once its socket is there.
serve() {
	local bucket=$1; shift
	rm -f "$sock"
	spawn "$work/s.log" "$BIN" --nbd -f "${S3[@]}" "$@" "$bucket" "$uri"
	for _ in $(seq 1500); do
		[ -S "$sock" ] && return 0
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.02
	done
	echo "bench: s3backer-go did not serve:" >&2; cat "$work/s.log" >&2; exit 1
}
unserve() { kill -TERM "$spid"; reap "$work/s.log"; }

# run_one MODE RUN: all phases of one mode; appends "key=value ..." to
# $work/result.
run_one() {
	local mode=$1 run=$2 flags bucket g0 r=""
	read -r -a flags <<<"$(mode_flags "$mode")"
	if [ "$mode" != gcm ]; then # the C s3backer has no GCM
		bucket=c-$mode-r$run
		make_bucket "$bucket"
		g0=$(cpu "$gw_pid")
		c_mount "$bucket" "${flags[@]}"
		client dd if="$work/in.img" of="$mnt/file" bs=1M conv=notrunc status=none
		c_umount
		r+=" c_w=$srv_cpu c_w_cli=$cli_cpu c_w_gw=$(sub "$(cpu "$gw_pid")" "$g0")"
		g0=$(cpu "$gw_pid")
		c_mount "$bucket" --readOnly "${flags[@]}"
		client dd if="$mnt/file" of=/dev/null bs=1M status=none
		c_umount
		r+=" c_r=$srv_cpu c_r_cli=$cli_cpu c_r_gw=$(sub "$(cpu "$gw_pid")" "$g0")"
		c_mount "$bucket" --readOnly "${flags[@]}"
		c_umount
		r+=" c_idle=$srv_cpu"
		rm -rf "${work:?}/gw/$bucket"
	fi

	bucket=go-$mode-r$run
	make_bucket "$bucket"
	g0=$(cpu "$gw_pid")
	serve "$bucket" --size="${DATA_MB}M" --blockSize="$BS" "${flags[@]}"
	client nbdcopy --flush "$work/in.img" "$uri"
	unserve
	r+=" o_w=$srv_cpu o_w_cli=$cli_cpu o_w_gw=$(sub "$(cpu "$gw_pid")" "$g0")"
	g0=$(cpu "$gw_pid")
	serve "$bucket" "${flags[@]}"
	client nbdcopy "$uri" null:
	unserve
	r+=" o_r=$srv_cpu o_r_cli=$cli_cpu o_r_gw=$(sub "$(cpu "$gw_pid")" "$g0")"
	serve "$bucket" "${flags[@]}"
	unserve
	r+=" o_idle=$srv_cpu"
	rm -rf "${work:?}/gw/$bucket"
	echo "$mode$r" >>"$work/result"
	echo "run $run $mode:$r" >&2
}

: >"$work/result"
for i in $(seq "$RUNS"); do
	for mode in $MODES; do
		run_one "$mode" "$i"
	done
done

# m MODE KEY: the median over the runs of KEY ("-" if never measured).
m() { result_median "$work/result" "$1" "$2"; }
# pg SECONDS: per GiB of data.
pg() { if [ "$1" = - ]; then echo -; else awk -v s="$1" -v mb="$DATA_MB" 'BEGIN { printf "%.2f", s * 1024 / mb }'; fi; }
ratio() {
	if [ "$1" = - ] || [ "$2" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; fi
}

echo
echo "CPU seconds per GiB of the s3backer process (user + system, whole life), median of $RUNS:"
echo
echo "| mode | phase | C s3backer 1.5.4 (FUSE) | s3backer-go (NBD) | ours / C | start + stop alone, C / ours (s) | client CPU s/GiB, dd / nbdcopy | gateway CPU s/GiB, C / ours |"
echo "|---|---|---|---|---|---|---|---|"
for mode in $MODES; do
	for ph in w r; do
		name="write"; if [ $ph = r ]; then name="read"; fi
		c=$(pg "$(m "$mode" c_$ph)") o=$(pg "$(m "$mode" o_$ph)")
		echo "| $mode | $name | $c | $o | $(ratio "$o" "$c") | $(m "$mode" c_idle) / $(m "$mode" o_idle) |" \
			"$(pg "$(m "$mode" c_${ph}_cli)") / $(pg "$(m "$mode" o_${ph}_cli)") |" \
			"$(pg "$(m "$mode" c_${ph}_gw)") / $(pg "$(m "$mode" o_${ph}_gw)") |"
	done
done
echo
echo "($DATA_MB MiB random data, $BS blocks, plain = no flags, cbc = --encrypt --password=x (deflate + AES-128-CBC + HMAC)," \
	"gcm = --encrypt=AES-256-GCM (deflate + AES-256-GCM, ours only); $("$BIN" --version 2>&1 | head -1)," \
	"$("$CBIN" --version 2>&1 | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
