#!/usr/bin/env bash
# The block cache side by side: s3backer-go (NBD) against the C s3backer
# (Debian's 1.5.4, FUSE) and the raw ceiling of the S3 server, on one
# Versity S3 Gateway (posix backend, --keep-alive, loopback), for each
# block size, with the same --blockCacheSize for both programs (the
# default 1000, or more so that the IOPS region fits). Each run:
#
#   write    512 MiB (SIZE_MB) of random data into a fresh bucket, timed
#            until durable. Ours: nbdcopy --flush (the FLUSH returns once
#            every block is in S3). C: dd bs=1M oflag=direct into its FUSE
#            file, fusermount -u, until its process exits (1.5.4 ignores
#            fsync and writes back at unmount; umount returns first).
#   read     cold: a fresh process, empty cache. Ours: nbdcopy to null:.
#            C: dd bs=1M iflag=direct to /dev/null.
#   IOPS     the same process, its first 256 MiB (REGION_MB) read once to
#            cache it, then fio 4 KiB random reads, then random writes, for
#            FIO_SECS each. Ours: fio's nbd engine (NBD_JOBS connections,
#            NBD_DEPTH requests in flight each); the nbdfuse + loop path
#            tops out near 22k IOPS on its own, so it is not used. C: fio
#            psync direct on its FUSE file (FUSE_JOBS jobs; libaio is
#            slower there, FUSE serves one request per thread).
#   ceiling  bench/s3ceiling: as many objects of the block size PUT, then
#            GET, by a bare aws-sdk-go-v2 client at each of PARALLEL
#            workers; the best rate of each phase. Then again with the
#            headers every s3backer PUT carries (Content-MD5, ACL,
#            Content-Type): the gateway checks the Content-MD5, which costs
#            it CPU the bare ceiling never spends, so this is the ceiling of
#            an s3backer (C or ours) on this machine.
#
# CPU seconds per GiB are those of the s3backer process alone during the
# write (until durable) and the cold read, from /proc/PID/stat (and, for
# the C write that ends with the process, /usr/bin/time).
#
# Last, the memory bound: our process with --blockCacheSize=1000
# (RSS_BLOCKS) of 1 MiB blocks, on a disk a quarter larger, after writing
# all of it and, in a fresh process, after reading all of it: VmHWM (peak
# RSS) from /proc/PID/status.
#
# Prints every run, then the medians of RUNS runs and the issue's targets.
#
#   bench/cache.sh                                   # 512 MiB, 256k and 1M blocks, 3 runs
#   RUNS=1 BLOCKS=256k SIZE_MB=128 FIO_SECS=5 bench/cache.sh
#   S3BACKER_BIN=/tmp/other/s3backer bench/cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-512}
RUNS=${RUNS:-3}
BLOCKS=${BLOCKS:-256k 1M}
REGION_MB=${REGION_MB:-256}
FIO_SECS=${FIO_SECS:-10}
NBD_JOBS=${NBD_JOBS:-2}
NBD_DEPTH=${NBD_DEPTH:-32}
FUSE_JOBS=${FUSE_JOBS:-4}
PARALLEL=${PARALLEL:-8,16,32}
RSS_BLOCKS=${RSS_BLOCKS:-1000}
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
need nbdcopy fio fusermount curl dd go
need_gateway
need_c
[ -x "$BIN" ] || make build >/dev/null
NBD_ENGINE=yes
if ! fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd'; then
	NBD_ENGINE=""
	echo "bench: this fio has no nbd engine: our IOPS are not measured" >&2
fi

work=$(mktemp -d /var/tmp/s3b-cachebench.XXXXXX)
gw_pid="" srv_pid="" tpid="" cpid="" mnt=$work/mnt
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then fusermount -u -z "$mnt" 2>/dev/null || true; fi
	if [ -n "$cpid" ]; then kill "$cpid" 2>/dev/null || true; fi
	if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null || true; fi
	if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$mnt"

go build -o "$work/s3ceiling" ./bench/s3ceiling
head -c $((SIZE_MB << 20)) /dev/urandom >"$work/in.img"

start_gateway
S3=(--baseURL="$URL" --accessId="$KEY" --accessKey="$SECRET")

# mbps START END [MIB]: MB/s (10^6 bytes) of MIB (default SIZE_MB) MiB.
# per_gib SECONDS: CPU seconds per GiB of SIZE_MB MiB.
# hwm PID: peak resident set size in MiB.
hwm() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
# serve LOG BUCKET FLAGS...: s3backer-go on a new socket.
serve() {
	local log=$1 bucket=$2; shift 2
	rm -f "$sock"
	"$BIN" --nbd -f "${S3[@]}" "$@" "$bucket" "$uri" 2>"$log" &
	srv_pid=$!
	wait_socket "$sock" "$srv_pid" "$log"
}
# unserve LOG: SIGTERM (flush, clear the mount token), check a clean exit.
unserve() {
	kill "$srv_pid"
	wait "$srv_pid" || fail "s3backer-go failed:" "$1"
	srv_pid=""
}

