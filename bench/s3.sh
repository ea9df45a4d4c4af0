#!/usr/bin/env bash
# Sequential throughput of s3backer-go on S3 against the raw ceiling of the
# S3 server. A Versity S3 Gateway (posix backend, --keep-alive) runs on a
# free loopback port in a temp dir; for each block size:
#
#   write   nbdcopy --flush of SIZE_MB MiB of random data into a fresh bucket
#           served by s3backer-go (--size/--blockSize given)
#   read    a fresh s3backer-go on the same bucket (geometry auto-detected,
#           nothing cached), nbdcopy to null:
#   ceiling bench/s3ceiling: as many objects of the block size, PUT then GET
#           by a bare aws-sdk-go-v2 client, at each of PARALLEL workers; the
#           best rate of each phase is the ceiling
#
# Requests are counted on the gateway's side, from its --access-log (on for
# every phase, ours and the ceiling alike). Only nbdcopy is timed; the
# counts cover the server's whole life, start-up (bucket check, mount
# token, geometry) and shutdown included.
#
# On a small shared machine every phase is CPU-bound, so the script also
# charges each phase its CPU seconds: s3backer-go + gateway + nbdcopy for
# ours, client + gateway for the ceiling (from /proc and rusage). The CPU
# share (ceiling CPU / our CPU) is what the throughput share tends to when
# CPU is the limit, and it is far less noisy than MB/s.
#
# Prints MB/s (10^6 bytes/s) per run, then medians of RUNS runs.
#
#   bench/s3.sh                                       # 512 MiB, 256k and 1M blocks, 3 runs
#   SIZE_MB=128 RUNS=5 BLOCKS="256k" bench/s3.sh
#   NBDCOPY_OPTS="--connections=1" bench/s3.sh       # extra nbdcopy flags
#   S3BACKER_BIN=/tmp/other/s3backer bench/s3.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-512}
RUNS=${RUNS:-3}
BLOCKS=${BLOCKS:-256k 1M}
PARALLEL=${PARALLEL:-8,16,32}
NBDCOPY_OPTS=${NBDCOPY_OPTS:-}
BIN=${S3BACKER_BIN:-bin/s3backer}
VGW=${VERSITYGW:-$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")}
export PATH=/usr/bin:$PATH
# Loopback only: never let the SDK reach for instance metadata.
export AWS_EC2_METADATA_DISABLED=true
KEY=bench-access SECRET=bench-secret

# shellcheck source=bench/lib.sh
. bench/lib.sh
need nbdcopy curl go
need_gateway
[ -x "$BIN" ] || make build >/dev/null

work=$(mktemp -d /var/tmp/s3b-s3bench.XXXXXX)
gw_pid="" srv_pid=""
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/s3ceiling" ./bench/s3ceiling
head -c $((SIZE_MB << 20)) /dev/urandom >"$work/in.img"

# child_cpu FILE: CPU seconds of this shell's reaped children, from the
# output of the `times` builtin (run it in this shell, not in $(...)).
child_cpu() { awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] } printf "%.2f", t }' "$1"; }

GW_ACCESS_LOG=$work/access.log start_gateway

# requests SINCE: the gateway's requests logged after line SINCE of the
# access log, as "2049 PutObject +6 other (0 errors)": the most frequent
# operation, the rest, and answers other than 2xx and 404.
log_mark() { wc -l <"$work/access.log"; }
requests() {
	tail -n +$(($1 + 1)) "$work/access.log" | awk '
		{ op = ""; st = ""
		  for (i = 1; i <= NF; i++) {
			if (op == "" && $i ~ /^s3_/) op = substr($i, 4)
			else if (op != "" && $i ~ /^[0-9][0-9][0-9]$/) { st = $i; break }
		  }
		  if (op == "") next
		  n[op]++; all++
		  if (st !~ /^2/ && st != "404") errs++ }
		END { top = ""; for (o in n) if (top == "" || n[o] > n[top]) top = o
		      printf "%d %s +%d other (%d errors)", n[top], top, all - n[top], errs }'
}