# c_mount BUCKET FLAGS...: the C s3backer on $mnt under /usr/bin/time,
# once its file is there; sets cpid.
c_mount() {
	local bucket=$1; shift
	"$TIME" -f "%U %S" -o "$work/ctime" "$CBIN" -f "${S3[@]}" "$@" "$bucket" "$mnt" >"$work/c.log" 2>&1 &
	tpid=$!
	cpid=""
	for _ in $(seq 1500); do
		[ -n "$cpid" ] || cpid=$(awk '{ print $1 }' "/proc/$tpid/task/$tpid/children" 2>/dev/null || true)
		[ -n "$cpid" ] && [ -e "$mnt/file" ] && return 0
		kill -0 "$tpid" 2>/dev/null || break
		sleep 0.02
	done
	fail "the C s3backer did not mount:" "$work/c.log"
}
# c_umount: unmount and wait for the process to exit (it writes back
# first); its whole-life CPU seconds in c_total.
c_umount() {
	fusermount -u "$mnt"
	wait "$tpid" || fail "the C s3backer failed:" "$work/c.log"
	tpid="" cpid=""
	c_total=$(awk 'END { printf "%.2f", $1 + $2 }' "$work/ctime")
}

# iops JSON RW: IOPS of a fio --output-format=json result.
iops() { /usr/bin/python3 -c 'import json, sys; print(round(sum(j[sys.argv[2]]["iops"] for j in json.load(open(sys.argv[1]))["jobs"])))' "$1" "$2"; }
# fio_ours RW: 4 KiB RW (randread, randwrite) on our region; IOPS in $io.
fio_ours() {
	fio --name=ours --ioengine=nbd --uri="$uri" --size="${REGION_MB}M" --rw="$1" --bs=4k \
		--iodepth="$NBD_DEPTH" --numjobs="$NBD_JOBS" --runtime="$FIO_SECS" --time_based --group_reporting \
		--output-format=json --output="$work/fio.json" >/dev/null 2>"$work/fio.err" || fail "fio failed:" "$work/fio.err"
	io=$(iops "$work/fio.json" "${1#rand}")
}
# fio_c RW: the same on the C s3backer's FUSE file.
fio_c() {
	fio --name=c --filename="$mnt/file" --size="${REGION_MB}M" --rw="$1" --bs=4k --direct=1 \
		--ioengine=psync --numjobs="$FUSE_JOBS" --runtime="$FIO_SECS" --time_based --group_reporting \
		--output-format=json --output="$work/fio.json" >/dev/null 2>"$work/fio.err" || fail "fio failed:" "$work/fio.err"
	io=$(iops "$work/fio.json" "${1#rand}")
}

# run_one BS RUN: every phase; appends "key=value ..." to $work/result.
run_one() {
	local bs=$1 run=$2 size cache bucket t0 t1 c0 r="" io
	size=$(bytes "$bs")
	cache=$(((REGION_MB << 20) * 5 / 4 / size))
	((cache >= 1000)) || cache=1000
	r+=" cache=$cache"

	# Ours.
	bucket=go-${bs,,}-r$run
	make_bucket "$bucket"
	serve "$work/w.log" "$bucket" --size="${SIZE_MB}M" --blockSize="$bs" --blockCacheSize="$cache"
	c0=$(cpu "$srv_pid") t0=$(now)
	nbdcopy --flush "$work/in.img" "$uri" || fail "nbdcopy failed:" "$work/w.log"
	t1=$(now)
	r+=" o_w=$(mbps "$t0" "$t1") o_wcpu=$(per_gib "$(sub "$(cpu "$srv_pid")" "$c0")")"
	unserve "$work/w.log"
	serve "$work/r.log" "$bucket" --blockCacheSize="$cache"
	c0=$(cpu "$srv_pid") t0=$(now)
	nbdcopy "$uri" null: || fail "nbdcopy failed:" "$work/r.log"
	t1=$(now)
	r+=" o_r=$(mbps "$t0" "$t1") o_rcpu=$(per_gib "$(sub "$(cpu "$srv_pid")" "$c0")")"
	if [ -n "$NBD_ENGINE" ]; then
		fio --name=warm --ioengine=nbd --uri="$uri" --size="${REGION_MB}M" --rw=read --bs=1M --iodepth=8 \
			--output="$work/fio.warm" >/dev/null 2>"$work/fio.err" || fail "fio failed:" "$work/fio.err"
		fio_ours randread
		r+=" o_rr=$io"
		fio_ours randwrite
		r+=" o_rw=$io"
	fi
	unserve "$work/r.log"
	rm -rf "${work:?}/gw/$bucket"

	# The C s3backer.
	bucket=c-${bs,,}-r$run
	make_bucket "$bucket"
	c_mount "$bucket" --size="${SIZE_MB}m" --blockSize="$bs" --blockCacheSize="$cache"
	c0=$(cpu "$cpid") t0=$(now)
	dd if="$work/in.img" of="$mnt/file" bs=1M oflag=direct conv=notrunc status=none || fail "dd failed:" "$work/c.log"
	c_umount
	t1=$(now)
	r+=" c_w=$(mbps "$t0" "$t1") c_wcpu=$(per_gib "$(sub "$c_total" "$c0")")"
	c_mount "$bucket" --size="${SIZE_MB}m" --blockSize="$bs" --blockCacheSize="$cache"
	c0=$(cpu "$cpid") t0=$(now)
	dd if="$mnt/file" of=/dev/null bs=1M iflag=direct status=none || fail "dd failed:" "$work/c.log"
	t1=$(now)
	r+=" c_r=$(mbps "$t0" "$t1") c_rcpu=$(per_gib "$(sub "$(cpu "$cpid")" "$c0")")"
	dd if="$mnt/file" of=/dev/null bs=1M count="$REGION_MB" iflag=direct status=none || fail "dd failed:" "$work/c.log"
	fio_c randread
	r+=" c_rr=$io"
	fio_c randwrite
	r+=" c_rw=$io"
	c_umount
	rm -rf "${work:?}/gw/$bucket"

	# The ceiling.
	local cb=ceiling-${bs,,}-r$run count
	make_bucket "$cb"
	count=$(((SIZE_MB << 20) / size))
	"$work/s3ceiling" -url "$URL" -bucket "$cb" -access "$KEY" -secret "$SECRET" \
		-size "$size" -count "$count" -parallel "$PARALLEL" -server-pid "$gw_pid" >"$work/ceiling.out" ||
		fail "s3ceiling failed"
	r+=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	            if (v["put_mbps"] + 0 > p) p = v["put_mbps"]
	            if (v["get_mbps"] + 0 > g) g = v["get_mbps"] }
	          END { printf " put=%s get=%s", p, g }' "$work/ceiling.out")
	rm -rf "${work:?}/gw/$cb"
	make_bucket "$cb"
	"$work/s3ceiling" -url "$URL" -bucket "$cb" -access "$KEY" -secret "$SECRET" \
		-size "$size" -count "$count" -parallel "$PARALLEL" -server-pid "$gw_pid" \
		-md5 -acl private -content-type application/x-s3backer-block >"$work/ceiling.out" ||
		fail "s3ceiling failed"
	r+=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	            if (v["put_mbps"] + 0 > p) p = v["put_mbps"] }
	          END { printf " put_s3b=%s", p }' "$work/ceiling.out")
	rm -rf "${work:?}/gw/$cb"
	echo "$bs$r" >>"$work/result"
	echo "run $run $bs:$r" >&2
}

# rss: peak RSS of ours with RSS_BLOCKS 1 MiB blocks cached, after
# writing a disk a quarter larger and after reading it all in a fresh
# process.
rss() {
	local mib=$((RSS_BLOCKS * 5 / 4)) bucket=rss
	head -c $((mib << 20)) /dev/urandom >"$work/rss.img"
	make_bucket "$bucket"
	serve "$work/rss.log" "$bucket" --size="${mib}M" --blockSize=1M --blockCacheSize="$RSS_BLOCKS"
	nbdcopy --flush "$work/rss.img" "$uri" || fail "nbdcopy failed:" "$work/rss.log"
	rss_w=$(hwm "$srv_pid")
	unserve "$work/rss.log"
	rm -f "$work/rss.img"
	serve "$work/rss.log" "$bucket" --blockCacheSize="$RSS_BLOCKS"
	nbdcopy "$uri" null: || fail "nbdcopy failed:" "$work/rss.log"
	rss_r=$(hwm "$srv_pid")
	unserve "$work/rss.log"
	rm -rf "${work:?}/gw/$bucket"
}

: >"$work/result"
for i in $(seq "$RUNS"); do
	for bs in $BLOCKS; do
		run_one "$bs" "$i"
	done
done
rss