# serve LOG BUCKET [FLAGS...]: start s3backer-go on a new socket.
sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
serve() {
	local log=$1 bucket=$2; shift 2
	rm -f "$sock"
	"$BIN" --nbd -f --baseURL="$URL" --accessId="$KEY" --accessKey="$SECRET" "$@" \
		"$bucket" "$uri" 2>"$log" &
	srv_pid=$!
	wait_socket "$sock" "$srv_pid" "$log"
}
# stop LOG: SIGTERM (flush, clear the mount token) and check a clean exit.
stop() {
	kill "$srv_pid"
	if ! wait "$srv_pid"; then
		echo "bench: s3backer-go failed:" >&2; cat "$1" >&2; exit 1
	fi
	srv_pid=""
}

# timed_copy LOG ARGS...: nbdcopy ARGS against the running server. Sets
# secs0/secs1 (wall clock) and cpu_s3b, cpu_gw, cpu_nbd (CPU seconds).
timed_copy() {
	local log=$1 s0 g0; shift
	s0=$(cpu "$srv_pid") g0=$(cpu "$gw_pid")
	times >"$work/times0"
	secs0=$(now)
	# shellcheck disable=SC2086
	nbdcopy $NBDCOPY_OPTS "$@" >&2 || { echo "bench: nbdcopy failed:" >&2; cat "$log" >&2; exit 1; }
	secs1=$(now)
	times >"$work/times1"
	cpu_s3b=$(sub "$(cpu "$srv_pid")" "$s0")
	cpu_gw=$(sub "$(cpu "$gw_pid")" "$g0")
	cpu_nbd=$(sub "$(child_cpu "$work/times1")" "$(child_cpu "$work/times0")")
}

# run_one BS RUN: one write, one cold read and one ceiling run. Leaves
# "key=value ..." in $work/result and the request counts in $work/req.
# (It runs in this shell, not a subshell, so that a failure stops the
# script and cleanup sees the server's pid.)
run_one() {
	local bs=$1 run=$2 bucket mark wreq rreq w r wcpu rcpu
	bucket=s3b-${bs,,}-r$run
	make_bucket "$bucket"

	mark=$(log_mark)
	serve "$work/w.log" "$bucket" --size="${SIZE_MB}M" --blockSize="$bs"
	timed_copy "$work/w.log" --flush "$work/in.img" "$uri"
	stop "$work/w.log"
	w=$(mbps "$secs0" "$secs1") wcpu="w_s3b=$cpu_s3b w_gw=$cpu_gw w_nbd=$cpu_nbd"
	wreq=$(requests "$mark")

	mark=$(log_mark)
	serve "$work/r.log" "$bucket"
	timed_copy "$work/r.log" "$uri" null:
	stop "$work/r.log"
	r=$(mbps "$secs0" "$secs1") rcpu="r_s3b=$cpu_s3b r_gw=$cpu_gw r_nbd=$cpu_nbd"
	rreq=$(requests "$mark")

	local cb=ceiling-${bs,,}-r$run size count best
	make_bucket "$cb"
	size=$(bytes "$bs")
	count=$(((SIZE_MB << 20) / size))
	if ! "$work/s3ceiling" -url "$URL" -bucket "$cb" -access "$KEY" -secret "$SECRET" \
		-size "$size" -count "$count" -parallel "$PARALLEL" -server-pid "$gw_pid" >"$work/ceiling.out"; then
		echo "bench: s3ceiling failed" >&2; exit 1
	fi
	sed 's/^/    /' "$work/ceiling.out" >&2
	# The round with the best PUT rate and the one with the best GET rate,
	# with their CPU seconds.
	best=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	              if (v["put_mbps"] + 0 > p) { p = v["put_mbps"]; pp = v["parallel"]; pc = v["put_cpu"]; ps = v["put_server_cpu"] }
	              if (v["get_mbps"] + 0 > g) { g = v["get_mbps"]; gp = v["parallel"]; gc = v["get_cpu"]; gs = v["get_server_cpu"] } }
	            END { printf "put=%s put_par=%s p_cli=%s p_gw=%s get=%s get_par=%s g_cli=%s g_gw=%s", p, pp, pc, ps, g, gp, gc, gs }' "$work/ceiling.out")
	# Free the disk space: the gateway keeps one file per object.
	rm -rf "${work:?}/gw/$bucket" "${work:?}/gw/$cb"
	echo "W: $wreq; R: $rreq; ceiling: $count PUT + $count GET per round" >"$work/req"
	echo "write=$w read=$r $wcpu $rcpu $best" >"$work/result"
}

declare -A res reqs
for i in $(seq "$RUNS"); do
	for bs in $BLOCKS; do
		run_one "$bs" "$i"
		reqs[$bs]=$(cat "$work/req")
		res[$bs]+="$(cat "$work/result")"$'\n'
		# shellcheck disable=SC2046
		awk -v run="$i" -v bs="$bs" $(sed 's/\([^ =]*\)=\([^ ]*\)/-v \1=\2/g' "$work/result") 'BEGIN {
			printf "run %s  %-5s write %s MB/s (ceiling PUT %s @%s)  read %s MB/s (ceiling GET %s @%s)\n", run, bs, write, put, put_par, read, get, get_par
			printf "    CPU s  write: ours %.2f (s3backer %s, gateway %s, nbdcopy %s)  ceiling %.2f (client %s, gateway %s)\n", w_s3b + w_gw + w_nbd, w_s3b, w_gw, w_nbd, p_cli + p_gw, p_cli, p_gw
			printf "    CPU s  read:  ours %.2f (s3backer %s, gateway %s, nbdcopy %s)  ceiling %.2f (client %s, gateway %s)\n", r_s3b + r_gw + r_nbd, r_s3b, r_gw, r_nbd, g_cli + g_gw, g_cli, g_gw }'
		echo "    requests  ${reqs[$bs]}"
	done
done

# m BS KEY: the median over the runs of KEY; mt BS K1,K2,...: the median
# of the per-run sums of those keys.
m() { # shellcheck disable=SC2046
	median $(printf '%s' "${res[$1]}" | awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }'); }
mt() { # shellcheck disable=SC2046
	median $(printf '%s' "${res[$1]}" | awk -v ks="$2" '{ n = split(ks, K, ","); t = 0
		for (i = 1; i <= NF; i++) { split($i, kv, "="); for (j = 1; j <= n; j++) if (kv[1] == K[j]) t += kv[2] }
		printf "%.2f\n", t }'); }

echo
echo "| block size | write MB/s | ceiling PUT MB/s | share | read MB/s | ceiling GET MB/s | share | requests (gateway access log, last run) |"
echo "|---|---|---|---|---|---|---|---|"
for bs in $BLOCKS; do
	awk -v bs="$bs" -v w="$(m "$bs" write)" -v p="$(m "$bs" put)" -v r="$(m "$bs" read)" -v g="$(m "$bs" get)" -v q="${reqs[$bs]}" \
	    'BEGIN { printf "| %s | %.1f | %.1f | %.0f %% | %.1f | %.1f | %.0f %% | %s |\n", bs, w, p, 100 * w / p, r, g, 100 * r / g, q }'
done
echo
echo "| block size | phase | our CPU s (s3backer + gateway + nbdcopy) | ceiling CPU s (client + gateway) | CPU share |"
echo "|---|---|---|---|---|"
for bs in $BLOCKS; do
	awk -v bs="$bs" -v o="$(mt "$bs" w_s3b,w_gw,w_nbd)" -v os="$(m "$bs" w_s3b)" -v og="$(m "$bs" w_gw)" -v on="$(m "$bs" w_nbd)" \
	    -v c="$(mt "$bs" p_cli,p_gw)" -v cc="$(m "$bs" p_cli)" -v cg="$(m "$bs" p_gw)" \
	    'BEGIN { printf "| %s | write | %.2f (%s + %s + %s) | %.2f (%s + %s) | %.0f %% |\n", bs, o, os, og, on, c, cc, cg, 100 * c / o }'
	awk -v bs="$bs" -v o="$(mt "$bs" r_s3b,r_gw,r_nbd)" -v os="$(m "$bs" r_s3b)" -v og="$(m "$bs" r_gw)" -v on="$(m "$bs" r_nbd)" \
	    -v c="$(mt "$bs" g_cli,g_gw)" -v cc="$(m "$bs" g_cli)" -v cg="$(m "$bs" g_gw)" \
	    'BEGIN { printf "| %s | read | %.2f (%s + %s + %s) | %.2f (%s + %s) | %.0f %% |\n", bs, o, os, og, on, c, cc, cg, 100 * c / o }'
done
echo
echo "($SIZE_MB MiB random data, median of $RUNS runs, ceiling = best of parallel $PARALLEL," \
	"nbdcopy ${NBDCOPY_OPTS:-defaults}, $("$BIN" --version 2>&1 | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