# m BS KEY: the median over the runs of KEY ("-" if never measured).
m() { result_median "$work/result" "$1" "$2"; }
# pct A B: A as a percentage of B.
pct() { if [ "$1" = - ] || [ "$2" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; fi; }
# verdict OK: "met" or "NOT met".
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && b != "-" && a + 0 >= b + 0) ? 1 : 0 }'; }

echo
echo "Medians of $RUNS runs:"
echo
echo "| block size | measure | raw ceiling | C s3backer 1.5.4 (FUSE) | s3backer-go (NBD) | C / ceiling | ours / ceiling | ours / C |"
echo "|---|---|---|---|---|---|---|---|"
for bs in $BLOCKS; do
	p=$(m "$bs" put) g=$(m "$bs" get)
	echo "| $bs | write MB/s (until durable) | $p | $(m "$bs" c_w) | $(m "$bs" o_w) | $(pct "$(m "$bs" c_w)" "$p") | $(pct "$(m "$bs" o_w)" "$p") | $(pct "$(m "$bs" o_w)" "$(m "$bs" c_w)") |"
	ps=$(m "$bs" put_s3b)
	echo "| $bs | write MB/s, against the ceiling with s3backer's PUT headers | $ps | | | $(pct "$(m "$bs" c_w)" "$ps") | $(pct "$(m "$bs" o_w)" "$ps") | |"
	echo "| $bs | cold read MB/s | $g | $(m "$bs" c_r) | $(m "$bs" o_r) | $(pct "$(m "$bs" c_r)" "$g") | $(pct "$(m "$bs" o_r)" "$g") | $(pct "$(m "$bs" o_r)" "$(m "$bs" c_r)") |"
	echo "| $bs | 4 KiB random read IOPS (cached) | | $(m "$bs" c_rr) | $(m "$bs" o_rr) | | | $(pct "$(m "$bs" o_rr)" "$(m "$bs" c_rr)") |"
	echo "| $bs | 4 KiB random write IOPS (cached) | | $(m "$bs" c_rw) | $(m "$bs" o_rw) | | | $(pct "$(m "$bs" o_rw)" "$(m "$bs" c_rw)") |"
	echo "| $bs | CPU s/GiB, write | | $(m "$bs" c_wcpu) | $(m "$bs" o_wcpu) | | | $(pct "$(m "$bs" o_wcpu)" "$(m "$bs" c_wcpu)") |"
	echo "| $bs | CPU s/GiB, cold read | | $(m "$bs" c_rcpu) | $(m "$bs" o_rcpu) | | | $(pct "$(m "$bs" o_rcpu)" "$(m "$bs" c_rcpu)") |"
done
echo
echo "Peak RSS (VmHWM) of s3backer-go, --blockCacheSize=$RSS_BLOCKS of 1 MiB blocks ($RSS_BLOCKS MiB of data):" \
	"after writing $((RSS_BLOCKS * 5 / 4)) MiB $rss_w MiB; a fresh process after reading it all $rss_r MiB."
echo
echo "Targets (issue 5):"
for bs in $BLOCKS; do
	p=$(m "$bs" put) g=$(m "$bs" get)
	echo "- $bs: write >= 85 % of PUT ceiling: $(verdict "$(ge "$(m "$bs" o_w)" "$(awk -v p="$p" 'BEGIN { print 0.85 * p }')")");" \
		"cold read >= 80 % of GET ceiling: $(verdict "$(ge "$(m "$bs" o_r)" "$(awk -v g="$g" 'BEGIN { print 0.8 * g }')")");" \
		"above C on write: $(verdict "$(ge "$(m "$bs" o_w)" "$(m "$bs" c_w)")"), on read: $(verdict "$(ge "$(m "$bs" o_r)" "$(m "$bs" c_r)")");" \
		"CPU/GiB below C (write, read): $(verdict "$(ge "$(m "$bs" c_wcpu)" "$(m "$bs" o_wcpu)")"), $(verdict "$(ge "$(m "$bs" c_rcpu)" "$(m "$bs" o_rcpu)")");" \
		"random reads >= 100k IOPS: $(verdict "$(ge "$(m "$bs" o_rr)" 100000)"), >= C's (FUSE): $(verdict "$(ge "$(m "$bs" o_rr)" "$(m "$bs" c_rr)")")"
done
echo
echo "($SIZE_MB MiB random data, IOPS on the first $REGION_MB MiB for ${FIO_SECS}s each: ours fio nbd engine" \
	"$NBD_JOBS x iodepth $NBD_DEPTH, C fio psync direct $FUSE_JOBS jobs; ceiling = best of parallel $PARALLEL;" \
	"cache $(m "${BLOCKS%% *}" cache) blocks at ${BLOCKS%% *}; $("$BIN" --version 2>&1 | head -1)," \
	"$("$CBIN" --version 2>&1 | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
